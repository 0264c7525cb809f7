"""Acceptance tests of the real node (devcluster/realnode.py): plain pods, not yet through
jobgate, really run on `real-0` with kubelet + containerd + runc, from the locally built
job image with `imagePullPolicy: Never`. Nothing is mocked or faked."""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes import client
from waiting import eventually

from jobgate.devcluster import LocalCluster, nodeimages, pools, realnode

pytestmark = pytest.mark.cluster

TIMEOUT = 120.0  # seconds for a pod to finish: real containers start on the real node
JOB_IMAGE = nodeimages.job_image_ref()


def real_pod(
    name: str,
    command: list[str],
    *,
    limits: dict[str, str] | None = None,
    env: dict[str, str] | None = None,
    working_dir: str | None = None,
) -> dict[str, Any]:
    container: dict[str, Any] = {
        "name": "main",
        "image": JOB_IMAGE,
        "imagePullPolicy": "Never",
        "command": command,
        "env": [{"name": k, "value": v} for k, v in (env or {}).items()],
    }
    if limits:
        container["resources"] = {"requests": limits, "limits": limits}
    if working_dir:
        container["workingDir"] = working_dir
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {
            "restartPolicy": "Never",
            "nodeSelector": {realnode.POOL_SELECTOR_LABEL: "true"},
            "containers": [container],
        },
    }


def run_to_end(core: client.CoreV1Api, namespace: str, manifest: dict[str, Any]) -> client.V1Pod:
    """Create the pod and return it once it has Succeeded or Failed (with its events on a timeout)."""
    name = manifest["metadata"]["name"]
    core.create_namespaced_pod(namespace, manifest)

    def finished() -> client.V1Pod | None:
        pod: client.V1Pod = core.read_namespaced_pod(name, namespace)
        return pod if pod.status.phase in ("Succeeded", "Failed") else None

    def events() -> str:
        found = core.list_namespaced_event(namespace, field_selector=f"involvedObject.name={name}").items
        return f"pod {name} to finish; events: {[(e.reason, e.message) for e in found]}"

    return eventually(finished, timeout=TIMEOUT, message=events)


def terminated(pod: client.V1Pod) -> client.V1ContainerStateTerminated:
    state = pod.status.container_statuses[0].state
    assert state.terminated is not None, state
    return state.terminated


def test_the_real_node_joins_beside_the_fake_ones(
    real_cluster: LocalCluster, real_kube: client.ApiClient
) -> None:
    core = client.CoreV1Api(real_kube)
    node = core.read_node(realnode.NODE_NAME)
    labels = node.metadata.labels
    assert labels[realnode.POOL_SELECTOR_LABEL] == "true"
    assert labels[pools.POOL_LABEL] == realnode.POOL
    # No kwok annotation: kwok (--manage-nodes-with-annotation-selector) leaves it alone.
    assert pools.KWOK_ANNOTATION not in (node.metadata.annotations or {})
    assert node.status.node_info.container_runtime_version == "containerd://2.1.9"
    assert node.status.node_info.kubelet_version == "v1.34.4"
    assert [(a.type, a.address) for a in node.status.addresses if a.type == "InternalIP"] == [
        ("InternalIP", realnode.NODE_IP)
    ]
    conditions = {c.type: c.status for c in node.status.conditions}
    assert conditions["Ready"] == "True"
    # The fake pools are still there and still kwok's.
    fakes = core.list_node(label_selector="type=kwok").items
    assert fakes
    assert all(n.metadata.annotations[pools.KWOK_ANNOTATION] == pools.KWOK_ANNOTATION_VALUE for n in fakes)


def test_python_prints_42_and_kubectl_logs_shows_it(
    real_cluster: LocalCluster, real_kube: client.ApiClient, real_namespace: str
) -> None:
    core = client.CoreV1Api(real_kube)
    pod = run_to_end(core, real_namespace, real_pod("p42", ["python3", "-c", "print(42)"]))
    assert pod.status.phase == "Succeeded"
    assert pod.spec.node_name == realnode.NODE_NAME
    assert terminated(pod).exit_code == 0
    assert terminated(pod).reason == "Completed"
    # Through the apiserver to the kubelet and the container's log file: the real output.
    logs = real_cluster.kubectl("logs", "-n", real_namespace, "p42")
    assert logs.stdout == "42\n"
    assert core.read_namespaced_pod_log("p42", real_namespace) == "42\n"


def test_a_non_zero_exit_shows_in_the_container_status(
    real_kube: client.ApiClient, real_namespace: str
) -> None:
    core = client.CoreV1Api(real_kube)
    command = ["python", "-c", "import sys; print('about to fail', flush=True); sys.exit(3)"]
    pod = run_to_end(core, real_namespace, real_pod("exit3", command))
    assert pod.status.phase == "Failed"
    assert terminated(pod).exit_code == 3
    assert terminated(pod).reason == "Error"
    assert core.read_namespaced_pod_log("exit3", real_namespace) == "about to fail\n"


def test_allocating_past_the_memory_limit_is_oom_killed(
    real_kube: client.ApiClient, real_namespace: str
) -> None:
    core = client.CoreV1Api(real_kube)
    hog = "import time\nheld = []\nwhile True:\n    held.append(bytearray(8 << 20))\n    time.sleep(0.01)\n"
    pod = run_to_end(
        core,
        real_namespace,
        real_pod("hog", ["python3", "-c", hog], limits={"memory": "64Mi", "cpu": "500m"}),
    )
    assert pod.status.phase == "Failed"
    assert terminated(pod).reason == "OOMKilled"
    assert terminated(pod).exit_code == 137


def test_limits_env_working_dir_and_seccomp_are_applied(
    real_kube: client.ApiClient, real_namespace: str
) -> None:
    """The pod's resources land in its cgroup, and the container runs the way jobgate's pods
    expect: env vars set, in the working directory, through a shell, under RuntimeDefault
    seccomp (kubelet's seccompDefault)."""
    core = client.CoreV1Api(real_kube)
    script = (
        'echo "cwd=$(pwd) greeting=$GREETING"; '
        "grep '^Seccomp:' /proc/self/status; "
        # cgroup v1 (this project's machines) or v2, whichever the container sees.
        "cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/cpu/cpu.cfs_quota_us 2>/dev/null "
        "|| cat /sys/fs/cgroup/memory.max /sys/fs/cgroup/cpu.max"
    )
    manifest = real_pod(
        "limits",
        ["/bin/sh", "-c", script],
        limits={"memory": "96Mi", "cpu": "250m"},
        env={"GREETING": "hello world"},
        working_dir="/tmp",
    )
    pod = run_to_end(core, real_namespace, manifest)
    assert pod.status.phase == "Succeeded", pod.status
    lines = core.read_namespaced_pod_log("limits", real_namespace).split("\n")
    assert lines[0] == "cwd=/tmp greeting=hello world"
    assert lines[1].split() == ["Seccomp:", "2"]  # 2 = filter mode
    assert lines[2] == str(96 * 1024 * 1024)
    assert lines[3].split()[0] == "25000"  # 250m of a 100000us period (v1 quota, or v2 cpu.max)
