"""Tenants, and the namespace each one's jobs live in (pure).

A tenant is the `X-Tenant-Id` of a request (or the tenant its bearer token is pinned to, or
the deployment's default tenant). Its jobs live in one namespace of its own
(`names.tenant_namespace`: `jobgate-t-acme`), which the operator checks a Job's
`spec.tenant` against. The namespace carries the tenant id in an annotation (exact) and a
label (shortened when it cannot be a label value).
"""

from __future__ import annotations

from typing import Any, Final

from jobgate.crds import models, names

MAX_TENANT_LENGTH: Final = 253  # as spec.tenant in crds/models.py
POD_SECURITY: Final = "pod-security.kubernetes.io/"  # the PodSecurity admission's namespace labels


def check_tenant(text: str) -> str:
    """`text` if it can be a tenant id, else ValueError saying what one is."""
    if not 1 <= len(text) <= MAX_TENANT_LENGTH or not text.isprintable():
        raise ValueError(f"a tenant id is 1 to {MAX_TENANT_LENGTH} printable characters")
    return text


def namespace_manifest(tenant: str, *, prefix: str, pod_security: str) -> dict[str, Any]:
    """The tenant's namespace, as the API creates it on the tenant's first submission: the
    Pod Security Standard `pod_security` enforced in it (the apiserver's PodSecurity
    admission), and warned about at `restricted`."""
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {
            "name": names.tenant_namespace(tenant, prefix=prefix),
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
