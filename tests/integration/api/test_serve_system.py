"""Packages, probes, metrics and the API's own description."""

from __future__ import annotations

import uuid

import archives
from apiprocess import STORED_PACKAGE_LIMIT, ApiServer, ApiServers, delete_tenant_namespace, wait_status
from kubernetes import client
from waiting import eventually

from jobgate.crds import names, policy
from jobgate.devcluster import LocalCluster, objectstore

JOB = {"entrypoint": "true", "runtime_env": {"working_dir": "https://example.com/job.zip"}}


def test_packages_are_stored_served_and_limited(stored_api: ApiServer, tenant: str) -> None:
    name, package = "_ray_pkg_0123456789abcdef.zip", archives.zipped({"script.py": "print(1)"})
    space = stored_api.package_dir / names.tenant_namespace(tenant, prefix=names.DEFAULT_NAMESPACE_PREFIX)
    with stored_api.client(tenant) as http:
        assert http.get(f"/ray/api/packages/gcs/{name}").status_code == 404
        assert http.put(f"/ray/api/packages/gcs/{name}", content=package).status_code == 200
        exists = http.get(f"/ray/api/packages/gcs/{name}")
        assert (exists.status_code, exists.content) == (200, b"")  # Ray's client only asks whether
        assert (space / name).read_bytes() == package
        assert [path.name for path in space.iterdir()] == [name]  # no leftovers

        too_big = http.put(
            "/ray/api/packages/gcs/_ray_pkg_big.zip", content=b"x" * (STORED_PACKAGE_LIMIT + 1)
        )
        assert too_big.status_code == 413
        assert f"at most {STORED_PACKAGE_LIMIT} bytes" in too_big.text
        assert http.get("/ray/api/packages/gcs/_ray_pkg_big.zip").status_code == 404
        assert http.put("/ray/api/packages/s3/x.zip", content=b"x").status_code == 400
        assert http.put("/ray/api/packages/gcs/.hidden", content=b"x").status_code == 400


def test_a_package_is_the_tenants_never_changes_and_only_its_job_fetches_it(
    stored_api: ApiServer, tenant: str, kube: client.ApiClient
) -> None:
    name = f"_ray_pkg_{uuid.uuid4().hex[:16]}.zip"
    mine, theirs = archives.zipped({"main.py": "print('mine')"}), archives.zipped({"main.py": "evil()"})
    other = f"other-{uuid.uuid4().hex[:6]}"
    try:
        with stored_api.client(tenant) as owner, stored_api.client(other) as stranger:
            assert owner.put(f"/ray/api/packages/gcs/{name}", content=mine).status_code == 200
            assert stranger.get(f"/ray/api/packages/gcs/{name}").status_code == 404  # says nothing of A's
            assert stranger.put(f"/ray/api/packages/gcs/{name}", content=theirs).status_code == 200  # its own
            taken = owner.put(f"/ray/api/packages/gcs/{name}", content=theirs)
            assert taken.status_code == 409
            assert "exists with other contents" in taken.text
            assert (
                owner.put(f"/ray/api/packages/gcs/{name}", content=mine).status_code == 200
            )  # the same again

            job = {**JOB, "submission_id": "pkg", "metadata": {"fake-duration": "600s"}}
            job["runtime_env"] = {"working_dir": f"gcs://{name}"}
            assert owner.post("/api/jobs", json=job).status_code == 200
            namespace = names.tenant_namespace(tenant, prefix=names.DEFAULT_NAMESPACE_PREFIX)
            uid = client.CustomObjectsApi(kube).get_namespaced_custom_object(
                "jobgate.io", "v1alpha1", namespace, "jobs", "app-pkg"
            )["metadata"]["uid"]
            url = f"/api/packages/gcs/{name}"
            identity = {"namespace": namespace, "job": "app-pkg", "uid": uid}
            with stored_api.client() as pod:  # the init container: no tenant, no token
                fetched = pod.get(url, params=identity)
                assert (fetched.status_code, fetched.content) == (200, mine)
                for wrong in ({"uid": "guessed"}, {"job": "app-other"}, {"namespace": "jobgate-t-x"}, {}):
                    assert pod.get(url, params={**identity, **wrong} if wrong else None).status_code == 404
                assert owner.post("/api/jobs/app-pkg/stop").status_code == 200
                wait_status(owner, "/api/jobs/app-pkg", "STOPPED")
                assert pod.get(url, params=identity).status_code == 404  # finished: no more
    finally:
        delete_tenant_namespace(kube, other)


def test_probes_metrics_and_docs(api: ApiServer, tenant: str) -> None:
    with api.client(tenant) as http:
        assert http.post("/api/jobs", json={**JOB, "submission_id": "metered"}).status_code == 200
        wait_status(http, "/api/jobs/app-metered", "SUCCEEDED")
        assert http.get("/api/jobs/app-unknown").status_code == 404
        assert http.get("/healthz").text == "ok"
        assert http.get("/readyz").text == "ok"
        metrics = http.get("/metrics").text
        assert 'jobgate_api_requests_total{method="POST",route="/api/jobs",status="200"}' in metrics
        assert (
            'jobgate_api_requests_total{method="GET",route="/api/jobs/{submission_id}",status="404"}'
            in metrics
        )
        assert "jobgate_api_request_duration_seconds_bucket" in metrics
        assert 'jobgate_api_jobs{state="SUCCEEDED"}' in metrics
        assert "jobgate_api_ready 1.0" in metrics

        document = http.get("/openapi.json").json()
        assert {"/api/jobs", "/api/jobs/{submission_id}", "/ray/api/jobs/", "/ray/api/version"} <= set(
            document["paths"]
        )
        assert "bearer" in document["components"]["securitySchemes"]
        assert http.get("/docs").status_code == 200
        version = http.get("/ray/api/version").json()
        assert version["version"] == "4"
        assert version["ray_version"] == "2.60.0"


def _stored(store: objectstore.Store, space: str, name: str) -> bool:
    """Whether the store holds the package (asked of the store itself: nothing is touched)."""
    key = f"{policy.DEFAULT_S3_PREFIX}packages/{space}/{name}"
    return bool(store.client().list_objects_v2(Bucket=store.bucket, Prefix=key).get("KeyCount"))


def test_packages_nobody_wants_are_removed_from_the_store_and_those_in_use_kept(
    api_servers: ApiServers, store: objectstore.Store, tenant: str
) -> None:
    server = api_servers.start(
        "package-ttl", JOBGATE_PACKAGE_TTL_SECONDS="2", JOBGATE_SUBMIT_WAIT="stored", **store.env()
    )
    space = names.tenant_namespace(tenant, prefix=names.DEFAULT_NAMESPACE_PREFIX)
    unused, used = "_ray_pkg_unused.zip", "_ray_pkg_used.zip"
    with server.client(tenant) as http:
        for name in (unused, used):
            assert (
                http.put(f"/ray/api/packages/gcs/{name}", content=archives.zipped({"a.py": name})).status_code
                == 200
            )
        assert _stored(store, space, unused)
        job = {**JOB, "submission_id": "holds", "metadata": {"fake-duration": "600s"}}
        job["runtime_env"] = {"working_dir": f"gcs://{used}"}
        assert http.post("/api/jobs", json=job).status_code == 200
        eventually(lambda: not _stored(store, space, unused), message=f"{unused} to be removed", timeout=30)
        assert _stored(store, space, used)  # its Job has not finished
        assert http.post("/api/jobs/app-holds/stop").status_code == 200
        wait_status(http, "/api/jobs/app-holds", "STOPPED")
        eventually(
            lambda: not _stored(store, space, used), message=f"{used} to be removed once unused", timeout=30
        )
        assert http.get(f"/ray/api/packages/gcs/{used}").status_code == 404  # Ray's client uploads it again


def test_with_the_store_down_an_upload_is_a_503_and_leaves_nothing(
    api_servers: ApiServers, store: objectstore.Store, cluster: LocalCluster, tenant: str
) -> None:
    server = api_servers.start("package-store", **store.env())
    name, package = "_ray_pkg_down.zip", archives.zipped({"a.py": "print(1)"})
    with server.client(tenant) as http:
        cluster.kill(store.name)
        try:
            refused = http.put(f"/ray/api/packages/gcs/{name}", content=package)
            assert refused.status_code == 503
            assert "cannot reach the object store" in refused.text
            assert "try again shortly" in refused.text
            assert http.get(f"/ray/api/packages/gcs/{name}").status_code == 503
        finally:
            cluster.restart(store.name, wait=False)
            objectstore.await_writable(cluster, store)
        assert http.get(f"/ray/api/packages/gcs/{name}").status_code == 404  # nothing half-written
        assert http.put(f"/ray/api/packages/gcs/{name}", content=package).status_code == 200
