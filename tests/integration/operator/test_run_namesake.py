"""A Job deleted and created again under its name at once is another job (keyed by uid)."""

from __future__ import annotations

from jobclient import Jobs
from kubernetes import client


def test_a_namesake_never_meets_the_deleted_jobs_pod_status_alarm_or_attempts(jobs: Jobs) -> None:
    # The old job: running, with a deadline alarm ahead and attempts to spare.
    old = jobs.create("twin", maxAttempts=3, activeDeadlineSeconds=30, metadata={"fake-duration": "600s"})
    jobs.wait("twin", "RUNNING")
    (old_pod,) = jobs.pods("twin")
    jobs.custom.delete_namespaced_custom_object(
        "jobgate.io", "v1alpha1", jobs.namespace, "jobs", "twin", body=client.V1DeleteOptions()
    )
    # At once, while the old pod (same name, twin-1) is still being garbage-collected: its
    # deletion must not read as "the new job's pod vanished", nor its name as the new one's.
    new = jobs.create("twin", metadata={"fake-duration": "1s"})
    assert new["metadata"]["uid"] != old["metadata"]["uid"]

    job = jobs.wait("twin", "SUCCEEDED")
    assert job["metadata"]["uid"] == new["metadata"]["uid"]
    assert (job["status"]["attempts"], job["status"]["podName"], job["status"]["exitCode"]) == (
        1,
        "twin-1",
        0,
    )
    (pod,) = jobs.pods("twin")
    assert pod.metadata.uid != old_pod.metadata.uid
    assert [owner.uid for owner in pod.metadata.owner_references] == [new["metadata"]["uid"]]
    reasons = [e.reason for e in jobs.events("twin") if e.involved_object.uid == new["metadata"]["uid"]]
    assert reasons == ["Succeeded"]  # no Retrying, PodLost or DeadlineExceeded of the old one's
