"""A tenant never sees, stops, deletes or reads the logs of another tenant's job: 404, as if
it did not exist, on every endpoint of both dialects."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import httpx
import pytest
from apiprocess import ApiServer, ApiServers, delete_tenant_namespace, wait_status
from kubernetes import client
from waiting import eventually
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from jobgate.api import config
from jobgate.crds import names

JOB = {"entrypoint": "true", "runtime_env": {"working_dir": "https://example.com/job.zip"}}


@pytest.fixture
def other_tenant(kube: client.ApiClient) -> Iterator[str]:
    name = f"Other Tenant {uuid.uuid4().hex[:6]}"  # not a DNS label: maps to a hashed namespace
    yield name
    delete_tenant_namespace(kube, name)


def test_another_tenants_job_does_not_exist_anywhere(
    api: ApiServer, tenant: str, other_tenant: str, kube: client.ApiClient
) -> None:
    owner, stranger = api.client(tenant), api.client(other_tenant)
    with owner, stranger:
        assert owner.post("/api/jobs", json={**JOB, "submission_id": "mine"}).status_code == 200
        assert stranger.post("/api/jobs", json={**JOB, "submission_id": "theirs"}).status_code == 200
        wait_status(owner, "/api/jobs/app-mine", "SUCCEEDED")

        seed_404 = "not found app, submissionId: app-mine"
        ray_404 = "Job app-mine does not exist"
        calls: list[tuple[httpx.Response, str]] = [
            (stranger.get("/api/jobs/app-mine"), seed_404),
            (stranger.post("/api/jobs/app-mine/stop"), seed_404),
            (stranger.delete("/api/jobs/app-mine"), seed_404),
            (stranger.get("/api/jobs/app-mine/logs"), seed_404),
            (stranger.get("/ray/api/jobs/app-mine"), ray_404),
            (stranger.post("/ray/api/jobs/app-mine/stop"), ray_404),
            (stranger.delete("/ray/api/jobs/app-mine"), ray_404),
            (stranger.get("/ray/api/jobs/app-mine/logs"), ray_404),
        ]
        for response, message in calls:
            assert response.status_code == 404, response.request.url
            assert message in response.text
        assert [job["submission_id"] for job in stranger.get("/api/jobs").json()] == ["app-theirs"]
        assert [job["submission_id"] for job in stranger.get("/ray/api/jobs/").json()] == ["app-theirs"]
        assert [job["submission_id"] for job in owner.get("/api/jobs").json()] == ["app-mine"]
        # The same id is free for the other tenant: ids are per tenant.
        assert stranger.post("/api/jobs", json={**JOB, "submission_id": "mine"}).status_code == 200
        assert owner.get("/api/jobs/app-mine").json()["status"] == "SUCCEEDED"  # untouched

    url = api.url.replace("http://", "ws://") + "/ray/api/jobs/app-theirs/logs/tail"
    with pytest.raises(InvalidStatus) as refused:
        connect(url, additional_headers={"X-Tenant-Id": tenant}, proxy=None).close()
    assert refused.value.response.status_code == 404

    namespace = client.CoreV1Api(kube).read_namespace(
        names.tenant_namespace(other_tenant, prefix=names.DEFAULT_NAMESPACE_PREFIX)
    )
    assert namespace.metadata.annotations["jobgate.io/tenant"] == other_tenant
    assert "--" in namespace.metadata.name


def test_no_tenant_header_means_the_default_tenant(api: ApiServer, kube: client.ApiClient) -> None:
    submission = f"dflt-{uuid.uuid4().hex[:6]}"
    with api.client() as http:
        assert http.post("/api/jobs", json={**JOB, "submission_id": submission}).status_code == 200
        assert http.get(f"/api/jobs/app-{submission}").status_code == 200
    with api.client(config.DEFAULT_TENANT) as http:
        assert http.get(f"/api/jobs/app-{submission}").status_code == 200
        assert http.delete(f"/api/jobs/app-{submission}").status_code == 200


def test_a_namespace_of_that_name_that_is_not_the_tenants_is_not_used(
    api: ApiServer, tenant: str, kube: client.ApiClient
) -> None:
    name = names.tenant_namespace(tenant, prefix=names.DEFAULT_NAMESPACE_PREFIX)
    client.CoreV1Api(kube).create_namespace({"metadata": {"name": name}})
    with api.client(tenant) as http:
        response = http.post("/api/jobs", json=JOB)
    assert response.status_code == 403
    assert f"namespace {name} exists and is not tenant" in response.json()


def test_a_tenant_namespace_deleted_behind_the_apis_back_is_made_again(
    api: ApiServer, tenant: str, kube: client.ApiClient
) -> None:
    core = client.CoreV1Api(kube)
    with api.client(tenant) as http:
        assert http.post("/api/jobs", json={**JOB, "submission_id": "before"}).status_code == 200
        core.delete_namespace(names.tenant_namespace(tenant, prefix=names.DEFAULT_NAMESPACE_PREFIX))
        selector = f"metadata.name={names.tenant_namespace(tenant, prefix=names.DEFAULT_NAMESPACE_PREFIX)}"
        eventually(
            lambda: not core.list_namespace(field_selector=selector).items, message="the namespace to be gone"
        )
        eventually(
            lambda: http.get("/api/jobs/app-before").status_code == 404,
            message="the deleted job to leave the API's index",
        )
        response = http.post("/api/jobs", json={**JOB, "submission_id": "after"})
        assert response.status_code == 200, response.text
        wait_status(http, "/api/jobs/app-after", "SUCCEEDED")


def test_when_tenants_are_listed_no_other_gets_a_namespace(
    api_servers: ApiServers, tenant: str, kube: client.ApiClient
) -> None:
    server = api_servers.start("listed-tenants", JOBGATE_TENANTS=f"{tenant}, someone-else")
    stranger = f"made-up-{uuid.uuid4().hex[:6]}"
    core = client.CoreV1Api(kube)
    for who, path in ((stranger, "/api/jobs"), (stranger, "/ray/api/jobs/"), (None, "/api/jobs")):
        with server.client(who) as http:
            refused = http.post(path, json=JOB)
        assert refused.status_code == 403, refused.text
        assert "is not one of this deployment's tenants" in refused.text
    namespaces = [ns.metadata.name for ns in core.list_namespace().items]
    assert names.tenant_namespace(stranger, prefix=names.DEFAULT_NAMESPACE_PREFIX) not in namespaces
    with server.client(tenant) as http:
        assert http.post("/api/jobs", json=JOB).status_code == 200


def test_a_tenant_namespace_enforces_the_restricted_pod_security_standard(
    api_servers: ApiServers, tenant: str, kube: client.ApiClient
) -> None:
    """Job pods meet `restricted` (an ordinary user, nothing to gain); a root pod, or one on
    the host's network, is refused there, even the cluster admin's."""
    # No file:// root here: those mount a node directory, which only `privileged` allows.
    server = api_servers.start("restricted", JOBGATE_FILE_URI_ROOT="")
    with server.client(tenant) as http:
        assert http.post("/api/jobs", json={**JOB, "submission_id": "meets-it"}).status_code == 200
        assert wait_status(http, "/api/jobs/app-meets-it", "SUCCEEDED")  # job pods meet it
    namespace = names.tenant_namespace(tenant, prefix=names.DEFAULT_NAMESPACE_PREFIX)
    core = client.CoreV1Api(kube)
    labels = core.read_namespace(namespace).metadata.labels
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"
    for name, spec, violation in (
        ("on-the-host", {"host_network": True}, "host namespaces"),
        ("as-root", {"security_context": client.V1PodSecurityContext(run_as_user=0)}, "runAsUser=0"),
    ):
        pod = client.V1Pod(
            metadata=client.V1ObjectMeta(name=name),
            spec=client.V1PodSpec(containers=[client.V1Container(name="c", image="x")], **spec),
        )
        with pytest.raises(client.ApiException) as refused:
            core.create_namespaced_pod(namespace, pod)  # even the cluster's admin, in that namespace
        assert refused.value.status == 403
        said = json.loads(refused.value.body)["message"]
        assert 'violates PodSecurity "restricted:latest"' in said
        assert violation in said
