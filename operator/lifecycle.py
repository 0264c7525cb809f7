"""What to do next for a job, given the job and what is known of its pod: a pure function.

`decide(job, seen, now=..., config=...)` returns either `CreatePod` (create this pod, then
call `decide` again with what creating it gave) or `Act`: the status patch, the pod or
Job to delete, the events to post, and when to look at the job again. The caller does
the I/O; everything that decides a job's fate is here, where unit tests reach it.

A job's life, one attempt after another (attempt N's pod is always `<job>-N`):

    PENDING  pod created, waiting for the scheduler   Scheduled=False Pending
             the scheduler cannot place it            Scheduled=False Unschedulable (its message)
             a ResourceQuota refuses the pod          Scheduled=False QuotaExceeded (apiserver's message),
                                                      created again with backoff
             bound to a node, containers starting     Scheduled=True Scheduled
             they cannot start (yet)                  Started=False, the kubelet's reason (ImagePullBackOff,
                                                      FailedMount, CreateContainerError ...; see pods.py)
    RUNNING  the pod runs                              (Started=True, if it was ever False)
    SUCCEEDED  exit 0                                  Finished=True Succeeded
    FAILED     non-zero exit, eviction, pod lost: a new attempt while attempts remain, else
               Finished=True Failed / Evicted / PodLost; also SchedulingTimeout (not scheduled
               within spec.schedulingTimeoutMs), StartFailed (an error that cannot heal, such
               as an invalid image name, or Started=False for longer than the deployment's
               start timeout: the pod is deleted), DeadlineExceeded (spec.activeDeadlineSeconds
               after the start), InvalidSpec (nothing to run)
    STOPPED    spec.stop                               Finished=True Stopped
"""

from __future__ import annotations

import dataclasses
import datetime
from typing import Any, Final

from jobgate.core import events as kube_events
from jobgate.core import jobs
from jobgate.crds import errors, models, names, policy, workdir
from jobgate.operator import pods, podspec, retries, statuses

Reason = models.Reason
State = models.JobState

# The scheduler's failure reasons as the Scheduled condition carries them.
SCHEDULING_FAILURES = frozenset({Reason.UNSCHEDULABLE, Reason.QUOTA_EXCEEDED, Reason.FORBIDDEN})
# Creating a refused pod again: 1 s, 2 s, 4 s ... at most this long apart.
MAX_CREATE_BACKOFF = datetime.timedelta(seconds=30)
# A pod just bound to its node is usually running a moment later: its Scheduled is written
# only if it is not by then, so that the two are one write (the Job controller batches its
# pods' changes for a second the same way, `syncJobBatchPeriod`).
SETTLE = datetime.timedelta(seconds=1)
# How often a pod that may be stuck on a volume is looked at (with its events) again: a
# stuck pod changes nothing that its watch would show.
MOUNT_POLL = datetime.timedelta(seconds=10)


@dataclasses.dataclass(frozen=True)
class NotLooked:
    """The pod was not looked at: a change of the Job itself brought us here."""


@dataclasses.dataclass(frozen=True, kw_only=True)
class PodGone:
    """The current attempt's pod does not exist; `last_seen`: its last copy, when known (the
    watch's DELETED event of it), which tells whether it was evicted; `node_deleted`: the
    node it was bound to does not exist either."""

    last_seen: pods.Pod | None = None
    node_deleted: bool = False


@dataclasses.dataclass(frozen=True, kw_only=True)
class PodSeen:
    """A pod of the job, as the apiserver last showed it.

    `after_failure`: the pod was just created to replace this failed attempt (which the
    status that is written next records, if it does not yet). `mount_failures`: the
    kubelet's FailedMount messages of the pod, when they were read (see
    `pods.may_fail_to_mount`).
    """

    pod: pods.Pod
    mount_failures: tuple[str, ...] = ()
    after_failure: models.FailedAttempt | None = None
    started: str | None = None  # the job's start as the decision that created the pod saw it


@dataclasses.dataclass(frozen=True, kw_only=True)
class CreateRefused:
    """The apiserver refused to create the pod of `attempt` (HTTP `code`, its message)."""

    attempt: int
    code: int
    message: str
    after_failure: models.FailedAttempt | None = None
    started: str | None = None


Observation = NotLooked | PodGone | PodSeen | CreateRefused
# How the apiserver's PodSecurity admission words a pod it refuses (always a 403).
POD_SECURITY_REFUSAL: Final = "violates PodSecurity"


@dataclasses.dataclass(frozen=True, kw_only=True)
class CreatePod:
    manifest: dict[str, Any]
    attempt: int
    # Passed back in the observation of the result: the failure this attempt follows, and
    # the job's start (the first attempt's pod, which no write may have recorded yet).
    after_failure: models.FailedAttempt | None = None
    started: str | None = None


@dataclasses.dataclass(frozen=True, kw_only=True)
class Event:
    type: kube_events.Type
    reason: str
    message: str


@dataclasses.dataclass(frozen=True, kw_only=True)
class PodToDelete:
    """Preconditions when known: never delete a namesake (uid), nor a pod that has changed
    since it was seen (resource_version), e.g. one that finished meanwhile."""

    name: str
    attempt: int
    uid: str | None = None
    resource_version: str | None = None


@dataclasses.dataclass(frozen=True, kw_only=True)
class Act:
    status: dict[str, Any] | None = None  # JSON merge patch of the Job's status
    delete_pod: PodToDelete | None = None
    delete_job: bool = False
    events: tuple[Event, ...] = ()
    wake_at: datetime.datetime | None = None  # look at the job again then (and look at its pod)


Step = CreatePod | Act


def decide(job: jobs.Job, seen: Observation, *, now: datetime.datetime, config: policy.JobPolicy) -> Step:
    if job.deleting:
        return Act()  # the garbage collector takes the pod with the Job
    if job.status.state.terminal:
        return _after_end(job, seen, now=now)
    if isinstance(seen, PodSeen) and pods.attempt(seen.pod) < max(job.status.attempts, 1):
        # An earlier attempt's pod (or one without an attempt): its story is told, it may only go.
        return Act(delete_pod=_if_alive(seen))
    new = job.status.model_copy(deep=True)
    new.observed_generation = job.generation
    if isinstance(job.spec, errors.SpecError):
        return _end(job, new, reason=Reason.INVALID_SPEC, message=str(job.spec), now=now)
    progress = _Progress(job=job, spec=job.spec, new=new, now=now, config=config)
    return progress.step(seen)


@dataclasses.dataclass(kw_only=True)
class _Progress:
    """One decision on a job that has not finished; `new` is its status being built."""

    job: jobs.Job
    spec: models.JobSpec
    new: models.JobStatus
    now: datetime.datetime
    config: policy.JobPolicy
    retry_at: datetime.datetime | None = None
    look_again_at: datetime.datetime | None = None  # a pod that may be stuck on a volume
    cannot_start: str | None = None  # why the pod can never start (the job fails now)
    after_failure: models.FailedAttempt | None = None

    def step(self, seen: Observation) -> Step:
        if isinstance(seen, PodSeen | CreateRefused):
            self.after_failure = seen.after_failure
            if seen.after_failure is not None:
                self._record(seen.after_failure)
            self.new.start_time = self.new.start_time or seen.started
        if isinstance(seen, PodSeen) and pods.name(seen.pod) != self.new.pod_name:
            since = pods.created(seen.pod) or self.now
            self._start_attempt(pods.attempt(seen.pod), pod_name=pods.name(seen.pod), since=since)
        if isinstance(seen, CreateRefused) and seen.attempt != self.new.attempts:
            self._start_attempt(seen.attempt, pod_name=None, since=self.now)

        if isinstance(seen, PodSeen):
            # First, where the pod is: a pod first seen when it has already ended (its events
            # came in one burst) still tells the job's node.
            self._observe(seen)
        # What the pod did is a fact: it wins over a stop or a deadline that came later.
        ended = self._pod_outcome(seen)
        if ended is not None and ended.reason == Reason.SUCCEEDED:
            return self._end(
                ended.reason, ended.message, exit_code=0, end_time=_normalized(ended.finished_at)
            )
        if self.spec.stop:
            return self._end(
                Reason.STOPPED, "Job was intentionally stopped.", pod_to_delete=self._live_pod(seen)
            )
        if self._passed(self._deadline()):
            message = f"the job was active longer than its deadline of {self.spec.active_deadline_seconds} s"
            return self._end(Reason.DEADLINE_EXCEEDED, message, pod_to_delete=self._live_pod(seen))
        if ended is not None:
            if self._recorded():  # its failure was handled: the next attempt, once due
                return self._next_attempt_when_due()
            return self._attempt_failed(ended)
        if self.cannot_start is not None:
            message = f"the job cannot start: {self.cannot_start}"
            return self._end(Reason.START_FAILED, message, pod_to_delete=self._live_pod(seen))
        if self._passed(self._start_deadline()):
            return self._end(
                Reason.START_FAILED, self._start_timeout_message(), pod_to_delete=self._live_pod(seen)
            )

        if isinstance(seen, CreateRefused):
            # Invalid (422) and the like, or a 403 of the namespace's Pod Security level:
            # creating it again cannot help. Other 403s are a quota's, which may free up.
            if seen.code != 403 or POD_SECURITY_REFUSAL in seen.message:
                return self._end(Reason.INVALID_SPEC, f"the pod was refused: {seen.message}")
            self._refused(seen)
        if self._passed(self._scheduling_deadline()):
            return self._end(
                Reason.SCHEDULING_TIMEOUT, self._timeout_message(), pod_to_delete=self._live_pod(seen)
            )
        if (isinstance(seen, NotLooked) and self.new.attempts == 0) or (
            isinstance(seen, PodGone) and self.new.pod_name is None
        ):
            return self._create(max(self.new.attempts, 1))
        settled = self._settled_at(seen)
        if settled is not None:
            return Act(wake_at=settled)
        return self._act()

    def _settled_at(self, seen: Observation) -> datetime.datetime | None:
        """When to write that the pod is bound, if it is only just (and not running yet)."""
        was = self.job.status.condition(models.ConditionType.SCHEDULED)
        if not isinstance(seen, PodSeen) or self.new.state != State.PENDING:
            return None
        if was is not None and was.status == models.ConditionStatus.TRUE:
            return None  # written already
        bound = pods.bound_at(seen.pod)
        if bound is None or pods.terminating(seen.pod) or self.now >= bound + SETTLE:
            return None
        return bound + SETTLE

    # -- attempts -------------------------------------------------------------------------

    def _start_attempt(self, attempt: int, *, pod_name: str | None, since: datetime.datetime) -> None:
        """The job is on `attempt` since `since`: its pod's creation (a fact a restarted
        operator reads again, so the scheduling timeout's clock never restarts), or now."""
        new, restart = self.new, attempt != self.new.attempts
        if restart:
            new.attempts = attempt
            new.scheduling_failures = 0
            new.node_name = new.host_ip = new.exit_code = None
            new.state = State.PENDING
            new.conditions = [c for c in new.conditions if c.type != models.ConditionType.STARTED]
        # A new attempt waits for the scheduler anew: its scheduling timeout starts now.
        self._scheduled(False, Reason.PENDING, "waiting for the scheduler", restart=restart, since=since)
        new.pod_name = pod_name
        new.start_time = new.start_time or statuses.timestamp(since)
        # Written with the first attempt's status, where its logs will be once archived.
        new.log_ref = new.log_ref or self.config.log_ref(
            self.job.ref.namespace, self.job.ref.name, self.job.ref.uid
        )
        if pod_name:
            new.message = f"pod {pod_name} is waiting to be scheduled"

    def _create(self, attempt: int) -> Step:
        try:
            manifest = podspec.render_pod(
                job=self.job.ref,
                spec=self.spec,
                attempt=attempt,
                config=self.config,
                created_at=statuses.timestamp(self.now),
            )
        except errors.UnfetchableError as e:  # accepted by Ray's dialect, as Ray's server does
            fetcher = (
                podspec.FETCH_CONTAINER
                if e.loc == workdir.LOC
                else podspec.py_module_container(int(e.loc[-1]))
            )
            return self._end(Reason.START_FAILED, f"{podspec.setup_failure(fetcher)}: {e}")
        except errors.SpecError as e:
            return self._end(Reason.INVALID_SPEC, str(e))
        return CreatePod(
            manifest=manifest, attempt=attempt, after_failure=self.after_failure, started=self.new.start_time
        )

    def _pod_outcome(self, seen: Observation) -> pods.Outcome | None:
        if isinstance(seen, PodSeen):
            return pods.outcome(seen.pod)
        if isinstance(seen, PodGone) and self.new.pod_name:
            return pods.lost(self.new.pod_name, seen.last_seen, node_deleted=seen.node_deleted)
        return None

    def _attempt_failed(self, outcome: pods.Outcome) -> Step:
        """The current attempt failed: record it, and end the job or try again (see `retries`)."""
        new, most = self.new, self.spec.max_attempts
        verdict = retries.verdict(self.spec.pod_failure_policy, outcome)
        counted = new.failed_attempts + (verdict.action != models.RetryAction.IGNORE)
        last = (
            verdict.action == models.RetryAction.FAIL_JOB
            or counted >= most
            or new.attempts >= models.MAX_ATTEMPTS
        )
        delay = (
            datetime.timedelta()
            if last or verdict.action == models.RetryAction.IGNORE
            else retries.backoff(counted, base_seconds=self.config.retry_backoff_seconds)
        )
        message = self._described(outcome.message, verdict, counted=counted)
        failure = models.FailedAttempt(
            attempt=new.attempts,
            pod_name=new.pod_name or names.pod_name(self.job.ref.name, new.attempts),
            reason=outcome.reason,
            message=message,
            exit_code=outcome.exit_code,
            finished_at=_normalized(outcome.finished_at),
            action=verdict.action,
            rule=verdict.rule,
            retry_at=statuses.timestamp(self.now + delay) if delay else None,
        )
        self._record(failure)
        if last:
            ended_at = failure.finished_at
            return self._end(outcome.reason, message, exit_code=outcome.exit_code, end_time=ended_at)
        if not delay:
            self.after_failure = failure
            return self._create(new.attempts + 1)
        new.state = State.PENDING
        new.exit_code = outcome.exit_code
        new.message = f"{message}; attempt {counted + 1} of {most} in {delay.total_seconds():g} s"
        self.retry_at = self.now + delay
        return self._act()

    def _record(self, failure: models.FailedAttempt) -> None:
        """Count and list a failed attempt (once: a decision may see it again)."""
        if self.new.failures and self.new.failures[-1].attempt >= failure.attempt:
            return
        if failure.action != models.RetryAction.IGNORE:
            self.new.failed_attempts += 1
        self.new.failures = [*self.new.failures, failure][-models.MAX_HISTORY :]

    def _described(self, message: str, verdict: retries.Verdict, *, counted: int) -> str:
        """A failed attempt's message, with which attempt it was and the rule that matched."""
        notes = []
        if verdict.action == models.RetryAction.IGNORE:
            notes.append("not counted")
        elif self.spec.max_attempts > 1:
            notes.append(f"attempt {counted} of {self.spec.max_attempts}")
        if verdict.rule is not None:
            notes.append(f"podFailurePolicy rule {verdict.rule}: {verdict.action}")
        return f"{message} ({'; '.join(notes)})" if notes else message

    def _recorded(self) -> bool:
        """Whether the current attempt's failure is recorded already (its back-off runs)."""
        return bool(self.new.failures) and self.new.failures[-1].attempt == self.new.attempts

    def _next_attempt_when_due(self) -> Step:
        retry_at = self.new.failures[-1].retry_at
        due = statuses.parse_time(retry_at) if retry_at else None
        if due is not None and self.now < due:
            self.retry_at = due
            return self._act()
        self.after_failure = self.new.failures[-1]
        return self._create(self.new.attempts + 1)

    # -- the current attempt's progress ---------------------------------------------------

    def _observe(self, seen: PodSeen) -> None:
        pod = seen.pod
        new, name = self.new, pods.name(pod)
        if pods.terminating(pod):
            return  # its end (or deletion) is what comes next
        if pods.scheduled(pod):
            new.node_name, new.host_ip = pods.node(pod), pods.host_ip(pod)
            self._scheduled(True, Reason.SCHEDULED, f"pod {name} was scheduled to node {new.node_name}")
            if pods.finished(pod):
                return  # how it ended is what the job's status says next
            if pods.phase(pod) != "Pending":
                new.state = State.RUNNING
                new.message = f"pod {name} is running on node {new.node_name}"
                if self._start_problem() is not None:
                    self._started(True, Reason.STARTED, f"pod {name} started on node {new.node_name}")
                return
            new.state = State.PENDING
            problem = pods.start_problem(pod, seen.mount_failures)
            if problem is not None:
                self._cannot_start_yet(name, problem)
            elif self._start_problem() is None:  # else: as it was said, until the pod runs
                new.message = f"pod {name} is starting on node {new.node_name}"
            if problem is not None and problem.reason != pods.FAILED_MOUNT:
                return  # the pod's own status says it: its watch brings what changes
            if pods.may_fail_to_mount(pod, now=self.now):
                self.look_again_at = self.now + MOUNT_POLL
            elif (bound := pods.bound_at(pod)) is not None and self.now < bound + pods.MOUNT_GRACE:
                self.look_again_at = bound + pods.MOUNT_GRACE
            return
        why = pods.unschedulable_message(pod)
        if why is not None:
            self._scheduling_failed(Reason.UNSCHEDULABLE, why)
            new.message = f"pod {name} cannot be scheduled yet: {why}"

    def _cannot_start_yet(self, name: str, problem: pods.StartProblem) -> None:
        """Record why the pod does not start: the first explanation of a reason is kept (a
        pull's error and its back-off alternate; the first says what is wrong)."""
        old = self._start_problem()
        message = (
            old.message
            if old is not None and old.reason == problem.reason
            else self._blame(problem) + problem.message
        )
        self._started(False, problem.reason, message)
        self.new.message = f"pod {name} cannot start yet: {message}"
        if problem.final:
            self.cannot_start = message

    def _blame(self, problem: pods.StartProblem) -> str:
        """The job's own input at fault, when one is (as a prefix of the message)."""
        image_problem = problem.reason in (pods.PULL_FAILED, *pods.FINAL)
        fetcher = podspec.fetches(problem.container or "")
        if problem.volume == podspec.SOURCE_VOLUME:  # the file:// root, of the working_dir or a py_module
            env = self.spec.runtime_env
            by_file = (env.working_dir or "").lower().startswith("file:")
            by_modules = not by_file and any(uri.lower().startswith("file:") for uri in env.py_modules)
            return f"runtime_env.{'py_modules' if by_modules else 'working_dir'}: "
        if image_problem and fetcher and self.config.fetch_image_override:
            return "the deployment's JOBGATE_FETCH_IMAGE: "
        if image_problem and self.spec.runtime_env.image_uri:
            return "runtime_env.image_uri: "
        if image_problem:
            return "the deployment's JOBGATE_IMAGE: "
        return ""

    def _start_problem(self) -> models.Condition | None:
        """The Started condition while it says that the pod cannot start (else None)."""
        started = self.new.condition(models.ConditionType.STARTED)
        return started if started is not None and started.status == models.ConditionStatus.FALSE else None

    def _started(self, true: bool, reason: str, message: str) -> None:
        kind = models.ConditionType.STARTED
        statuses.set_condition(self.new, kind=kind, true=true, reason=reason, message=message, now=self.now)

    def _refused(self, refusal: CreateRefused) -> None:
        quota = "exceeded quota" in refusal.message
        self._scheduling_failed(
            Reason.QUOTA_EXCEEDED if quota else Reason.FORBIDDEN, refusal.message, always=True
        )
        self.new.message = f"the pod cannot be created yet: {refusal.message}"
        failures = max(self.new.scheduling_failures, 1)
        self.retry_at = self.now + min(
            datetime.timedelta(seconds=2 ** min(failures - 1, 10)), MAX_CREATE_BACKOFF
        )

    def _scheduling_failed(self, reason: Reason, message: str, *, always: bool = False) -> None:
        """Count a failure (each refusal, or each new answer of the scheduler) and record it."""
        old = self.new.condition(models.ConditionType.SCHEDULED)
        if always or old is None or (old.reason, old.message) != (reason, message):
            self.new.scheduling_failures += 1
        self._scheduled(False, reason, message)

    def _scheduled(
        self,
        true: bool,
        reason: Reason,
        message: str,
        *,
        restart: bool = False,
        since: datetime.datetime | None = None,
    ) -> None:
        statuses.set_condition(
            self.new,
            kind=models.ConditionType.SCHEDULED,
            true=true,
            reason=reason,
            message=message,
            now=since or self.now,
            restart=restart,
        )

    def _live_pod(self, seen: Observation) -> PodToDelete | None:
        """The current attempt's pod, to delete when the job ends early (None: there is none)."""
        if isinstance(seen, PodSeen):
            return _if_alive(seen)
        if isinstance(seen, PodGone | CreateRefused):
            return None
        # Not looked at: the first attempt's pod exists before the status says so (see
        # `_only_waiting`); deleting one that does not exist is a no-op.
        attempt = max(self.new.attempts, 1)
        return PodToDelete(name=names.pod_name(self.job.ref.name, attempt), attempt=attempt)

    # -- deadlines --------------------------------------------------------------------------

    def _passed(self, deadline: datetime.datetime | None) -> bool:
        return deadline is not None and self.now >= deadline

    def _deadline(self) -> datetime.datetime | None:
        if self.spec.active_deadline_seconds is None or self.new.start_time is None:
            return None
        return statuses.parse_time(self.new.start_time) + datetime.timedelta(
            seconds=self.spec.active_deadline_seconds
        )

    def _start_deadline(self) -> datetime.datetime | None:
        """When the current attempt's pod must have started by (None: nothing keeps it)."""
        problem = self._start_problem()
        if problem is None or self.new.state != State.PENDING or self._recorded():
            return None  # (recorded: the attempt failed, its back-off runs)
        since = statuses.parse_time(problem.last_transition_time)
        return since + datetime.timedelta(seconds=self.config.start_timeout_seconds)

    def _start_timeout_message(self) -> str:
        problem = self._start_problem()
        why = problem.message if problem is not None else "?"
        return f"the job could not start within {self.config.start_timeout_seconds} s: {why}"

    def _scheduling_deadline(self) -> datetime.datetime | None:
        """When the current attempt's pod must be scheduled by (None: no limit, or scheduled)."""
        waiting = self.new.condition(models.ConditionType.SCHEDULED)
        if (
            not self.spec.scheduling_timeout_ms
            or waiting is None
            or waiting.status == models.ConditionStatus.TRUE
            or self._recorded()  # the attempt failed: its back-off runs
        ):
            return None
        since = statuses.parse_time(waiting.last_transition_time)
        return since + datetime.timedelta(milliseconds=self.spec.scheduling_timeout_ms)

    def _timeout_message(self) -> str:
        waiting = self.new.condition(models.ConditionType.SCHEDULED)
        latest = (
            waiting.message
            if waiting is not None and waiting.reason in SCHEDULING_FAILURES
            else "the scheduler has not reported on the pod"
        )
        return (
            f"the instance cannot be scheduled within {self.spec.scheduling_timeout_ms} ms. which has been "
            f"scheduled for {self.new.scheduling_failures} times. The latest failure: {latest}"
        )

    # -- results ------------------------------------------------------------------------------

    def _act(self) -> Act:
        wake = [
            t
            for t in (
                self._deadline(),
                self._scheduling_deadline(),
                self._start_deadline(),
                self.retry_at,
                self.look_again_at,
            )
            if t is not None
        ]
        return _act(
            self.job,
            self.new,
            spec=self.spec,
            after_failure=self.after_failure,
            wake_at=min(wake, default=None),
        )

    def _end(
        self,
        reason: Reason,
        message: str,
        *,
        exit_code: int | None = None,
        end_time: str | None = None,
        pod_to_delete: PodToDelete | None = None,
    ) -> Act:
        return _end(
            self.job,
            self.new,
            reason=reason,
            message=message,
            now=self.now,
            exit_code=exit_code,
            end_time=end_time,
            pod_to_delete=pod_to_delete,
        )


def _end(
    job: jobs.Job,
    new: models.JobStatus,
    *,
    reason: Reason,
    message: str,
    now: datetime.datetime,
    exit_code: int | None = None,
    end_time: str | None = None,
    pod_to_delete: PodToDelete | None = None,
) -> Act:
    """Finish the job: its last status, its events, and the TTL's wake-up."""
    state = {Reason.SUCCEEDED: State.SUCCEEDED, Reason.STOPPED: State.STOPPED}.get(reason, State.FAILED)
    new.state = state
    new.message = message
    new.error_type = None if state == State.SUCCEEDED else reason
    new.exit_code = exit_code if exit_code is not None else new.exit_code
    new.end_time = end_time or statuses.timestamp(now)
    if new.start_time and statuses.parse_time(new.end_time) < statuses.parse_time(new.start_time):
        # The kubelet's finishedAt has whole seconds, the start the operator's milliseconds:
        # a job that ends within its first second would end before it started.
        new.end_time = new.start_time
    statuses.set_condition(
        new, kind=models.ConditionType.FINISHED, true=True, reason=reason, message=message, now=now
    )
    spec = job.spec if isinstance(job.spec, models.JobSpec) else None
    act = _act(job, new, spec=spec, after_failure=None, wake_at=_ttl_due(spec, new))
    return dataclasses.replace(act, delete_pod=pod_to_delete)


def _after_end(job: jobs.Job, seen: Observation, *, now: datetime.datetime) -> Act:
    """A finished job: a pod still alive goes (a stray attempt), and the TTL is kept."""
    spec = job.spec if isinstance(job.spec, models.JobSpec) else None
    stray = _if_alive(seen) if isinstance(seen, PodSeen) else None
    due = _ttl_due(spec, job.status)
    if due is not None and now >= due:
        return Act(delete_pod=stray, delete_job=True)
    return Act(delete_pod=stray, wake_at=due)


def _ttl_due(spec: models.JobSpec | None, status: models.JobStatus) -> datetime.datetime | None:
    if spec is None or spec.ttl_seconds_after_finished is None or status.end_time is None:
        return None
    return statuses.parse_time(status.end_time) + datetime.timedelta(seconds=spec.ttl_seconds_after_finished)


def _normalized(moment: str | None) -> str | None:
    """A pod's time (seconds) in the status's own format, so that all its times look alike."""
    return statuses.timestamp(statuses.parse_time(moment)) if moment else None


def _if_alive(seen: PodSeen) -> PodToDelete | None:
    pod = seen.pod
    if pods.finished(pod) or pods.terminating(pod):
        return None
    return PodToDelete(
        name=pods.name(pod),
        attempt=pods.attempt(pod),
        uid=pods.uid(pod),
        resource_version=pods.resource_version(pod),
    )


def _act(
    job: jobs.Job,
    new: models.JobStatus,
    *,
    spec: models.JobSpec | None,
    after_failure: models.FailedAttempt | None,
    wake_at: datetime.datetime | None,
) -> Act:
    patch = statuses.patch(job.status, new)
    if patch.keys() <= {"observedGeneration"} or _only_waiting(job.status, new):
        patch = {}  # not worth a write on its own
    events = _events(
        job.status, new, max_attempts=spec.max_attempts if spec else 1, after_failure=after_failure
    )
    return Act(status=patch or None, events=events, wake_at=wake_at)


def _only_waiting(old: models.JobStatus, new: models.JobStatus) -> bool:
    """Whether `new` only says that the first attempt's pod was made and waits for the scheduler.

    That is no news to a user (the job was PENDING, and is), and everything in it is read
    again from the pod itself (`_start_attempt`): the first write is the scheduler's answer.
    """
    waiting = new.condition(models.ConditionType.SCHEDULED)
    return (
        old.attempts == 0
        and new.attempts == 1
        and new.state == State.PENDING
        and waiting is not None
        and waiting.reason == Reason.PENDING
    )


def _events(
    old: models.JobStatus,
    new: models.JobStatus,
    *,
    max_attempts: int,
    after_failure: models.FailedAttempt | None,
) -> tuple[Event, ...]:
    """An event for what a `kubectl describe` reader needs: retries, scheduling failures and
    the end. A pod's creation and start are the pod's own events (the scheduler's Scheduled,
    the kubelet's), and the status says them: repeating them would double the job's writes."""
    events = []
    if new.pod_name and new.pod_name != old.pod_name and after_failure:
        created = f"created pod {new.pod_name} (attempt {new.failed_attempts + 1} of {max_attempts})"
        events.append(
            Event(
                type=kube_events.Type.WARNING,
                reason=Reason.RETRYING,
                message=f"{after_failure.message}; {created}",
            )
        )
    was = old.condition(models.ConditionType.SCHEDULED)
    now = new.condition(models.ConditionType.SCHEDULED)
    if (
        now is not None
        and now.reason in SCHEDULING_FAILURES
        and (was is None or (was.reason, was.message) != (now.reason, now.message))
    ):
        events.append(Event(type=kube_events.Type.WARNING, reason=now.reason, message=now.message))
    was = old.condition(models.ConditionType.STARTED)
    now = new.condition(models.ConditionType.STARTED)
    if (
        now is not None
        and now.status == models.ConditionStatus.FALSE
        and not new.state.terminal  # the end's own event says it
        and (was is None or was.reason != now.reason)
    ):
        events.append(Event(type=kube_events.Type.WARNING, reason=now.reason, message=now.message))
    if new.state.terminal and not old.state.terminal:
        finished = new.condition(models.ConditionType.FINISHED)
        reason = finished.reason if finished else new.state.title()
        events.append(
            Event(
                type=kube_events.Type.WARNING if new.state == State.FAILED else kube_events.Type.NORMAL,
                reason=reason,
                message=new.message,
            )
        )
    return tuple(events)
