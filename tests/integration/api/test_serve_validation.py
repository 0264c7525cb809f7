"""Every bound at its edge: the edge is accepted, one step past it is refused with a 400 that
names the field and the range, and a refused request leaves nothing in the cluster."""

from __future__ import annotations

from typing import Any

import pytest
from apiprocess import ApiServer
from kubernetes import client

from jobgate.crds import names

BASE: dict[str, Any] = {"entrypoint": "true", "runtime_env": {"working_dir": "https://example.com/job.zip"}}


def _jobs_and_namespace(kube: client.ApiClient, tenant: str) -> tuple[list[Any], bool]:
    namespace = names.tenant_namespace(tenant, prefix=names.DEFAULT_NAMESPACE_PREFIX)
    selector = f"metadata.name={namespace}"
    if not client.CoreV1Api(kube).list_namespace(field_selector=selector).items:
        return [], False
    items = client.CustomObjectsApi(kube).list_namespaced_custom_object(
        "jobgate.io", "v1alpha1", namespace, "jobs"
    )["items"]
    return items, True


@pytest.mark.parametrize(
    "fields",
    [
        {"entrypoint_num_cpus": 0.3},
        {"entrypoint_num_cpus": 16},
        {"entrypoint_memory": 134217728},
        {"entrypoint_memory": 1125899906842624},
        {"entrypoint_num_gpus": 0},
        {"entrypoint_resources": {"NPU": 0}},
        {"entrypoint_resources": {"NPU": 2}},
        {"submission_id": "a" * 60},  # 64 with the prefix
        {"submission_id": "app-" + "0" * 60},
    ],
    ids=lambda fields: "-".join(f"{key}={str(value)[:20]}" for key, value in fields.items()),
)
def test_the_edges_are_accepted(stored_api: ApiServer, tenant: str, fields: dict[str, Any]) -> None:
    with stored_api.client(tenant) as http:
        response = http.post("/api/jobs", json={**BASE, **fields})
    assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"entrypoint_num_cpus": 0.29}, "entrypoint_num_cpus must be in [0.3, 16], got 0.29"),
        ({"entrypoint_num_cpus": 16.01}, "entrypoint_num_cpus must be in [0.3, 16], got 16.01"),
        (
            {"entrypoint_memory": 134217727},
            "entrypoint_memory must be in [134217728, 1125899906842624], got 134217727",
        ),
        (
            {"entrypoint_memory": 1125899906842625},
            "entrypoint_memory must be in [134217728, 1125899906842624], got 1125899906842625",
        ),
        ({"entrypoint_num_gpus": -1}, "entrypoint_num_gpus must be >= 0, got -1"),
        ({"entrypoint_num_gpus": 0.5}, "entrypoint_num_gpus: 0.5 is not a whole number"),
        ({"entrypoint_resources": {"NPU": -1}}, "entrypoint_resources.NPU must be >= 0, got -1"),
        (
            {"entrypoint_resources": {"TPU": 1}},
            "entrypoint_resources.TPU: unknown custom resource 'TPU' (allowed: NPU)",
        ),
        ({"submission_id": "a" * 61}, "submission_id must match ^[a-z0-9-]{1,64}$"),
        ({"submission_id": "Upper"}, "submission_id must match"),
        ({"submission_id": "my_job"}, "submission_id must match"),
        ({"submission_id": "app-driver-1"}, "must not contain 'driver'"),
        ({"entrypoint": ""}, "entrypoint must not be empty"),
        ({"entrypoint": None}, "entrypoint must be a string, got null"),
        ({"runtime_env": {}}, "runtime_env.working_dir is required"),
        ({"runtime_env": None}, "runtime_env must be an object"),
        ({"runtime_env": {"working_dir": ""}}, "runtime_env.working_dir must not be empty"),
        ({"runtime_env": {"working_dir": "ftp://x/y.zip"}}, "runtime_env.working_dir: cannot fetch"),
        (
            {"runtime_env": {"working_dir": "x", "env_vars": {"A": 1}}},
            "runtime_env.env_vars.A must be a string",
        ),
        ({"runtime_env": {"working_dir": "x", "pip": "numpy"}}, "runtime_env.pip must be a list"),
        ({"metadata": {"a": 1}}, "metadata.a must be a string, got 1"),
        (
            {"metadata": {"jobgate.io/max-attempts": "0"}},
            'metadata.jobgate.io/max-attempts must be greater than or equal to 1, got "0"',
        ),
        (
            {"metadata": {"jobgate.io/pod-failure-policy": '{"rules": []}'}},
            "metadata.jobgate.io/pod-failure-policy.rules must have at least 1 item",
        ),
        ({"entrypoint_num_cpus": "3"}, 'entrypoint_num_cpus must be a number, got "3"'),
        ({"entrypoint_num_cpus": True}, "entrypoint_num_cpus must be a number, got true"),
        ({"entrypoint_memory": 134217728.5}, "entrypoint_memory must be an integer"),
        ({"entrypoint_num_cpu": 3}, "entrypoint_num_cpu is not a known field (allowed: entrypoint, "),
        (
            {
                "runtime_env": {
                    "working_dir": "https://example.com/job.zip",
                    "image_uri": "ghcr.io/evil/miner:1",
                }
            },
            "runtime_env.image_uri: image 'ghcr.io/evil/miner:1' (ghcr.io/evil/miner:1) is not allowed here: "
            "images must start with 'docker.io/' (JOBGATE_ALLOWED_IMAGES)",
        ),
    ],
    ids=lambda value: str(value)[:40],
)
def test_past_the_edges_is_refused_and_nothing_is_left(
    api: ApiServer, tenant: str, kube: client.ApiClient, fields: dict[str, Any], message: str
) -> None:
    with api.client(tenant) as http:
        response = http.post("/api/jobs", json={**BASE, **fields})
    assert response.status_code == 400
    assert message in response.json()
    assert _jobs_and_namespace(kube, tenant) == ([], False)


@pytest.mark.parametrize(
    ("body", "headers", "status", "message"),
    [
        (b"{bad", {"Content-Type": "application/json"}, 400, "request body is not valid JSON"),
        (b"[1, 2]", {"Content-Type": "application/json"}, 400, "request body must be a JSON object"),
        (b'"text"', {"Content-Type": "application/json"}, 400, "request body must be a JSON object"),
        (b"", {"Content-Type": "application/json"}, 400, "request body is required"),
        (b'{"entrypoint_num_cpus": NaN}', {}, 400, "entrypoint_num_cpus must be a finite number"),
        (
            b"entrypoint=x",
            {"Content-Type": "application/x-www-form-urlencoded"},
            400,
            "must be a JSON object",
        ),
        (b'{"entrypoint": "' + b"x" * (2 << 20) + b'"}', {}, 413, "request body too large: at most 1048576"),
    ],
    ids=["malformed", "array", "string", "empty", "nan", "form", "oversized"],
)
def test_bodies_that_are_not_a_job_get_a_4xx(
    api: ApiServer,
    tenant: str,
    kube: client.ApiClient,
    body: bytes,
    headers: dict[str, str],
    status: int,
    message: str,
) -> None:
    with api.client(tenant, **headers) as http:
        response = http.post("/api/jobs", content=body)
    assert response.status_code == status
    assert message in response.json()
    assert _jobs_and_namespace(kube, tenant) == ([], False)


def test_an_oversized_chunked_body_gets_a_413(api: ApiServer, tenant: str) -> None:
    def chunks() -> Any:
        yield b'{"entrypoint": "'
        for _ in range(40):
            yield b"x" * 65536
        yield b'"}'

    with api.client(tenant, **{"Content-Type": "application/json"}) as http:
        response = http.post("/api/jobs", content=chunks())
    assert response.status_code == 413
    assert "at most 1048576 bytes" in response.json()


def test_headers_are_checked_too(api: ApiServer, tenant: str, kube: client.ApiClient) -> None:
    with api.client(tenant, **{"X-Pool-Label": "pool-cpu-a, bad label"}) as http:
        response = http.post("/api/jobs", json=BASE)
    assert response.status_code == 400
    assert response.json().startswith("X-Pool-Label: 'bad label' is not a node label key")
    with api.client("x" * 300) as http:
        response = http.post("/api/jobs", json=BASE)
    assert response.status_code == 400
    assert response.json().startswith("X-Tenant-Id: a tenant id is 1 to 253 printable characters")
    assert _jobs_and_namespace(kube, tenant) == ([], False)


def test_a_duplicate_changes_nothing(api: ApiServer, tenant: str, kube: client.ApiClient) -> None:
    with api.client(tenant) as http:
        assert http.post("/api/jobs", json={**BASE, "submission_id": "once"}).status_code == 200
        (before,), _ = _jobs_and_namespace(kube, tenant)
        again = http.post("/api/jobs", json={**BASE, "entrypoint": "other", "submission_id": "app-once"})
        assert (again.status_code, again.json()) == (
            400,
            "submit job has already exist, submissionId: app-once",
        )
    (after,), _ = _jobs_and_namespace(kube, tenant)
    assert after["metadata"]["uid"] == before["metadata"]["uid"]
    assert after["spec"] == before["spec"]
