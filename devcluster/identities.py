"""jobgate's processes as deploy/'s ServiceAccounts, never as the cluster's admin.

`issue` applies `deploy/rbac` (the ServiceAccounts `jobgate-operator` and `jobgate-api` in
`jobgate-system`, and their least-privilege roles), then writes one kubeconfig per account
with a token from the TokenRequest API. `make dev` runs the operator and the API with them,
and so do the tests: what deploy/ grants is then exactly what they have, and a missing
permission shows up here, not in a user's cluster.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Final

from .cluster import REPO_ROOT, LocalCluster
from .kubeapi import ApiError

SYSTEM_NAMESPACE: Final = "jobgate-system"  # deploy/'s, where the ServiceAccounts live
RBAC_DIR: Final = REPO_ROOT / "deploy" / "rbac"
AUDIENCE: Final = "https://kubernetes.default.svc.cluster.local"  # the cluster's issuer
TOKEN_SECONDS: Final = 30 * 24 * 3600  # outlives a dev cluster's session, and a test run
OPERATOR: Final = "jobgate-operator"
API: Final = "jobgate-api"


@dataclasses.dataclass(frozen=True)
class Identities:
    """Kubeconfigs acting as deploy/'s ServiceAccounts."""

    operator: Path
    api: Path


def issue(cluster: LocalCluster, directory: Path) -> Identities:
    """Apply deploy/rbac to the cluster and write the two accounts' kubeconfigs into `directory`."""
    try:
        cluster.api.create("/api/v1/namespaces", {"metadata": {"name": SYSTEM_NAMESPACE}})
    except ApiError as err:
        if err.status != 409:  # a cluster started before has it already
            raise
    cluster.kubectl("apply", "--server-side", "--force-conflicts", "-k", str(RBAC_DIR))
    directory.mkdir(parents=True, exist_ok=True)
    return Identities(
        operator=_kubeconfig(cluster, directory, OPERATOR), api=_kubeconfig(cluster, directory, API)
    )


def _kubeconfig(cluster: LocalCluster, directory: Path, account: str) -> Path:
    request = {
        "apiVersion": "authentication.k8s.io/v1",
        "kind": "TokenRequest",
        "spec": {"audiences": [AUDIENCE], "expirationSeconds": TOKEN_SECONDS},
    }
    answer = cluster.api.create(
        f"/api/v1/namespaces/{SYSTEM_NAMESPACE}/serviceaccounts/{account}/token", request
    )
    user = f"system:serviceaccount:{SYSTEM_NAMESPACE}:{account}"
    return cluster.write_kubeconfig(
        directory / f"{account}.kubeconfig", user=user, token=answer["status"]["token"]
    )
