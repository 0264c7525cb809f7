"""Stop, retries, the active deadline and the TTL, on the real control plane."""

from __future__ import annotations

import datetime
from typing import Any

from jobclient import Jobs
from kubernetes import client


def test_stop_deletes_the_pod_and_the_job_is_stopped(jobs: Jobs) -> None:
    jobs.create("long", metadata={"fake-duration": "600s"})
    jobs.wait("long", "RUNNING")
    jobs.stop("long")
    job = jobs.wait("long", "STOPPED")
    assert job["status"]["errorType"] == "Stopped"
    assert jobs.condition(job, "Finished")["reason"] == "Stopped"
    jobs.until(lambda: not jobs.pods("long"), "the pod to be deleted")


def test_a_failing_job_is_retried_with_a_new_pod_per_attempt_after_its_backoff(jobs: Jobs) -> None:
    jobs.create("flaky", maxAttempts=3, metadata={"fake-exit-code": "2"})
    job = jobs.wait("flaky", "FAILED")
    status = job["status"]
    assert (status["attempts"], status["failedAttempts"], status["exitCode"]) == (3, 3, 2)
    assert "exit code 2 (attempt 3 of 3)" in status["message"]
    pods = jobs.pods("flaky")
    assert [pod.metadata.name for pod in pods] == ["flaky-1", "flaky-2", "flaky-3"]
    assert [pod.metadata.labels["jobgate.io/attempt"] for pod in pods] == ["1", "2", "3"]
    assert [e.reason for e in jobs.events("flaky")].count("Retrying") == 2
    failures = status["failures"]
    assert [(f["attempt"], f["podName"], f["exitCode"], f["action"]) for f in failures] == [
        (1, "flaky-1", 2, "Retry"),
        (2, "flaky-2", 2, "Retry"),
        (3, "flaky-3", 2, "Retry"),
    ]
    # Each next pod was made once its back-off had passed, as the status recorded it.
    for failure, following in zip(failures, pods[1:], strict=False):
        made = datetime.datetime.fromisoformat(following.metadata.annotations["jobgate.io/created-at"])
        assert made >= datetime.datetime.fromisoformat(failure["retryAt"]), (failure, made)
    assert "retryAt" not in failures[-1]  # the last one: no attempt followed


FAIL_ON_42 = {"rules": [{"action": "FailJob", "onExitCodes": {"operator": "In", "values": [42]}}]}
IGNORE_EVICTIONS = {"rules": [{"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget"}]}]}


def test_an_exit_code_rule_with_failjob_ends_the_job_at_its_first_attempt(jobs: Jobs) -> None:
    jobs.create("fatal", maxAttempts=3, podFailurePolicy=FAIL_ON_42, metadata={"fake-exit-code": "42"})
    status = jobs.wait("fatal", "FAILED")["status"]
    assert (status["attempts"], status["failedAttempts"], status["exitCode"]) == (1, 1, 42)
    assert status["message"].endswith("(attempt 1 of 3; podFailurePolicy rule 1: FailJob)")
    assert [pod.metadata.name for pod in jobs.pods("fatal")] == ["fatal-1"]


def test_an_eviction_with_ignore_is_retried_without_counting(jobs: Jobs) -> None:
    jobs.create("evicted", podFailurePolicy=IGNORE_EVICTIONS, metadata={"fake-duration": "600s"})
    jobs.wait("evicted", "RUNNING")
    eviction = client.V1Eviction(metadata=client.V1ObjectMeta(name="evicted-1", namespace=jobs.namespace))
    jobs.core.create_namespaced_pod_eviction("evicted-1", jobs.namespace, eviction)

    def second_attempt_running() -> dict[str, Any] | None:
        job = jobs.get("evicted")
        status = job.get("status", {})
        return job if status.get("attempts") == 2 and status.get("state") == "RUNNING" else None

    status = jobs.until(second_attempt_running, "the second attempt to run")["status"]
    assert status["failedAttempts"] == 0  # maxAttempts is 1: a counted failure would have ended it
    (failure,) = status["failures"]
    assert (failure["attempt"], failure["reason"], failure["action"], failure["rule"]) == (
        1,
        "Evicted",
        "Ignore",
        1,
    )
    assert failure["message"].startswith("pod evicted-1 was evicted"), failure
    assert "(not counted; podFailurePolicy rule 1: Ignore)" in failure["message"], failure
    jobs.stop("evicted")


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
