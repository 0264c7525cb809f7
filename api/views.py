"""What a stored Job object says, read for the API's answers (pure).

`details` is the job as both dialects show it. Times become milliseconds since the epoch;
`start_time` is the job's start, or its submission until it starts (as Ray reports it);
`end_time` appears once the job is terminal. An empty status message becomes Ray's wording
for the state ("Job is currently running.").
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import Any, Final

from jobgate.api import models
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


def state(job: Mapping[str, Any]) -> crd.JobState:
    """The job's state; PENDING until the operator has written one."""
    try:
        return crd.JobState((job.get("status") or {}).get("state") or crd.JobState.PENDING)
    except ValueError:
        return crd.JobState.PENDING


def condition(job: Mapping[str, Any], kind: crd.ConditionType) -> Mapping[str, Any] | None:
    for item in (job.get("status") or {}).get("conditions") or ():
        if item.get("type") == kind:
            return dict(item)
    return None


def is_scheduled(job: Mapping[str, Any]) -> bool:
    """Whether the job's (current) pod has been bound to a node."""
    scheduled = condition(job, crd.ConditionType.SCHEDULED)
    return scheduled is not None and scheduled.get("status") == crd.ConditionStatus.TRUE


def details(job: Mapping[str, Any]) -> models.RayJobDetails:
    spec = job.get("spec") or {}
    status = job.get("status") or {}
    current = state(job)
    submission_id = crd.submission_id_of(dict(job))
    pod = status.get("podName")
    return models.RayJobDetails(
        job_id=submission_id,
        submission_id=submission_id,
        entrypoint=spec.get("entrypoint", ""),
        driver_info=models.DriverInfo(id=pod, node_ip_address=status.get("hostIp") or "", pid="")
        if pod
        else None,
        status=current,
        message=status.get("message") or DEFAULT_MESSAGES[current],
        error_type=status.get("errorType")
        if current in (crd.JobState.FAILED, crd.JobState.STOPPED)
        else None,
        start_time=milliseconds(status.get("startTime") or job["metadata"].get("creationTimestamp")),
        end_time=milliseconds(status.get("endTime")) if current.terminal else None,
        metadata=spec.get("metadata") or {},
        runtime_env=spec.get("runtimeEnv") or {},
        driver_node_id=status.get("nodeName"),
        driver_exit_code=status.get("exitCode"),
    )


def milliseconds(timestamp: str | None) -> int | None:
    """An RFC 3339 time as milliseconds since the epoch (exact, no float rounding)."""
    if not timestamp:
        return None
    moment = datetime.datetime.fromisoformat(timestamp)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.UTC)
    return (moment - _EPOCH) // _MILLISECOND
