"""Acceptance tests of the local control plane (jobgate.devcluster) — real etcd,
kube-apiserver, kube-scheduler, kube-controller-manager and kwok; nothing is mocked."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException
from waiting import eventually

from jobgate.devcluster import COMPONENTS, ClusterError, LocalCluster

pytestmark = pytest.mark.cluster


def pod_manifest(
    name: str,
    *,
    pool: str | None = None,
    requests: dict[str, str] | None = None,
    annotations: dict[str, str] | None = None,
    restart_policy: str = "Never",
    init_container: bool = False,
    owner: dict[str, str] | None = None,
) -> dict[str, Any]:
    """A pod for the fake nodes; `pool` adds a required node affinity on `pool-<pool>`. A
    pod asking for GPUs or NPUs tolerates their pools' taints (named as the resource)."""
    extended = [name for name in requests or {} if "/" in name]
    spec: dict[str, Any] = {
        "restartPolicy": restart_policy,
        "containers": [
            {
                "name": "main",
                "image": "busybox",
                # Extended resources (GPUs, NPUs) need limits equal to their requests.
                "resources": {"requests": requests or {}, "limits": requests or {}},
            }
        ],
    }
    if extended:
        spec["tolerations"] = [
            {"key": name, "operator": "Exists", "effect": "NoSchedule"} for name in extended
        ]
    if init_container:
        spec["initContainers"] = [{"name": "prepare", "image": "busybox"}]
    if pool:
        term = {"matchExpressions": [{"key": f"pool-{pool}", "operator": "In", "values": ["true"]}]}
        spec["affinity"] = {
            "nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [term]}}
        }
    metadata: dict[str, Any] = {"name": name, "annotations": annotations or {}}
    if owner:
        metadata["ownerReferences"] = [owner]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": spec}


def terminal_pod(core: client.CoreV1Api, namespace: str, name: str) -> Any:
    def probe() -> Any:
        pod = core.read_namespaced_pod(name, namespace)
        return pod if pod.status.phase in ("Succeeded", "Failed") else None

    return eventually(probe, message=f"pod {namespace}/{name} to finish")


def test_required_node_affinity_lands_on_the_matching_pool(kube: client.ApiClient, namespace: str) -> None:
    core = client.CoreV1Api(kube)
    wanted = {
        "on-gpu": ("gpu", {"nvidia.com/gpu": "1"}),
        "on-npu": ("npu", {"huawei.com/Ascend910": "2"}),
        "on-cpu-b-1": ("cpu-b", {"cpu": "2", "memory": "4Gi"}),
        "on-cpu-b-2": ("cpu-b", {"cpu": "2", "memory": "4Gi"}),
    }
    for name, (pool, requests) in wanted.items():
        core.create_namespaced_pod(namespace, pod_manifest(name, pool=pool, requests=requests))
    for name, (pool, _) in wanted.items():
        node_name = eventually(
            lambda n=name: core.read_namespaced_pod(n, namespace).spec.node_name,
            message=f"{name} to be scheduled",
        )
        labels = core.read_node(node_name).metadata.labels
        assert labels["jobgate.io/pool"] == pool, f"{name} landed on {node_name} ({labels})"
        assert labels[f"pool-{pool}"] == "true"


def test_pod_no_node_can_hold_stays_pending_unschedulable(kube: client.ApiClient, namespace: str) -> None:
    core = client.CoreV1Api(kube)
    core.create_namespaced_pod(namespace, pod_manifest("too-big", requests={"nvidia.com/gpu": "9"}))

    def unschedulable() -> Any:
        pod = core.read_namespaced_pod("too-big", namespace)
        for cond in pod.status.conditions or []:
            if cond.type == "PodScheduled" and cond.status == "False":
                return cond
        return None

    cond = eventually(unschedulable, message="the scheduler to give up on too-big")
    assert cond.reason == "Unschedulable"
    assert "nodes are available" in cond.message
    assert "Insufficient nvidia.com/gpu" in cond.message
    pod = core.read_namespaced_pod("too-big", namespace)
    assert pod.status.phase == "Pending"
    assert pod.spec.node_name is None


def test_pod_whose_owner_is_deleted_is_garbage_collected(kube: client.ApiClient, namespace: str) -> None:
    core = client.CoreV1Api(kube)
    owner = core.create_namespaced_config_map(namespace, {"metadata": {"name": "owner"}})
    ref = {"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": owner.metadata.uid}
    # restartPolicy Always: a server-like pod that would run forever on its own.
    core.create_namespaced_pod(namespace, pod_manifest("owned", restart_policy="Always", owner=ref))
    eventually(
        lambda: core.read_namespaced_pod("owned", namespace).status.phase == "Running", message="owned to run"
    )

    core.delete_namespaced_config_map("owner", namespace)

    def gone() -> bool:
        try:
            core.read_namespaced_pod("owned", namespace)
        except ApiException as err:
            if err.status == 404:
                return True
            raise
        return False

    eventually(gone, message="the garbage collector to delete owned")


def test_resource_quota_rejects_a_pod_above_it(kube: client.ApiClient, namespace: str) -> None:
    core = client.CoreV1Api(kube)
    core.create_namespaced_resource_quota(
        namespace, {"metadata": {"name": "small"}, "spec": {"hard": {"requests.cpu": "1"}}}
    )
    # Admission needs the quota controller to have computed the quota's status first.
    eventually(
        lambda: core.read_namespaced_resource_quota("small", namespace).status.hard,
        message="the quota's status",
    )

    with pytest.raises(ApiException) as excinfo:
        core.create_namespaced_pod(namespace, pod_manifest("greedy", requests={"cpu": "2"}))
    assert excinfo.value.status == 403
    message = json.loads(excinfo.value.body)["message"]
    assert "exceeded quota: small" in message
    assert "requested: requests.cpu=2" in message
    assert "limited: requests.cpu=1" in message

    # The quota is what refused it: a pod within it is admitted.
    core.create_namespaced_pod(namespace, pod_manifest("modest", requests={"cpu": "500m"}))


def test_batch_job_runs_to_completion(kube: client.ApiClient, namespace: str) -> None:
    batch = client.BatchV1Api(kube)
    template = pod_manifest(
        "unused", pool="cpu-a", annotations={"metadata.jobgate.io/fake-duration": "500ms"}
    )
    del template["metadata"]["name"], template["apiVersion"], template["kind"]
    batch.create_namespaced_job(
        namespace,
        {
            "metadata": {"name": "two-runs"},
            "spec": {"completions": 2, "parallelism": 2, "backoffLimit": 0, "template": template},
        },
    )

    def complete() -> Any:
        job = batch.read_namespaced_job("two-runs", namespace)
        conditions = {c.type: c.status for c in job.status.conditions or []}
        assert conditions.get("Failed") != "True", f"job failed: {job.status}"
        return job if conditions.get("Complete") == "True" else None

    job = eventually(complete, message="job two-runs to complete")
    assert job.status.succeeded == 2


def test_exit_code_duration_and_logs_follow_the_annotations(
    kube: client.ApiClient, namespace: str, cluster: LocalCluster
) -> None:
    core = client.CoreV1Api(kube)
    failing = {"metadata.jobgate.io/fake-exit-code": "3", "metadata.jobgate.io/fake-duration": "3s"}
    core.create_namespaced_pod(namespace, pod_manifest("fails", annotations=failing))
    core.create_namespaced_pod(namespace, pod_manifest("succeeds", init_container=True))

    fails = terminal_pod(core, namespace, "fails")
    assert fails.status.phase == "Failed"
    terminated = fails.status.container_statuses[0].state.terminated
    assert terminated.exit_code == 3
    assert terminated.reason == "Error"
    # Timestamps have one-second resolution: a 3s run shows as at least 2s.
    assert (terminated.finished_at - terminated.started_at).total_seconds() >= 2

    succeeds = terminal_pod(core, namespace, "succeeds")
    assert succeeds.status.phase == "Succeeded"
    terminated = succeeds.status.container_statuses[0].state.terminated
    assert (terminated.exit_code, terminated.reason) == (0, "Completed")
    init = succeeds.status.init_container_statuses[0].state.terminated
    assert (init.exit_code, init.reason) == (0, "Completed")

    logs = cluster.kubectl("logs", "-n", namespace, "succeeds", "-c", "main")
    assert "fake job output" in logs.stdout


def test_kubectl_version_reports_the_pinned_server(cluster: LocalCluster) -> None:
    versions = json.loads(cluster.kubectl("version", "--output=json").stdout)
    assert versions["serverVersion"]["gitVersion"] == "v1.34.4"
    assert versions["clientVersion"]["gitVersion"] == "v1.34.4"


def _processes_mentioning(text: str) -> list[str]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if text in cmdline:
                found.append(f"{entry.name}: {cmdline[:200]}")
    return found


def test_restart_after_crash_and_down_leaves_no_process(tmp_path: Path, cluster: LocalCluster) -> None:
    """A second, one-node cluster: crash + restart components, then `down` stops it all."""
    pools_file = tmp_path / "pools.yaml"
    pools_file.write_text(
        "pools:\n  - {name: solo, nodes: 1, capacity: {cpu: '1', memory: 1Gi, pods: '10'}}\n"
    )
    state = tmp_path / "state"
    second = LocalCluster(state, pools_file=pools_file, bin_dir=cluster.bin_dir)
    intruder = LocalCluster(state, pools_file=pools_file, bin_dir=cluster.bin_dir)
    second.start()
    try:
        pids = [second.processes[name].pid for name in COMPONENTS]
        assert second.node_names == ["solo-0"]
        with pytest.raises(ClusterError, match="already running"):
            intruder.start()

        # The crashes fault tests will inject: SIGKILL, then restart from the same data.
        for name in ("etcd", "kube-scheduler"):
            second.kill(name)
            assert not second.alive(name)
            second.restart(name)
        eventually(second.ready, message="the apiserver to be ready again")
        nodes = json.loads(second.kubectl("get", "nodes", "--output=json").stdout)["items"]
        assert [n["metadata"]["name"] for n in nodes] == ["solo-0"]  # etcd kept its data

        down = subprocess.run(
            [sys.executable, "-m", "jobgate.devcluster", "down", "--state-dir", str(state)],
            capture_output=True,
            text=True,
            timeout=120,
            env={**os.environ, "PYTHONSAFEPATH": "1"},
            check=False,
        )
        assert down.returncode == 0, down.stderr
        assert second.running() == []
        assert _processes_mentioning(str(state)) == []
        for pid in pids:
            assert pid is not None
            assert not Path(f"/proc/{pid}/cmdline").exists() or not Path(f"/proc/{pid}/cmdline").read_bytes()
    finally:
        intruder.stop()  # only does something if the refusal above failed
        second.stop()  # reaps our children; a no-op when `down` already did its job
