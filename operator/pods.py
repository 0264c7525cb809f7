"""Reading a job's pod: which attempt it is, whether it is scheduled, how it ended."""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Mapping
from typing import Any, Final

from jobgate.core import pods as pod_api
from jobgate.crds import models
from jobgate.operator import podspec

Pod = pod_api.Pod


@dataclasses.dataclass(frozen=True, kw_only=True)
class Outcome:
    """How a finished pod ended: `reason` is the Finished condition's reason."""

    reason: models.Reason
    message: str
    exit_code: int | None
    finished_at: str | None  # RFC 3339, when the pod says


def name(pod: Pod) -> str:
    return str(pod["metadata"]["name"])


def uid(pod: Pod) -> str:
    return str(pod["metadata"]["uid"])


def resource_version(pod: Pod) -> str | None:
    version = pod["metadata"].get("resourceVersion")
    return str(version) if version else None


def attempt(pod: Pod) -> int:
    """The attempt the pod runs (0 if it carries no valid attempt label)."""
    text = pod["metadata"].get("labels", {}).get(models.LABEL_ATTEMPT, "")
    return int(text) if text.isdigit() else 0


def created(pod: Pod) -> datetime.datetime | None:
    """When the operator made the pod (else the apiserver's creationTimestamp: whole seconds)."""
    meta = pod["metadata"]
    text = (meta.get("annotations") or {}).get(models.ANNOTATION_CREATED_AT) or meta.get("creationTimestamp")
    return datetime.datetime.fromisoformat(text) if text else None


def phase(pod: Pod) -> str:
    return str(pod.get("status", {}).get("phase", "Pending"))


def finished(pod: Pod) -> bool:
    return phase(pod) in ("Succeeded", "Failed")


def terminating(pod: Pod) -> bool:
    return bool(pod["metadata"].get("deletionTimestamp"))


def node(pod: Pod) -> str | None:
    return pod.get("spec", {}).get("nodeName") or None


def host_ip(pod: Pod) -> str | None:
    return pod.get("status", {}).get("hostIP") or None


def scheduled(pod: Pod) -> bool:
    return node(pod) is not None


def bound_at(pod: Pod) -> datetime.datetime | None:
    """When the pod was bound to its node (its PodScheduled condition turned True), if it was."""
    for condition in pod.get("status", {}).get("conditions", ()):
        if condition.get("type") == "PodScheduled" and condition.get("status") == "True":
            moment = condition.get("lastTransitionTime")
            return datetime.datetime.fromisoformat(moment) if moment else None
    return None


def unschedulable_message(pod: Pod) -> str | None:
    """The scheduler's own explanation when it could not place the pod (else None)."""
    for condition in pod.get("status", {}).get("conditions", ()):
        if condition.get("type") == "PodScheduled" and condition.get("status") == "False":
            return str(condition.get("message") or condition.get("reason") or "unschedulable")
    return None


def outcome(pod: Pod) -> Outcome | None:
    """How the pod ended, or None while it has not."""
    status = pod.get("status", {})
    main = _terminated(status.get("containerStatuses", ()), podspec.MAIN_CONTAINER)
    finished_at = main.get("finishedAt") if main else None
    if phase(pod) == "Succeeded":
        return Outcome(
            reason=models.Reason.SUCCEEDED,
            message="Job finished successfully.",
            exit_code=0,
            finished_at=finished_at,
        )
    if phase(pod) != "Failed":
        return None
    if status.get("reason") == "Evicted":
        message = f"pod {name(pod)} was evicted: {status.get('message', '')}".rstrip(": ")
        return Outcome(reason=models.Reason.EVICTED, message=message, exit_code=None, finished_at=finished_at)
    if main and main.get("exitCode") is not None:
        code = int(main["exitCode"])
        why = main.get("reason")
        detail = f" ({why})" if why and why not in ("Error", "Completed") else ""
        return Outcome(
            reason=models.Reason.FAILED,
            message=f"Job entrypoint command failed with exit code {code}{detail}",
            exit_code=code,
            finished_at=finished_at,
        )
    fetch = _terminated(status.get("initContainerStatuses", ()), podspec.FETCH_CONTAINER)
    if fetch and fetch.get("exitCode"):
        code = int(fetch["exitCode"])
        # The fetcher's own reason: the last line of its log (terminationMessagePolicy).
        said = (fetch.get("message") or "").strip().splitlines()[-1:]
        why = said[0][:_MAX_REASON] if said else f"exit code {code}"
        return Outcome(
            reason=models.Reason.FAILED,
            message=f"the working_dir could not be fetched: {why}",
            exit_code=code,
            finished_at=fetch.get("finishedAt"),
        )
    why = ": ".join(part for part in (status.get("reason"), status.get("message")) if part)
    return Outcome(
        reason=models.Reason.FAILED,
        message=f"pod {name(pod)} failed" + (f": {why}" if why else ""),
        exit_code=None,
        finished_at=None,
    )


_MAX_REASON: Final = 500  # characters of a container's own reason kept in the job's message


def _terminated(statuses: Any, container: str) -> Mapping[str, Any] | None:
    for status in statuses:
        if status.get("name") == container:
            terminated: Mapping[str, Any] | None = status.get("state", {}).get("terminated")
            return terminated
    return None
