"""The API's settings: one typed object, read once from `JOBGATE_*` environment variables.

The operator's own variables (`JOBGATE_CUSTOM_RESOURCES`, `JOBGATE_DEFAULT_CPUS`,
`JOBGATE_PACKAGE_BASE_URL`, ...) are read too, through the operator's `Config.from_env`, so
that the API refuses with a 400 exactly what the operator could not run. Every variable is
listed in README.md here.
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import os
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Final

from jobgate.api import pools, tenancy
from jobgate.crds import models
from jobgate.operator import config as operator_config

DEFAULT_HOST: Final = "127.0.0.1"
DEFAULT_PORT: Final = 8265  # Ray's dashboard port: where Ray's clients look by default
DEFAULT_TENANT: Final = "default"
DEFAULT_NAMESPACE_PREFIX: Final = "jobgate-t-"
DEFAULT_SUBMIT_GRACE_MS: Final = 10_000
DEFAULT_MAX_BODY_BYTES: Final = 1 << 20  # 1 MiB: a job request is a few hundred bytes
DEFAULT_MAX_PACKAGE_BYTES: Final = 100 << 20  # 100 MiB of zipped working_dir
DEFAULT_LOG_LIMIT_BYTES: Final = 10 << 20
# A namespace prefix must leave room for a tenant: a DNS label is at most 63 characters.
_PREFIX = re.compile(r"[a-z0-9][-a-z0-9]{0,31}")


class ConfigError(ValueError):
    """A variable with a value the API cannot use; the message names the variable."""


class SubmitWait(enum.StrEnum):
    """When `POST /api/jobs` answers."""

    SCHEDULED = "scheduled"  # once the job's pod is bound to a node (or the job ended): the seed's way
    STORED = "stored"  # as soon as the Job object is stored


@dataclasses.dataclass(frozen=True, kw_only=True)
class Settings:
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    default_tenant: str = DEFAULT_TENANT  # the tenant of a request without X-Tenant-Id
    namespace_prefix: str = DEFAULT_NAMESPACE_PREFIX  # tenant namespaces are <prefix><tenant>
    default_pool_labels: tuple[str, ...] = ()  # X-Pool-Label of a request without one; () = any node
    # sha256(token) -> the tenant the token is pinned to, or None (the request's X-Tenant-Id
    # then). Empty: no authentication. Hashes, so a token never sits in memory dumps or logs.
    tokens: Mapping[str, str | None] = dataclasses.field(default_factory=dict)
    submit_wait: SubmitWait = SubmitWait.SCHEDULED
    scheduling_timeout_ms: int = models.DEFAULT_SCHEDULING_TIMEOUT_MS  # each Job's spec.schedulingTimeoutMs
    # How long past the scheduling timeout a waiting submit gives the operator to report its
    # verdict (the operator's own timer, the watch's delay) before it answers without one.
    submit_grace_ms: int = DEFAULT_SUBMIT_GRACE_MS
    job_ttl_seconds: int | None = None  # each Job's spec.ttlSecondsAfterFinished; None = kept
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    package_dir: Path = dataclasses.field(default_factory=lambda: _data_home() / "jobgate" / "packages")
    max_package_bytes: int = DEFAULT_MAX_PACKAGE_BYTES
    log_limit_bytes: int = DEFAULT_LOG_LIMIT_BYTES
    operator: operator_config.Config = dataclasses.field(default_factory=operator_config.Config)

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Settings:
        """The settings the variables describe (unset or empty: the default); `ConfigError`
        names a bad one."""
        try:
            values: dict[str, Any] = {"operator": operator_config.Config.from_env(environ)}
        except operator_config.ConfigError as e:
            raise ConfigError(str(e)) from e
        for field, (name, parse) in VARIABLES.items():
            text = environ.get(name, "").strip()
            if not text:
                continue
            try:
                values[field] = parse(text)
            except (ValueError, OSError) as e:
                raise ConfigError(f"{name}={text!r}: {e}") from e
        return cls(**values)


def token_key(token: str) -> str:
    """How a bearer token is looked up in `Settings.tokens`."""
    return hashlib.sha256(token.encode()).hexdigest()


def read_tokens(path: Path) -> dict[str, str | None]:
    """A tokens file: one `<token> [<tenant>]` per line; `#` starts a comment.

    A token with a tenant is pinned to it (the request's X-Tenant-Id is ignored); a token
    without one may act for any tenant (an admin's or a trusted gateway's).
    """
    tokens: dict[str, str | None] = {}
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        fields = line.split("#", 1)[0].split()
        if not fields:
            continue
        if len(fields) > 2:
            raise ValueError(f"line {number}: expected `<token> [<tenant>]`")
        tokens[token_key(fields[0])] = tenancy.check_tenant(fields[1]) if len(fields) == 2 else None
    if not tokens:
        raise ValueError("no tokens in the file")
    return tokens


def _data_home() -> Path:
    return Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")


def _integer(low: int, high: int | None = None) -> Callable[[str], int]:
    def parse(text: str) -> int:
        value = int(text)
        if value < low or (high is not None and value > high):
            raise ValueError(f"expected an integer in [{low}, {high if high is not None else 'inf'}]")
        return value

    return parse


def _prefix(text: str) -> str:
    if not _PREFIX.fullmatch(text):
        raise ValueError("expected 1 to 32 characters of [a-z0-9-], starting with a letter or digit")
    return text


# Settings field -> (variable, parser of its text).
VARIABLES: Final[Mapping[str, tuple[str, Callable[[str], Any]]]] = {
    "host": ("JOBGATE_API_HOST", str),
    "port": ("JOBGATE_API_PORT", _integer(1, 65535)),
    "default_tenant": ("JOBGATE_DEFAULT_TENANT", tenancy.check_tenant),
    "namespace_prefix": ("JOBGATE_TENANT_NAMESPACE_PREFIX", _prefix),
    "default_pool_labels": ("JOBGATE_DEFAULT_POOL_LABELS", pools.parse),
    "tokens": ("JOBGATE_API_TOKENS_FILE", lambda path: read_tokens(Path(path))),
    "submit_wait": ("JOBGATE_SUBMIT_WAIT", SubmitWait),
    "scheduling_timeout_ms": ("JOBGATE_SCHEDULING_TIMEOUT_MS", _integer(0)),
    "submit_grace_ms": ("JOBGATE_SUBMIT_GRACE_MS", _integer(0)),
    "job_ttl_seconds": ("JOBGATE_JOB_TTL_SECONDS", _integer(0)),
    "max_body_bytes": ("JOBGATE_MAX_BODY_BYTES", _integer(1)),
    "package_dir": ("JOBGATE_PACKAGE_DIR", Path),
    "max_package_bytes": ("JOBGATE_MAX_PACKAGE_BYTES", _integer(1)),
    "log_limit_bytes": ("JOBGATE_LOG_LIMIT_BYTES", _integer(1)),
}
