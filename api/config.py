"""The API's settings: the shared job policy (`crds.policy`) and the API's own variables.

One typed object, read once at start from `JOBGATE_*` environment variables (every one is
listed in README.md here); a bad value stops the API with a message naming the variable.
The policy's variables are the operator's too, so that the API refuses with a 400 exactly
what the operator could not run.
"""

from __future__ import annotations

import enum
import hashlib
import ipaddress
import os
import urllib.parse
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Final

import pydantic
import pydantic_settings

from jobgate.api import pools, tenancy
from jobgate.core import logs
from jobgate.crds import models, policy

DEFAULT_HOST: Final = "127.0.0.1"
DEFAULT_PORT: Final = 8265  # Ray's dashboard port: where Ray's clients look by default
DEFAULT_TENANT: Final = "default"
DEFAULT_SUBMIT_GRACE_MS: Final = 10_000
DEFAULT_MAX_BODY_BYTES: Final = 1 << 20  # 1 MiB: a job request is a few hundred bytes
DEFAULT_MAX_PACKAGE_BYTES: Final = 100 << 20  # 100 MiB of zipped working_dir
DEFAULT_PACKAGE_TTL_SECONDS: Final = 7 * 24 * 3600
DEFAULT_LOG_LIMIT_BYTES: Final = 10 << 20
# Connections (and requests under way) one API process serves at once; more are answered 503.
DEFAULT_MAX_CONNECTIONS: Final = 1000
DEFAULT_MAX_LOG_TAILS: Final = 200
DEFAULT_MAX_LOG_TAILS_PER_TENANT: Final = 20


class PodSecurityLevel(enum.StrEnum):
    """The Pod Security Standard enforced in the tenant namespaces the API creates. Job pods
    meet `restricted` (an ordinary user, no privilege to gain, no capability, the runtime's
    seccomp filter), or `baseline` where a pod profile lets them run as their image's user."""

    RESTRICTED = "restricted"
    BASELINE = "baseline"
    PRIVILEGED = "privileged"


class SubmitWait(enum.StrEnum):
    """When `POST /api/jobs` answers."""

    SCHEDULED = "scheduled"  # once the job's pod is bound to a node (or the job ended): the seed's way
    STORED = "stored"  # as soon as the Job object is stored


def _data_home() -> Path:
    return Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")


class Settings(policy.JobPolicy):
    host: str = pydantic.Field(default=DEFAULT_HOST, validation_alias="JOBGATE_API_HOST")
    port: int = pydantic.Field(default=DEFAULT_PORT, ge=1, le=65535, validation_alias="JOBGATE_API_PORT")
    default_tenant: str = DEFAULT_TENANT  # the tenant of a request without X-Tenant-Id
    # The only tenants there are, when set: any other is refused (403) before its namespace
    # is made, so that made-up X-Tenant-Ids cannot fill the cluster with namespaces.
    tenants: Annotated[frozenset[str], pydantic_settings.NoDecode] = frozenset()
    # X-Pool-Label of a request without one; () = any node.
    default_pool_labels: Annotated[tuple[str, ...], pydantic_settings.NoDecode] = ()
    # sha256(token) -> the tenant the token is pinned to, or None (the request's X-Tenant-Id
    # then). Empty: no authentication. Hashes, so a token never sits in memory dumps or logs.
    tokens: Annotated[dict[str, str | None], pydantic_settings.NoDecode] = pydantic.Field(
        default_factory=dict, validation_alias="JOBGATE_API_TOKENS_FILE"
    )
    submit_wait: SubmitWait = SubmitWait.SCHEDULED
    pod_security_level: PodSecurityLevel = PodSecurityLevel.RESTRICTED
    # Each Job's spec.schedulingTimeoutMs.
    scheduling_timeout_ms: int = pydantic.Field(default=models.DEFAULT_SCHEDULING_TIMEOUT_MS, ge=0)
    # How long past the scheduling timeout a waiting submit gives the operator to report its
    # verdict (the operator's own timer, the watch's delay) before it answers without one.
    submit_grace_ms: int = pydantic.Field(default=DEFAULT_SUBMIT_GRACE_MS, ge=0)
    job_ttl_seconds: int | None = pydantic.Field(default=None, ge=0)  # each Job's TTL; None = kept
    max_body_bytes: int = pydantic.Field(default=DEFAULT_MAX_BODY_BYTES, ge=1)
    # Where uploaded packages are kept; with an object store (JOBGATE_S3_BUCKET) they are kept
    # there, and this directory only holds an upload while it is checked.
    package_dir: Path = pydantic.Field(default_factory=lambda: _data_home() / "jobgate" / "packages")
    max_package_bytes: int = pydantic.Field(default=DEFAULT_MAX_PACKAGE_BYTES, ge=1)
    # A package no unfinished Job uses goes once nobody wanted it for this long (packages).
    package_ttl_seconds: int = pydantic.Field(default=DEFAULT_PACKAGE_TTL_SECONDS, ge=1)
    log_limit_bytes: int = pydantic.Field(default=DEFAULT_LOG_LIMIT_BYTES, ge=1)
    max_connections: int = pydantic.Field(default=DEFAULT_MAX_CONNECTIONS, ge=1)
    # Log tails (websockets) one API process follows at once, in all and per tenant (429).
    max_log_tails: int = pydantic.Field(default=DEFAULT_MAX_LOG_TAILS, ge=1)
    max_log_tails_per_tenant: int = pydantic.Field(default=DEFAULT_MAX_LOG_TAILS_PER_TENANT, ge=1)
    # Origins (scheme://host[:port]) whose pages may change things here besides the API's own
    # (a dashboard served elsewhere, say): every other cross-site request is refused.
    allowed_origins: Annotated[tuple[str, ...], pydantic_settings.NoDecode] = ()
    # Serve without tokens on an address other than loopback: deliberately, anyone who
    # reaches the API may act as any tenant (see `unauthenticated_exposure`).
    allow_unauthenticated: bool = pydantic.Field(
        default=False, validation_alias="JOBGATE_API_ALLOW_UNAUTHENTICATED"
    )
    log_format: logs.FormatSetting = logs.Format.TEXT

    @pydantic.field_validator("default_tenant")
    @classmethod
    def _tenant(cls, value: str) -> str:
        return tenancy.check_tenant(value)

    @pydantic.field_validator("tenants", mode="before")
    @classmethod
    def _tenants(cls, value: Any) -> Any:
        return frozenset(map(tenancy.check_tenant, policy.items(value))) if isinstance(value, str) else value

    @pydantic.field_validator("default_pool_labels", mode="before")
    @classmethod
    def _pools(cls, value: Any) -> Any:
        return pools.parse(value) if isinstance(value, str) else value

    @pydantic.field_validator("allowed_origins", mode="before")
    @classmethod
    def _origins(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        origins = tuple(item.rstrip("/") for item in policy.items(value))
        for origin in origins:
            parts = urllib.parse.urlsplit(origin)
            if parts.scheme not in ("http", "https") or not parts.netloc or parts.path:
                raise ValueError(f"expected scheme://host[:port] origins, got {origin!r}")
        return origins

    @pydantic.field_validator("tokens", mode="before")
    @classmethod
    def _tokens(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        try:
            return read_tokens(Path(value))
        except OSError as e:
            raise ValueError(str(e)) from e


def pod_security_for(settings: Settings, tenant: str) -> PodSecurityLevel:
    """The level of the tenant's namespace: a tenant that may use file:// working dirs gets
    `privileged`, since those mount a node directory (hostPath), which `baseline` forbids;
    with a pod profile letting jobs run as their image's user (root, maybe), at most
    `baseline`, which allows that where `restricted` does not."""
    if settings.working_dir.root_for(tenant) is not None:
        return PodSecurityLevel.PRIVILEGED
    as_image_user = any(profile.run_as_image_user for profile in settings.pod_profiles)
    if as_image_user and settings.pod_security_level is PodSecurityLevel.RESTRICTED:
        return PodSecurityLevel.BASELINE
    return settings.pod_security_level


def unauthenticated_exposure(settings: Settings) -> str | None:
    """Why the API must not start as set, if it must not: without tokens, X-Tenant-Id alone
    says who a client is, which is the reference API's contract and fine on loopback (`make
    dev`), but on any other address hands every tenant to whoever reaches it."""
    if settings.tokens or settings.allow_unauthenticated or _loopback(settings.host):
        return None
    return (
        f"no JOBGATE_API_TOKENS_FILE, and listening on {settings.host}: anyone who reaches it could "
        "act as any tenant. Give it tokens, listen on 127.0.0.1 only, or set "
        "JOBGATE_API_ALLOW_UNAUTHENTICATED=true to serve it open deliberately"
    )


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a name: it may resolve to anything


def token_key(token: str) -> str:
    """How a bearer token is looked up in `Settings.tokens`."""
    return hashlib.sha256(token.encode()).hexdigest()


MIN_TOKEN_LENGTH: Final = 32  # characters: a token must not be guessable


def read_tokens(path: Path) -> Mapping[str, str | None]:
    """A tokens file: one `<token> [<tenant>]` per line; a line starting with `#` is a comment.

    A token with a tenant is pinned to it (the request's X-Tenant-Id is ignored); a token
    without one may act for any tenant (an admin's or a trusted gateway's). A `#` inside a
    line is no comment: `ab#cd acme` would otherwise be the unpinned token `ab`. Any line
    that is not exactly that is an error naming it, so that the API does not start with a
    token it was not meant to have.
    """
    tokens: dict[str, str | None] = {}
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        fields = line.split()
        if not fields or fields[0].startswith("#"):
            continue
        if len(fields) > 2:
            raise ValueError(f"line {number}: expected `<token> [<tenant>]`, a comment only at its start")
        if len(fields[0]) < MIN_TOKEN_LENGTH:
            raise ValueError(f"line {number}: a token has at least {MIN_TOKEN_LENGTH} characters")
        tenant = fields[1] if len(fields) == 2 else None
        try:
            tokens[token_key(fields[0])] = None if tenant is None else tenancy.check_tenant(tenant)
        except ValueError as e:
            raise ValueError(f"line {number}: {e}") from e
    if not tokens:
        raise ValueError("no tokens in the file")
    return tokens
