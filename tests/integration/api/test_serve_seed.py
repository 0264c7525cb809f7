"""The seed dialect end to end: the seed's own request, details, list, stop, delete, logs."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
from apiprocess import SCHEDULING_TIMEOUT_MS, ApiServer, wait_status
from kubernetes import client
from waiting import eventually

from jobgate.crds import names

# The seed page's request example, byte for byte.
SEED_BODY = """{
"entrypoint": "python script.py",
"metadata": {
"autoscenes_ids": "auto_1-test",
"task_type": "task_1",
"ttl": "1250"
},
"runtime_env": {
"working_dir": "file:///usr1/deploy/file.zip",
"env_vars": {
"SOURCE_REGION": "suzhou_std",
"DEPLOY_REGION": "suzhou_std"
},
"pip": ["numpy==1.24", "scipy==1.11.0"]
},
"entrypoint_num_cpus": 3,
"entrypoint_memory": 134217728,
"entrypoint_resources": {
"NPU": 0
},
"submission_id": "app-1234"
}"""
JOB = {"runtime_env": {"working_dir": "https://example.com/job.zip"}}


def namespace_of(tenant: str) -> str:
    return names.tenant_namespace(tenant, prefix=names.DEFAULT_NAMESPACE_PREFIX)


def test_the_seed_request_runs_and_its_duplicate_is_refused(
    api: ApiServer, tenant: str, kube: client.ApiClient
) -> None:
    headers = {"Content-Type": "application/json", "X-Pool-Label": "pool-cpu-a"}
    with api.client(tenant, **headers) as http:
        response = http.post("/api/jobs", content=SEED_BODY)
        assert (response.status_code, response.json()) == (200, {"submission_id": "app-1234"})

        # Scheduled by the time submit answers: its pod is on a node.
        details = http.get("/api/jobs/app-1234").json()
        assert details["status"] in ("PENDING", "RUNNING", "SUCCEEDED")
        assert details["driver_node_id"].startswith("cpu-a-")

        again = http.post("/api/jobs/", content=SEED_BODY)
        assert (again.status_code, again.json()) == (
            400,
            "submit job has already exist, submissionId: app-1234",
        )

        done = wait_status(http, "/api/jobs/app-1234", "SUCCEEDED")
    seed = json.loads(SEED_BODY)
    assert done["type"] == "SUBMISSION"
    assert done["submission_id"] == "app-1234"
    assert done["entrypoint"] == seed["entrypoint"]
    assert done["metadata"] == seed["metadata"]
    assert done["runtime_env"] == seed["runtime_env"]
    assert done["driver_exit_code"] == 0
    assert done["error_type"] is None
    assert done["driver_info"]["id"] == "app-1234-1"
    assert done["message"] == "Job finished successfully."
    assert 0 < done["start_time"] <= done["end_time"] <= time.time() * 1000 + 1000  # milliseconds
    assert "job_id" not in done  # Ray's field, not the seed's

    # The tenant's namespace was made on first use, and labelled as the tenant's.
    namespace = client.CoreV1Api(kube).read_namespace(namespace_of(tenant))
    assert namespace.metadata.labels["jobgate.io/tenant"] == tenant
    (job,) = client.CustomObjectsApi(kube).list_namespaced_custom_object(
        "jobgate.io", "v1alpha1", namespace_of(tenant), "jobs"
    )["items"]
    assert job["metadata"]["name"] == "app-1234"
    assert job["spec"]["resources"] == {"cpus": 3.0, "memory": 134217728, "gpus": 0.0, "custom": {"NPU": 0.0}}
    assert job["spec"]["poolLabels"] == ["pool-cpu-a"]
    assert job["spec"]["tenant"] == tenant
    assert job["spec"]["schedulingTimeoutMs"] == SCHEDULING_TIMEOUT_MS


def test_ids_are_prefixed_or_generated(api: ApiServer, tenant: str) -> None:
    with api.client(tenant) as http:
        assert http.post("/api/jobs", json={"entrypoint": "true", "submission_id": "x1", **JOB}).json() == {
            "submission_id": "app-x1"
        }
        generated = http.post("/api/jobs", json={"entrypoint": "true", **JOB}).json()["submission_id"]
        assert generated.startswith("app-")
        assert len(generated) == len("app-") + 36
        assert http.get(f"/api/jobs/{generated}").status_code == 200


def test_a_submitted_job_is_visible_at_once_in_both_dialects(api: ApiServer, tenant: str) -> None:
    with api.client(tenant) as http:
        for number in range(5):
            submitted = http.post(
                "/api/jobs", json={"entrypoint": "true", "submission_id": f"ryw-{number}", **JOB}
            )
            assert submitted.status_code == 200, submitted.text
            assert http.get(f"/api/jobs/app-ryw-{number}").status_code == 200
            assert http.get(f"/ray/api/jobs/app-ryw-{number}").json()["job_id"] == f"app-ryw-{number}"
        assert [job["submission_id"] for job in http.get("/api/jobs").json()] == [
            f"app-ryw-{number}" for number in range(5)
        ]


def test_stop_and_delete_answer_true_or_false_by_state(api: ApiServer, tenant: str) -> None:
    long = {"entrypoint": "sleep 600", "metadata": {"fake-duration": "600s"}, **JOB}
    with api.client(tenant) as http:
        assert http.post("/api/jobs", json={**long, "submission_id": "long"}).status_code == 200
        assert http.delete("/api/jobs/app-long").json() is False  # running: kept
        assert http.get("/api/jobs/app-long").status_code == 200
        assert http.post("/api/jobs/app-long/stop").json() is True
        stopped = wait_status(http, "/api/jobs/app-long", "STOPPED")
        assert stopped["error_type"] == "Stopped"
        assert stopped["end_time"] is not None
        assert http.post("/api/jobs/app-long/stop").json() is False  # over already
        assert http.delete("/api/jobs/app-long").json() is True
        gone = http.get("/api/jobs/app-long")
        assert (gone.status_code, gone.json()) == (404, "not found app, submissionId: app-long")
        for call in (http.post("/api/jobs/app-long/stop"), http.delete("/api/jobs/app-long")):
            assert (call.status_code, call.json()) == (404, "not found app, submissionId: app-long")
        # The id is free again.
        assert http.post("/api/jobs", json={**long, "submission_id": "long"}).status_code == 200


def test_a_failing_job_reports_its_exit_code(api: ApiServer, tenant: str) -> None:
    with api.client(tenant) as http:
        body = {"entrypoint": "exit 3", "submission_id": "fails", "metadata": {"fake-exit-code": "3"}, **JOB}
        assert http.post("/api/jobs", json=body).status_code == 200
        failed = wait_status(http, "/api/jobs/app-fails", "FAILED")
    assert failed["driver_exit_code"] == 3
    assert failed["error_type"] == "Failed"
    assert "3" in failed["message"]


def test_logs_come_from_the_pod_and_say_when_it_is_gone(
    api: ApiServer, tenant: str, kube: client.ApiClient
) -> None:
    with api.client(tenant) as http:
        assert http.post(
            "/api/jobs", json={"entrypoint": "echo hi", "submission_id": "logs", **JOB}
        ).is_success
        wait_status(http, "/api/jobs/app-logs", "SUCCEEDED")
        assert http.get("/api/jobs/app-logs/logs").json() == {"logs": "fake job output\nfake job finished\n"}

        client.CoreV1Api(kube).delete_namespaced_pod(
            "app-logs-1", namespace_of(tenant), grace_period_seconds=0
        )

        def logs_gone() -> httpx.Response | None:
            response = http.get("/api/jobs/app-logs/logs")
            return response if response.status_code == 410 else None

        gone = eventually(logs_gone, message="the logs to be gone")
        assert "no longer exists" in gone.json()
        assert "this deployment keeps no copy of pod logs" in gone.json()  # it has no object store
        assert http.get("/ray/api/jobs/app-logs/logs").status_code == 410


def test_list_pages_and_filters_by_status(stored_api: ApiServer, tenant: str) -> None:
    with stored_api.client(tenant) as http:
        for number in range(5):
            body = {"entrypoint": "true", "submission_id": f"p{number}", **JOB}
            if number % 2:
                body["metadata"] = {"fake-exit-code": "1"}
            assert http.post("/api/jobs", json=body).status_code == 200
        for number in range(5):
            wait_status(http, f"/api/jobs/app-p{number}", "SUCCEEDED", "FAILED")

        seen: list[str] = []
        query: dict[str, str | int] = {"limit": 2}
        while True:
            page = http.get("/api/jobs", params=query)
            assert page.status_code == 200
            assert len(page.json()) <= 2
            seen += [job["submission_id"] for job in page.json()]
            if "X-Continue" not in page.headers:
                break
            query["continue"] = page.headers["X-Continue"]
        assert seen == [f"app-p{number}" for number in range(5)]

        failed = http.get("/api/jobs", params={"status": "FAILED"}).json()
        assert [job["submission_id"] for job in failed] == ["app-p1", "app-p3"]
        both = http.get("/ray/api/jobs/", params={"status": "failed,succeeded", "limit": 10}).json()
        assert len(both) == 5
        assert http.get("/api/jobs", params={"status": "RUNNING"}).json() == []
        assert http.get("/api/jobs", params={"status": "DONE"}).status_code == 400
        assert http.get("/api/jobs", params={"continue": "garbage"}).status_code == 400


def test_timeout_zero_returns_once_stored(unbounded_api: ApiServer, tenant: str) -> None:
    with unbounded_api.client(tenant, **{"X-Pool-Label": "no-such-pool"}) as http:
        started = time.monotonic()
        response = http.post("/api/jobs", json={"entrypoint": "true", "submission_id": "waits", **JOB})
        assert response.status_code == 200
        assert time.monotonic() - started < 3
        # The job waits in the cluster instead: once the scheduler's refusal reaches its
        # message, it is still PENDING (no scheduling timeout ends it).

        def refused() -> dict[str, Any] | None:
            job: dict[str, Any] = http.get("/api/jobs/app-waits").json()
            return job if "didn't match Pod's node affinity" in job["message"] else None

        job = eventually(refused, message="the scheduler's refusal in the message of app-waits")
        assert job["status"] == "PENDING"
        assert "didn't match Pod's node affinity" in job["message"]
        assert http.post("/api/jobs/app-waits/stop").json() is True
