"""A job's node goes away: drained (a NoExecute taint) or deleted. The job says so, on the
real control plane (the controller-manager's taint eviction and pod garbage collector)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from jobclient import Jobs
from kubernetes import client

from jobgate.devcluster import LocalCluster, pools

CAPACITY = {"cpu": "8", "memory": "16Gi", "pods": "20"}


@pytest.fixture
def node(cluster: LocalCluster, jobs: Jobs) -> Iterator[str]:
    """A fake node in a pool of its own (no other test's pod lands there), deleted afterwards."""
    name = f"gone-{uuid.uuid4().hex[:6]}"
    assert cluster.ports is not None
    pool = pools.Pool(name=name, nodes=1, capacity=CAPACITY)
    jobs.core.create_node(pools.node_manifest(pool, name, kubelet_port=cluster.ports.kwok))
    yield name
    try:
        jobs.core.delete_node(name)
    except client.ApiException as err:
        if err.status != 404:
            raise


def test_a_drained_node_evicts_the_pod_and_the_job_says_so(jobs: Jobs, node: str) -> None:
    jobs.create("drained", poolLabels=[f"{pools.POOL_LABEL}={node}"], metadata={"fake-duration": "600s"})
    assert jobs.wait("drained", "RUNNING")["status"]["nodeName"] == node
    taint = client.V1Taint(key="jobgate.io/drained", value="test", effect="NoExecute")
    jobs.core.patch_node(node, {"spec": {"taints": [taint.to_dict()]}})

    status = jobs.wait("drained", "FAILED")["status"]
    assert status["errorType"] == "Evicted", status
    assert status["message"].startswith("pod drained-1 was evicted"), status
    assert "DeletionByTaintManager" in status["message"], status
    (failure,) = status["failures"]
    assert (failure["reason"], failure["podName"]) == ("Evicted", "drained-1")
    assert not jobs.pods("drained")


def test_a_deleted_node_loses_the_pod_and_the_job_is_retried_elsewhere(jobs: Jobs, node: str) -> None:
    # Attempt 1 is pinned to the node by its pool; the pool label is the job's only one,
    # so attempt 2 cannot be scheduled anywhere: its scheduling timeout ends the job.
    jobs.create(
        "orphan",
        poolLabels=[f"{pools.POOL_LABEL}={node}"],
        maxAttempts=2,
        schedulingTimeoutMs=3000,
        metadata={"fake-duration": "600s"},
    )
    jobs.wait("orphan", "RUNNING")
    jobs.core.delete_node(node)

    status = jobs.wait("orphan", "FAILED", bound=120)["status"]
    (failure,) = status["failures"]
    assert failure["podName"] == "orphan-1", failure
    # The pod garbage collector marks the pods of a deleted node, then deletes them: as
    # the operator saw the pod last (DeletionByPodGC) or learnt from the node's absence.
    assert failure["reason"] == "Evicted", failure
    assert "no longer exists" in failure["message"], failure
    assert status["errorType"] == "SchedulingTimeout", status
    assert status["attempts"] == 2, status
