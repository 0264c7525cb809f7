"""What this deployment lets a job ask for, and how it runs it: settings both processes read.

The operator runs jobs by this policy; the API reads the same `JOBGATE_*` variables so that
it refuses, with a 400, exactly what the operator could not run (`validation.check_spec`).
Each process's own settings extend `JobPolicy` (pydantic-settings, read once at start by
`load`); a bad value stops the process with a message naming the variable.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Final, TypeVar

import pydantic
import pydantic_settings

from jobgate.crds import fetch_working_dir, names, placement, profiles, workdir
from jobgate.crds import images as image_rules
from jobgate.crds import resources as resource_rules

DEFAULT_IMAGE: Final = "python:3.11-slim"
DEFAULT_START_TIMEOUT_SECONDS: Final = 120
DEFAULT_RETRY_BACKOFF_SECONDS: Final = 10
PREFIX: Final = "JOBGATE_"
DEFAULT_S3_PREFIX: Final = "jobgate/"
DEFAULT_JOB_USER: Final = 1000
DEFAULT_LOG_ARCHIVE_MAX_BYTES: Final = 1 << 30

S = TypeVar("S", bound=pydantic_settings.BaseSettings)


class SettingsError(ValueError):
    """A variable with a value the process cannot use; the message names the variable."""


def load(cls: type[S]) -> S:
    """The settings the environment describes (unset or empty: the default)."""
    try:
        return cls()
    except pydantic_settings.SettingsError as e:  # a structured setting that is not JSON
        named = re.search(r'field "(\w+)"', str(e))
        name = PREFIX + named.group(1).upper() if named else "a JOBGATE_ variable"
        raise SettingsError(f"{name}: expected JSON ({e.__cause__ or e})") from None
    except pydantic.ValidationError as e:
        first = e.errors()[0]
        field = str(first["loc"][0]) if first["loc"] else "?"
        name = field if field.startswith(PREFIX) else PREFIX + field.upper()
        # Inside a structured (JSON) setting: the place, as in JOBGATE_POD_PROFILES[0].volumes[0].name.
        name += "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in first["loc"][1:])
        why = first["msg"].removeprefix("Value error, ")
        given = f"={first['input']!r}" if isinstance(first["input"], str) else ""
        raise SettingsError(f"{name}{given}: {why}") from None


def items(value: str, *, separator: str = ",") -> tuple[str, ...]:
    """`a, b,` -> ("a", "b"): a setting's comma-separated (or `separator`-separated) list."""
    return tuple(item.strip() for item in value.split(separator) if item.strip())


def _pairs(value: str, *, shape: str) -> dict[str, str]:
    """`a=x, b=y` -> {"a": "x", "b": "y"}; ValueError saying the `shape` expected otherwise."""
    pairs = [item.split("=", 1) for item in value.split(",") if item.strip()]
    if any(len(pair) != 2 or not pair[0].strip() for pair in pairs):
        raise ValueError(f"expected {shape}")
    return {key.strip(): item.strip() for key, item in pairs}


class JobPolicy(pydantic_settings.BaseSettings):
    model_config = pydantic_settings.SettingsConfigDict(
        env_prefix=PREFIX, env_ignore_empty=True, frozen=True, populate_by_name=True, extra="ignore"
    )

    image: str = DEFAULT_IMAGE  # the job's image unless runtime_env.image_uri names one
    # Tenant namespaces are <prefix><tenant> (`names.tenant_namespace`): the API makes them,
    # the operator checks a Job's spec.tenant against its namespace. It leaves room for a
    # tenant: a namespace's name is at most 63 characters.
    namespace_prefix: str = pydantic.Field(
        default=names.DEFAULT_NAMESPACE_PREFIX,
        pattern=r"^[a-z0-9][-a-z0-9]{0,31}$",
        validation_alias="JOBGATE_TENANT_NAMESPACE_PREFIX",
    )
    fetch_image_override: str | None = pydantic.Field(
        default=None, validation_alias="JOBGATE_FETCH_IMAGE"
    )  # the working_dir init container's (needs python3); the job image when unset
    custom_resources: Annotated[dict[str, str], pydantic_settings.NoDecode] = pydantic.Field(
        default_factory=lambda: dict(resource_rules.DEFAULT_CUSTOM_RESOURCES)
    )
    gpu_resource: str = resource_rules.DEFAULT_GPU_RESOURCE
    default_cpus: float = resource_rules.DEFAULT_CPUS
    default_memory: int = resource_rules.DEFAULT_MEMORY
    package_base_url: str | None = None  # the API's base URL as pods reach it: enables gcs://
    pip_index_url: str | None = (
        None  # the index runtime_env.pip installs from (a mirror); pip's own when unset
    )
    file_uri_root: str | None = None  # enables file:// working dirs under this node directory
    # `tenant=/dir,...`: a tenant's own root for file:// working dirs, in place of file_uri_root.
    file_uri_roots: Annotated[dict[str, str], pydantic_settings.NoDecode] = pydantic.Field(
        default_factory=dict
    )
    # How long a bound pod may fail to start (an image it cannot pull, a volume it cannot
    # mount, a container it cannot create) before its job FAILS; errors that cannot heal
    # (an invalid image name) fail it at once.
    start_timeout_seconds: int = pydantic.Field(default=DEFAULT_START_TIMEOUT_SECONDS, ge=1)
    # The wait before an attempt that follows a counted failure: doubled per failure, at most
    # 6 min (the Job controller's back-off); 0: at once.
    retry_backoff_seconds: float = pydantic.Field(default=DEFAULT_RETRY_BACKOFF_SECONDS, ge=0)
    # Prefixes of full image references a job may name in runtime_env.image_uri (`*`: any);
    # unset: the registry of `image` only (see `images`).
    allowed_images: Annotated[tuple[str, ...], pydantic_settings.NoDecode] = ()
    # Label keys a job may name as pools (see `placement`): all tenants', and per tenant.
    allowed_pool_labels: Annotated[tuple[str, ...], pydantic_settings.NoDecode] = ()
    tenant_pool_labels: Annotated[dict[str, tuple[str, ...]], pydantic_settings.NoDecode] = pydantic.Field(
        default_factory=dict
    )
    # What the pods of jobs in a pool, or asking for a resource, get (see `profiles`): JSON.
    pod_profiles: tuple[profiles.PodProfile, ...] = ()
    # The uid and gid every container of a job runs as (never root), unless a pod profile
    # lets its jobs run as their image's user (`runAsImageUser`).
    job_user: int = pydantic.Field(default=DEFAULT_JOB_USER, ge=1, le=2**31 - 1)
    max_unpacked_bytes: int = pydantic.Field(default=fetch_working_dir.DEFAULT_MAX_BYTES, ge=1)
    max_unpacked_entries: int = pydantic.Field(default=fetch_working_dir.DEFAULT_MAX_ENTRIES, ge=1)
    # The object store (`core.objectstore`: any S3-compatible service) where the operator
    # archives each ended pod's log and the API reads it once the pod is gone. Both
    # processes need it; without a bucket there is none, and a log lives as long as its pod.
    # Credentials are not settings: boto3's own chain finds them (AWS_ACCESS_KEY_ID and
    # AWS_SECRET_ACCESS_KEY from a Secret, or the pod's web identity).
    s3_bucket: str | None = pydantic.Field(default=None, pattern=r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
    s3_endpoint: str | None = None  # e.g. http://seaweedfs.storage:8333; AWS's own when unset
    s3_region: str | None = None  # boto3's (AWS_REGION, else us-east-1) when unset
    s3_prefix: str = pydantic.Field(default=DEFAULT_S3_PREFIX, pattern=r"^([^/].*/)?$")  # of every key
    # An archived log is cut after this many bytes (the cut is marked in it).
    log_archive_max_bytes: int = pydantic.Field(default=DEFAULT_LOG_ARCHIVE_MAX_BYTES, ge=1024)

    _resources: resource_rules.ResourcePolicy = pydantic.PrivateAttr()
    _working_dir: workdir.WorkingDirPolicy = pydantic.PrivateAttr()
    _images: image_rules.ImagePolicy = pydantic.PrivateAttr()
    _placement: placement.PlacementPolicy = pydantic.PrivateAttr()

    @pydantic.field_validator("custom_resources", mode="before")
    @classmethod
    def _custom(cls, value: Any) -> Any:
        """`NPU=huawei.com/Ascend910,TPU=google.com/tpu` -> {"NPU": ..., "TPU": ...}."""
        if not isinstance(value, str):
            return value
        pairs = _pairs(value, shape="NAME=vendor.com/resource[,NAME=...]")
        return {name: resource_rules.extended_resource(resource) for name, resource in pairs.items()}

    @pydantic.field_validator("allowed_images", "allowed_pool_labels", mode="before")
    @classmethod
    def _items(cls, value: Any) -> Any:
        return items(value) if isinstance(value, str) else value

    @pydantic.field_validator("tenant_pool_labels", mode="before")
    @classmethod
    def _tenant_pools(cls, value: Any) -> Any:
        """`acme=pool-gpu|pool-cpu,beta=pool-cpu` -> {"acme": ("pool-gpu", "pool-cpu"), ...}."""
        if not isinstance(value, str):
            return value
        pairs = _pairs(value, shape="TENANT=label-key|label-key[,TENANT=...]")
        return {tenant: items(keys, separator="|") for tenant, keys in pairs.items()}

    @pydantic.field_validator("gpu_resource")
    @classmethod
    def _gpu(cls, value: str) -> str:
        return resource_rules.extended_resource(value)

    @pydantic.field_validator("default_cpus")
    @classmethod
    def _cpus(cls, value: float) -> float:
        return resource_rules.cpus(value)

    @pydantic.field_validator("default_memory")
    @classmethod
    def _memory(cls, value: int) -> int:
        return resource_rules.memory(value)

    @pydantic.field_validator("package_base_url", "pip_index_url", "s3_endpoint")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        return url(value)

    @pydantic.field_validator("file_uri_root")
    @classmethod
    def _root(cls, value: str | None) -> str | None:
        return None if value is None else workdir.check_root(value)

    @pydantic.field_validator("file_uri_roots", mode="before")
    @classmethod
    def _roots(cls, value: Any) -> Any:
        """`acme=/srv/acme,beta=/srv/beta` -> {"acme": "/srv/acme", "beta": "/srv/beta"}."""
        if not isinstance(value, str):
            return value
        pairs = _pairs(value, shape="TENANT=/node/dir[,TENANT=...]")
        return {tenant: workdir.check_root(root) for tenant, root in pairs.items()}

    def model_post_init(self, context: Any, /) -> None:
        self._resources = resource_rules.ResourcePolicy(
            custom=self.custom_resources,
            gpu=self.gpu_resource,
            default_cpus=self.default_cpus,
            default_memory=self.default_memory,
        )
        self._images = image_rules.ImagePolicy.for_images(self.allowed_images, job_image=self.image)
        self._placement = placement.PlacementPolicy(
            allowed=self.allowed_pool_labels, per_tenant=self.tenant_pool_labels
        )
        self._working_dir = workdir.WorkingDirPolicy(
            package_base_url=self.package_base_url,
            file_root=self.file_uri_root,
            file_roots=self.file_uri_roots,
            unpack_limits=fetch_working_dir.Limits(
                max_bytes=self.max_unpacked_bytes, max_entries=self.max_unpacked_entries
            ),
        )

    @property
    def images(self) -> image_rules.ImagePolicy:
        return self._images

    @property
    def placement(self) -> placement.PlacementPolicy:
        return self._placement

    @property
    def fetch_image(self) -> str:
        return self.fetch_image_override or self.image

    @property
    def resources(self) -> resource_rules.ResourcePolicy:
        return self._resources

    @property
    def working_dir(self) -> workdir.WorkingDirPolicy:
        return self._working_dir

    def log_ref(self, namespace: str, job: str, uid: str) -> str | None:
        """Where that Job's logs are archived (`status.logRef`): an s3:// URL of its folder."""
        if self.s3_bucket is None:
            return None
        return f"s3://{self.s3_bucket}/{self.s3_prefix}{names.log_folder(namespace, job, uid)}"


def url(value: str | None) -> str | None:
    """An http(s) URL (None stays None)."""
    if value is not None and not value.startswith(("http://", "https://")):
        raise ValueError("expected an http:// or https:// URL")
    return value
