"""Tenants, and the namespace each one's jobs live in (pure).

A tenant is the `X-Tenant-Id` of a request (or the tenant its bearer token is pinned to, or
the deployment's default tenant). Its jobs live in one namespace of its own, named
`<prefix><tenant>` (`jobgate-t-acme`) when the tenant id is a DNS label that fits, and else
`<prefix><readable part>--<12 hex of sha256(tenant)>` (`ACME Corp` -> `jobgate-t-acme-corp--27de7f296039`).
A readable name never contains `--`, a hashed one always does, so two tenants never map to
the same namespace. The namespace carries the tenant id in an annotation (exact) and a
label (shortened when it cannot be a label value).
"""

from __future__ import annotations

import re
from typing import Any, Final

from jobgate.crds import models, names

MAX_TENANT_LENGTH: Final = 253  # as spec.tenant in crds/models.py
_HASH_LENGTH: Final = 12
POD_SECURITY: Final = "pod-security.kubernetes.io/"  # the PodSecurity admission's namespace labels


def check_tenant(text: str) -> str:
    """`text` if it can be a tenant id, else ValueError saying what one is."""
    if not 1 <= len(text) <= MAX_TENANT_LENGTH or not text.isprintable():
        raise ValueError(f"a tenant id is 1 to {MAX_TENANT_LENGTH} printable characters")
    return text


def namespace_for(tenant: str, *, prefix: str) -> str:
    """The namespace of the tenant's jobs."""
    if "--" not in tenant and names.DNS_LABEL.fullmatch(tenant) and len(prefix + tenant) <= names.MAX_LABEL:
        return prefix + tenant
    hashed = names.digest(tenant, length=_HASH_LENGTH)
    room = names.MAX_LABEL - len(prefix) - len(hashed) - 2
    readable = re.sub(r"[^a-z0-9]+", "-", tenant.lower())[:room].strip("-")
    return f"{prefix}{readable}--{hashed}"


def namespace_manifest(tenant: str, *, prefix: str, pod_security: str) -> dict[str, Any]:
    """The tenant's namespace, as the API creates it on the tenant's first submission: the
    Pod Security Standard `pod_security` enforced in it (the apiserver's PodSecurity
    admission), and warned about at `restricted`."""
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {
            "name": namespace_for(tenant, prefix=prefix),
            "labels": {
                models.LABEL_TENANT: names.label_value(tenant),
                f"{POD_SECURITY}enforce": pod_security,
                f"{POD_SECURITY}enforce-version": "latest",
                f"{POD_SECURITY}warn": "restricted",
            },
            "annotations": {models.ANNOTATION_TENANT: tenant},
        },
    }


def owner_of(namespace: dict[str, Any]) -> str | None:
    """The tenant a namespace belongs to, by its annotation (None: not a tenant namespace)."""
    annotations = namespace.get("metadata", {}).get("annotations") or {}
    owner = annotations.get(models.ANNOTATION_TENANT)
    return str(owner) if owner is not None else None
