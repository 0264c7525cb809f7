"""FastAPI dependencies: the settings, the services, the current tenant, and request headers.

The current tenant: with bearer tokens configured (`JOBGATE_API_TOKENS_FILE`), every job
and package call needs `Authorization: Bearer <token>` (Ray's own header
`X-Ray-Authorization` is accepted too); 401 without one, 403 for an unknown one. A token
pinned to a tenant acts for that tenant whatever `X-Tenant-Id` says; an unpinned token (and
any request when no tokens are configured) acts for `X-Tenant-Id`, or the default tenant
when the header is absent or empty. When `JOBGATE_TENANTS` lists the tenants, any other is
refused (403).
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import json
from typing import Annotated, Final

from fastapi import Depends, Header, Query
from starlette.requests import HTTPConnection

from jobgate.api import errors, index, packages, pools, service, tenancy
from jobgate.api.config import Settings, token_key
from jobgate.crds import models as crd
from jobgate.crds import names

BEARER: Final = "bearer"
MAX_PAGE: Final = 10_000
_RAY_AUTHORIZATION: Final = "X-Ray-Authorization"


def settings(connection: HTTPConnection) -> Settings:
    configured: Settings = connection.app.state.settings
    return configured


def jobs(connection: HTTPConnection) -> service.Jobs:
    served: service.Jobs = connection.app.state.jobs
    return served


def package_store(connection: HTTPConnection) -> packages.Packages:
    stored: packages.Packages = connection.app.state.packages
    return stored


def tenant(
    connection: HTTPConnection,
    configured: Annotated[Settings, Depends(settings)],
    x_tenant_id: Annotated[str | None, Header(description="The tenant that owns the job.")] = None,
) -> str:
    chosen = _tenant(connection, configured, x_tenant_id)
    if configured.tenants and chosen not in configured.tenants:
        raise errors.ForbiddenError(
            f"X-Tenant-Id: tenant {chosen[:80]!r} is not one of this deployment's tenants (JOBGATE_TENANTS)"
        )
    return chosen


def _tenant(connection: HTTPConnection, configured: Settings, x_tenant_id: str | None) -> str:
    pinned = _authenticated(connection, configured)
    if pinned is not None:
        return pinned
    if not x_tenant_id or not x_tenant_id.strip():
        return configured.default_tenant
    try:
        return tenancy.check_tenant(x_tenant_id.strip())
    except ValueError as e:
        raise errors.InvalidRequestError(f"X-Tenant-Id: {e}, got {x_tenant_id[:80]!r}") from e


def package_space(
    tenant: Annotated[str, Depends(tenant)], configured: Annotated[Settings, Depends(settings)]
) -> str:
    """Where the tenant's packages are kept: named as its namespace."""
    return names.tenant_namespace(tenant, prefix=configured.namespace_prefix)


def authenticated(connection: HTTPConnection, configured: Annotated[Settings, Depends(settings)]) -> None:
    """For calls that act for no tenant (package uploads): only the token is checked."""
    _authenticated(connection, configured)


def _authenticated(connection: HTTPConnection, configured: Settings) -> str | None:
    """The tenant the request's token is pinned to (None: unpinned, or no tokens configured)."""
    if not configured.tokens:
        return None
    header = connection.headers.get("Authorization") or connection.headers.get(_RAY_AUTHORIZATION) or ""
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != BEARER or not token.strip():
        raise errors.UnauthenticatedError("authentication required: send Authorization: Bearer <token>")
    key = token_key(token.strip())
    if key not in configured.tokens:
        raise errors.ForbiddenError("the bearer token is not valid")
    return configured.tokens[key]


def pool_labels(
    configured: Annotated[Settings, Depends(settings)],
    x_pool_label: Annotated[
        str | None,
        Header(
            description="Comma-separated node label keys (or key=value): the job runs on a node "
            "with at least one of them, earlier ones preferred."
        ),
    ] = None,
) -> tuple[str, ...]:
    if x_pool_label is None:
        return configured.default_pool_labels
    try:
        return pools.parse(x_pool_label)
    except ValueError as e:
        raise errors.InvalidRequestError(f"X-Pool-Label: {e}") from e


@dataclasses.dataclass(frozen=True)
class ListQuery:
    states: frozenset[crd.JobState]
    after: index.Order | None
    limit: int | None


def list_query(
    status: Annotated[
        str | None,
        Query(
            description="Only jobs in these states (comma-separated): "
            "PENDING, RUNNING, SUCCEEDED, FAILED, STOPPED."
        ),
    ] = None,
    limit: Annotated[
        int | None,
        Query(
            ge=1,
            le=MAX_PAGE,
            description="At most this many jobs; the X-Continue header then names the next page.",
        ),
    ] = None,
    continue_: Annotated[
        str | None, Query(alias="continue", description="The X-Continue header of the previous page.")
    ] = None,
) -> ListQuery:
    states: set[crd.JobState] = set()
    for item in (status or "").split(","):
        if not item.strip():
            continue
        try:
            states.add(crd.JobState(item.strip().upper()))
        except ValueError as e:
            allowed = ", ".join(crd.JobState)
            raise errors.InvalidRequestError(
                f"status must be one of {allowed} (comma-separated), got {item.strip()!r}"
            ) from e
    return ListQuery(
        states=frozenset(states), after=decode_continue(continue_) if continue_ else None, limit=limit
    )


def encode_continue(after: index.Order) -> str:
    return base64.urlsafe_b64encode(json.dumps(list(after)).encode()).decode().rstrip("=")


def decode_continue(token: str) -> index.Order:
    try:
        created, name = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        return index.Order(str(created), str(name))
    # RecursionError: a token that decodes to JSON nested too deeply for json.loads.
    except (binascii.Error, ValueError, TypeError, RecursionError) as e:
        raise errors.InvalidRequestError("continue must be the X-Continue header of a previous page") from e


Tenant = Annotated[str, Depends(tenant)]
PoolLabels = Annotated[tuple[str, ...], Depends(pool_labels)]
Jobs = Annotated[service.Jobs, Depends(jobs)]
Packages = Annotated[packages.Packages, Depends(package_store)]
PackageSpace = Annotated[str, Depends(package_space)]
Listing = Annotated[ListQuery, Depends(list_query)]
Authenticated = Depends(authenticated)
