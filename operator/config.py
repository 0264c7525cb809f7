"""The operator's configuration, from environment variables (documented in README.md here).

The API reads the same variables through `Config.from_env` so that it refuses, with a 400,
exactly the jobs the operator could not run (see `validation.check_spec`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Final, TypeVar

from jobgate.operator import fetch_working_dir, resources, workdir

DEFAULT_IMAGE: Final = "python:3.11-slim"
DEFAULT_WORKERS: Final = 16
DEFAULT_RESYNC_SECONDS: Final = 60
DEFAULT_LEASE_SECONDS: Final = 15  # client-go's default leader-election lease duration
DEFAULT_METRICS_HOST: Final = "0.0.0.0"

T = TypeVar("T")


class ConfigError(ValueError):
    """An environment variable with a value the operator cannot use; names the variable."""


@dataclasses.dataclass(frozen=True, kw_only=True)
class Config:
    image: str = DEFAULT_IMAGE  # the job's image unless runtime_env.image_uri names one
    fetch_image: str = DEFAULT_IMAGE  # the working_dir init container's image (needs python3)
    resources: resources.ResourcePolicy = dataclasses.field(default_factory=resources.ResourcePolicy)
    working_dir: workdir.WorkingDirPolicy = dataclasses.field(default_factory=workdir.WorkingDirPolicy)
    namespaces: tuple[str, ...] = ()  # watched namespaces (names); empty = the whole cluster
    workers: int = DEFAULT_WORKERS  # threads calling the apiserver: bounds concurrent requests
    # An unfinished job's pod is read afresh at least this often. Watch events carry every
    # change, except those made while a watch was broken (the apiserver restarted, the
    # network failed): a pod that finished then is in no relist, since only unfinished pods
    # are watched. The resync bounds how long such a job looks unfinished.
    resync_seconds: int = DEFAULT_RESYNC_SECONDS
    liveness_endpoint: str | None = None  # e.g. http://0.0.0.0:8080/healthz
    # Running several replicas, and being watched (deploy/README.md). Only the process reads
    # these; the API, which reads this Config too, ignores them.
    lease: tuple[str, str] | None = None  # (namespace, name) of the leader-election Lease; None: no election
    lease_seconds: int = DEFAULT_LEASE_SECONDS  # how long a leader that stopped renewing keeps the Lease
    metrics_host: str = DEFAULT_METRICS_HOST
    metrics_port: int | None = None  # Prometheus metrics; None: not served

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Config:
        """The configuration the variables describe; `ConfigError` names a bad one."""

        def get(name: str, parse: Callable[[str], T], default: T) -> T:
            text = environ.get(name, "").strip()
            if not text:
                return default
            try:
                return parse(text)
            except ValueError as e:
                raise ConfigError(f"{name}={text!r}: {e}") from e

        image = get("JOBGATE_IMAGE", str, DEFAULT_IMAGE)
        return cls(
            image=image,
            fetch_image=get("JOBGATE_FETCH_IMAGE", str, image),
            resources=resources.ResourcePolicy(
                custom=get("JOBGATE_CUSTOM_RESOURCES", _mapping, resources.DEFAULT_CUSTOM_RESOURCES),
                gpu=get("JOBGATE_GPU_RESOURCE", resources.extended_resource, resources.DEFAULT_GPU_RESOURCE),
                default_cpus=get(
                    "JOBGATE_DEFAULT_CPUS", lambda text: resources.cpus(float(text)), resources.DEFAULT_CPUS
                ),
                default_memory=get(
                    "JOBGATE_DEFAULT_MEMORY",
                    lambda text: resources.memory(int(text)),
                    resources.DEFAULT_MEMORY,
                ),
            ),
            working_dir=workdir.WorkingDirPolicy(
                package_base_url=get("JOBGATE_PACKAGE_BASE_URL", _url, None),
                file_root=get("JOBGATE_FILE_URI_ROOT", _absolute_path, None),
                unpack_limits=fetch_working_dir.Limits(
                    max_bytes=get(
                        "JOBGATE_MAX_UNPACKED_BYTES", _positive, fetch_working_dir.DEFAULT_MAX_BYTES
                    ),
                    max_entries=get(
                        "JOBGATE_MAX_UNPACKED_ENTRIES", _positive, fetch_working_dir.DEFAULT_MAX_ENTRIES
                    ),
                ),
            ),
            namespaces=get("JOBGATE_NAMESPACES", _names, ()),
            workers=get("JOBGATE_OPERATOR_WORKERS", _positive, DEFAULT_WORKERS),
            resync_seconds=get("JOBGATE_OPERATOR_RESYNC_SECONDS", _positive, DEFAULT_RESYNC_SECONDS),
            liveness_endpoint=get("JOBGATE_OPERATOR_LIVENESS", _url, None),
            lease=get("JOBGATE_OPERATOR_LEASE", _lease, None),
            lease_seconds=get("JOBGATE_OPERATOR_LEASE_SECONDS", _lease_seconds, DEFAULT_LEASE_SECONDS),
            metrics_host=get("JOBGATE_OPERATOR_METRICS_HOST", str, DEFAULT_METRICS_HOST),
            metrics_port=get("JOBGATE_OPERATOR_METRICS_PORT", _port, None),
        )


def _mapping(text: str) -> dict[str, str]:
    """`NPU=huawei.com/Ascend910,TPU=google.com/tpu` -> {"NPU": ..., "TPU": ...}."""
    pairs = [item.split("=", 1) for item in text.split(",") if item.strip()]
    if any(len(pair) != 2 or not pair[0].strip() for pair in pairs):
        raise ValueError("expected NAME=vendor.com/resource[,NAME=...]")
    return {name.strip(): resources.extended_resource(resource.strip()) for name, resource in pairs}


def _names(text: str) -> tuple[str, ...]:
    return tuple(name.strip() for name in text.split(",") if name.strip())


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise ValueError("must be at least 1")
    return value


def _url(text: str) -> str:
    if not text.startswith(("http://", "https://")):
        raise ValueError("expected an http:// or https:// URL")
    return text


def _absolute_path(text: str) -> str:
    if not text.startswith("/"):
        raise ValueError("expected an absolute path")
    return text


def _lease(text: str) -> tuple[str, str]:
    """`jobgate-system/jobgate-operator` -> ("jobgate-system", "jobgate-operator")."""
    namespace, _, name = text.partition("/")
    if not namespace.strip() or not name.strip() or "/" in name:
        raise ValueError("expected <namespace>/<name> of a Lease")
    return namespace.strip(), name.strip()


def _lease_seconds(text: str) -> int:
    value = int(text)
    if value < 2:  # the renew period is a fraction of it; below this the holder does little else
        raise ValueError("must be at least 2")
    return value


def _port(text: str) -> int:
    value = int(text)
    if not 1 <= value <= 65535:
        raise ValueError("must be a port number, 1 to 65535")
    return value
