"""The HTTP layer without Kubernetes: request validation, error shapes, auth, tenancy and
response shapes, on an app whose store is never started (its index is fed by hand).

Nothing here reaches the apiserver: a request that passed validation would next need the
cluster, and those paths are the integration tests' (tests/integration/api/).
"""

from __future__ import annotations

import io
import warnings
import zipfile
from pathlib import Path
from typing import Any

import kubernetes.client
import pytest

with warnings.catch_warnings():
    # Starlette would rather its TestClient ran on `httpx2`, which the test environment lacks.
    warnings.simplefilter("ignore", UserWarning)
    from fastapi.testclient import TestClient
    from starlette.websockets import WebSocketDisconnect

from jobgate.api import app, config, index, store
from jobgate.core import client
from jobgate.crds import names

PREFIX = names.DEFAULT_NAMESPACE_PREFIX
VALID = {"entrypoint": "true", "runtime_env": {"working_dir": "https://e.com/a.zip"}}


def stored_job(
    submission_id: str, *, tenant: str, state: str = "SUCCEEDED", created: str = "2025-01-01T00:00:00Z"
) -> dict[str, Any]:
    return {
        "metadata": {
            "name": submission_id,
            "namespace": names.tenant_namespace(tenant, prefix=PREFIX),
            "uid": f"uid-{submission_id}",
            "resourceVersion": "5",
            "creationTimestamp": created,
        },
        "spec": {"submissionId": submission_id, "entrypoint": "true", "tenant": tenant},
        "status": {"state": state},
    }


def make_client(tmp_path: Path, *, synced: bool = True, **overrides: Any) -> TestClient:
    # An apiserver address nothing listens on (loopback): nothing here may reach one.
    configuration = kubernetes.client.Configuration(host="http://127.0.0.1:9")
    kube = store.Store(
        client.Client(kubernetes.client.ApiClient(configuration)),
        job_index=index.JobIndex(),
        namespace_prefix=PREFIX,
    )
    if synced:
        kube.jobs.replace(
            [
                stored_job("app-a1", tenant="acme", created="2025-01-01T00:00:01Z"),
                stored_job("app-a2", tenant="acme", state="RUNNING", created="2025-01-01T00:00:02Z"),
                stored_job("raysubmit_X", tenant="acme", state="FAILED", created="2025-01-01T00:00:03Z"),
                stored_job("app-b1", tenant="beta"),
            ]
        )
    settings = config.Settings(package_dir=tmp_path / "packages", **overrides)
    settings.package_dir.mkdir()  # what the app's start would do
    return TestClient(app.create_app(settings, kube=kube))  # not entered: the store never starts


@pytest.fixture
def http(tmp_path: Path) -> TestClient:
    return make_client(tmp_path)


@pytest.mark.parametrize(
    ("field", "value", "allowed"),
    [
        ("entrypoint_num_cpus", 0.29, "in [0.3, 16]"),
        ("entrypoint_num_cpus", 16.01, "in [0.3, 16]"),
        ("entrypoint_num_cpus", 0, "in [0.3, 16]"),  # 0 is Ray's "none"; the seed has no such thing
        ("entrypoint_memory", 134217727, "in [134217728, 1125899906842624]"),
        ("entrypoint_memory", 1125899906842625, "in [134217728, 1125899906842624]"),
        ("entrypoint_num_gpus", -0.5, ">= 0"),
    ],
)
def test_seed_bounds_are_json_strings_naming_field_range_and_value(
    http: TestClient, field: str, value: float, allowed: str
) -> None:
    response = http.post("/api/jobs", json={**VALID, field: value})
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/json"
    assert response.json() == f"{field} must be {allowed}, got {value}"


def test_ray_validation_errors_are_plain_text(http: TestClient) -> None:
    response = http.post("/ray/api/jobs/", json={"entrypoint": "true", "entrypoint_num_cpus": 17})
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("text/plain")
    assert response.text == "entrypoint_num_cpus must be in [0.3, 16], got 17"


def test_a_body_without_content_type_is_still_json(http: TestClient) -> None:
    response = http.post("/api/jobs", content=b'{"entrypoint": "", "runtime_env": {"working_dir": "x"}}')
    assert (response.status_code, response.json()) == (400, 'entrypoint must not be empty, got ""')


def test_unknown_paths_and_methods_are_shaped_too(http: TestClient) -> None:
    assert (http.get("/api/nothing").status_code, http.get("/api/nothing").json()) == (404, "Not Found")
    assert http.put("/api/jobs").status_code == 405
    assert http.get("/ray/api/nothing").text == "Not Found"


def test_reads_wait_for_the_index(tmp_path: Path) -> None:
    http = make_client(tmp_path, synced=False)
    response = http.get("/api/jobs")
    assert response.status_code == 503
    assert "not loaded" in response.json()
    assert http.get("/readyz").status_code == 503
    assert http.get("/healthz").status_code == 200


def test_a_tenant_sees_only_its_jobs(http: TestClient) -> None:
    acme, beta = {"X-Tenant-Id": "acme"}, {"X-Tenant-Id": "beta"}
    assert [job["submission_id"] for job in http.get("/api/jobs", headers=acme).json()] == [
        "app-a1",
        "app-a2",
        "raysubmit_X",
    ]
    assert [job["submission_id"] for job in http.get("/api/jobs/", headers=beta).json()] == ["app-b1"]
    assert http.get("/api/jobs/app-b1", headers=acme).json() == "not found app, submissionId: app-b1"
    assert http.get("/ray/api/jobs/app-b1", headers=acme).text == "Job app-b1 does not exist"
    assert http.get("/api/jobs", headers={"X-Tenant-Id": "nobody"}).json() == []
    assert http.get("/api/jobs").json() == []  # the default tenant


def test_each_dialect_has_its_shape(http: TestClient) -> None:
    acme = {"X-Tenant-Id": "acme"}
    seed = http.get("/api/jobs/app-a1", headers=acme).json()
    ray = http.get("/ray/api/jobs/app-a1", headers=acme).json()
    assert "job_id" not in seed
    # Ray's has its job_id, and the resources asked for (none here: Ray's 0, the default).
    asked = {
        "entrypoint_num_cpus": 0,
        "entrypoint_num_gpus": 0,
        "entrypoint_memory": 0,
        "entrypoint_resources": None,
    }
    assert ray == {**seed, "job_id": "app-a1", **asked}
    assert seed["status"] == "SUCCEEDED"
    assert seed["start_time"] == 1735689601000
    assert http.post("/api/jobs/app-a1/stop", headers=acme).json() is False
    assert http.post("/ray/api/jobs/app-a1/stop", headers=acme).json() == {"stopped": False}
    assert http.delete("/api/jobs/app-a2", headers=acme).json() is False  # still running
    refused = http.delete("/ray/api/jobs/app-a2", headers=acme)
    assert refused.status_code == 400
    assert "but it is in a non-terminal state RUNNING." in refused.text
    assert http.get("/ray/api/version").json() == {
        "version": "4",
        "ray_version": "2.60.0",
        "ray_commit": "jobgate",
        "session_name": "jobgate",
    }


def test_lists_page_and_filter(http: TestClient) -> None:
    acme = {"X-Tenant-Id": "acme"}
    first = http.get("/api/jobs", params={"limit": 2}, headers=acme)
    assert [job["submission_id"] for job in first.json()] == ["app-a1", "app-a2"]
    second = http.get("/api/jobs", params={"limit": 2, "continue": first.headers["X-Continue"]}, headers=acme)
    assert [job["submission_id"] for job in second.json()] == ["raysubmit_X"]
    assert "X-Continue" not in second.headers
    filtered = http.get("/ray/api/jobs/", params={"status": "running,FAILED"}, headers=acme).json()
    assert [job["submission_id"] for job in filtered] == ["raysubmit_X", "app-a2"]  # Ray's: newest first
    assert (
        http.get("/api/jobs", params={"limit": 0}).json()
        == 'limit must be greater than or equal to 1, got "0"'
    )
    assert http.get("/api/jobs", params={"limit": "x"}).status_code == 400
    assert "status must be one of PENDING, RUNNING" in http.get("/api/jobs", params={"status": "DONE"}).json()


def test_tokens_authenticate_and_pin_tenants(tmp_path: Path) -> None:
    tokens = {config.token_key("pinned"): "acme", config.token_key("admin"): None}
    http = make_client(tmp_path, tokens=tokens)
    assert http.get("/api/jobs").status_code == 401
    assert http.get("/api/jobs", headers={"Authorization": "Bearer nope"}).status_code == 403
    pinned = {"Authorization": "Bearer pinned", "X-Tenant-Id": "beta"}
    assert len(http.get("/api/jobs", headers=pinned).json()) == 3  # acme's, whatever the header says
    ray_header = {"X-Ray-Authorization": "Bearer admin", "X-Tenant-Id": "beta"}
    assert [job["submission_id"] for job in http.get("/ray/api/jobs/", headers=ray_header).json()] == [
        "app-b1"
    ]
    assert http.get("/ray/api/version").status_code == 200
    assert http.get("/healthz").status_code == 200


def test_the_tenant_header_is_checked(http: TestClient) -> None:
    response = http.get("/api/jobs", headers={"X-Tenant-Id": "x" * 254})
    assert response.status_code == 400
    assert response.json().startswith("X-Tenant-Id: a tenant id is 1 to 253 printable characters")


def test_oversized_bodies_get_a_shaped_413(tmp_path: Path) -> None:
    http = make_client(tmp_path, max_body_bytes=100, max_package_bytes=200)
    response = http.post("/api/jobs", content=b"{" + b" " * 200 + b"}")
    assert (response.status_code, response.json()) == (413, "request body too large: at most 100 bytes")
    upload = http.put("/ray/api/packages/gcs/_ray_pkg_a.zip", content=b"x" * 201)
    assert (upload.status_code, upload.text) == (413, "request body too large: at most 200 bytes")
    junk = http.put("/ray/api/packages/gcs/_ray_pkg_a.zip", content=b"x" * 150)
    assert (junk.status_code, junk.text.startswith("package is not a zip or tar archive")) == (400, True)
    package = io.BytesIO()
    with zipfile.ZipFile(package, "w") as archive:
        archive.writestr("a.py", "print(1)")
    assert len(package.getvalue()) <= 200
    assert http.put("/ray/api/packages/gcs/_ray_pkg_a.zip", content=package.getvalue()).status_code == 200


def test_the_openapi_document_describes_both_dialects(http: TestClient) -> None:
    document = http.get("/openapi.json").json()
    submit = document["paths"]["/api/jobs"]["post"]
    assert submit["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/SubmitRequest"
    }
    assert set(document["paths"]["/ray/api/jobs/{submission_id}"]) == {"get", "delete"}
    cpus = document["components"]["schemas"]["SubmitRequest"]["properties"]["entrypoint_num_cpus"]
    assert {"minimum": 0.3, "maximum": 16.0}.items() <= cpus["anyOf"][0].items()


def test_metrics_count_requests_by_route_template(http: TestClient) -> None:
    acme = {"X-Tenant-Id": "acme"}
    http.get("/api/jobs/app-a1", headers=acme)
    http.get("/ray/api/jobs/nope", headers=acme)
    http.get("/ray/api/jobs/", headers=acme)
    http.get("/nowhere")
    metrics = http.get("/metrics").text
    for labels in (
        'method="GET",route="/api/jobs/{submission_id}",status="200"',
        'method="GET",route="/ray/api/jobs/{submission_id}",status="404"',
        'method="GET",route="/ray/api/jobs/",status="200"',
        'method="GET",route="(unmatched)",status="404"',
    ):
        assert f"jobgate_api_requests_total{{{labels}}} 1.0" in metrics
    assert 'jobgate_api_jobs{state="SUCCEEDED"} 2.0' in metrics
    assert "jobgate_api_ready 0.0" in metrics  # the watch never ran here


@pytest.mark.parametrize(
    "headers",
    [{"Origin": "http://evil.example"}, {"Sec-Fetch-Site": "cross-site"}, {"Origin": "null"}],
    ids=["origin", "sec-fetch-site", "sandboxed"],
)
def test_a_browsers_cross_site_request_that_changes_something_is_refused(
    http: TestClient, headers: dict[str, str]
) -> None:
    refused = http.post("/api/jobs", content=b"{}", headers={"X-Tenant-Id": "acme", **headers})
    assert refused.status_code == 403
    assert "refused" in refused.json()
    assert "JOBGATE_ALLOWED_ORIGINS" in refused.json()
    ray = http.delete("/ray/api/jobs/raysubmit_X", headers={"X-Tenant-Id": "acme", **headers})
    assert (ray.status_code, ray.headers["content-type"]) == (403, "text/plain; charset=utf-8")
    # Reads change nothing: a page may read what its user may (CORS keeps the answer from it).
    assert http.get("/api/jobs/app-a1", headers={"X-Tenant-Id": "acme", **headers}).status_code == 200


def test_the_apis_own_pages_non_browsers_and_allowed_origins_pass(tmp_path: Path) -> None:
    http = make_client(tmp_path, allowed_origins=("http://dash.example",))
    for headers in (
        {},  # curl, Ray's client, kubectl
        {"Origin": "http://testserver", "Sec-Fetch-Site": "same-origin"},
        {"Origin": "http://dash.example", "Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "none"},  # typed by the user
    ):
        # 400: past the guard, refused by the validation (an empty body is not a job).
        assert http.post("/api/jobs", content=b"{}", headers=headers).status_code == 400, headers


def test_a_cross_site_log_tail_is_refused(http: TestClient) -> None:
    with (
        pytest.raises(WebSocketDisconnect) as closed,
        http.websocket_connect(
            "/ray/api/jobs/raysubmit_X/logs/tail", headers={"Origin": "http://evil.example"}
        ) as socket,
    ):
        socket.receive_text()
    assert closed.value.code == 1008


def test_answers_carry_security_headers_and_the_docs_need_no_cdn(http: TestClient) -> None:
    answer = http.get("/healthz")
    assert answer.headers["x-content-type-options"] == "nosniff"
    assert answer.headers["x-frame-options"] == "DENY"
    assert answer.headers["content-security-policy"] == "default-src 'none'; frame-ancestors 'none'"
    page = http.get("/docs")
    assert page.status_code == 200
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert "/docs/assets/swagger-ui-bundle.js" in page.text
    assert "https://" not in page.text  # nothing fetched from elsewhere
    script = http.get("/docs/assets/swagger-ui-bundle.js")
    assert (script.status_code, script.headers["content-type"]) == (200, "text/javascript; charset=utf-8")
    assert http.get("/redoc").status_code == 404
