"""Fake node pools: the declarative `pools.yaml` and the Node objects made from it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

DEFAULT_POOLS_FILE = Path(__file__).with_name("pools.yaml")

# kwok only manages nodes carrying this annotation (--manage-nodes-with-annotation-selector),
# so real nodes, were any ever registered, would be left alone.
KWOK_ANNOTATION = "kwok.x-k8s.io/node"
KWOK_ANNOTATION_VALUE = "fake"
POOL_LABEL = "jobgate.io/pool"


@dataclass(frozen=True)
class Pool:
    name: str
    nodes: int
    labels: Mapping[str, str] = field(default_factory=dict)
    capacity: Mapping[str, str] = field(default_factory=dict)
    taints: tuple[Mapping[str, str], ...] = ()
    profile: Mapping[str, Any] | None = None  # what jobs for this pool get (JOBGATE_POD_PROFILES)

    def node_names(self, extra: int = 0) -> list[str]:
        return [f"{self.name}-{i}" for i in range(self.nodes + extra)]


def load_pools(path: Path | None = None) -> list[Pool]:
    """Read a pools file (default: the one beside this module); errors name the bad entry."""
    path = path or DEFAULT_POOLS_FILE
    doc = yaml.safe_load(path.read_text()) or {}
    default_capacity = {k: str(v) for k, v in (doc.get("defaults", {}).get("capacity") or {}).items()}
    pools: list[Pool] = []
    for entry in doc.get("pools") or []:
        name = entry.get("name")
        if not name or not isinstance(entry.get("nodes"), int) or entry["nodes"] < 0:
            raise ValueError(f"{path}: every pool needs a name and a non-negative node count: {entry!r}")
        capacity = {**default_capacity, **{k: str(v) for k, v in (entry.get("capacity") or {}).items()}}
        pools.append(
            Pool(
                name=name,
                nodes=entry["nodes"],
                labels={k: str(v) for k, v in (entry.get("labels") or {}).items()},
                capacity=capacity,
                taints=tuple(entry.get("taints") or ()),
                profile=entry.get("profile"),
            )
        )
    names = [p.name for p in pools]
    if len(set(names)) != len(names):
        raise ValueError(f"{path}: duplicate pool names in {names}")
    return pools


def pod_profiles(pools: list[Pool]) -> list[dict[str, Any]]:
    """The operator's JOBGATE_POD_PROFILES for these pools: each pool's profile, applying
    to jobs that name the pool by any of its labels (`pool-gpu`, `pool-gpu=true`,
    `jobgate.io/pool=gpu`) unless it says otherwise."""
    return [
        {
            "pools": [
                *sorted(pool.labels),
                *(f"{key}={value}" for key, value in sorted(pool.labels.items())),
                f"{POOL_LABEL}={pool.name}",
            ],
            **pool.profile,
        }
        for pool in pools
        if pool.profile
    ]


def node_manifest(pool: Pool, name: str, *, kubelet_port: int) -> dict[str, Any]:
    """The Node object for one fake node.

    Status is set at creation (the apiserver accepts it, as it does from a registering
    kubelet): capacity, allocatable, and the only address, InternalIP 127.0.0.1 with the
    kubelet port served by kwok, so the apiserver reaches "kubelets" (`kubectl logs`)
    on loopback only.
    """
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "labels": {
                **pool.labels,
                POOL_LABEL: pool.name,
                "type": "kwok",
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
            },
            "annotations": {KWOK_ANNOTATION: KWOK_ANNOTATION_VALUE},
        },
        "spec": {"taints": [dict(t) for t in pool.taints]} if pool.taints else {},
        "status": {
            "capacity": dict(pool.capacity),
            "allocatable": dict(pool.capacity),
            "addresses": [{"type": "InternalIP", "address": "127.0.0.1"}],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": kubelet_port}},
        },
    }


def all_nodes(
    pools: list[Pool], *, kubelet_port: int, extra_nodes: Mapping[str, int] | None = None
) -> list[dict[str, Any]]:
    """Node objects for every pool, plus `extra_nodes[pool]` more nodes in the named pools."""
    extra_nodes = dict(extra_nodes or {})
    unknown = set(extra_nodes) - {p.name for p in pools}
    if unknown:
        raise ValueError(f"extra_nodes names unknown pools: {sorted(unknown)}")
    return [
        node_manifest(pool, name, kubelet_port=kubelet_port)
        for pool in pools
        for name in pool.node_names(extra_nodes.get(pool.name, 0))
    ]
