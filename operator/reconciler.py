"""Carrying out `lifecycle.decide` for a job: read, decide, write, one job at a time.

Three things bring a job here: an event of the Job, an event of one of its pods, or one of
its alarms. They only queue the job (`queueing`); a worker then takes the newest version of
the Job seen (from its watch events and the operator's own writes, read from the apiserver
only when there is none) and the pods concerned (as their own watch events showed them;
read afresh when only looked up, or once they left the watch), decides, and writes. The
status patch carries the resourceVersion the decision was taken on, so a decision on a
stale Job is never written: it is taken again on a Job read afresh. Everything is
idempotent, so a restarted operator simply decides again: pod names are fixed per attempt,
so creating a pod that exists adopts it, and deleting a pod that is gone is a no-op.

An unfinished job with a pod has an alarm at most `resync_seconds` ahead (the resync, see
`config`), which is dropped when it finishes. Finished jobs cost nothing: the watches leave
them (and finished pods) out, and only the TTLs of finished jobs are picked up again when
the operator starts (`resume_ttls`).
"""

from __future__ import annotations

import datetime
import logging
import time
from collections.abc import Mapping
from typing import Any, Final

from jobgate.crds import models
from jobgate.operator import alarms as alarming
from jobgate.operator import config as configuration
from jobgate.operator import jobs, kube, lifecycle, metrics, pods, podspec, queueing, seen, statuses

logger = logging.getLogger(__name__)

Key = tuple[str, str]  # (namespace, name) of a Job

_CONFLICT_RETRIES: Final = 5
_MAX_ERROR_BACKOFF: Final = 60.0  # seconds between attempts on a job whose handling fails


class Reconciler:
    def __init__(
        self,
        *,
        kube: kube.Kube,
        config: configuration.Config,
        alarms: alarming.Alarms[Key],
        queue: queueing.WorkQueue[Key],
    ) -> None:
        self._kube = kube
        self._config = config
        self._alarms = alarms
        self._queue = queue
        self._errors: dict[Key, int] = {}  # consecutive failures, for the backoff
        # The newest versions seen of unfinished Jobs and pods (see `seen`): reading them
        # afresh for every handling was most of the operator's apiserver requests.
        self._jobs: seen.Newest[Key] = seen.Newest()
        self._pods: seen.Newest[Key] = seen.Newest()  # by (namespace, pod name)

    # -- what brings a job here (called from kopf's event loop: no blocking) -----------------

    def job_event(self, *, event_type: str | None, job: Mapping[str, Any]) -> None:
        """A watch event of an unfinished Job (`event_type` None: the listing at start or relist).

        A Job that finishes leaves the watch (see `handlers`) with a DELETED event, as a
        deleted one does: neither needs anything (an alarm of a deleted Job finds nothing).
        """
        meta, spec, status = job["metadata"], job.get("spec") or {}, job.get("status") or {}
        key: Key = (meta["namespace"], meta["name"])
        if event_type == "DELETED":
            self._jobs.drop(key)
        else:
            self._remember(job)
        if event_type is None:
            # After a restart: the pod may have ended, or vanished, while nobody watched.
            self._queue.add(key, queueing.Trigger(look=bool(status.get("attempts"))))
        elif event_type == "ADDED" or (event_type == "MODIFIED" and spec.get("stop")):
            self._queue.add(key, queueing.Trigger())
        # Other changes are the operator's own status writes: nothing new to act on.

    def pod_event(self, *, event_type: str | None, pod: Mapping[str, Any]) -> None:
        """A watch event of an unfinished pod; DELETED also means it finished (see `handlers`)."""
        owner = pods.owner(pod)
        if owner is not None:
            namespace = pod["metadata"]["namespace"]
            if event_type == "DELETED":
                # Its copy shows the pod before it finished (it left the watch, which streams
                # unfinished pods only), or before it was deleted: the pod is read afresh.
                self._pods.drop((namespace, pods.name(pod)))
            else:
                self._pods.put((namespace, pods.name(pod)), pod)
            key: Key = (namespace, owner[0])
            self._queue.add(key, queueing.Trigger(pods=frozenset({pods.name(pod)})))

    def resume_ttls(self) -> None:
        """At start: queue the finished Jobs that have a TTL, so that their alarms are set again."""
        while True:
            try:
                for job in self._kube.list_finished_jobs(namespaces=self._config.namespaces):
                    if (job.get("spec") or {}).get("ttlSecondsAfterFinished") is not None:
                        meta = job["metadata"]
                        self._queue.add((meta["namespace"], meta["name"]), queueing.Trigger())
                return
            except Exception:
                logger.exception(
                    "listing the finished jobs failed, trying again in %.0f s", _MAX_ERROR_BACKOFF
                )
                time.sleep(_MAX_ERROR_BACKOFF)

    def alarm(self, key: Key) -> None:
        self._queue.add(key, queueing.Trigger(look=True))

    # -- deciding and doing (in a worker thread) -------------------------------------------------

    def reconcile(self, key: Key, trigger: queueing.Trigger) -> None:
        """Decide on the job afresh and carry the decision out; on errors, try again later."""
        try:
            for attempt in range(_CONFLICT_RETRIES):
                try:
                    self._reconcile(key, trigger, fresh=attempt > 0)
                except kube.StaleJobError:
                    continue  # the Job changed under us: read it again, decide again
                break
            else:
                raise RuntimeError(f"the Job kept changing during {_CONFLICT_RETRIES} attempts")
        except Exception:
            metrics.RECONCILE_ERRORS.inc()
            failures = self._errors.get(key, 0) + 1
            self._errors[key] = failures
            delay = min(2.0**failures, _MAX_ERROR_BACKOFF)
            logger.exception("job %s/%s: handling failed, trying again in %.0f s", *key, delay)
            self._alarms.set(key, time.time() + delay)
        else:
            self._errors.pop(key, None)

    def _reconcile(self, key: Key, trigger: queueing.Trigger, *, fresh: bool) -> None:
        newest = None if fresh else self._jobs.get(key)
        job = jobs.parse_job(newest) if newest is not None else self._read_job(key)
        if job is None:
            return
        current = podspec.pod_name(job.ref.name, max(job.status.attempts, 1))
        names = set(trigger.pods) | ({current} if trigger.look and not job.status.state.terminal else set())
        if not names:
            self._carry_out(job, lifecycle.NotLooked())
            return
        for name in sorted(names):
            # A pod that brought the job here with its own event is as that event showed it;
            # one looked up (after a relist, at an alarm) is read afresh: its last event may
            # be from before a broken watch, and the pod may have finished since.
            pod = self._newest_pod(job, name) if name in trigger.pods else self._read_pod(job, name)
            if pod is None and name != current:
                continue  # an earlier attempt's pod, gone: nothing to tell
            observed = lifecycle.PodGone() if pod is None else lifecycle.PodSeen(pod=pod)
            after = self._carry_out(job, observed)
            if after is None:
                return
            job = after  # what was written is the base of the next decision

    def _read_job(self, key: Key) -> jobs.JobView | None:
        body = self._kube.read_job(*key)
        return None if body is None else jobs.parse_job(body)

    def _newest_pod(self, job: jobs.JobView, name: str) -> dict[str, Any] | None:
        pod = self._pods.get((job.ref.namespace, name))
        if pod is not None and (pods.owner(pod) or ("", ""))[1] == job.ref.uid:
            return pod
        return self._read_pod(job, name)

    def _read_pod(self, job: jobs.JobView, name: str) -> dict[str, Any] | None:
        pod = self._kube.read_pod(job.ref.namespace, name, owner_uid=job.ref.uid)
        if pod is None:
            self._pods.drop((job.ref.namespace, name))
        else:
            self._pods.put((job.ref.namespace, name), pod)
        return pod

    def _remember(self, job: Mapping[str, Any]) -> None:
        meta = job["metadata"]
        key: Key = (meta["namespace"], meta["name"])
        status = job.get("status") or {}
        if status.get("state") in models.TERMINAL_STATES:
            # Finished Jobs leave the watch (and its DELETED may have come already): the few
            # handlings left to them (a TTL) read them. Their pods' copies go too: a pod that
            # finished while a watch was broken never sends the DELETED that would drop it.
            self._jobs.drop(key)
            for attempt in range(1, status.get("attempts", 0) + 1):
                self._pods.drop((key[0], podspec.pod_name(key[1], attempt)))
        else:
            self._jobs.put(key, job)

    def _carry_out(self, job: jobs.JobView, observation: lifecycle.Observation) -> jobs.JobView | None:
        """Decide and act; the Job as it is now (see `_act`)."""
        # Creating a pod leads to one more decision with its result; a chain of these is
        # bounded by the attempts (adopting an existing pod that failed starts the next one).
        for _ in range(models.MAX_ATTEMPTS + 2):
            now = datetime.datetime.now(datetime.UTC)
            step = lifecycle.decide(job, observation, now=now, config=self._config)
            if isinstance(step, lifecycle.Act):
                return self._act(job, step)
            try:
                pod = self._kube.create_pod(step.manifest, owner_uid=job.ref.uid)
            except kube.PodRefusedError as e:
                observation = lifecycle.CreateRefused(
                    attempt=step.attempt, code=e.code, message=e.message, after_failure=step.after_failure
                )
            else:
                self._pods.put((job.ref.namespace, pods.name(pod)), pod)
                observation = lifecycle.PodSeen(pod=pod, after_failure=step.after_failure)
        raise RuntimeError(f"job {job.ref}: no decision reached")

    def _act(self, job: jobs.JobView, act: lifecycle.Act) -> jobs.JobView | None:
        """Carry out `act`; the Job as it is now: as the status write answered (no need to read
        it again), `job` if its status was not written, None once it is deleted."""
        key: Key = (job.ref.namespace, job.ref.name)
        current = job
        # The status first: it is what may conflict, and nothing else is done on a stale Job.
        if act.status:
            written = self._kube.patch_job_status(job, act.status)
            self._remember(written)
            current = jobs.parse_job(written)
            metrics.status_written(before=job.body.get("status") or {}, patch=act.status)
        if act.delete_pod:
            pod = act.delete_pod
            self._kube.delete_pod(
                job.ref.namespace, pod.name, uid=pod.uid, resource_version=pod.resource_version
            )
            self._pods.drop((job.ref.namespace, pod.name))
        for event in act.events:
            self._post(job, event)
        if act.delete_job:
            self._kube.delete_job(job.ref)
            self._alarms.cancel(key)
            self._jobs.drop(key)
            return None
        if current.status.state.terminal:
            # Its resync alarm has nothing left to look at; a TTL is set again just below.
            self._alarms.cancel(key)
        elif current.status.attempts:
            # The resync (see config.resync_seconds); an earlier alarm of the job stands.
            self._alarms.set(key, time.time() + self._config.resync_seconds)
        if act.wake_at is not None:
            self._alarms.set(key, act.wake_at.timestamp())
        return current

    def _post(self, job: jobs.JobView, event: lifecycle.Event) -> None:
        # Events tell the story (the log tells it too, for those who read logs and not
        # `kubectl describe`); a lost one must not undo (or repeat) what was done.
        logger.info("job %s/%s: %s: %s", job.ref.namespace, job.ref.name, event.reason, event.message)
        try:
            now = statuses.timestamp(datetime.datetime.now(datetime.UTC))
            self._kube.post_event(job, type=event.type, reason=event.reason, message=event.message, now=now)
        except Exception:
            logger.warning(
                "job %s/%s: could not post event %s", job.ref.namespace, job.ref.name, event, exc_info=True
            )
