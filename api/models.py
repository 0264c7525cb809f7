"""Request and response shapes of both dialects (the Job resource itself is crds/models.py).

Requests are parsed strictly: a number is a JSON number (not "3", not true), an integer is a
JSON integer, NaN and Infinity are refused, and unknown top-level fields are an error (a
misspelt `entrypoint_num_cpu` must not silently run a job with the default). Each bound
fails with a message that names the field and the range (`errors.describe` adds the field
and the value: `entrypoint_num_cpus must be in [0.3, 16], got 0.29`).
"""

from __future__ import annotations

import enum
from typing import Annotated, Any, Final, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, field_serializer
from pydantic_core import PydanticCustomError

from jobgate.crds import models

# What `GET /ray/api/version` reports: Ray's Jobs REST API version 4 (with DELETE), as
# served by the Ray release whose client jobgate is tested with.
RAY_API_VERSION: Final = "4"
RAY_VERSION: Final = "2.60.0"


class Dialect(enum.Enum):
    """Which of the two APIs a request speaks: the seed's (at /) or Ray's (at /ray)."""

    SEED = "seed"
    RAY = "ray"


RAY_PREFIX: Final = "/ray"


def number_text(value: float) -> str:
    """A bound as people write it: 16, not 16.0; 0.3, not 0.30000000000000004."""
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _within(low: float, high: float) -> AfterValidator:
    def check(value: float) -> float:
        if not low <= value <= high:
            raise PydanticCustomError(
                "out_of_range",
                "must be in [{low}, {high}]",
                {"low": number_text(low), "high": number_text(high)},
            )
        return value

    return AfterValidator(check)


def _at_least_zero(value: float) -> float:
    if value < 0:
        raise PydanticCustomError("out_of_range", "must be >= 0")
    return value


def _pip_packages(value: Any) -> Any:
    """Ray's client sends pip as {"packages": [...], "pip_check": false}: keep the list."""
    if isinstance(value, dict) and "packages" in value:
        return value["packages"]
    return value


def _zero_is_unset(value: Any) -> Any:
    """Ray's 0 cpus/memory means "reserve nothing": here, the deployment's default."""
    return None if value == 0 and not isinstance(value, bool) else value


NonEmpty = Annotated[str, Field(min_length=1)]
Cpus = Annotated[
    float,
    _within(models.MIN_CPUS, models.MAX_CPUS),
    Field(json_schema_extra={"minimum": models.MIN_CPUS, "maximum": models.MAX_CPUS}),
]
Memory = Annotated[
    int,
    _within(models.MIN_MEMORY_BYTES, models.MAX_MEMORY_BYTES),
    Field(json_schema_extra={"minimum": models.MIN_MEMORY_BYTES, "maximum": models.MAX_MEMORY_BYTES}),
]
Amount = Annotated[float, AfterValidator(_at_least_zero), Field(json_schema_extra={"minimum": 0})]
_STRICT = ConfigDict(strict=True, allow_inf_nan=False)


class RuntimeEnv(BaseModel):
    """Ray's runtime_env: the keys jobgate runs are checked, any other key is kept as it is."""

    model_config = ConfigDict(**_STRICT, extra="allow")

    working_dir: NonEmpty | None = Field(
        default=None,
        description="URI of a zip or directory: http(s)://, file:// (if the deployment allows it), "
        "or gcs://<package> uploaded through the Ray dialect.",
    )
    py_modules: list[NonEmpty] | None = Field(
        default=None,
        description="URIs of modules for the job's PYTHONPATH (as working_dir's), or of wheels (.whl); "
        "Ray's client uploads local directories and wheels as gcs:// packages.",
    )
    env_vars: dict[str, str] | None = None
    pip: Annotated[list[str] | None, BeforeValidator(_pip_packages)] = Field(
        default=None, description="pip requirements; Ray's {packages: [...]} form is accepted too."
    )
    image_uri: NonEmpty | None = Field(default=None, description="The job's container image.")


class SeedRuntimeEnv(RuntimeEnv):
    working_dir: NonEmpty = Field(description="URI of a zip or directory (required by the seed dialect).")


class _SubmitFields(BaseModel):
    """The fields both dialects share."""

    model_config = ConfigDict(**_STRICT, extra="forbid")

    entrypoint: NonEmpty = Field(description="Shell command that runs the job.")
    submission_id: str | None = Field(default=None, description="The job's id; generated when absent.")
    metadata: dict[str, str] | None = Field(default=None, description="Stored and echoed back.")
    entrypoint_num_cpus: Cpus | None = Field(
        default=None, description="CPU cores, [0.3, 16]; the deployment's default when absent."
    )
    entrypoint_memory: Memory | None = Field(
        default=None,
        description="Bytes, [134217728, 1125899906842624]; the deployment's default when absent.",
    )
    entrypoint_num_gpus: Amount | None = Field(default=None, description="GPUs, whole units.")
    entrypoint_resources: dict[str, Amount] | None = Field(
        default=None, description="Custom resources by name (e.g. NPU), whole units; 0 = not needed."
    )


class SubmitRequest(_SubmitFields):
    """`POST /api/jobs`: the seed's body."""

    runtime_env: SeedRuntimeEnv


class RaySubmitRequest(_SubmitFields):
    """`POST /ray/api/jobs/`: Ray's JobSubmitRequest."""

    runtime_env: RuntimeEnv | None = None
    job_id: str | None = Field(default=None, description="Ray's deprecated name of submission_id.")
    entrypoint_num_cpus: Annotated[Cpus | None, BeforeValidator(_zero_is_unset)] = Field(
        default=None, description="CPU cores, [0.3, 16]; 0 or absent: the deployment's default."
    )
    entrypoint_memory: Annotated[Memory | None, BeforeValidator(_zero_is_unset)] = Field(
        default=None, description="Bytes, [134217728, 1125899906842624]; 0 or absent: the default."
    )
    entrypoint_label_selector: dict[str, str] | None = Field(
        default=None, description="Not supported (use the X-Pool-Label header); must be empty."
    )


class SubmitResponse(BaseModel):
    submission_id: str


class RaySubmitResponse(BaseModel):
    job_id: str = Field(description="The submission id (Ray's deprecated field).")
    submission_id: str


class DriverInfo(BaseModel):
    id: str = Field(description="The job's pod.")
    node_ip_address: str = Field(description="The IP of the pod's node ('' until known).")
    pid: str = Field(description="Not known to jobgate: always ''.")


class JobType(enum.StrEnum):
    SUBMISSION = "SUBMISSION"


class JobDetails(BaseModel):
    """A job as `GET /api/jobs/{id}` and the list show it. Times in ms since the epoch."""

    type: Literal[JobType.SUBMISSION] = JobType.SUBMISSION
    entrypoint: str
    submission_id: str
    driver_info: DriverInfo | None = None
    status: models.JobState
    message: str
    error_type: str | None = Field(default=None, description="Why a FAILED or STOPPED job ended.")
    start_time: int | None = Field(
        default=None, description="When the job started (ms); its submission time until then."
    )
    end_time: int | None = Field(default=None, description="When the job ended (ms); only once terminal.")
    metadata: dict[str, str]
    runtime_env: dict[str, Any]
    driver_agent_http_address: str | None = Field(default=None, description="Always null: no Ray agent.")
    driver_node_id: str | None = Field(default=None, description="The node the job's pod runs on.")
    driver_exit_code: int | None = Field(default=None, description="The entrypoint's exit code.")


# A FAILED job's reason as Ray's own server names it (ray.dashboard.modules.job.common.
# JobErrorType): the job's pod plays Ray's supervisor actor and its entrypoint the driver.
# Ray gives a STOPPED job no error type.
RAY_ERROR_TYPES: Final[dict[str, str]] = {
    models.Reason.FAILED: "JOB_ENTRYPOINT_COMMAND_ERROR",
    models.Reason.START_FAILED: "RUNTIME_ENV_SETUP_FAILURE",  # its image or working_dir
    models.Reason.SCHEDULING_TIMEOUT: "JOB_SUPERVISOR_ACTOR_START_TIMEOUT",
    models.Reason.INVALID_SPEC: "JOB_SUPERVISOR_ACTOR_START_FAILURE",
    models.Reason.EVICTED: "JOB_SUPERVISOR_ACTOR_DIED",
    models.Reason.POD_LOST: "JOB_SUPERVISOR_ACTOR_DIED",
}
RAY_UNKNOWN_FAILURE: Final = "JOB_SUPERVISOR_ACTOR_UNKNOWN_FAILURE"
# How Ray's job manager words a RuntimeEnvSetupError (ray.exceptions): the reason follows.
RAY_SETUP_FAILED: Final = "runtime_env setup failed: Failed to set up runtime environment.\n"


class RayJobDetails(JobDetails):
    """Ray's JobDetails: the same, plus `job_id` (= the submission id: there is no Ray driver),
    and Ray's names for why a job failed, and the resources the submission asked for as Ray's
    JobInfo has them (0 where it asked for none: the deployment's default; Ray's client's
    own JobDetails model ignores these keys)."""

    job_id: str
    entrypoint_num_cpus: float = 0
    entrypoint_num_gpus: float = 0
    entrypoint_memory: int = 0
    entrypoint_resources: dict[str, float] | None = None

    @field_serializer("error_type")
    def _ray_error_type(self, error_type: str | None) -> str | None:
        if error_type is None or self.status != models.JobState.FAILED:
            return None
        return RAY_ERROR_TYPES.get(error_type, RAY_UNKNOWN_FAILURE)

    @field_serializer("message")
    def _ray_message(self, message: str) -> str:
        if self.status == models.JobState.FAILED and self.error_type == models.Reason.START_FAILED:
            return RAY_SETUP_FAILED + message  # Ray's own words first, then why
        return message


class RayStopResponse(BaseModel):
    stopped: bool


class RayDeleteResponse(BaseModel):
    deleted: bool


class LogsResponse(BaseModel):
    logs: str


class VersionResponse(BaseModel):
    version: str = RAY_API_VERSION
    ray_version: str = RAY_VERSION
    ray_commit: str = "jobgate"
    session_name: str = "jobgate"
