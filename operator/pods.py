"""Reading a job's pod: which attempt it is, whether it is scheduled, how it ended."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from jobgate.crds import models
from jobgate.operator import podspec

Pod = Mapping[str, Any]


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


def owner(pod: Pod) -> tuple[str, str] | None:
    """(name, uid) of the Job that controls the pod, if a Job does."""
    for ref in pod["metadata"].get("ownerReferences", ()):
        if (
            ref.get("controller")
            and ref.get("kind") == models.KIND
            and ref.get("apiVersion") == models.API_VERSION
        ):
            return str(ref["name"]), str(ref["uid"])
    return None


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
        return Outcome(
            reason=models.Reason.FAILED,
            message=f"the working_dir could not be fetched: exit code {code}",
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


def _terminated(statuses: Any, container: str) -> Mapping[str, Any] | None:
    for status in statuses:
        if status.get("name") == container:
            terminated: Mapping[str, Any] | None = status.get("state", {}).get("terminated")
            return terminated
    return None
