"""SIGKILL the operator with 50 jobs in flight: after a restart every job finishes, once."""

from __future__ import annotations

from typing import Any

from jobclient import Jobs

JOBS = 50


def test_a_killed_operator_picks_up_where_it_was(jobs: Jobs, jobgate_operator: Any) -> None:
    names = [f"crash-{i}" for i in range(JOBS)]
    try:
        for i, name in enumerate(names):
            # Durations from 0.5 s to 3 s: some end while the operator is away, some after.
            jobs.create(name, metadata={"fake-duration": f"{500 + 50 * i}ms"}, maxAttempts=2)
        jobs.until(lambda: sum(bool(jobs.pods(name)) for name in names[:10]) >= 5, "some pods to exist")
        jobgate_operator.kill()
        jobs.create("created-while-away")
    finally:
        jobgate_operator.start()

    for name in [*names, "created-while-away"]:
        job = jobs.wait(name, "SUCCEEDED")
        pods = jobs.pods(name)
        assert [pod.metadata.labels["jobgate.io/attempt"] for pod in pods] == ["1"], (name, job["status"])
        assert job["status"]["attempts"] == 1
        assert job["status"]["podName"] == pods[0].metadata.name


def test_a_ttl_is_kept_across_a_restart(jobs: Jobs, jobgate_operator: Any) -> None:
    jobs.create("expiring", ttlSecondsAfterFinished=3)
    jobs.wait("expiring", "SUCCEEDED")
    jobgate_operator.restart()  # the alarm set for the TTL is lost with the process
    jobs.until(lambda: not jobs.exists("expiring"), "the Job to be deleted after its TTL")
