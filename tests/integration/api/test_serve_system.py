"""Packages, probes, metrics and the API's own description."""

from __future__ import annotations

import archives
from apiprocess import STORED_PACKAGE_LIMIT, ApiServer, wait_status

JOB = {"entrypoint": "true", "runtime_env": {"working_dir": "https://example.com/job.zip"}}


def test_packages_are_stored_served_and_limited(stored_api: ApiServer, tenant: str) -> None:
    name, package = "_ray_pkg_0123456789abcdef.zip", archives.zipped({"script.py": "print(1)"})
    with stored_api.client(tenant) as http:
        assert http.get(f"/ray/api/packages/gcs/{name}").status_code == 404
        assert http.get(f"/api/packages/gcs/{name}").status_code == 404
        assert http.put(f"/ray/api/packages/gcs/{name}", content=package).status_code == 200
        exists = http.get(f"/ray/api/packages/gcs/{name}")
        assert (exists.status_code, exists.content) == (200, b"")  # Ray's client only asks whether
        download = http.get(f"/api/packages/gcs/{name}")  # the init container's download
        assert (download.status_code, download.content) == (200, package)
        assert (stored_api.package_dir / name).read_bytes() == package
        assert not [path for path in stored_api.package_dir.iterdir() if path.name != name]  # no leftovers

        too_big = http.put(
            "/ray/api/packages/gcs/_ray_pkg_big.zip", content=b"x" * (STORED_PACKAGE_LIMIT + 1)
        )
        assert too_big.status_code == 413
        assert f"at most {STORED_PACKAGE_LIMIT} bytes" in too_big.text
        assert http.get("/ray/api/packages/gcs/_ray_pkg_big.zip").status_code == 404
        assert http.put("/ray/api/packages/s3/x.zip", content=b"x").status_code == 400
        assert http.put("/ray/api/packages/gcs/.hidden", content=b"x").status_code == 400


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
