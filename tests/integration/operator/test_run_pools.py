"""Pool labels decide where a job lands, and a pool nobody has fails the job in time."""

from __future__ import annotations

import pytest
from jobclient import Jobs


@pytest.mark.parametrize(
    ("resources", "pool", "named"),
    [({"gpus": 1}, "gpu", True), ({"custom": {"NPU": 2}}, "npu", True), ({"gpus": 1}, "gpu", False)],
    ids=["gpu", "npu", "gpu-unnamed"],
)
def test_accelerator_jobs_land_only_on_their_tainted_pool(
    jobs: Jobs, resources: dict[str, object], pool: str, named: bool
) -> None:
    """The GPU and NPU pools are tainted (devcluster/pools.yaml): their pod profiles'
    tolerations come with the pool, or with the resource when the job names no pool."""
    taint_key = "nvidia.com/gpu" if pool == "gpu" else "huawei.com/Ascend910"
    names = [f"{pool}-{i}" for i in range(3)]
    for name in names:
        jobs.create(name, resources=resources, poolLabels=[f"pool-{pool}"] if named else [])
    for name in names:
        job = jobs.wait(name, "SUCCEEDED")
        assert job["status"]["nodeName"].startswith(f"{pool}-")
        (pod,) = jobs.pods(name)
        limits = pod.spec.containers[0].resources.limits
        assert limits.get(taint_key) == str(resources.get("gpus") or 2)
        assert [(t.key, t.operator, t.effect) for t in pod.spec.tolerations or [] if t.key == taint_key] == [
            (taint_key, "Exists", "NoSchedule")
        ]


def test_jobs_without_accelerators_never_land_on_the_tainted_pools(jobs: Jobs) -> None:
    names = [f"plain-{i}" for i in range(6)]
    for name in names:
        jobs.create(name, resources={"cpus": 8})  # room on the GPU and NPU nodes, but tainted
    for name in names:
        assert jobs.wait(name, "SUCCEEDED")["status"]["nodeName"].startswith(("cpu-a-", "cpu-b-"))


def test_any_of_several_pools_will_do(jobs: Jobs) -> None:
    jobs.create("either", poolLabels=["pool-nowhere", "jobgate.io/pool=cpu-b"])
    assert jobs.wait("either", "SUCCEEDED")["status"]["nodeName"].startswith("cpu-b-")


def test_an_unsatisfiable_pool_fails_with_the_schedulers_reason_and_leaves_no_pod(jobs: Jobs) -> None:
    jobs.create("nowhere", poolLabels=["abc"], schedulingTimeoutMs=2000)
    job = jobs.wait("nowhere", "FAILED")
    message = job["status"]["message"]
    assert message.startswith(
        "the instance cannot be scheduled within 2000 ms. which has been scheduled for "
    )
    assert " times. The latest failure: 0/6 nodes are available: " in message
    assert "didn't match Pod's node affinity/selector" in message
    assert "had untolerated taint" in message  # the GPU and NPU nodes
    assert job["status"]["errorType"] == "SchedulingTimeout"
    assert jobs.condition(job, "Scheduled")["reason"] == "Unschedulable"
    jobs.until(lambda: not jobs.pods("nowhere"), "the pod to be deleted")
