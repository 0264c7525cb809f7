"""The Job custom resource (jobgate.io/v1alpha1): the one schema source.

The API writes these objects, `kubectl apply` users write them by hand, and the operator
reads them. `crds/jobgate.io_jobs.yaml` is generated from these models by
`python -m jobgate.crds.generate` (a test fails when the two drift), so a bound changed
here is a bound changed everywhere.

Field names are camelCase on the wire (Kubernetes convention) and snake_case in Python.
`runtimeEnv` is the exception: it is Ray's runtime_env document, kept in Ray's own
vocabulary (`working_dir`, `py_modules`, `env_vars`, `pip`, `image_uri`) and with unknown keys preserved.
"""

from __future__ import annotations

import enum
import re
from typing import Annotated, Any, Final

from pydantic import (
    AfterValidator,
    AliasGenerator,
    BaseModel,
    ConfigDict,
    Field,
    WithJsonSchema,
    model_validator,
)
from pydantic.alias_generators import to_camel

GROUP: Final = "jobgate.io"
VERSION: Final = "v1alpha1"
KIND: Final = "Job"
PLURAL: Final = "jobs"
SINGULAR: Final = "job"
SHORT_NAMES: Final = ("jgj",)
API_VERSION: Final = f"{GROUP}/{VERSION}"

# Labels and annotations that jobgate puts on the objects it owns.
LABEL_SUBMISSION_ID: Final = "jobgate.io/submission-id"
LABEL_JOB_NAME: Final = "jobgate.io/job-name"
LABEL_TENANT: Final = "jobgate.io/tenant"
LABEL_ATTEMPT: Final = "jobgate.io/attempt"
# Annotations with the exact values of the labels above, which a label cannot always hold
# (a label value is at most 63 characters of [A-Za-z0-9_.-]).
ANNOTATION_SUBMISSION_ID: Final = LABEL_SUBMISSION_ID
ANNOTATION_TENANT: Final = LABEL_TENANT
# On a job's pod: when the operator made it, in milliseconds (creationTimestamp has whole
# seconds), so that an attempt's scheduling timeout counts from the same moment whoever reads it.
ANNOTATION_CREATED_AT: Final = "jobgate.io/created-at"
# The job's `metadata` map is copied to its pod as annotations under this prefix, so that
# tools around the cluster (and the dev cluster's fake nodes) can read it; jobgate itself
# never interprets these values.
METADATA_ANNOTATION_PREFIX: Final = "metadata.jobgate.io/"

# Bounds from the openYuanrong "Submit Job" reference.
MIN_CPUS: Final = 0.3
MAX_CPUS: Final = 16.0
MIN_MEMORY_BYTES: Final = 134_217_728  # 128 MiB
MAX_MEMORY_BYTES: Final = 1_125_899_906_842_624  # 1 PiB
DEFAULT_SCHEDULING_TIMEOUT_MS: Final = 18_000
MAX_ATTEMPTS: Final = 100  # also the most pods a job has in all, ignored failures included
MAX_FAILURE_RULES: Final = 20  # as batch/v1's podFailurePolicy
MAX_EXIT_CODES: Final = 255
MAX_HISTORY: Final = 20  # failed attempts kept in the status (the last ones)
# Metadata keys that the HTTP API reads into the Job's spec (both dialects: Ray's client and
# CLI set metadata, not the Job's fields); they stay in the metadata too.
METADATA_MAX_ATTEMPTS: Final = "jobgate.io/max-attempts"  # an integer, as text
METADATA_POD_FAILURE_POLICY: Final = "jobgate.io/pod-failure-policy"  # spec.podFailurePolicy as JSON

# Bounds of everything else that reaches the pod, so that a stored Job can always be
# rendered: a pod's annotations hold 256 KiB at most (the metadata is copied there), and
# an object 1.5 MiB (etcd's request limit).
MAX_DEVICES: Final = 1024  # GPUs, or units of one custom resource, per pod
MAX_ENTRYPOINT_LENGTH: Final = 65_536
MAX_ENV_VARS: Final = 128
MAX_PY_MODULES: Final = 16  # each is an init container of the pod's
MAX_ENV_VALUE_LENGTH: Final = 32_768
# Kubernetes' rule for a container's environment variable names.
ENV_NAME_RULE: Final = "1 to 256 printable ASCII characters, without '='"
ENV_NAME_PATTERN: Final = r"^[ -<>-~]{1,256}$"
MAX_METADATA_ENTRIES: Final = 32
MAX_METADATA_KEY_LENGTH: Final = 253  # an annotation's name part
MAX_METADATA_VALUE_LENGTH: Final = 4096

# Tokens of the X-Pool-Label header that are flags, not node labels: neither the API nor the
# operator turns them into node affinity.
POOL_LABEL_FLAGS: Final = frozenset({"unUseAntiOtherLabels"})

# Any submission id either dialect accepts: the seed dialect's `^[a-z0-9-]{1,64}$` and
# Ray's `raysubmit_<alnum>` style alike. The seed's stricter rule lives in the API.
SUBMISSION_ID_PATTERN: Final = r"^[A-Za-z0-9_-]{1,64}$"
# A pool label is a node label key, or `key=value` for "the label equals value".
POOL_LABEL_PATTERN: Final = (
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
    r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?"
    r"(=([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?)?$"
)


class JobState(enum.StrEnum):
    """The seed family's job statuses."""

    PENDING = "PENDING"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    STOPPED = "STOPPED"

    @property
    def terminal(self) -> bool:
        return self in TERMINAL_STATES


TERMINAL_STATES: Final = frozenset({JobState.SUCCEEDED, JobState.FAILED, JobState.STOPPED})


class _CamelModel(BaseModel):
    """camelCase on the wire, snake_case in Python; unknown fields are an error."""

    model_config = ConfigDict(
        alias_generator=AliasGenerator(alias=to_camel),
        populate_by_name=True,
        extra="forbid",
    )


def _env_name(name: str) -> str:
    if not re.fullmatch(ENV_NAME_PATTERN, name):
        raise ValueError(f"an environment variable's name is {ENV_NAME_RULE}")
    return name


class RuntimeEnv(BaseModel):
    """Ray's runtime_env: the known keys are checked, unknown keys are kept as they are."""

    model_config = ConfigDict(extra="allow")

    working_dir: Annotated[str | None, Field(min_length=1)] = Field(
        default=None,
        description="URI of a zip or directory unpacked into the job's working directory: "
        "http(s)://, file:// (opt-in, see README), or a package uploaded to the API (gcs://...).",
    )
    env_vars: Annotated[
        dict[
            Annotated[
                str,
                AfterValidator(_env_name),
                WithJsonSchema({"type": "string", "pattern": ENV_NAME_PATTERN}),
            ],
            Annotated[str, Field(max_length=MAX_ENV_VALUE_LENGTH)],
        ],
        Field(max_length=MAX_ENV_VARS),
    ] = Field(default_factory=dict, description="Environment variables of the job's process.")
    py_modules: Annotated[list[Annotated[str, Field(min_length=1)]], Field(max_length=MAX_PY_MODULES)] = (
        Field(
            default_factory=list,
            description="URIs of Python modules put on the job's PYTHONPATH (as working_dir's), "
            "or of wheels (.whl) installed with pip.",
        )
    )
    pip: list[str] = Field(
        default_factory=list, description="pip requirements installed before the entrypoint runs."
    )
    image_uri: Annotated[str | None, Field(min_length=1)] = Field(
        default=None, description="Container image of the job; the deployment's default image when absent."
    )


class Resources(_CamelModel):
    """What the job's pod requests (and is limited to)."""

    cpus: Annotated[float | None, Field(ge=MIN_CPUS, le=MAX_CPUS)] = Field(
        default=None, description="CPU cores, [0.3, 16]; the deployment's default when absent."
    )
    memory: Annotated[int | None, Field(ge=MIN_MEMORY_BYTES, le=MAX_MEMORY_BYTES)] = Field(
        default=None, description="Memory in bytes, [134217728, 1125899906842624]; default when absent."
    )
    gpus: Annotated[float, Field(ge=0, le=MAX_DEVICES)] = Field(
        default=0, description="GPUs (nvidia.com/gpu); 0 = none."
    )
    custom: dict[str, Annotated[float, Field(ge=0, le=MAX_DEVICES)]] = Field(
        default_factory=dict,
        description="Custom resources by name (e.g. NPU), mapped to extended resources by the "
        "operator's configuration; 0 = not needed.",
    )


class ConditionStatus(enum.StrEnum):
    TRUE = "True"
    FALSE = "False"
    UNKNOWN = "Unknown"


class RetryAction(enum.StrEnum):
    """What a failed attempt leads to (batch/v1's podFailurePolicy actions)."""

    FAIL_JOB = "FailJob"  # the job FAILS now, whatever attempts remain
    RETRY = "Retry"  # counts against maxAttempts; the next attempt after a back-off
    IGNORE = "Ignore"  # does not count; the next attempt at once


class ExitCodeOperator(enum.StrEnum):
    IN = "In"
    NOT_IN = "NotIn"


class OnExitCodes(_CamelModel):
    """Matches when the entrypoint's exit code is (In) or is not (NotIn) one of `values`."""

    operator: ExitCodeOperator
    values: Annotated[
        list[Annotated[int, Field(ge=0, le=255)]], Field(min_length=1, max_length=MAX_EXIT_CODES)
    ]


class OnPodCondition(_CamelModel):
    """Matches when the failed pod has this condition (DisruptionTarget: evicted, preempted, drained)."""

    type: Annotated[str, Field(min_length=1, max_length=316)]
    status: ConditionStatus = ConditionStatus.TRUE


class PodFailureRule(_CamelModel):
    """One rule: `action` when the failed attempt matches `onExitCodes` or any of `onPodConditions`."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "has(self.onExitCodes) != has(self.onPodConditions)",
                    "message": "a rule has exactly one of onExitCodes and onPodConditions",
                }
            ]
        }
    )

    action: RetryAction
    on_exit_codes: OnExitCodes | None = None
    on_pod_conditions: Annotated[list[OnPodCondition], Field(min_length=1, max_length=20)] | None = None

    @model_validator(mode="after")
    def _one_matcher(self) -> PodFailureRule:
        if (self.on_exit_codes is None) == (self.on_pod_conditions is None):
            raise ValueError("a rule has exactly one of onExitCodes and onPodConditions")
        return self


class PodFailurePolicy(_CamelModel):
    """Rules matched in order on a failed attempt; the first that matches decides, and a
    failure no rule matches is retried (Retry)."""

    rules: Annotated[list[PodFailureRule], Field(min_length=1, max_length=MAX_FAILURE_RULES)]


class JobSpec(_CamelModel):
    """What the user asked for. Immutable after creation, except `stop`."""

    submission_id: Annotated[str | None, Field(pattern=SUBMISSION_ID_PATTERN)] = Field(
        default=None, description="The job's id in the HTTP API; the object's name when absent."
    )
    entrypoint: Annotated[str, Field(min_length=1, max_length=MAX_ENTRYPOINT_LENGTH)] = Field(
        description="Shell command run in the working directory."
    )
    runtime_env: RuntimeEnv = Field(default_factory=RuntimeEnv)
    resources: Resources = Field(default_factory=Resources)
    metadata: Annotated[
        dict[
            Annotated[str, Field(min_length=1, max_length=MAX_METADATA_KEY_LENGTH)],
            Annotated[str, Field(max_length=MAX_METADATA_VALUE_LENGTH)],
        ],
        Field(max_length=MAX_METADATA_ENTRIES),
    ] = Field(default_factory=dict, description="User-defined metadata, stored and echoed back.")
    pool_labels: list[Annotated[str, Field(pattern=POOL_LABEL_PATTERN)]] = Field(
        default_factory=list,
        description="Node label keys (or key=value); the pod must land on a node carrying at least "
        "one of them, earlier ones preferred.",
    )
    tenant: Annotated[str | None, Field(min_length=1, max_length=253)] = Field(
        default=None, description="The tenant that owns the job (the X-Tenant-Id it was submitted with)."
    )
    scheduling_timeout_ms: Annotated[int, Field(ge=0)] = Field(
        default=DEFAULT_SCHEDULING_TIMEOUT_MS,
        description="How long the pod may stay unscheduled before the job fails; 0 = wait forever.",
    )
    max_attempts: Annotated[int, Field(ge=1, le=MAX_ATTEMPTS)] = Field(
        default=1,
        description="Failed attempts (those the podFailurePolicy does not ignore) before the job is FAILED.",
    )
    pod_failure_policy: PodFailurePolicy | None = Field(
        default=None, description="What a failed attempt leads to: FailJob, Retry or Ignore, by rules."
    )
    active_deadline_seconds: Annotated[int | None, Field(ge=1)] = Field(
        default=None, description="Wall-clock limit from the job's start; the job FAILS past it."
    )
    ttl_seconds_after_finished: Annotated[int | None, Field(ge=0)] = Field(
        default=None, description="The Job is deleted this long after it finished."
    )
    stop: bool = Field(
        default=False, description="Set to true to stop the job (the only field that may change)."
    )


class ConditionType(enum.StrEnum):
    """The condition types the operator writes (a contract: the API reads them)."""

    SCHEDULED = "Scheduled"  # True once the pod is bound to a node
    # Present once a bound pod's containers could not start (False: the kubelet's reason,
    # e.g. ImagePullBackOff, FailedMount), and True once they did after all.
    STARTED = "Started"
    FINISHED = "Finished"  # present (True) once the job is terminal


class Reason(enum.StrEnum):
    """Condition reasons, and `status.errorType` of a FAILED or STOPPED job."""

    # Scheduled
    SCHEDULED = "Scheduled"  # True: the pod is bound to a node
    PENDING = "Pending"  # False: the pod waits for (or is being considered by) the scheduler
    UNSCHEDULABLE = "Unschedulable"  # False: the scheduler said no; message is the scheduler's
    QUOTA_EXCEEDED = "QuotaExceeded"  # False: a ResourceQuota refused the pod; apiserver's message
    FORBIDDEN = "Forbidden"  # False: the apiserver refused the pod for another reason (403)
    # Started (True; when False, its reason is the kubelet's, see operator/pods.py)
    STARTED = "Started"
    # Finished
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"  # the entrypoint exited non-zero (or was killed: OOMKilled)
    SCHEDULING_TIMEOUT = "SchedulingTimeout"
    START_FAILED = "StartFailed"  # the working_dir could not be fetched, or the containers could not start
    DEADLINE_EXCEEDED = "DeadlineExceeded"
    STOPPED = "Stopped"
    EVICTED = "Evicted"
    POD_LOST = "PodLost"  # the pod disappeared before it finished
    INVALID_SPEC = "InvalidSpec"  # the spec cannot be run here (e.g. an unknown custom resource)
    # Events only
    RETRYING = "Retrying"  # an attempt failed and the next one's pod was created


class Condition(_CamelModel):
    """A Kubernetes condition: `reason` is a CamelCase word a script can match."""

    type: str
    status: ConditionStatus
    reason: str
    message: str = ""
    last_transition_time: str = Field(json_schema_extra={"format": "date-time"})


class FailedAttempt(_CamelModel):
    """An attempt that failed, and what was done about it."""

    attempt: int
    pod_name: str
    reason: str  # a Finished reason: Failed, Evicted, PodLost, ...
    message: str
    exit_code: int | None = None
    finished_at: str | None = Field(default=None, json_schema_extra={"format": "date-time"})
    action: RetryAction
    rule: int | None = Field(default=None, description="The podFailurePolicy rule that matched (1-based).")
    retry_at: str | None = Field(
        default=None,
        json_schema_extra={"format": "date-time"},
        description="When the next attempt's pod is due, after the back-off (absent: at once, or none).",
    )


class JobStatus(_CamelModel):
    """What the operator observed."""

    state: JobState = JobState.PENDING
    message: str = ""
    error_type: str | None = Field(default=None, description="Why the job FAILED or was STOPPED.")
    start_time: str | None = Field(default=None, json_schema_extra={"format": "date-time"})
    end_time: str | None = Field(default=None, json_schema_extra={"format": "date-time"})
    exit_code: int | None = None
    pod_name: str | None = None
    log_ref: str | None = Field(
        default=None,
        description=(
            "Where the logs of the job's pods are archived as each ends (an s3:// folder, one "
            "<attempt>.log per attempt); unset when the deployment has no object store."
        ),
    )
    node_name: str | None = None
    host_ip: str | None = None
    attempts: int = Field(
        default=0, ge=0, description="Attempts started so far: the number of the current (or last) attempt."
    )
    scheduling_failures: int = Field(default=0, ge=0, description="Times the scheduler rejected the pod.")
    failed_attempts: int = Field(
        default=0, ge=0, description="Failed attempts that count against maxAttempts (ignored ones do not)."
    )
    failures: Annotated[list[FailedAttempt], Field(max_length=MAX_HISTORY)] = Field(
        default_factory=list, description="The failed attempts, oldest first (the last 20)."
    )
    observed_generation: int | None = None
    conditions: list[Condition] = Field(default_factory=list)

    def condition(self, kind: ConditionType) -> Condition | None:
        return next((c for c in self.conditions if c.type == kind), None)


def submission_id_of(job: dict[str, Any]) -> str:
    """The submission id of a Job object (its spec's, or else its name)."""
    spec_id = job.get("spec", {}).get("submissionId")
    return str(spec_id) if spec_id else str(job["metadata"]["name"])
