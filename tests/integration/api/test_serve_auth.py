"""Bearer tokens, when the deployment configures them: required, checked, and a token pinned
to a tenant acts for that tenant whatever X-Tenant-Id says."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from apiprocess import ApiServer, ApiServers
from ray.job_submission import JobSubmissionClient

JOB = {"entrypoint": "true", "runtime_env": {"working_dir": "https://example.com/job.zip"}}
PINNED = "pinned-token-0123456789abcdef0123456789"
ADMIN = "admin-token-0123456789abcdef0123456789"
TENANT = f"pinned-{uuid.uuid4().hex[:6]}"


@pytest.fixture(scope="module")
def secured(api_servers: ApiServers, tmp_path_factory: pytest.TempPathFactory) -> ApiServer:
    tokens = tmp_path_factory.mktemp("tokens") / "tokens"
    tokens.write_text(f"# token tenant\n{PINNED} {TENANT}\n{ADMIN}\n")
    return api_servers.start("secured", JOBGATE_API_TOKENS_FILE=str(tokens))


def test_a_token_is_required_and_checked(secured: ApiServer) -> None:
    with secured.client() as http:
        missing = http.get("/api/jobs")
        assert (missing.status_code, missing.headers["WWW-Authenticate"]) == (401, "Bearer")
        assert "Authorization: Bearer" in missing.json()
        assert http.get("/api/jobs", headers={"Authorization": "Bearer wrong"}).status_code == 403
        assert http.get("/api/jobs", headers={"Authorization": f"Basic {PINNED}"}).status_code == 401
        assert http.get("/ray/api/jobs/").status_code == 401
        assert http.put("/ray/api/packages/gcs/_ray_pkg_0.zip", content=b"PK").status_code == 401
        # Probes, metrics, the API's description and Ray's version check stay open.
        for path in ("/healthz", "/readyz", "/metrics", "/openapi.json", "/ray/api/version"):
            assert http.get(path).status_code == 200, path


def test_a_pinned_token_acts_for_its_tenant_whatever_the_header_says(secured: ApiServer, tenant: str) -> None:
    pinned = {"Authorization": f"Bearer {PINNED}"}
    with secured.client(tenant, **pinned) as http:  # the header names another tenant: ignored
        assert http.post("/api/jobs", json={**JOB, "submission_id": "pin"}).status_code == 200
    with secured.client(TENANT, **{"Authorization": f"Bearer {ADMIN}"}) as admin:
        assert admin.get("/api/jobs/app-pin").status_code == 200  # it is the pinned tenant's
        assert admin.delete("/api/jobs/app-pin").status_code == 200
    with secured.client(tenant, **{"Authorization": f"Bearer {ADMIN}"}) as admin:
        assert admin.get("/api/jobs").json() == []  # an unpinned token acts for the header's tenant


def test_rays_own_token_setting_works(secured: ApiServer, tenant: str, tmp_path: Path) -> None:
    """RAY_AUTH_MODE=token makes Ray's client send `Authorization: Bearer $RAY_AUTH_TOKEN`."""
    env = {
        key: value for key, value in os.environ.items() if not key.startswith(("RAY_", "KUBE", "JOBGATE_"))
    }
    env |= {
        "RAY_ADDRESS": f"{secured.url}/ray",
        "RAY_AUTH_MODE": "token",
        "RAY_AUTH_TOKEN": ADMIN,
        "RAY_JOB_HEADERS": f'{{"X-Tenant-Id": "{tenant}"}}',
        "NO_PROXY": "127.0.0.1,localhost",
        "HOME": str(tmp_path),
    }
    ray = [str(Path(sys.executable).parent / "ray"), "job"]
    run = {"env": env, "capture_output": True, "text": True, "timeout": 120, "check": False}
    submitted = subprocess.run([*ray, "submit", "--no-wait", "--submission-id", "tok", "--", "true"], **run)  # type: ignore[call-overload]
    assert submitted.returncode == 0, submitted.stdout + submitted.stderr
    listed = subprocess.run([*ray, "list"], **run)  # type: ignore[call-overload]
    assert "submission_id='tok'" in listed.stdout + listed.stderr
    env["RAY_AUTH_TOKEN"] = "not-a-token"
    refused = subprocess.run([*ray, "list"], **run)  # type: ignore[call-overload]
    assert refused.returncode != 0
    assert "Authentication failed" in refused.stdout + refused.stderr


def test_the_sdk_sends_the_token_in_its_headers(
    secured: ApiServer, tenant: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("RAY_ADDRESS", "RAY_API_SERVER_ADDRESS", "RAY_AUTH_MODE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    ray = JobSubmissionClient(
        f"{secured.url}/ray", headers={"Authorization": f"Bearer {ADMIN}", "X-Tenant-Id": tenant}
    )
    submission_id = ray.submit_job(entrypoint="true")
    assert [job.submission_id for job in ray.list_jobs()] == [submission_id]
