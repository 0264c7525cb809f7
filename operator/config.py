"""The operator's settings: the shared job policy (`crds.policy`) and its own variables.

One typed object, read once at start from `JOBGATE_*` variables (documented in README.md
here); a bad value stops the operator with a message naming the variable.
"""

from __future__ import annotations

import pathlib
from typing import Annotated, Any, Final

import pydantic
import pydantic_settings

from jobgate.core import logs
from jobgate.crds import policy

DEFAULT_WORKERS: Final = 16
DEFAULT_RESYNC_SECONDS: Final = 60
DEFAULT_LEASE_SECONDS: Final = 15  # client-go's default leader-election lease duration
DEFAULT_ARCHIVE_WORKERS: Final = 4
DEFAULT_ARCHIVE_MAX_FOLLOWS: Final = 256
DEFAULT_ARCHIVE_SWEEP_SECONDS: Final = 600


class Config(policy.JobPolicy):
    namespaces: Annotated[tuple[str, ...], pydantic_settings.NoDecode] = ()  # watched; () = all
    # Threads calling the apiserver: bounds concurrent requests (the operator's QPS knob).
    workers: int = pydantic.Field(default=DEFAULT_WORKERS, ge=1, validation_alias="JOBGATE_OPERATOR_WORKERS")
    # An unfinished job's pod is read afresh at least this often. Watch events carry every
    # change, except those made while a watch was broken (the apiserver restarted, the
    # network failed): a pod that finished then is in no relist, since only unfinished pods
    # are watched. The resync bounds how long such a job looks unfinished.
    resync_seconds: int = pydantic.Field(
        default=DEFAULT_RESYNC_SECONDS, ge=1, validation_alias="JOBGATE_OPERATOR_RESYNC_SECONDS"
    )
    liveness_endpoint: str | None = pydantic.Field(default=None, validation_alias="JOBGATE_OPERATOR_LIVENESS")
    debug: bool = pydantic.Field(default=False, validation_alias="JOBGATE_OPERATOR_DEBUG")
    # (namespace, name) of the leader-election Lease; None: no election (deploy/README.md).
    lease: Annotated[tuple[str, str] | None, pydantic_settings.NoDecode] = pydantic.Field(
        default=None, validation_alias="JOBGATE_OPERATOR_LEASE"
    )
    # How long a leader that stopped renewing keeps the Lease; the renew period is a fraction
    # of it, so below 2 s the holder would do little else.
    lease_seconds: int = pydantic.Field(
        default=DEFAULT_LEASE_SECONDS, ge=2, validation_alias="JOBGATE_OPERATOR_LEASE_SECONDS"
    )
    metrics_host: str = pydantic.Field(default="0.0.0.0", validation_alias="JOBGATE_OPERATOR_METRICS_HOST")
    metrics_port: int | None = pydantic.Field(
        default=None, ge=1, le=65535, validation_alias="JOBGATE_OPERATOR_METRICS_PORT"
    )
    log_format: logs.FormatSetting = logs.Format.TEXT
    # The log archive (see archiver), with JOBGATE_S3_BUCKET set: threads copying logs, how
    # often the archive is swept (what is missing archived, a deleted Job's archive removed),
    # and where logs wait on local disk for the store (each at most log_archive_max_bytes).
    log_archive_workers: int = pydantic.Field(default=DEFAULT_ARCHIVE_WORKERS, ge=1)
    # Stopped pods' logs followed at once, each by a thread and an apiserver connection;
    # past it, a stopped pod's log is read as it is once a worker gets to it.
    log_archive_max_follows: int = pydantic.Field(default=DEFAULT_ARCHIVE_MAX_FOLLOWS, ge=1)
    log_archive_sweep_seconds: int = pydantic.Field(default=DEFAULT_ARCHIVE_SWEEP_SECONDS, ge=1)
    log_spool_dir: pathlib.Path | None = None  # the system's temporary directory when unset

    @pydantic.field_validator("namespaces", mode="before")
    @classmethod
    def _names(cls, value: Any) -> Any:
        return policy.items(value) if isinstance(value, str) else value

    @pydantic.field_validator("liveness_endpoint")
    @classmethod
    def _liveness(cls, value: str | None) -> str | None:
        return policy.url(value)

    @pydantic.field_validator("lease", mode="before")
    @classmethod
    def _lease(cls, value: Any) -> Any:
        """`jobgate-system/jobgate-operator` -> ("jobgate-system", "jobgate-operator")."""
        if not isinstance(value, str):
            return value
        namespace, _, name = value.partition("/")
        if not namespace.strip() or not name.strip() or "/" in name:
            raise ValueError("expected <namespace>/<name> of a Lease")
        return namespace.strip(), name.strip()
