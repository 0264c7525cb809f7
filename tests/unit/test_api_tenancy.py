"""Tenant ids -> namespaces: readable when they can be, always valid, never shared."""

from __future__ import annotations

import re

import pytest

from jobgate.api import pools, tenancy
from jobgate.crds import names

PREFIX = "jobgate-t-"
DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")


@pytest.mark.parametrize("tenant", ["acme", "default", "team-7", "a" * 53])
def test_dns_label_tenants_keep_their_name(tenant: str) -> None:
    assert names.tenant_namespace(tenant, prefix=PREFIX) == PREFIX + tenant


@pytest.mark.parametrize(
    ("tenant", "readable"),
    [
        ("ACME Corp", "acme-corp"),
        ("team_7", "team-7"),
        ("a--b", "a-b"),
        ("-x-", "x"),
        ("租户", ""),
        ("a" * 54, "a" * 39),
        ("x" * 253, "x" * 39),
    ],
)
def test_other_tenants_get_a_hashed_name(tenant: str, readable: str) -> None:
    namespace = names.tenant_namespace(tenant, prefix=PREFIX)
    assert DNS_LABEL.fullmatch(namespace), namespace
    assert re.fullmatch(re.escape(PREFIX + readable) + r"--[0-9a-f]{12}", namespace)


def test_no_two_tenants_share_a_namespace() -> None:
    tenants = ["acme", "Acme", "ACME", "acme-", "a-cme", "acme--1", "acme_", "acme.", "x" * 100, "x" * 101]
    hashed = names.tenant_namespace("Acme", prefix=PREFIX)
    tenants.append(hashed.removeprefix(PREFIX))  # a tenant named like another's hashed namespace
    namespaces = [names.tenant_namespace(tenant, prefix=PREFIX) for tenant in tenants]
    assert len(set(namespaces)) == len(tenants)


def test_the_namespace_records_its_tenant() -> None:
    manifest = tenancy.namespace_manifest("ACME Corp", prefix=PREFIX, pod_security="baseline")
    assert manifest["metadata"]["labels"] == {
        "jobgate.io/tenant": "ACME-Corp-27de7f29",  # label-safe, hashed whole
        "pod-security.kubernetes.io/enforce": "baseline",
        "pod-security.kubernetes.io/enforce-version": "latest",
        "pod-security.kubernetes.io/warn": "restricted",
    }
    assert tenancy.owner_of(manifest) == "ACME Corp"
    assert tenancy.owner_of({"metadata": {"name": "kube-system"}}) is None


@pytest.mark.parametrize("tenant", ["", "x" * 254, "tab\there", "new\nline"])
def test_tenant_ids_must_be_printable_and_not_too_long(tenant: str) -> None:
    with pytest.raises(ValueError, match="a tenant id is 1 to 253 printable characters"):
        tenancy.check_tenant(tenant)


def test_pool_labels_are_split_trimmed_and_checked() -> None:
    assert pools.parse(" pool-a ,example.com/pool=x,, unUseAntiOtherLabels ") == (
        "pool-a",
        "example.com/pool=x",
        "unUseAntiOtherLabels",
    )
    assert pools.parse("") == ()
    with pytest.raises(ValueError, match="'a b' is not a node label key"):
        pools.parse("ok, a b")


@pytest.mark.parametrize(
    "label",
    [
        "a" * 254 + "/pool",  # a prefix is a DNS subdomain: at most 253 characters
        "a" * 64 + ".example.com/pool",  # of DNS labels of at most 63
        "p" * 64,
        "pool=" + "v" * 64,
        "-pool",
        "pool/",
        "a/b/c",
        "=v",
        "k=v=w",
        "пул",
    ],
    ids=lambda label: label[:24],
)
def test_pool_labels_kubernetes_would_refuse_are_refused(label: str) -> None:
    with pytest.raises(ValueError, match="is not a node label key"):
        pools.parse(label)


def test_pool_labels_at_kubernetes_bounds_pass() -> None:
    prefix = ".".join(["a" * 63, "b" * 63, "c" * 63, "d" * 61])  # 253 characters
    edge = f"{prefix}/{'p' * 63}={'v' * 63}"
    assert pools.parse(edge) == (edge,)
