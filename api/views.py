"""What a stored Job object says, read for the API's answers (pure).

`details` is the job as both dialects show it. Times become milliseconds since the epoch;
`start_time` is the job's start, or its submission until it starts (as Ray reports it);
`end_time` appears once the job is terminal. An empty status message becomes Ray's wording
for the state ("Job is currently running.").
"""

from __future__ import annotations

import datetime
from typing import Any, Final

from jobgate.api import models
from jobgate.core import jobs
from jobgate.crds import models as crd

_EPOCH: Final = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)
_MILLISECOND: Final = datetime.timedelta(milliseconds=1)
# Ray's JobInfo messages, for a status that has none of its own.
DEFAULT_MESSAGES: Final = {
    crd.JobState.PENDING: "Job has not started yet.",
    crd.JobState.RUNNING: "Job is currently running.",
    crd.JobState.SUCCEEDED: "Job finished successfully.",
    crd.JobState.FAILED: "Job failed.",
    crd.JobState.STOPPED: "Job was intentionally stopped.",
}


def is_scheduled(job: jobs.Job) -> bool:
    """Whether the job's (current) pod has been bound to a node."""
    scheduled = job.status.condition(crd.ConditionType.SCHEDULED)
    return scheduled is not None and scheduled.status == crd.ConditionStatus.TRUE


def details(job: jobs.Job) -> models.RayJobDetails:
    status, current = job.status, job.status.state
    spec = job.spec if isinstance(job.spec, crd.JobSpec) else None
    raw = job.body.get("spec") or {}  # a spec the models reject is shown as it is stored
    return models.RayJobDetails(
        job_id=job.submission_id,
        submission_id=job.submission_id,
        entrypoint=spec.entrypoint if spec else str(raw.get("entrypoint", "")),
        driver_info=models.DriverInfo(id=status.pod_name, node_ip_address=status.host_ip or "", pid="")
        if status.pod_name
        else None,
        status=current,
        message=status.message or DEFAULT_MESSAGES[current],
        error_type=status.error_type if current in (crd.JobState.FAILED, crd.JobState.STOPPED) else None,
        start_time=milliseconds(status.start_time or job.created),
        end_time=milliseconds(status.end_time) if current.terminal else None,
        metadata=spec.metadata if spec else {},
        # As the client gave it: the keys it set, none of the defaults.
        runtime_env=spec.runtime_env.model_dump(exclude_unset=True) if spec else {},
        driver_node_id=status.node_name,
        driver_exit_code=status.exit_code,
        **(_asked_resources(spec.resources) if spec else {}),
    )


def _asked_resources(resources: crd.Resources) -> dict[str, Any]:
    """The resources as Ray's details show what the submission asked for."""
    return {
        "entrypoint_num_cpus": resources.cpus or 0,
        "entrypoint_num_gpus": resources.gpus,
        "entrypoint_memory": resources.memory or 0,
        "entrypoint_resources": dict(resources.custom) or None,
    }


def log_header(job: jobs.Job, dialect: models.Dialect) -> str:
    """The lines a dialect's log starts with: Ray's job driver writes two before the
    entrypoint's output, and tools (and people) grep the second."""
    if dialect is not models.Dialect.RAY:
        return ""
    entrypoint = job.spec.entrypoint if isinstance(job.spec, crd.JobSpec) else ""
    return f"Runtime env is setting up.\nRunning entrypoint for job {job.submission_id}: {entrypoint}\n"


def milliseconds(timestamp: str | None) -> int | None:
    """An RFC 3339 time as milliseconds since the epoch (exact, no float rounding)."""
    if not timestamp:
        return None
    moment = datetime.datetime.fromisoformat(timestamp)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.UTC)
    return (moment - _EPOCH) // _MILLISECOND
