"""Ray's own client and CLI (the real `ray` package) against the Ray dialect at /ray.

On the fake nodes a pod's "log" is kwok's canned text, and the job succeeds after its fake
duration: enough to see every call of the client work end to end.

Which of Ray's own server's behaviours each test checks (where the entrypoint must really
run, in tests/integration/realnode/test_realnode_jobgate.py, marked "real node"):
- runtime_env read back as submitted, no defaults added: the sdk test, and
  test_a_runtime_env_that_cannot_be_fetched_fails_the_job_as_ray_does
- start_time <= end_time: the sdk test (and the real node's whole-second finish times:
  test_ray_uploads_a_working_dir_and_the_job_runs_it_on_the_node)
- the log's own first lines, each line once, tail and read alike: test_the_logs_stream_until_the_job_ends;
  real node: test_a_job_that_ends_at_once_shows_its_output_once_tailed_and_read
- py_modules (a directory, a wheel) importable, and runtime_env.pip installed: real node,
  test_ray_uploads_py_modules_and_the_job_imports_them_on_the_node
- a working_dir or py_module that cannot be fetched fails the job (RUNTIME_ENV_SETUP_FAILURE):
  test_a_runtime_env_that_cannot_be_fetched_fails_the_job_as_ray_does; real node, an image:
  test_both_dialects_say_why_a_job_could_not_start
- Ray's wording: deleting an unfinished job (the sdk test), an unknown field
  (test_an_unknown_field_is_refused_in_pythons_words_as_ray_does)
- the deployment's default tenant and pool:
  test_a_client_without_headers_gets_the_deployments_default_tenant_and_pool
- `ray job list` newest first with Ray's columns: the sdk test,
  test_the_cli_submits_with_a_working_dir_and_follows_the_job
- `ray job logs --follow` of a finished job, `ray job stop` of a pending or finished one:
  test_the_cli_follows_a_finished_jobs_log_and_stop_leaves_it_as_ray_does, test_the_cli_stops_and_deletes
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
from apiprocess import ApiServer, ApiServers, delete_tenant_namespace
from kubernetes import client
from ray.job_submission import JobStatus, JobSubmissionClient
from waiting import eventually

FAKE_LOG = "fake job output\nfake job finished\n"


def ray_log(submission_id: str, entrypoint: str) -> str:
    """A job's whole log as Ray's server shows it: its driver's two lines, then the output."""
    return f"Runtime env is setting up.\nRunning entrypoint for job {submission_id}: {entrypoint}\n{FAKE_LOG}"


@pytest.fixture(autouse=True)
def _no_ray_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    # The client prefers these over its address argument; and nothing may go through a proxy.
    for name in ("RAY_ADDRESS", "RAY_API_SERVER_ADDRESS", "RAY_JOB_HEADERS", "RAY_AUTH_MODE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")


@pytest.fixture
def ray(api: ApiServer, tenant: str) -> JobSubmissionClient:
    return JobSubmissionClient(f"{api.url}/ray", headers={"X-Tenant-Id": tenant})


@pytest.fixture
def working_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "work"
    directory.mkdir()
    (directory / "script.py").write_text("print('hello from the job')\n")
    return directory


def wait_terminal(ray: JobSubmissionClient, submission_id: str) -> JobStatus:
    status: JobStatus = eventually(
        lambda: (status := ray.get_job_status(submission_id)).is_terminal() and status,
        message=f"job {submission_id} to end",
    )
    return status


def test_the_sdk_submits_reads_logs_lists_stops_and_deletes(
    ray: JobSubmissionClient, working_dir: Path, api: ApiServer, tenant: str
) -> None:
    submission_id = ray.submit_job(
        entrypoint="python script.py",
        runtime_env={"working_dir": str(working_dir), "pip": ["requests"], "env_vars": {"A": "1"}},
        metadata={"owner": "me"},
        entrypoint_num_cpus=1,
        entrypoint_memory=256 << 20,
    )
    assert submission_id.startswith("raysubmit_")
    assert len(submission_id) == len("raysubmit_") + 16
    info = ray.get_job_info(submission_id)
    assert info.status in (JobStatus.PENDING, JobStatus.RUNNING, JobStatus.SUCCEEDED)
    assert info.submission_id == info.job_id == submission_id
    assert info.runtime_env is not None
    assert info.runtime_env["working_dir"].startswith("gcs://_ray_pkg_")
    assert info.runtime_env["pip"] == ["requests"]
    assert info.metadata == {"owner": "me"}
    # Ray's JobInfo fields of the resources asked for: Ray 2.60's JobDetails model drops them
    # (it ignores unknown keys), so its client never shows them; the JSON has them.
    with api.client(tenant) as http:
        raw = http.get(f"/ray/api/jobs/{submission_id}").json()
    asked = ("entrypoint_num_cpus", "entrypoint_memory", "entrypoint_num_gpus", "entrypoint_resources")
    assert [raw[key] for key in asked] == [1, 256 << 20, 0, None]

    assert wait_terminal(ray, submission_id) == JobStatus.SUCCEEDED
    assert ray.get_job_logs(submission_id) == ray_log(submission_id, "python script.py")
    done = ray.get_job_info(submission_id)
    assert done.driver_exit_code == 0
    assert done.end_time is not None
    assert done.start_time is not None
    assert done.start_time <= done.end_time
    assert [job.submission_id for job in ray.list_jobs()] == [submission_id]

    # The package Ray's client uploaded is the tenant's: there for it, not for another.
    package = info.runtime_env["working_dir"].removeprefix("gcs://")
    with api.client(tenant) as http, api.client(f"{tenant}-other") as stranger:
        assert http.get(f"/ray/api/packages/gcs/{package}").status_code == 200
        assert stranger.get(f"/ray/api/packages/gcs/{package}").status_code == 404

    long_id = ray.submit_job(
        entrypoint="sleep 600", submission_id="ray_long-1", metadata={"fake-duration": "600s"}
    )
    assert long_id == "ray_long-1"
    # Newest first, as `ray job list` users expect (the first was created a second before at least).
    assert [job.submission_id for job in ray.list_jobs()] == [long_id, submission_id]
    # Ray's words: "Attempted to delete job '<id>', but it is in a non-terminal state <STATUS>."
    with pytest.raises(
        RuntimeError, match=r"delete job 'ray_long-1', but it is in a non-terminal state \w+\."
    ):
        ray.delete_job(long_id)
    assert ray.stop_job(long_id) is True
    assert wait_terminal(ray, long_id) == JobStatus.STOPPED
    assert ray.stop_job(long_id) is False
    assert ray.delete_job(long_id) is True
    with pytest.raises(RuntimeError, match="Job ray_long-1 does not exist"):
        ray.get_job_info(long_id)
    with pytest.raises(RuntimeError, match="already exists"):
        ray.submit_job(entrypoint="true", submission_id=submission_id)


def test_ray_ids_and_seed_ids_live_side_by_side(
    ray: JobSubmissionClient, api: ApiServer, tenant: str
) -> None:
    with pytest.raises(RuntimeError, match=r"submission_id must match .*got 'bad id!'"):
        ray.submit_job(entrypoint="true", submission_id="bad id!")
    ray_id = ray.submit_job(entrypoint="true", submission_id="Ray_Style_ID")
    with api.client(tenant) as http:
        seed_job = http.post(
            "/api/jobs", json={"entrypoint": "true", "runtime_env": {"working_dir": "https://e.com/a.zip"}}
        )
        assert seed_job.status_code == 200
        seed_id = seed_job.json()["submission_id"]
        assert http.get(f"/api/jobs/{ray_id}").json()["submission_id"] == "Ray_Style_ID"  # and no job_id
        assert "job_id" not in http.get(f"/api/jobs/{ray_id}").json()
        # Ids differing only in case are different jobs.
        assert http.get("/api/jobs/ray_style_id").status_code == 404
    assert ray.get_job_info(seed_id).entrypoint == "true"
    assert {job.submission_id for job in ray.list_jobs()} == {ray_id, seed_id}


def test_an_unknown_field_is_refused_in_pythons_words_as_ray_does(api: ApiServer, tenant: str) -> None:
    # Ray's server builds JobSubmitRequest(**body): its 400 names the unexpected keyword.
    with api.client(tenant) as http:
        refused = http.post("/ray/api/jobs/", json={"entrypoint": "true", "entrypoint_num_cpu": 2})
    assert refused.status_code == 400
    assert "got an unexpected keyword argument 'entrypoint_num_cpu'" in refused.text
    assert "entrypoint_num_cpu is not a known field" in refused.text  # and ours after it


@pytest.mark.parametrize(
    ("runtime_env", "ours", "field"),
    [
        (
            {"working_dir": "s3://bucket/job.zip"},
            "the working_dir could not be fetched: spec.runtimeEnv.working_dir: cannot fetch 's3://bucket/job.zip'",
            "runtime_env.working_dir: cannot fetch 's3://bucket/job.zip' on this deployment",
        ),
        (
            {"py_modules": ["https://e.com/m.zip", "gs://bucket/m.zip"]},
            "runtime_env.py_modules[1] could not be fetched: spec.runtimeEnv.py_modules.1: "
            "cannot fetch 'gs://bucket/m.zip'",
            "runtime_env.py_modules.1: cannot fetch 'gs://bucket/m.zip' on this deployment",
        ),
    ],
    ids=["working_dir", "py_modules"],
)
def test_a_runtime_env_that_cannot_be_fetched_fails_the_job_as_ray_does(
    ray: JobSubmissionClient, api: ApiServer, tenant: str, runtime_env: dict[str, Any], ours: str, field: str
) -> None:
    # Ray's server takes it, then fails it as a runtime env it could not set up.
    submission_id = ray.submit_job(entrypoint="true", runtime_env=runtime_env)
    assert wait_terminal(ray, submission_id) == JobStatus.FAILED
    info = ray.get_job_info(submission_id)
    assert info.runtime_env == runtime_env  # as submitted: no defaults added
    assert info.error_type == "RUNTIME_ENV_SETUP_FAILURE"
    assert (info.message or "").startswith(
        f"runtime_env setup failed: Failed to set up runtime environment.\n{ours}"
    ), info.message
    with api.client(tenant) as seed:  # the seed dialect refuses it at the door
        refused = seed.post(
            "/api/jobs",
            json={"entrypoint": "true", "runtime_env": {"working_dir": "https://e.com/a.zip", **runtime_env}},
        )
    assert refused.status_code == 400
    assert field in refused.json()


def test_ray_zero_resources_mean_the_default(ray: JobSubmissionClient, api: ApiServer, tenant: str) -> None:
    submission_id = ray.submit_job(entrypoint="true", entrypoint_num_cpus=0, entrypoint_memory=0)
    assert wait_terminal(ray, submission_id) == JobStatus.SUCCEEDED
    with pytest.raises(RuntimeError, match=r"entrypoint_num_cpus must be in \[0.3, 16\], got 0.2"):
        ray.submit_job(entrypoint="true", entrypoint_num_cpus=0.2)
    with pytest.raises(RuntimeError, match="entrypoint_label_selector is not supported"):
        ray.submit_job(entrypoint="true", entrypoint_label_selector={"zone": "a"})


@pytest.mark.filterwarnings("ignore:ssl=None is deprecated:DeprecationWarning")  # inside Ray's client
def test_the_logs_stream_until_the_job_ends(ray: JobSubmissionClient) -> None:
    submission_id = ray.submit_job(entrypoint="true", metadata={"fake-duration": "2s"})

    async def tail() -> str:
        return "".join([lines async for lines in ray.tail_job_logs(submission_id)])

    assert asyncio.run(asyncio.wait_for(tail(), 60)) == ray_log(submission_id, "true")
    assert ray.get_job_status(submission_id) == JobStatus.SUCCEEDED


@pytest.fixture
def cli(api: ApiServer, tenant: str, tmp_path: Path) -> dict[str, str]:
    env = {
        key: value for key, value in os.environ.items() if not key.startswith(("RAY_", "KUBE", "JOBGATE_"))
    }
    env |= {
        "RAY_ADDRESS": f"{api.url}/ray",
        "RAY_JOB_HEADERS": f'{{"X-Tenant-Id": "{tenant}"}}',
        "NO_PROXY": "127.0.0.1,localhost",
        "HOME": str(tmp_path),
    }
    return env


def ray_cli(env: dict[str, str], *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    ray_script = Path(sys.executable).parent / "ray"
    return subprocess.run(
        [str(ray_script), "job", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_cli_submits_with_a_working_dir_and_follows_the_job(
    cli: dict[str, str], working_dir: Path, tmp_path: Path
) -> None:
    submitted = ray_cli(
        cli,
        "submit",
        "--working-dir",
        "work",
        "--submission-id",
        "cli-1",
        "--metadata-json",
        '{"fake-duration": "1s"}',
        "--",
        "python",
        "script.py",
        cwd=tmp_path,
    )
    assert submitted.returncode == 0, submitted.stdout + submitted.stderr
    output = submitted.stdout + submitted.stderr
    assert "Job 'cli-1' submitted successfully" in output
    assert "fake job output" in output
    assert "Job 'cli-1' succeeded" in output

    status = ray_cli(cli, "status", "cli-1")
    assert status.returncode == 0
    assert "succeeded" in status.stdout + status.stderr
    logs = ray_cli(cli, "logs", "cli-1")
    assert logs.returncode == 0
    assert ray_log("cli-1", "python script.py") in logs.stdout + logs.stderr
    listed = ray_cli(cli, "list")
    assert listed.returncode == 0
    assert "submission_id='cli-1'" in listed.stdout + listed.stderr


def test_the_cli_stops_and_deletes(cli: dict[str, str]) -> None:
    long = ("--submission-id", "cli-long", "--metadata-json", '{"fake-duration": "600s"}')
    submitted = ray_cli(cli, "submit", "--no-wait", *long, "--", "sleep", "600")
    assert submitted.returncode == 0, submitted.stderr
    stopped = ray_cli(cli, "stop", "cli-long")
    assert stopped.returncode == 0, stopped.stderr
    assert "Job 'cli-long' was stopped" in stopped.stdout + stopped.stderr
    deleted = ray_cli(cli, "delete", "cli-long")
    assert deleted.returncode == 0
    assert "deleted successfully" in deleted.stdout + deleted.stderr
    missing = ray_cli(cli, "status", "cli-long")
    assert missing.returncode != 0
    assert "does not exist" in missing.stdout + missing.stderr


def test_the_cli_follows_a_finished_jobs_log_and_stop_leaves_it_as_ray_does(cli: dict[str, str]) -> None:
    """`ray job logs --follow` of a finished job prints it whole and exits 0; `ray job stop`
    of a finished job leaves it as it ended, and says how."""
    assert ray_cli(cli, "submit", "--submission-id", "cli-done", "--", "true").returncode == 0
    followed = ray_cli(cli, "logs", "--follow", "cli-done")
    assert followed.returncode == 0, followed.stderr
    assert ray_log("cli-done", "true") in followed.stdout
    finished = ray_cli(cli, "stop", "cli-done")
    assert finished.returncode == 0, finished.stderr
    assert "Job 'cli-done' succeeded" in finished.stdout + finished.stderr


def test_a_client_without_headers_gets_the_deployments_default_tenant_and_pool(
    api_servers: ApiServers, kube: client.ApiClient
) -> None:
    tenant = f"t-{uuid.uuid4().hex[:8]}"
    server = api_servers.start(
        "defaults", JOBGATE_DEFAULT_TENANT=tenant, JOBGATE_DEFAULT_POOL_LABELS="jobgate.io/pool=cpu-b"
    )
    try:
        ray = JobSubmissionClient(f"{server.url}/ray")  # no RAY_JOB_HEADERS: neither header
        submission_id = ray.submit_job(entrypoint="true")
        assert wait_terminal(ray, submission_id) == JobStatus.SUCCEEDED
        assert (ray.get_job_info(submission_id).driver_node_id or "").startswith("cpu-b-")
        with server.client(tenant) as http:  # the default tenant's job
            assert http.get(f"/ray/api/jobs/{submission_id}").status_code == 200
    finally:
        delete_tenant_namespace(kube, tenant)


def test_retries_are_asked_for_in_the_metadata(ray: JobSubmissionClient) -> None:
    """Ray has no retry fields: two documented metadata keys carry them (README)."""
    policy = '{"rules": [{"action": "FailJob", "onExitCodes": {"operator": "In", "values": [42]}}]}'
    metadata = {
        "jobgate.io/max-attempts": "3",
        "jobgate.io/pod-failure-policy": policy,
        "fake-exit-code": "42",
    }
    submission_id = ray.submit_job(entrypoint="python main.py", metadata=metadata)
    assert wait_terminal(ray, submission_id) == JobStatus.FAILED
    info = ray.get_job_info(submission_id)
    assert (info.error_type, info.driver_exit_code, info.metadata) == (
        "JOB_ENTRYPOINT_COMMAND_ERROR",
        42,
        metadata,
    )
    assert info.message == (
        "Job entrypoint command failed with exit code 42 (attempt 1 of 3; podFailurePolicy rule 1: FailJob)"
    )
