"""Reading a job's pod: which attempt it is, whether it is scheduled, why it cannot start,
how it ended."""

from __future__ import annotations

import dataclasses
import datetime
import re
from collections.abc import Mapping, Sequence
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
    conditions: Mapping[str, str] = dataclasses.field(default_factory=dict)  # the pod's: type -> status


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


@dataclasses.dataclass(frozen=True, kw_only=True)
class StartProblem:
    """Why a bound pod's containers do not start: the Started condition's reason and message.

    `container` is the container at fault (None: the pod's volumes), `volume` the volume that
    cannot be mounted; `final`: it cannot heal (the job fails at once), else the kubelet
    keeps trying and the job waits for it, within the start timeout.
    """

    reason: str
    message: str
    final: bool
    container: str | None = None
    volume: str | None = None


# The kubelet's waiting reasons of a container that is starting normally.
_STARTING: Final = frozenset({"ContainerCreating", "PodInitializing"})
# Waiting reasons that no retry of the kubelet's can clear.
FINAL: Final = frozenset({"InvalidImageName", "ErrImageNeverPull"})
# A pull's error and the back-off after it alternate: one reason, so that the status is
# written once, not at each turn.
_PULL_FAILURES: Final = frozenset({"ErrImagePull", "ImagePullBackOff"})
PULL_FAILED: Final = "ImagePullBackOff"
FAILED_MOUNT: Final = "FailedMount"  # the kubelet's event reason
# Before this long after its binding, a pod still creating its containers is not suspected
# of a mount that fails (its events are not read): a normal start is done by then.
MOUNT_GRACE: Final = datetime.timedelta(seconds=5)
_VOLUME = re.compile(r'volume "([^"]+)"')


def start_problem(pod: Pod, mount_failures: Sequence[str] = ()) -> StartProblem | None:
    """Why the pod's containers do not start (None: they do, or nothing says otherwise).

    `mount_failures`: the messages of the kubelet's FailedMount events of the pod, newest
    last; they matter only while no container says more.
    """
    status = pod.get("status", {})
    for container in (*status.get("initContainerStatuses", ()), *status.get("containerStatuses", ())):
        waiting = container.get("state", {}).get("waiting") or {}
        reason = waiting.get("reason")
        if not reason or reason in _STARTING:
            continue
        said = _bounded(waiting.get("message") or reason)
        image = container.get("image") or "?"
        if reason in _PULL_FAILURES:
            message = f"image {image} cannot be pulled: {said}"
        elif reason in FINAL:
            message = f"image {image} cannot be used ({reason}): {said}"
        else:
            message = f"container {container.get('name')} cannot start ({reason}): {said}"
        return StartProblem(
            reason=PULL_FAILED if reason in _PULL_FAILURES else str(reason),
            message=message,
            final=reason in FINAL,
            container=str(container.get("name")),
        )
    if mount_failures and _creating(pod):
        said = _bounded(mount_failures[-1])
        volume = _VOLUME.search(said)
        name = volume.group(1) if volume else None
        return StartProblem(
            reason=FAILED_MOUNT,
            message=f"waiting for volume {name or '?'}: {said}",
            final=False,
            volume=name,
        )
    return None


def may_fail_to_mount(pod: Pod, *, now: datetime.datetime) -> bool:
    """Whether the pod, bound a while ago, still creates its containers: a volume that cannot
    be mounted keeps a pod so, and only the kubelet's events say it (see `start_problem`)."""
    if terminating(pod) or not _creating(pod):
        return False
    bound = bound_at(pod)
    return bound is not None and now >= bound + MOUNT_GRACE


def _creating(pod: Pod) -> bool:
    """Whether no container of the pending pod has run yet, nor says why it cannot."""
    if phase(pod) != "Pending":
        return False
    status = pod.get("status", {})
    for container in (*status.get("initContainerStatuses", ()), *status.get("containerStatuses", ())):
        state = container.get("state") or {}
        if "running" in state or "terminated" in state:
            return False  # e.g. the working_dir fetch runs: its volumes are mounted
        if (state.get("waiting") or {}).get("reason", "ContainerCreating") not in _STARTING:
            return False
    return True


def _bounded(text: str) -> str:
    return text if len(text) <= _MAX_REASON else text[: _MAX_REASON - 1] + "…"


DISRUPTION_TARGET: Final = "DisruptionTarget"  # set by the apiserver on a pod it evicts or preempts


def outcome(pod: Pod) -> Outcome | None:
    """How the pod ended, or None while it has not."""
    ended = _outcome(pod)
    return dataclasses.replace(ended, conditions=conditions(pod)) if ended else None


def lost(pod_name: str, last_seen: Pod | None, *, node_deleted: bool = False) -> Outcome:
    """The outcome of a pod that vanished unfinished; `last_seen`: its last copy, if known;
    `node_deleted`: its node is gone too."""
    disrupted = _disruption(last_seen) if last_seen else None
    seen = conditions(last_seen) if last_seen else {}
    if not disrupted and node_deleted and last_seen:
        # The pod garbage collector marks the pods of a deleted node DisruptionTarget (and
        # Failed) and deletes them at once: that copy left the watch unseen (it is no longer
        # unfinished), and the pod was gone when read. Its node's absence says the same.
        disrupted = f"its node {node(last_seen)} no longer exists"
        seen = {**seen, DISRUPTION_TARGET: "True"}
    if disrupted:
        message = f"pod {pod_name} was evicted before it finished: {disrupted}"
        reason = models.Reason.EVICTED
    else:
        message, reason = f"pod {pod_name} disappeared before it finished", models.Reason.POD_LOST
    return Outcome(reason=reason, message=message, exit_code=None, finished_at=None, conditions=seen)


def conditions(pod: Pod) -> dict[str, str]:
    return {str(c.get("type")): str(c.get("status")) for c in pod.get("status", {}).get("conditions", ())}


def _disruption(pod: Pod) -> str | None:
    """Why the apiserver disrupted the pod (its DisruptionTarget condition), if it did."""
    for condition in pod.get("status", {}).get("conditions", ()):
        if condition.get("type") == DISRUPTION_TARGET and condition.get("status") == "True":
            said = ": ".join(
                str(part) for part in (condition.get("reason"), condition.get("message")) if part
            )
            return _bounded(said or DISRUPTION_TARGET)
    return None


def _outcome(pod: Pod) -> Outcome | None:
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
    disrupted = _disruption(pod)
    if status.get("reason") == "Evicted" or disrupted:
        why = disrupted or status.get("message", "")
        message = f"pod {name(pod)} was evicted: {why}".rstrip(": ")
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
    for init in status.get("initContainerStatuses", ()):
        setup = init.get("state", {}).get("terminated")
        what = podspec.setup_failure(init.get("name", ""))
        if what and setup and setup.get("exitCode"):
            code = int(setup["exitCode"])
            # Its own reason: the last line of its log (terminationMessagePolicy).
            said = (setup.get("message") or "").strip().splitlines()[-1:]
            why = _bounded(said[0]) if said else f"exit code {code}"
            return Outcome(
                reason=models.Reason.START_FAILED,
                message=f"{what}: {why}",
                exit_code=code,
                finished_at=setup.get("finishedAt"),
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
