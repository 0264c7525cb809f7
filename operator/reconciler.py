"""Carrying out `lifecycle.decide` for a job: read, decide, write, one job at a time.

Three things bring a job here: an event of the Job, an event of one of its pods, or one of
its alarms. They only queue the job (`queueing`); a worker then takes the newest copy of
the Job seen (`core.cache`: from its watch events and the operator's own writes, read from
the apiserver only when there is none) and the pods concerned (as their own watch events
showed them; read afresh when only looked up, or once they left the watch), decides, and
writes. The status patch carries the resourceVersion the decision was taken on, so a
decision on a stale Job is never written: it is taken again on a Job read afresh.
Everything is idempotent, so a restarted operator simply decides again: pod names are fixed
per attempt, so creating a pod that exists adopts it, and deleting a pod that is gone is a
no-op.

Everything kept per job is keyed by the Job's uid (`JobRef`): a Job deleted and created
again under its name at once is another job, which never meets the old one's copy, pods,
alarms or error count (its pods are owned by the old uid, and are not its own).

An unfinished job with a pod has an alarm at most `resync_seconds` ahead (the resync, see
`config`), which is dropped when it finishes. Finished jobs cost nothing: the watches leave
them (and finished pods) out, and only the TTLs of finished jobs are picked up again when
the operator starts (`resume_ttls`).
"""

from __future__ import annotations

import datetime
import logging
import time
from collections.abc import Iterator, Mapping
from typing import Any, Final

from jobgate.core import cache, events, jobs
from jobgate.core import pods as kube_pods
from jobgate.crds import models, names
from jobgate.operator import alarms as alarming
from jobgate.operator import archiver as archiving
from jobgate.operator import config as configuration
from jobgate.operator import lifecycle, metrics, pods, queueing

logger = logging.getLogger(__name__)

Key = jobs.JobRef
_PodKey = tuple[str, str]  # (uid of the Job, name of the pod)

_CONFLICT_RETRIES: Final = 5
_MAX_ERROR_BACKOFF: Final = 60.0  # seconds between attempts on a job whose handling fails
_NAME_TAKEN_RETRY: Final = 1.0  # seconds until a pod name held by a deleted namesake's pod is tried again


class Reconciler:
    def __init__(
        self,
        *,
        job_api: jobs.Jobs,
        pod_api: kube_pods.Pods,
        recorder: events.Recorder,
        config: configuration.Config,
        alarms: alarming.Alarms[Key],
        queue: queueing.WorkQueue[Key],
        archiver: archiving.Archiver | None = None,
    ) -> None:
        self._job_api = job_api
        self._archiver = archiver  # None: the deployment has no object store
        self._pod_api = pod_api
        self._recorder = recorder
        self._config = config
        self._alarms = alarms
        self._queue = queue
        self._errors: dict[Key, int] = {}  # consecutive failures, for the backoff
        # The newest versions seen of unfinished Jobs and pods (see `seen`): reading them
        # afresh for every handling was most of the operator's apiserver requests.
        self._jobs: cache.Newest[Key] = cache.Newest()
        self._pods: cache.Newest[_PodKey] = cache.Newest()
        # The last copies of pods that left the watch, until their job is handled: a pod
        # evicted and deleted is read as gone, and only this copy says it was evicted.
        self._departed: dict[_PodKey, Mapping[str, Any]] = {}

    # -- what brings a job here (called from kopf's event loop: no blocking) -----------------

    def job_event(self, *, event_type: str | None, job: Mapping[str, Any]) -> None:
        """A watch event of an unfinished Job (`event_type` None: the listing at start or relist).

        A Job that finishes leaves the watch (see `handlers`) with a DELETED event, as a
        deleted one does: its copy goes; an alarm of a deleted Job finds nothing.
        """
        meta, spec, status = job["metadata"], job.get("spec") or {}, job.get("status") or {}
        ref = jobs.JobRef(namespace=meta["namespace"], name=meta["name"], uid=meta["uid"])
        if event_type == "DELETED":
            self._jobs.drop(ref)
            return
        if event_type is None:
            self._jobs.listed(ref, job)
            # After a restart: the pod may have ended, or vanished, while nobody watched.
            self._queue.add(ref, queueing.Trigger(look=bool(status.get("attempts"))))
            return
        self._jobs.watched(ref, job)
        if event_type == "ADDED" or (event_type == "MODIFIED" and spec.get("stop")):
            self._queue.add(ref, queueing.Trigger())
        # Other changes are the operator's own status writes: nothing new to act on.

    def pod_event(self, *, event_type: str | None, pod: Mapping[str, Any]) -> None:
        """A watch event of an unfinished pod; DELETED also means it finished (see `handlers`)."""
        owner = kube_pods.owner(pod)
        if owner is None:
            return
        ref = jobs.JobRef(namespace=pod["metadata"]["namespace"], name=owner[0], uid=owner[1])
        if event_type == "DELETED":
            # Its copy shows the pod before it finished (it left the watch, which streams
            # unfinished pods only), or before it was deleted: the pod is read afresh.
            self._pods.drop((ref.uid, pods.name(pod)))
            self._departed[(ref.uid, pods.name(pod))] = pod
        elif event_type is None:
            self._pods.listed((ref.uid, pods.name(pod)), pod)  # a relist: the watch goes on from it
        else:
            self._pods.watched((ref.uid, pods.name(pod)), pod)
        # A pod's changes come in bursts (bound, then running): handled together, they are
        # one status write (the Job controller batches its pods' events the same way).
        self._queue.add(ref, queueing.Trigger(pods=frozenset({pods.name(pod)})), delay=queueing.POD_BATCH)

    def resume_ttls(self) -> None:
        """At start: queue the finished Jobs that have a TTL, so that their alarms are set again."""
        while True:
            try:
                for job in self._finished_jobs():
                    if (
                        isinstance(job.spec, models.JobSpec)
                        and job.spec.ttl_seconds_after_finished is not None
                    ):
                        self._queue.add(job.ref, queueing.Trigger())
                return
            except Exception:
                logger.exception(
                    "listing the finished jobs failed, trying again in %.0f s", _MAX_ERROR_BACKOFF
                )
                time.sleep(_MAX_ERROR_BACKOFF)

    def _finished_jobs(self) -> Iterator[jobs.Job]:
        for namespace in self._config.namespaces or (None,):
            for state in sorted(models.TERMINAL_STATES):
                yield from self._job_api.list(namespace=namespace, field_selector=f"status.state={state}")

    def alarm(self, ref: Key) -> None:
        self._queue.add(ref, queueing.Trigger(look=True))

    # -- deciding and doing (in a worker thread) -------------------------------------------------

    def reconcile(self, ref: Key, trigger: queueing.Trigger) -> None:
        """Decide on the job afresh and carry the decision out; on errors, try again later."""
        try:
            for attempt in range(_CONFLICT_RETRIES):
                try:
                    self._reconcile(ref, trigger, fresh=attempt > 0)
                except jobs.StaleJobError:
                    continue  # the Job changed under us: read it again, decide again
                break
            else:
                raise RuntimeError(f"the Job kept changing during {_CONFLICT_RETRIES} attempts")
        except Exception:
            metrics.RECONCILE_ERRORS.inc()
            failures = self._errors.get(ref, 0) + 1
            self._errors[ref] = failures
            delay = min(2.0**failures, _MAX_ERROR_BACKOFF)
            logger.exception("job %s: handling failed, trying again in %.0f s", ref, delay)
            self._alarms.set(ref, time.time() + delay)
        else:
            self._errors.pop(ref, None)

    def _reconcile(self, ref: Key, trigger: queueing.Trigger, *, fresh: bool) -> None:
        newest = None if fresh else self._jobs.get(ref)
        job = jobs.parse(newest) if newest is not None else self._read_job(ref)
        if job is None:
            self._forget(ref)  # deleted (or a namesake stands in its place): nothing left to do
            return
        current = names.pod_name(job.ref.name, max(job.status.attempts, 1))
        # A finished job is looked at too (its TTL's alarm, a retry after an error): a pod
        # whose delete failed after the final status was written is still to go.
        looked = {current} if trigger.look else set()
        wanted = set(trigger.pods) | looked
        if not wanted:
            self._carry_out(job, lifecycle.NotLooked())
            return
        for name in sorted(wanted):
            # A pod that brought the job here with its own event is as that event showed it;
            # one looked up (after a relist, at an alarm) is read afresh, even if an event of
            # it came too: its last event may be from before a broken watch, and the pod may
            # have finished since.
            pod = self._read_pod(job, name) if name in looked else self._newest_pod(job, name)
            # Kept until the decision is carried out: one taken again (a conflict) needs it too.
            last_seen = self._departed.get((job.ref.uid, name))
            if pod is None and name != current:
                self._departed.pop((job.ref.uid, name), None)
                continue  # an earlier attempt's pod, gone: nothing to tell
            if pod is not None and self._archiver is not None:
                self._archive(job, pod)
            observed = self._gone(job, last_seen) if pod is None else self._seen(job, pod)
            after = self._carry_out(job, observed)
            self._departed.pop((job.ref.uid, name), None)
            if after is None:
                return
            job = after  # what was written is the base of the next decision

    def _archive(self, job: jobs.Job, pod: dict[str, Any]) -> None:
        """An ended pod's log is archived; a pod being deleted while it runs (someone else's
        delete, a preemption) has its log followed to its end."""
        assert self._archiver is not None
        if pods.finished(pod):
            self._archiver.ended(job.ref, pods.name(pod), pods.attempt(pod))
        elif pods.terminating(pod):
            self._archiver.follow(job.ref, pods.name(pod), pods.attempt(pod))

    def _gone(self, job: jobs.Job, last_seen: Mapping[str, Any] | None) -> lifecycle.PodGone:
        """The pod vanished; whether its node did too (read only then, and not for a job
        being stopped: its pod was deleted for the stop)."""
        bound_to = pods.node(last_seen) if last_seen else None
        stopping = isinstance(job.spec, models.JobSpec) and job.spec.stop
        deleted = (
            bound_to is not None
            and not (stopping or job.status.state.terminal)
            and not self._pod_api.node_exists(bound_to)
        )
        return lifecycle.PodGone(last_seen=last_seen, node_deleted=deleted)

    def _seen(self, job: jobs.Job, pod: dict[str, Any]) -> lifecycle.PodSeen:
        """The pod, with the kubelet's mount failures when it may be stuck on a volume."""
        now = datetime.datetime.now(datetime.UTC)
        if job.status.state.terminal or not pods.may_fail_to_mount(pod, now=now):
            return lifecycle.PodSeen(pod=pod)
        said = self._pod_api.event_messages(
            job.ref.namespace, pod_uid=pods.uid(pod), reason=pods.FAILED_MOUNT
        )
        return lifecycle.PodSeen(pod=pod, mount_failures=tuple(said))

    def _read_job(self, ref: Key) -> jobs.Job | None:
        with self._jobs.requesting(ref) as answer:
            job = self._job_api.read_ref(ref)
            if job is not None:
                answer.read(job.body)
        return job

    def _newest_pod(self, job: jobs.Job, name: str) -> dict[str, Any] | None:
        pod = self._pods.get((job.ref.uid, name))
        return pod if pod is not None else self._read_pod(job, name)

    def _read_pod(self, job: jobs.Job, name: str) -> dict[str, Any] | None:
        with self._pods.requesting((job.ref.uid, name)) as answer:
            pod = self._pod_api.read(job.ref.namespace, name, owner_uid=job.ref.uid)
            if pod is not None:
                answer.read(pod)
        if pod is None:
            self._pods.drop((job.ref.uid, name))
        return pod

    def _finished(self, job: jobs.Job) -> None:
        # Finished Jobs leave the watch (and its DELETED may have come already): the few
        # handlings left to them (a TTL) read them. Their pods' copies go too: a pod that
        # finished while a watch was broken never sends the DELETED that would drop it.
        self._jobs.drop(job.ref)
        for attempt in range(1, job.status.attempts + 1):
            self._pods.drop((job.ref.uid, names.pod_name(job.ref.name, attempt)))
            self._departed.pop((job.ref.uid, names.pod_name(job.ref.name, attempt)), None)

    def _forget(self, ref: Key) -> None:
        self._alarms.cancel(ref)
        self._errors.pop(ref, None)
        self._jobs.drop(ref)
        for key in [key for key in self._departed if key[0] == ref.uid]:
            self._departed.pop(key, None)

    def _carry_out(self, job: jobs.Job, observation: lifecycle.Observation) -> jobs.Job | None:
        """Decide and act; the Job as it is now (see `_act`)."""
        # Creating a pod leads to one more decision with its result; a chain of these is
        # bounded by the attempts (adopting an existing pod that failed starts the next one).
        for _ in range(models.MAX_ATTEMPTS + 2):
            now = datetime.datetime.now(datetime.UTC)
            step = lifecycle.decide(job, observation, now=now, config=self._config)
            if isinstance(step, lifecycle.Act):
                has_pod = isinstance(observation, lifecycle.PodSeen) or job.status.attempts > 0
                return self._act(job, step, has_pod=has_pod)
            try:
                with self._pods.requesting((job.ref.uid, step.manifest["metadata"]["name"])) as answer:
                    pod, created = self._pod_api.create(step.manifest, owner_uid=job.ref.uid)
                    (answer.wrote if created else answer.read)(pod)  # adopted: read, not written
                if created:
                    metrics.PODS_CREATED.inc()
            except kube_pods.RefusedPodError as e:
                observation = lifecycle.CreateRefused(
                    attempt=step.attempt,
                    code=e.code,
                    message=e.message,
                    after_failure=step.after_failure,
                    started=step.started,
                )
            except kube_pods.NameTakenError as e:
                # The pod of a deleted namesake job, which the garbage collector is removing:
                # the name is free in a moment.
                logger.info("job %s: %s; trying again in %.0f s", job.ref, e, _NAME_TAKEN_RETRY)
                self._alarms.set(job.ref, time.time() + _NAME_TAKEN_RETRY)
                return None
            else:
                observation = lifecycle.PodSeen(
                    pod=pod, after_failure=step.after_failure, started=step.started
                )
        raise RuntimeError(f"job {job.ref}: no decision reached")

    def _act(self, job: jobs.Job, act: lifecycle.Act, *, has_pod: bool) -> jobs.Job | None:
        """Carry out `act`; the Job as it is now: as the status write answered (no need to read
        it again), `job` if its status was not written, None once it is deleted."""
        current = job
        # The status first: it is what may conflict, and nothing else is done on a stale Job.
        if act.status:
            # A decision that is written names every deadline of the job anew (`wake_at`):
            # earlier alarms (a settling pod's, say) have nothing left to look at.
            self._alarms.cancel(job.ref)
            with self._jobs.requesting(job.ref) as answer:
                current = self._job_api.patch_status(job, act.status)
                answer.wrote(current.body)
            if current.status.state.terminal:
                self._finished(current)
            metrics.status_written(before=job.body.get("status") or {}, patch=act.status)
        if act.delete_pod:
            pod = act.delete_pod
            if self._archiver is not None:
                self._archiver.follow(job.ref, pod.name, pod.attempt)
            self._pod_api.delete(
                job.ref.namespace, pod.name, uid=pod.uid, resource_version=pod.resource_version
            )
            self._pods.drop((job.ref.uid, pod.name))
        for event in act.events:
            self._post(job.ref, event)
        if act.delete_job:
            self._job_api.delete(job.ref)
            if self._archiver is not None:
                self._archiver.remove(job.ref)
            self._forget(job.ref)
            return None
        if current.status.state.terminal:
            # Its resync alarm has nothing left to look at; a TTL is set again just below.
            self._alarms.cancel(job.ref)
        elif has_pod:
            # The resync (see config.resync_seconds); an earlier alarm of the job stands.
            self._alarms.set(job.ref, time.time() + self._config.resync_seconds)
        if act.wake_at is not None:
            self._alarms.set(job.ref, act.wake_at.timestamp())
        return current

    def _post(self, ref: jobs.JobRef, event: lifecycle.Event) -> None:
        # Events tell the story (the log tells it too, for those who read logs and not
        # `kubectl describe`); a lost one must not undo (or repeat) what was done.
        logger.info("job %s: %s: %s", ref, event.reason, event.message)
        try:
            self._recorder.post(ref, type=event.type, reason=event.reason, message=event.message)
        except Exception:
            logger.warning("job %s: could not post event %s", ref, event, exc_info=True)
