"""Submit waits until the job's pod is placed; a pool nobody has fails it with the seed's 500."""

from __future__ import annotations

import time

from apiprocess import SCHEDULING_TIMEOUT_MS, ApiServer

JOB = {"entrypoint": "true", "runtime_env": {"working_dir": "https://example.com/job.zip"}}


def test_an_unsatisfiable_pool_answers_500_with_the_seeds_message(api: ApiServer, tenant: str) -> None:
    with api.client(tenant, **{"X-Pool-Label": "abc"}) as http:
        started = time.monotonic()
        response = http.post("/api/jobs", json={**JOB, "submission_id": "nowhere"})
        waited = time.monotonic() - started
        assert response.status_code == 500
        message = response.json()
        assert message.startswith(
            "create app failed, submissionId:[app-nowhere], err: \n"
            f"the instance cannot be scheduled within {SCHEDULING_TIMEOUT_MS} ms. "
            "which has been scheduled for "
        )
        assert " times. The latest failure: 0/6 nodes are available" in message
        assert "didn't match Pod's node affinity/selector" in message  # the scheduler's own words
        assert SCHEDULING_TIMEOUT_MS / 1000 <= waited < SCHEDULING_TIMEOUT_MS / 1000 + 8

        # The job stays, FAILED with the reason, as the reference server keeps its app.
        job = http.get("/api/jobs/app-nowhere").json()
        assert (job["status"], job["error_type"]) == ("FAILED", "SchedulingTimeout")
        assert message.endswith(job["message"])
        assert http.delete("/api/jobs/app-nowhere").json() is True


def test_the_ray_dialect_fails_alike_in_plain_text(api: ApiServer, tenant: str) -> None:
    with api.client(tenant, **{"X-Pool-Label": "abc"}) as http:
        response = http.post("/ray/api/jobs/", json={"entrypoint": "true", "submission_id": "ray_nowhere"})
    assert response.status_code == 500
    assert response.headers["content-type"].startswith("text/plain")
    assert response.text.startswith(
        "create app failed, submissionId:[ray_nowhere], err: \nthe instance cannot"
    )


def test_submit_answers_once_scheduled_not_once_finished(api: ApiServer, tenant: str) -> None:
    body = {**JOB, "submission_id": "slow", "metadata": {"fake-duration": "30s"}}
    with api.client(tenant, **{"X-Pool-Label": "pool-cpu-b"}) as http:
        started = time.monotonic()
        assert http.post("/api/jobs", json=body).status_code == 200
        assert time.monotonic() - started < 10
        job = http.get("/api/jobs/app-slow").json()
        assert job["status"] in ("PENDING", "RUNNING")
        assert job["driver_node_id"].startswith("cpu-b-")
        assert http.post("/api/jobs/app-slow/stop").json() is True


def test_the_stored_mode_answers_before_scheduling(stored_api: ApiServer, tenant: str) -> None:
    with stored_api.client(tenant, **{"X-Pool-Label": "abc"}) as http:
        started = time.monotonic()
        assert http.post("/api/jobs", json={**JOB, "submission_id": "later"}).json() == {
            "submission_id": "app-later"
        }
        assert time.monotonic() - started < SCHEDULING_TIMEOUT_MS / 1000
        assert http.get("/api/jobs/app-later").json()["status"] == "PENDING"
