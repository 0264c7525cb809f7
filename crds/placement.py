"""Which node labels a job may name as its pools (`spec.poolLabels`, the `X-Pool-Label` header).

A pool label becomes the pod's required node affinity, so a label that names one node
(`kubernetes.io/hostname=npu-0`) would let a tenant pick the node its job lands on, next to
whatever runs there. Without a list, any label is a pool but those under Kubernetes' own
prefixes (`kubernetes.io/`, `k8s.io/` and their subdomains: hostnames, zones, roles);
`JOBGATE_ALLOWED_POOL_LABELS` lists the label keys that are pools instead, and
`JOBGATE_TENANT_POOL_LABELS` a tenant's own keys (`acme=pool-gpu|pool-cpu`), in place of that
list for that tenant.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Final

from jobgate.crds import errors, models

_LOC: Final = ("poolLabels",)
_KUBERNETES_PREFIXES: Final = ("kubernetes.io", "k8s.io")


def reserved(key: str) -> bool:
    """Whether a label key is under a prefix Kubernetes keeps for itself."""
    prefix = key.rpartition("/")[0]
    return any(prefix == domain or prefix.endswith("." + domain) for domain in _KUBERNETES_PREFIXES)


@dataclasses.dataclass(frozen=True)
class PlacementPolicy:
    allowed: Sequence[str] = ()  # label keys that are pools; () = any but reserved ones
    per_tenant: Mapping[str, Sequence[str]] = dataclasses.field(default_factory=dict)

    def check(self, labels: Sequence[str], *, tenant: str | None) -> None:
        """`errors.SpecError` naming the first label the tenant may not use as a pool."""
        allowed = self.per_tenant.get(tenant or "", self.allowed)
        for label in labels:
            if label.strip() in models.POOL_LABEL_FLAGS:  # as node_affinity skips them
                continue
            key = label.partition("=")[0].strip()
            if allowed and key not in allowed:
                raise errors.SpecError(_LOC, f"{label!r} is not a pool here", allowed=allowed)
            if not allowed and reserved(key):
                raise errors.SpecError(
                    _LOC,
                    f"{label!r} is a Kubernetes label of the node itself (kubernetes.io/, k8s.io/), "
                    "not a pool: it would pick the node",
                )
