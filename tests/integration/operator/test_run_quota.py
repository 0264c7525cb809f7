"""A ResourceQuota that refuses the pod keeps the job PENDING, until quota frees or time runs out."""

from __future__ import annotations

from jobclient import Jobs
from kubernetes import client


def test_quota_refusals_wait_for_quota_or_end_in_the_scheduling_timeout(jobs: Jobs) -> None:
    jobs.core.create_namespaced_resource_quota(
        jobs.namespace, {"metadata": {"name": "one-pod"}, "spec": {"hard": {"pods": "1"}}}
    )
    jobs.until(
        lambda: (
            (
                jobs.core.read_namespaced_resource_quota("one-pod", jobs.namespace).status
                or client.V1ResourceQuotaStatus()
            ).hard
        ),
        "the quota controller to compute the quota",
    )
    jobs.create("holder", metadata={"fake-duration": "4s"}, schedulingTimeoutMs=0)
    jobs.wait("holder", "RUNNING")
    jobs.create("patient", schedulingTimeoutMs=0)
    jobs.create("impatient", schedulingTimeoutMs=1500)

    impatient = jobs.wait("impatient", "FAILED")
    assert impatient["status"]["errorType"] == "SchedulingTimeout"
    assert "The latest failure: " in impatient["status"]["message"]
    assert "exceeded quota: one-pod" in impatient["status"]["message"]

    patient = jobs.get("patient")
    assert patient["status"]["state"] == "PENDING"
    waiting = jobs.condition(patient, "Scheduled")
    assert (waiting["status"], waiting["reason"]) == ("False", "QuotaExceeded")
    assert "exceeded quota: one-pod" in waiting["message"]

    # Once the holder is done, its pod no longer counts, and the patient job gets its turn.
    assert jobs.wait("patient", "SUCCEEDED")["status"]["attempts"] == 1
    assert not jobs.pods("impatient")
