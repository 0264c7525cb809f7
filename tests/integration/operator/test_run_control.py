"""Stop, retries, the active deadline and the TTL, on the real control plane."""

from __future__ import annotations

from jobclient import Jobs


def test_stop_deletes_the_pod_and_the_job_is_stopped(jobs: Jobs) -> None:
    jobs.create("long", metadata={"fake-duration": "600s"})
    jobs.wait("long", "RUNNING")
    jobs.stop("long")
    job = jobs.wait("long", "STOPPED")
    assert job["status"]["errorType"] == "Stopped"
    assert jobs.condition(job, "Finished")["reason"] == "Stopped"
    jobs.until(lambda: not jobs.pods("long"), "the pod to be deleted")


def test_a_failing_job_is_retried_with_a_new_pod_per_attempt(jobs: Jobs) -> None:
    jobs.create("flaky", maxAttempts=3, metadata={"fake-exit-code": "2"})
    job = jobs.wait("flaky", "FAILED")
    assert job["status"]["attempts"] == 3
    assert job["status"]["exitCode"] == 2
    assert "exit code 2 (attempt 3 of 3)" in job["status"]["message"]
    pods = jobs.pods("flaky")
    assert [pod.metadata.name for pod in pods] == ["flaky-1", "flaky-2", "flaky-3"]
    assert [pod.metadata.labels["jobgate.io/attempt"] for pod in pods] == ["1", "2", "3"]
    assert [e.reason for e in jobs.events("flaky")].count("Retrying") == 2


def test_the_active_deadline_fails_a_job_that_runs_too_long(jobs: Jobs) -> None:
    jobs.create("slow", activeDeadlineSeconds=2, metadata={"fake-duration": "600s"})
    job = jobs.wait("slow", "FAILED")
    assert job["status"]["errorType"] == "DeadlineExceeded"
    assert "deadline of 2 s" in job["status"]["message"]
    jobs.until(lambda: not jobs.pods("slow"), "the pod to be deleted")


def test_a_finished_job_is_deleted_after_its_ttl_and_its_pod_with_it(jobs: Jobs) -> None:
    jobs.create("brief", ttlSecondsAfterFinished=3)
    jobs.wait("brief", "SUCCEEDED")
    jobs.until(lambda: not jobs.exists("brief"), "the Job to be deleted")
    jobs.until(lambda: not jobs.pods("brief"), "the garbage collector to delete the pod")
