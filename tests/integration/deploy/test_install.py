"""deploy/ on the local control plane: what `kubectl apply -k` does, and what each
ServiceAccount may and may not do.

The rest of the integration suite runs the operator and the API as deploy/'s
ServiceAccounts (the `identities` fixture); these tests show the same roles from outside,
with `kubectl auth can-i`, and install the whole of deploy/ as a cluster operator would.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from waiting import eventually

from jobgate.devcluster import LocalCluster
from jobgate.devcluster import identities as identity

REPO_ROOT = Path(__file__).resolve().parents[3]
DEPLOY = REPO_ROOT / "deploy"
SYSTEM_NAMESPACE = identity.SYSTEM_NAMESPACE
OPERATOR = f"system:serviceaccount:{SYSTEM_NAMESPACE}:{identity.OPERATOR}"
API = f"system:serviceaccount:{SYSTEM_NAMESPACE}:{identity.API}"
TENANT_NAMESPACE = "jobgate-t-acme"  # any namespace: the roles are cluster-wide

# (who, verb, resource, namespace or None for all, allowed)
PERMISSIONS = [
    (OPERATOR, "watch", "jobs.jobgate.io", None, True),
    (OPERATOR, "patch", "jobs.jobgate.io/status", TENANT_NAMESPACE, True),
    (OPERATOR, "delete", "jobs.jobgate.io", TENANT_NAMESPACE, True),
    (OPERATOR, "create", "pods", TENANT_NAMESPACE, True),
    (OPERATOR, "delete", "pods", TENANT_NAMESPACE, True),
    (OPERATOR, "create", "events", TENANT_NAMESPACE, True),
    (OPERATOR, "update", "leases", SYSTEM_NAMESPACE, True),
    (OPERATOR, "update", "leases", "kube-system", False),  # its own Lease's namespace only
    (OPERATOR, "create", "jobs.jobgate.io", TENANT_NAMESPACE, False),  # people and the API create Jobs
    (OPERATOR, "patch", "jobs.jobgate.io", TENANT_NAMESPACE, False),  # it never changes a spec
    (OPERATOR, "get", "secrets", TENANT_NAMESPACE, False),
    (OPERATOR, "list", "secrets", None, False),
    (OPERATOR, "create", "namespaces", None, False),
    (OPERATOR, "update", "pods", TENANT_NAMESPACE, False),
    (OPERATOR, "create", "pods/exec", TENANT_NAMESPACE, False),
    (OPERATOR, "get", "pods/log", TENANT_NAMESPACE, True),  # archived when the pod ends
    (OPERATOR, "get", "nodes", None, True),  # was a vanished pod's node deleted?
    (OPERATOR, "patch", "nodes", None, False),
    (OPERATOR, "list", "nodes", None, False),
    (API, "list", "jobs.jobgate.io", None, True),
    (API, "create", "jobs.jobgate.io", TENANT_NAMESPACE, True),
    (API, "patch", "jobs.jobgate.io", TENANT_NAMESPACE, True),
    (API, "delete", "jobs.jobgate.io", TENANT_NAMESPACE, True),
    (API, "create", "namespaces", None, True),
    (API, "get", "pods/log", TENANT_NAMESPACE, True),
    (API, "create", "pods", TENANT_NAMESPACE, False),  # only the operator makes pods
    (API, "get", "pods", TENANT_NAMESPACE, False),
    (API, "patch", "jobs.jobgate.io/status", TENANT_NAMESPACE, False),  # status is the operator's
    (API, "delete", "namespaces", None, False),
    (API, "get", "secrets", TENANT_NAMESPACE, False),
    (API, "create", "pods/exec", TENANT_NAMESPACE, False),
    (API, "update", "leases", SYSTEM_NAMESPACE, False),
]


@pytest.mark.parametrize(
    ("who", "verb", "resource", "namespace", "allowed"),
    PERMISSIONS,
    ids=[f"{w.rsplit(':', 1)[1]}-{v}-{r}-{n or 'all'}" for w, v, r, n, _ in PERMISSIONS],
)
def test_each_service_account_may_do_only_what_it_needs(
    cluster: LocalCluster,
    crd: str,
    identities: Any,
    who: str,
    verb: str,
    resource: str,
    namespace: str | None,
    allowed: bool,
) -> None:
    where = ["--all-namespaces"] if namespace is None else ["--namespace", namespace]
    kind, _, subresource = resource.partition("/")
    sub = [f"--subresource={subresource}"] if subresource else []
    answer = cluster.kubectl("auth", "can-i", verb, kind, *sub, *where, f"--as={who}", check=False)
    assert answer.stdout.strip() == ("yes" if allowed else "no"), answer.stderr


def test_a_server_side_dry_run_of_deploy_passes(cluster: LocalCluster, kube: client.ApiClient) -> None:
    # A dry run cannot create the namespace its other objects go into: it must exist.
    _ensure_namespace(kube, SYSTEM_NAMESPACE)
    result = cluster.kubectl("apply", "--dry-run=server", "-k", str(DEPLOY), check=False)
    assert result.returncode == 0, result.stderr
    assert "deployment.apps/jobgate-api created (server dry run)" in result.stdout, result.stdout
    assert "deployment.apps/jobgate-operator created (server dry run)" in result.stdout


def test_the_samples_are_valid_jobs(cluster: LocalCluster, crd: str, namespace: str) -> None:
    result = cluster.kubectl(
        "apply", "--dry-run=server", "-f", str(DEPLOY / "samples"), "-n", namespace, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("created (server dry run)") == len(list((DEPLOY / "samples").glob("*.yaml")))


def test_the_dev_overlay_installs_and_its_pods_are_scheduled(
    cluster: LocalCluster, kube: client.ApiClient, identities: Any
) -> None:
    result = cluster.kubectl("apply", "-k", str(DEPLOY / "overlays" / "dev"), check=False)
    assert result.returncode == 0, result.stderr
    core = client.CoreV1Api(kube)
    try:

        def jobgate_pods() -> client.V1PodList:
            return core.list_namespaced_pod(SYSTEM_NAMESPACE, label_selector="app.kubernetes.io/name=jobgate")

        def all_scheduled() -> client.V1PodList | None:
            pods = jobgate_pods()
            scheduled = {p.metadata.name: p.spec.node_name for p in pods.items if p.spec.node_name}
            components = sorted(p.metadata.labels["app.kubernetes.io/component"] for p in pods.items)
            if len(scheduled) == 4 and components == ["api", "api", "operator", "operator"]:
                return pods
            return None

        pods = eventually(
            all_scheduled,
            message=lambda: f"the pods to be scheduled; now: {[_state(p) for p in jobgate_pods().items]}",
        )
        # The preferred anti-affinity spreads each pair over two nodes.
        for component in ("api", "operator"):
            nodes = {
                p.spec.node_name
                for p in pods.items
                if p.metadata.labels["app.kubernetes.io/component"] == component
            }
            assert len(nodes) == 2, f"{component} replicas share a node: {nodes}"
        claim = core.read_namespaced_persistent_volume_claim("jobgate-packages", SYSTEM_NAMESPACE)
        assert claim.status.phase == "Bound"
    finally:
        # Only what the rest of the suite does not use: the CRD, the namespace and the RBAC stay.
        apps = client.AppsV1Api(kube)
        for name in ("jobgate-operator", "jobgate-api"):
            apps.delete_namespaced_deployment(name, SYSTEM_NAMESPACE)
        core.delete_namespaced_persistent_volume_claim("jobgate-packages", SYSTEM_NAMESPACE)
        core.delete_persistent_volume("jobgate-dev-packages")


def _ensure_namespace(kube: client.ApiClient, name: str) -> None:
    try:
        client.CoreV1Api(kube).create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    except client.ApiException as err:
        if err.status != 409:
            raise


def _state(pod: client.V1Pod) -> str:
    conditions = {c.type: (c.status, c.reason, c.message) for c in pod.status.conditions or []}
    return f"{pod.metadata.name}: node={pod.spec.node_name} scheduled={conditions.get('PodScheduled')}"
