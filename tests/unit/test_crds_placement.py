"""Which node labels may be pools: not Kubernetes' own by default, or the listed keys."""

from __future__ import annotations

import pytest

from jobgate.crds import errors, placement, policy


@pytest.mark.parametrize(
    "label",
    [
        "kubernetes.io/hostname=npu-0",
        "node.kubernetes.io/instance-type=x",
        "topology.k8s.io/zone",
        "k8s.io/x",
    ],
)
def test_by_default_kubernetes_own_labels_are_no_pools(label: str) -> None:
    with pytest.raises(errors.SpecError, match="is a Kubernetes label of the node itself") as refused:
        placement.PlacementPolicy().check(["pool-cpu", label], tenant="acme")
    assert refused.value.field == "spec.poolLabels"


def test_by_default_other_labels_and_flags_are_pools() -> None:
    placement.PlacementPolicy().check(
        ["pool-gpu", "jobgate.io/pool=cpu-b", "example.com/kubernetes.io-like", "unUseAntiOtherLabels"],
        tenant=None,
    )


def test_listed_keys_and_a_tenants_own(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JOBGATE_ALLOWED_POOL_LABELS", "pool-cpu, pool-gpu")
    monkeypatch.setenv("JOBGATE_TENANT_POOL_LABELS", "vip=pool-cpu|pool-npu")
    rules = policy.JobPolicy().placement
    rules.check(["pool-gpu", "pool-cpu=true"], tenant="acme")
    with pytest.raises(
        errors.SpecError, match=r"'pool-npu' is not a pool here \(allowed: pool-cpu, pool-gpu\)"
    ):
        rules.check(["pool-npu"], tenant="acme")
    rules.check(["pool-npu"], tenant="vip")
    with pytest.raises(errors.SpecError, match="'pool-gpu' is not a pool here"):
        rules.check(["pool-gpu"], tenant="vip")
