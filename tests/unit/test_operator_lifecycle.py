"""A job's life as `lifecycle.decide` sees it: (job, pod, now) -> what to do. No cluster."""

from __future__ import annotations

import dataclasses
import datetime
from typing import Any

import pytest

from jobgate.core import jobs
from jobgate.crds import models
from jobgate.operator import config, lifecycle, pods, retries, statuses

T0 = datetime.datetime(2025, 1, 2, 3, 4, 5, tzinfo=datetime.UTC)
CONFIG = config.Config()
SCHEDULER_SAYS = (
    "0/6 nodes are available: 6 node(s) didn't match Pod's node affinity/selector. "
    "preemption: 0/6 nodes are available: 6 Preemption is not helpful for scheduling."
)
QUOTA_SAYS = (
    'pods "app-1-1" is forbidden: exceeded quota: small, requested: cpu=300m, used: cpu=1, limited: cpu=1'
)


def at(seconds: float) -> datetime.datetime:
    return T0 + datetime.timedelta(seconds=seconds)


def job(status: dict[str, Any] | None = None, **spec: Any) -> jobs.Job:
    return jobs.parse(
        {
            "apiVersion": models.API_VERSION,
            "kind": models.KIND,
            "metadata": {
                "name": "app-1",
                "namespace": "ns",
                "uid": "job-uid",
                "resourceVersion": "7",
                "generation": 1,
            },
            "spec": {"entrypoint": "python main.py", **spec},
            "status": status or {},
        }
    )


def pod(
    attempt: int = 1,
    *,
    phase: str = "Pending",
    node: str | None = None,
    unschedulable: str | None = None,
    exit_code: int | None = None,
    reason: str | None = None,
    deleting: bool = False,
    created: datetime.datetime = T0,
) -> dict[str, Any]:
    status: dict[str, Any] = {"phase": phase}
    if unschedulable:
        status["conditions"] = [
            {"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": unschedulable}
        ]
    if node:
        status["hostIP"] = "10.0.0.7"
    if exit_code is not None:
        terminated = {"exitCode": exit_code, "reason": "Completed" if exit_code == 0 else "Error"}
        terminated["finishedAt"] = "2025-01-02T03:04:30Z"
        status["containerStatuses"] = [{"name": "job", "state": {"terminated": terminated}}]
    if reason:
        status["reason"], status["message"] = reason, "The node was low on resource: memory."
    meta: dict[str, Any] = {
        "name": f"app-1-{attempt}",
        "namespace": "ns",
        "uid": f"pod-uid-{attempt}",
        "resourceVersion": f"{attempt}00",
        "creationTimestamp": created.strftime("%Y-%m-%dT%H:%M:%SZ"),  # whole seconds, as the apiserver's
        "labels": {models.LABEL_JOB_NAME: "app-1", models.LABEL_ATTEMPT: str(attempt)},
        "ownerReferences": [
            {
                "apiVersion": models.API_VERSION,
                "kind": "Job",
                "name": "app-1",
                "uid": "job-uid",
                "controller": True,
            }
        ],
    }
    if deleting:
        meta["deletionTimestamp"] = "2025-01-02T03:04:20Z"
    return {"metadata": meta, "spec": {"nodeName": node} if node else {}, "status": status}


def apply(view: jobs.Job, act: lifecycle.Act) -> jobs.Job:
    """The Job after the status patch (a JSON merge patch: None removes a field)."""
    status = dict(view.body.get("status") or {})
    for key, value in (act.status or {}).items():
        if value is None:
            status.pop(key, None)
        else:
            status[key] = value
    return jobs.parse({**view.body, "status": status})


def run(
    view: jobs.Job, seen: lifecycle.Observation, now: datetime.datetime
) -> tuple[lifecycle.Act, list[int]]:
    """What the reconciler does, with pod creation always succeeding (the pod is Pending)."""
    created: list[int] = []
    while True:
        step = lifecycle.decide(view, seen, now=now, config=CONFIG)
        if isinstance(step, lifecycle.Act):
            return step, created
        created.append(step.attempt)
        assert step.manifest["metadata"]["name"] == f"app-1-{step.attempt}"
        seen = lifecycle.PodSeen(
            pod=pod(step.attempt, created=now), after_failure=step.after_failure, started=step.started
        )


def status(view: jobs.Job) -> models.JobStatus:
    return view.status


def condition(view: jobs.Job, kind: models.ConditionType) -> models.Condition:
    found = view.status.condition(kind)
    assert found is not None
    return found


def reasons(act: lifecycle.Act) -> list[str]:
    return [event.reason for event in act.events]


def started(now: datetime.datetime = T0, **spec: Any) -> jobs.Job:
    """A job whose first pod was just created (nothing is written for that: see below)."""
    view = job(**spec)
    act, created = run(view, lifecycle.NotLooked(), now)
    assert created == [1]
    return apply(view, act)


# -- the happy path ------------------------------------------------------------------------------


def test_a_new_job_gets_its_first_pod_and_is_pending() -> None:
    view = job()
    step = lifecycle.decide(view, lifecycle.NotLooked(), now=T0, config=CONFIG)
    assert isinstance(step, lifecycle.CreatePod)
    assert step.attempt == 1

    act, _ = run(view, lifecycle.NotLooked(), T0)
    # A pod waiting for the scheduler is no news: the job was PENDING and is. Nothing is
    # written, and no event posted, until the scheduler answers.
    assert (act.status, act.events) == (None, ())
    assert act.wake_at == at(18)  # the default scheduling timeout


def test_a_first_pod_seen_again_is_the_same_attempt_with_the_same_clock() -> None:
    # Read afresh (after a restart, at the alarm): everything comes from the pod itself,
    # so the scheduling timeout still counts from the pod's creation.
    act = lifecycle.decide(job(), lifecycle.PodSeen(pod=pod()), now=at(10), config=CONFIG)
    assert act == lifecycle.Act(wake_at=at(18))
    timeout = lifecycle.decide(job(), lifecycle.PodSeen(pod=pod()), now=at(18), config=CONFIG)
    assert isinstance(timeout, lifecycle.Act)
    assert apply(job(), timeout).status.error_type == "SchedulingTimeout"
    assert apply(job(), timeout).status.start_time == "2025-01-02T03:04:05.000Z"


def test_scheduled_then_running_then_succeeded() -> None:
    view = started()
    act = lifecycle.decide(view, lifecycle.PodSeen(pod=pod(node="cpu-a-0")), now=at(1), config=CONFIG)
    assert isinstance(act, lifecycle.Act)
    view = apply(view, act)
    assert condition(view, models.ConditionType.SCHEDULED).reason == "Scheduled"
    assert (view.status.state, view.status.node_name, view.status.host_ip) == (
        "PENDING",
        "cpu-a-0",
        "10.0.0.7",
    )
    assert act.events == ()
    assert act.wake_at is None  # scheduled, no deadline: nothing to wait for

    act = lifecycle.decide(
        view, lifecycle.PodSeen(pod=pod(phase="Running", node="cpu-a-0")), now=at(2), config=CONFIG
    )
    assert isinstance(act, lifecycle.Act)
    view = apply(view, act)
    assert view.status.state == models.JobState.RUNNING
    assert reasons(act) == []  # the pod's own events tell it started

    done = pod(phase="Succeeded", node="cpu-a-0", exit_code=0)
    act = lifecycle.decide(view, lifecycle.PodSeen(pod=done), now=at(30), config=CONFIG)
    assert isinstance(act, lifecycle.Act)
    view = apply(view, act)
    assert view.status.state == models.JobState.SUCCEEDED
    assert view.status.exit_code == 0
    assert view.status.error_type is None
    assert view.status.end_time == "2025-01-02T03:04:30.000Z"  # the container's own end
    finished = condition(view, models.ConditionType.FINISHED)
    assert (finished.status, finished.reason) == ("True", "Succeeded")
    assert reasons(act) == ["Succeeded"]


def test_deciding_again_on_the_same_facts_writes_nothing() -> None:
    view = started()
    seen = lifecycle.PodSeen(pod=pod(phase="Running", node="cpu-a-0"))
    act = lifecycle.decide(view, seen, now=at(1), config=CONFIG)
    assert isinstance(act, lifecycle.Act)
    again = lifecycle.decide(apply(view, act), seen, now=at(5), config=CONFIG)
    assert again == lifecycle.Act()


def test_a_non_zero_exit_fails_the_job_with_its_exit_code() -> None:
    view = started()
    act = lifecycle.decide(
        view, lifecycle.PodSeen(pod=pod(phase="Failed", node="n", exit_code=3)), now=at(9), config=CONFIG
    )
    assert isinstance(act, lifecycle.Act)
    view = apply(view, act)
    assert view.status.state == models.JobState.FAILED
    assert (view.status.exit_code, view.status.error_type) == (3, "Failed")
    assert "exit code 3" in view.status.message
    assert condition(view, models.ConditionType.FINISHED).reason == "Failed"
    assert [(e.type, e.reason) for e in act.events] == [("Warning", "Failed")]


@pytest.mark.parametrize(
    ("said", "message"),
    [
        (
            "Traceback ...\nworking_dir src.zip: HTTP 404 from https://example.com/src.zip\n",
            "the working_dir could not be fetched: working_dir src.zip: HTTP 404 from https://example.com/src.zip",
        ),
        ("", "the working_dir could not be fetched: exit code 1"),
        ("x" * 5000, "the working_dir could not be fetched: " + "x" * 499 + "…"),
    ],
    ids=["its-reason", "no-reason", "bounded"],
)
def test_a_working_dir_that_cannot_be_fetched_fails_with_the_fetchers_reason(said: str, message: str) -> None:
    status = failed_in_setup(("fetch-working-dir", said))
    assert (status.state, status.error_type) == ("FAILED", "StartFailed")
    assert status.message == message


def failed_in_setup(*containers: tuple[str, str | None]) -> models.JobStatus:
    """The status of a started job whose pod failed in its init containers: (name, what
    it said), None for one that completed."""
    failed = pod(phase="Failed", node="n")
    done = {"exitCode": 0, "reason": "Completed"}
    failed["status"]["initContainerStatuses"] = [
        {
            "name": name,
            "state": {
                "terminated": done
                if said is None
                else {"exitCode": 1, "reason": "Error", "message": said, "finishedAt": "2025-01-02T03:04:30Z"}
            },
        }
        for name, said in containers
    ]
    view = started()
    return apply(view, run(view, lifecycle.PodSeen(pod=failed), at(9))[0]).status


def test_requirements_pip_cannot_install_fail_the_start_with_pips_last_line() -> None:
    said = "Collecting nope==9\nERROR: No matching distribution found for nope==9\n"
    status = failed_in_setup(("fetch-working-dir", None), ("install-requirements", said))
    assert (status.state, status.error_type, status.exit_code) == ("FAILED", "StartFailed", 1)
    assert status.message == (
        "runtime_env.pip could not be installed: ERROR: No matching distribution found for nope==9"
    )


def test_a_py_module_that_cannot_be_fetched_names_its_index() -> None:
    said = "py_modules[1] m.zip: HTTP 404 from https://example.com/m.zip\n"
    status = failed_in_setup(("fetch-py-module-0", None), ("fetch-py-module-1", said))
    assert (status.state, status.error_type) == ("FAILED", "StartFailed")
    assert status.message == (
        "runtime_env.py_modules[1] could not be fetched: py_modules[1] m.zip: HTTP 404 from https://example.com/m.zip"
    )


def test_an_evicted_pod_fails_the_job_as_evicted() -> None:
    view = started()
    evicted = pod(phase="Failed", node="n", reason="Evicted")
    view = apply(view, run(view, lifecycle.PodSeen(pod=evicted), at(9))[0])
    assert (view.status.state, view.status.error_type) == ("FAILED", "Evicted")
    assert "low on resource" in view.status.message


def test_a_working_dir_no_fetcher_can_reach_fails_the_start_without_a_pod() -> None:
    view = job(runtimeEnv={"working_dir": "s3://bucket/job.zip"})
    act, created = run(view, lifecycle.NotLooked(), at(0))
    assert created == []
    status = apply(view, act).status
    assert (status.state, status.error_type) == ("FAILED", "StartFailed")
    assert status.message.startswith("the working_dir could not be fetched: spec.runtimeEnv.working_dir: ")
    view = job(runtimeEnv={"py_modules": ["gs://bucket/m.zip"]})
    status = apply(view, run(view, lifecycle.NotLooked(), at(0))[0]).status
    assert (status.state, status.error_type) == ("FAILED", "StartFailed")
    assert status.message.startswith(
        "runtime_env.py_modules[0] could not be fetched: spec.runtimeEnv.py_modules.0: cannot fetch"
    )


def test_a_pod_the_namespaces_pod_security_refuses_fails_the_job_at_once() -> None:
    said = 'pods "app-1-1" is forbidden: violates PodSecurity "baseline:latest": hostPath volumes'
    view = job()
    act = lifecycle.decide(
        view, lifecycle.CreateRefused(attempt=1, code=403, message=said), now=at(1), config=CONFIG
    )
    status = apply(view, act).status
    assert (status.state, status.error_type) == ("FAILED", "InvalidSpec")
    assert status.message == f"the pod was refused: {said}"


def test_a_job_never_ends_before_it_started() -> None:
    # The job started at 03:04:30.500 (the operator's milliseconds); its container says it
    # finished at 03:04:30 (the kubelet's whole seconds).
    succeeded = pod(phase="Succeeded", node="n", exit_code=0)
    succeeded["metadata"]["annotations"] = {models.ANNOTATION_CREATED_AT: "2025-01-02T03:04:30.500Z"}
    status = apply(job(), run(job(), lifecycle.PodSeen(pod=succeeded), at(26))[0]).status
    assert (status.start_time, status.end_time) == ("2025-01-02T03:04:30.500Z", "2025-01-02T03:04:30.500Z")


def test_a_pod_that_vanishes_unfinished_is_lost() -> None:
    view = apply(started(), run(started(), lifecycle.PodSeen(pod=pod(phase="Running", node="n")), at(1))[0])
    view = apply(view, run(view, lifecycle.PodGone(), at(5))[0])
    assert (view.status.state, view.status.error_type) == ("FAILED", "PodLost")
    assert "app-1-1 disappeared" in view.status.message


# -- retries --------------------------------------------------------------------------------------


def test_a_failed_attempt_is_retried_after_a_backoff_until_the_attempts_run_out() -> None:
    view = started(maxAttempts=2)
    failed = lifecycle.PodSeen(pod=pod(phase="Failed", node="n", exit_code=3))
    act, created = run(view, failed, at(5))
    assert created == []
    view = apply(view, act)
    said = "Job entrypoint command failed with exit code 3 (attempt 1 of 2)"
    assert (view.status.state, view.status.attempts, view.status.failed_attempts) == ("PENDING", 1, 1)
    assert view.status.message == f"{said}; attempt 2 of 2 in 10 s"
    assert act.wake_at == at(15)  # the Job controller's 10 s
    (failure,) = view.status.failures
    assert failure.retry_at == "2025-01-02T03:04:20.000Z"
    assert (failure.attempt, failure.pod_name, failure.exit_code, failure.reason, failure.action) == (
        1,
        "app-1-1",
        3,
        "Failed",
        "Retry",
    )
    # Looked at again before it is due: nothing to do, nothing counted twice.
    early, created = run(view, failed, at(10))
    assert (early, created) == (lifecycle.Act(wake_at=at(15)), [])

    act, created = run(view, failed, at(15))
    assert created == [2]
    view = apply(view, act)
    assert (view.status.state, view.status.attempts, view.status.pod_name) == ("PENDING", 2, "app-1-2")
    assert (view.status.exit_code, view.status.node_name) == (None, None)
    assert view.status.start_time == "2025-01-02T03:04:05.000Z"  # the job's start, not the attempt's
    assert condition(view, models.ConditionType.SCHEDULED).last_transition_time == "2025-01-02T03:04:20.000Z"
    (retrying,) = act.events
    assert retrying.reason == "Retrying"
    assert retrying.message == f"{said}; created pod app-1-2 (attempt 2 of 2)"

    act, created = run(view, lifecycle.PodSeen(pod=pod(2, phase="Failed", node="n", exit_code=4)), at(29))
    assert created == []
    view = apply(view, act)
    assert (view.status.state, view.status.exit_code) == ("FAILED", 4)
    assert view.status.message == "Job entrypoint command failed with exit code 4 (attempt 2 of 2)"
    assert [f.attempt for f in view.status.failures] == [1, 2]


def retried(view: jobs.Job, failed: dict[str, Any], seconds: float) -> jobs.Job:
    """The job after `failed` (its current pod) failed and the next attempt's pod was made."""
    view = apply(view, run(view, lifecycle.PodSeen(pod=failed), at(seconds))[0])
    retry_at = view.status.failures[-1].retry_at
    assert retry_at is not None
    due = (statuses.parse_time(retry_at) - T0).total_seconds()
    act, created = run(view, lifecycle.PodSeen(pod=failed), at(due))
    assert created == [view.status.attempts + 1]
    return apply(view, act)


def test_the_backoff_doubles_per_counted_failure_up_to_six_minutes() -> None:
    assert [retries.backoff(n, base_seconds=10).total_seconds() for n in (1, 2, 3, 6, 7, 50)] == [
        10,
        20,
        40,
        320,
        360,
        360,
    ]
    assert retries.backoff(3, base_seconds=0) == datetime.timedelta()


def test_an_earlier_attempts_pod_is_only_ever_deleted_if_alive() -> None:
    view = retried(started(maxAttempts=3), pod(phase="Failed", node="n", exit_code=1), 5)
    assert view.status.attempts == 2
    stale = lifecycle.decide(
        view, lifecycle.PodSeen(pod=pod(1, phase="Running", node="n")), now=at(16), config=CONFIG
    )
    assert stale == lifecycle.Act(
        delete_pod=lifecycle.PodToDelete(name="app-1-1", attempt=1, uid="pod-uid-1", resource_version="100")
    )
    done = lifecycle.decide(view, lifecycle.PodSeen(pod=pod(1, phase="Failed")), now=at(16), config=CONFIG)
    assert done == lifecycle.Act()


EXIT_42_FAILS = {"rules": [{"action": "FailJob", "onExitCodes": {"operator": "In", "values": [42]}}]}
EVICTION_IGNORED = {"rules": [{"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget"}]}]}


def test_an_exit_code_rule_with_failjob_ends_the_job_at_once() -> None:
    view = started(maxAttempts=3, podFailurePolicy=EXIT_42_FAILS)
    act, created = run(view, lifecycle.PodSeen(pod=pod(phase="Failed", node="n", exit_code=42)), at(5))
    view = apply(view, act)
    assert created == []
    assert (view.status.state, view.status.attempts, view.status.failed_attempts) == ("FAILED", 1, 1)
    assert view.status.message == (
        "Job entrypoint command failed with exit code 42 (attempt 1 of 3; podFailurePolicy rule 1: FailJob)"
    )
    assert [(f.action, f.rule) for f in view.status.failures] == [("FailJob", 1)]
    # Another exit code matches no rule: retried.
    view = started(maxAttempts=3, podFailurePolicy=EXIT_42_FAILS)
    other = run(view, lifecycle.PodSeen(pod=pod(phase="Failed", node="n", exit_code=1)), at(5))[0]
    assert apply(view, other).status.state == "PENDING"


def running(**spec: Any) -> jobs.Job:
    view = started(**spec)
    return apply(view, run(view, lifecycle.PodSeen(pod=pod(phase="Running", node="n")), at(1))[0])


def disrupted(attempt: int = 1) -> dict[str, Any]:
    """The pod as the apiserver left it when it evicted it (its last watch event)."""
    made = pod(attempt, phase="Running", node="n", deleting=True)
    made["status"]["conditions"] = [
        {
            "type": "DisruptionTarget",
            "status": "True",
            "reason": "EvictionByEvictionAPI",
            "message": "Eviction API: evicting",
        }
    ]
    return made


def test_an_eviction_with_ignore_retries_at_once_without_counting() -> None:
    view = running(maxAttempts=1, podFailurePolicy=EVICTION_IGNORED)
    act, created = run(view, lifecycle.PodGone(last_seen=disrupted()), at(5))
    assert created == [2]
    view = apply(view, act)
    assert (view.status.state, view.status.attempts, view.status.failed_attempts) == ("PENDING", 2, 0)
    (failure,) = view.status.failures
    assert (failure.reason, failure.action, failure.rule) == ("Evicted", "Ignore", 1)
    assert failure.message == (
        "pod app-1-1 was evicted before it finished: EvictionByEvictionAPI: Eviction API: evicting "
        "(not counted; podFailurePolicy rule 1: Ignore)"
    )
    # Without the rule, the same eviction counts, and with one attempt ends the job.
    ended = apply(running(), run(running(), lifecycle.PodGone(last_seen=disrupted()), at(5))[0])
    assert (ended.status.state, ended.status.error_type) == ("FAILED", "Evicted")


def test_a_pod_gone_with_its_deleted_node_counts_as_a_disruption() -> None:
    last = pod(phase="Running", node="n")
    view = running(maxAttempts=1, podFailurePolicy=EVICTION_IGNORED)
    act, created = run(view, lifecycle.PodGone(last_seen=last, node_deleted=True), at(5))
    assert created == [2]  # the DisruptionTarget rule matched: not counted
    (failure,) = apply(view, act).status.failures
    assert failure.reason == "Evicted"
    assert failure.message.startswith(
        "pod app-1-1 was evicted before it finished: its node n no longer exists"
    )
    # With its node still there, a vanished pod is lost, and counts.
    ended = apply(running(), run(running(), lifecycle.PodGone(last_seen=last), at(5))[0])
    assert (ended.status.state, ended.status.error_type) == ("FAILED", "PodLost")


def test_a_stop_during_the_backoff_stops_the_job_without_a_new_pod() -> None:
    failed = lifecycle.PodSeen(pod=pod(phase="Failed", node="n", exit_code=3))
    view = started(maxAttempts=2)
    view = apply(view, run(view, failed, at(5))[0])
    act, created = run(stopped(view), failed, at(7))
    assert created == []
    assert apply(view, act).status.state == "STOPPED"


def test_a_pod_created_before_a_crash_is_adopted() -> None:
    # The operator created app-1-1, then died before recording it: the Job says nothing yet.
    view = job()
    act = lifecycle.decide(
        view, lifecycle.PodSeen(pod=pod(phase="Running", node="n")), now=at(3), config=CONFIG
    )
    assert isinstance(act, lifecycle.Act)
    view = apply(view, act)
    assert (view.status.state, view.status.attempts, view.status.pod_name) == ("RUNNING", 1, "app-1-1")


# -- scheduling -----------------------------------------------------------------------------------


def test_the_schedulers_reason_is_recorded_and_counted_once_per_new_answer() -> None:
    view = started()
    seen = lifecycle.PodSeen(pod=pod(unschedulable=SCHEDULER_SAYS))
    act = lifecycle.decide(view, seen, now=at(1), config=CONFIG)
    assert isinstance(act, lifecycle.Act)
    view = apply(view, act)
    scheduled = condition(view, models.ConditionType.SCHEDULED)
    assert (scheduled.status, scheduled.reason, scheduled.message) == (
        "False",
        "Unschedulable",
        SCHEDULER_SAYS,
    )
    assert scheduled.last_transition_time == "2025-01-02T03:04:05.000Z"  # still False since creation
    assert view.status.scheduling_failures == 1
    assert [(e.type, e.reason, e.message) for e in act.events] == [
        ("Warning", "Unschedulable", SCHEDULER_SAYS)
    ]
    assert lifecycle.decide(view, seen, now=at(2), config=CONFIG) == lifecycle.Act(wake_at=at(18))
    other = lifecycle.PodSeen(pod=pod(unschedulable="0/6 nodes are available: 6 Insufficient cpu."))
    act = lifecycle.decide(view, other, now=at(3), config=CONFIG)
    assert isinstance(act, lifecycle.Act)
    assert apply(view, act).status.scheduling_failures == 2


def test_a_pod_not_scheduled_in_time_is_deleted_and_the_job_fails_with_the_seeds_message() -> None:
    view = started(schedulingTimeoutMs=2000)
    view = apply(view, run(view, lifecycle.PodSeen(pod=pod(unschedulable=SCHEDULER_SAYS)), at(1))[0])
    act, _ = run(view, lifecycle.PodSeen(pod=pod(unschedulable=SCHEDULER_SAYS)), at(2))
    assert act.delete_pod == lifecycle.PodToDelete(
        name="app-1-1", attempt=1, uid="pod-uid-1", resource_version="100"
    )
    view = apply(view, act)
    assert (view.status.state, view.status.error_type) == ("FAILED", "SchedulingTimeout")
    assert view.status.message == (
        "the instance cannot be scheduled within 2000 ms. which has been scheduled for 1 times. "
        f"The latest failure: {SCHEDULER_SAYS}"
    )
    assert condition(view, models.ConditionType.FINISHED).reason == "SchedulingTimeout"


def test_the_timeout_is_noticed_by_an_alarm_without_a_pod_event() -> None:
    view = started(schedulingTimeoutMs=2000)
    act, _ = run(view, lifecycle.PodSeen(pod=pod()), at(1))  # a pod event: still not scheduled
    assert act.wake_at == at(2)
    act, _ = run(view, lifecycle.PodSeen(pod=pod()), at(2.5))  # the alarm looked at the pod
    assert apply(view, act).status.error_type == "SchedulingTimeout"
    assert "The latest failure: the scheduler has not reported on the pod" in apply(view, act).status.message


def test_a_zero_timeout_waits_forever() -> None:
    view = started(schedulingTimeoutMs=0)
    act, _ = run(view, lifecycle.PodSeen(pod=pod(unschedulable=SCHEDULER_SAYS)), at(10_000))
    view = apply(view, act)
    assert view.status.state == models.JobState.PENDING
    assert act.wake_at is None


# -- quota ----------------------------------------------------------------------------------------


def refused(attempt: int = 1, message: str = QUOTA_SAYS, code: int = 403) -> lifecycle.CreateRefused:
    return lifecycle.CreateRefused(attempt=attempt, code=code, message=message)


def test_a_quota_refusal_keeps_the_job_pending_and_retries_with_backoff() -> None:
    view = job(schedulingTimeoutMs=10_000)
    assert isinstance(
        lifecycle.decide(view, lifecycle.NotLooked(), now=T0, config=CONFIG), lifecycle.CreatePod
    )
    act = lifecycle.decide(view, refused(), now=T0, config=CONFIG)
    assert isinstance(act, lifecycle.Act)
    view = apply(view, act)
    assert (view.status.state, view.status.attempts, view.status.pod_name) == ("PENDING", 1, None)
    scheduled = condition(view, models.ConditionType.SCHEDULED)
    assert (scheduled.status, scheduled.reason, scheduled.message) == ("False", "QuotaExceeded", QUOTA_SAYS)
    assert reasons(act) == ["QuotaExceeded"]
    assert act.wake_at == at(1)

    # The alarm looks: no pod, so it is created again; refused again, the wait doubles.
    again = lifecycle.decide(view, lifecycle.PodGone(), now=at(1), config=CONFIG)
    assert isinstance(again, lifecycle.CreatePod)
    assert again.attempt == 1
    act = lifecycle.decide(view, refused(), now=at(1), config=CONFIG)
    assert isinstance(act, lifecycle.Act)
    view = apply(view, act)
    assert view.status.scheduling_failures == 2
    assert act.wake_at == at(3)
    assert act.events == ()  # the same refusal again is not news


def test_a_refused_job_that_times_out_quotes_the_quota() -> None:
    view = job(schedulingTimeoutMs=2000)
    view = apply(view, run(view, refused(), T0)[0])
    act = lifecycle.decide(view, lifecycle.PodGone(), now=at(2), config=CONFIG)
    assert isinstance(act, lifecycle.Act)
    assert act.delete_pod is None  # there never was a pod
    view = apply(view, act)
    assert view.status.error_type == "SchedulingTimeout"
    assert view.status.message.endswith(
        f"which has been scheduled for 1 times. The latest failure: {QUOTA_SAYS}"
    )


def test_a_refused_job_with_no_timeout_gets_its_pod_once_quota_frees() -> None:
    view = job(schedulingTimeoutMs=0)
    view = apply(view, run(view, refused(), T0)[0])
    act, created = run(view, lifecycle.PodGone(), at(600))
    assert created == [1]
    view = apply(view, act)
    assert (view.status.pod_name, view.status.state) == ("app-1-1", "PENDING")
    assert condition(view, models.ConditionType.SCHEDULED).reason == "Pending"
    assert reasons(act) == []


def test_a_pod_the_apiserver_finds_invalid_fails_the_job() -> None:
    act = lifecycle.decide(
        job(), refused(code=422, message="Pod is invalid: bad image"), now=T0, config=CONFIG
    )
    assert isinstance(act, lifecycle.Act)
    view = apply(job(), act)
    assert (view.status.state, view.status.error_type) == ("FAILED", "InvalidSpec")
    assert "bad image" in view.status.message


# -- stop, deadline, TTL, invalid specs -----------------------------------------------------------


def stopped(view: jobs.Job) -> jobs.Job:
    return jobs.parse({**view.body, "spec": {**view.body["spec"], "stop": True}})


def test_stop_deletes_the_pod_and_stops_the_job() -> None:
    view = stopped(started())
    act, created = run(view, lifecycle.NotLooked(), at(3))
    assert created == []
    assert act.delete_pod == lifecycle.PodToDelete(name="app-1-1", attempt=1)
    view = apply(view, act)
    assert (view.status.state, view.status.error_type) == ("STOPPED", "Stopped")
    assert condition(view, models.ConditionType.FINISHED).reason == "Stopped"
    assert view.status.end_time == "2025-01-02T03:04:08.000Z"
    assert reasons(act) == ["Stopped"]


def test_a_job_stopped_before_it_started_never_gets_a_pod() -> None:
    act, created = run(stopped(job()), lifecycle.NotLooked(), T0)
    assert created == []
    # Its first pod may exist before the status names it (nothing is written for a pod that
    # waits for the scheduler): it is deleted if it does, a no-op if it does not.
    assert act.delete_pod == lifecycle.PodToDelete(name="app-1-1", attempt=1)
    assert apply(job(), act).status.state == models.JobState.STOPPED


def test_a_pod_that_succeeded_before_the_stop_was_seen_makes_the_job_succeed() -> None:
    act, _ = run(
        stopped(started()), lifecycle.PodSeen(pod=pod(phase="Succeeded", node="n", exit_code=0)), at(3)
    )
    assert apply(started(), act).status.state == models.JobState.SUCCEEDED


def test_the_active_deadline_ends_the_job() -> None:
    view = started(activeDeadlineSeconds=60)
    running = lifecycle.PodSeen(pod=pod(phase="Running", node="n"))
    act, _ = run(view, running, at(30))
    assert act.wake_at == at(60)
    view = apply(view, act)
    act, _ = run(view, running, at(61))
    assert act.delete_pod == lifecycle.PodToDelete(
        name="app-1-1", attempt=1, uid="pod-uid-1", resource_version="100"
    )
    view = apply(view, act)
    assert (view.status.state, view.status.error_type) == ("FAILED", "DeadlineExceeded")
    assert "deadline of 60 s" in view.status.message


def test_a_finished_job_is_deleted_after_its_ttl() -> None:
    view = started(ttlSecondsAfterFinished=30)
    act, _ = run(view, lifecycle.PodSeen(pod=pod(phase="Succeeded", node="n", exit_code=0)), at(30))
    assert act.wake_at == at(55)  # the container ended at +25 s: it is counted from then
    view = apply(view, act)
    assert lifecycle.decide(view, lifecycle.NotLooked(), now=at(50), config=CONFIG) == lifecycle.Act(
        wake_at=at(55)
    )
    assert lifecycle.decide(view, lifecycle.NotLooked(), now=at(56), config=CONFIG) == lifecycle.Act(
        delete_job=True
    )


def test_a_finished_job_costs_nothing_without_ttl_but_a_stray_live_pod_goes() -> None:
    view = apply(started(), run(started(), lifecycle.PodSeen(pod=pod(phase="Failed", exit_code=1)), at(3))[0])
    assert lifecycle.decide(view, lifecycle.NotLooked(), now=at(99), config=CONFIG) == lifecycle.Act()
    stray = lifecycle.decide(view, lifecycle.PodSeen(pod=pod(2, phase="Running")), now=at(99), config=CONFIG)
    assert stray == lifecycle.Act(
        delete_pod=lifecycle.PodToDelete(name="app-1-2", attempt=2, uid="pod-uid-2", resource_version="200")
    )


def test_a_spec_this_deployment_cannot_run_fails_without_a_pod() -> None:
    act, created = run(job(resources={"custom": {"TPU": 1}}), lifecycle.NotLooked(), T0)
    assert created == []
    view = apply(job(), act)
    assert (view.status.state, view.status.error_type) == ("FAILED", "InvalidSpec")
    assert view.status.message.startswith("spec.resources.custom.TPU: unknown custom resource")


def test_a_job_being_deleted_is_left_to_the_garbage_collector() -> None:
    view = job()
    deleting = dataclasses.replace(view, deleting=True)
    assert lifecycle.decide(deleting, lifecycle.NotLooked(), now=T0, config=CONFIG) == lifecycle.Act()


def test_a_pod_just_bound_is_written_once_it_runs_or_a_moment_later() -> None:
    bound = pod(node="cpu-a-0")
    bound["status"]["conditions"] = [
        {"type": "PodScheduled", "status": "True", "lastTransitionTime": "2025-01-02T03:04:06Z"}  # at(1)
    ]
    # Usually running a moment later: that will be one write, not two.
    assert lifecycle.decide(job(), lifecycle.PodSeen(pod=bound), now=at(1.5), config=CONFIG) == lifecycle.Act(
        wake_at=at(2)
    )
    running = {**bound, "status": {**bound["status"], "phase": "Running"}}
    act = lifecycle.decide(job(), lifecycle.PodSeen(pod=running), now=at(1.7), config=CONFIG)
    assert isinstance(act, lifecycle.Act)
    assert apply(job(), act).status.state == models.JobState.RUNNING
    # Still only bound when the moment has passed (an image still pulling): Scheduled is written.
    act = lifecycle.decide(job(), lifecycle.PodSeen(pod=bound), now=at(2), config=CONFIG)
    assert isinstance(act, lifecycle.Act)
    assert condition(apply(job(), act), models.ConditionType.SCHEDULED).reason == "Scheduled"


# -- pods that cannot start ----------------------------------------------------------------------

PULL_SAYS = (
    'failed to pull and unpack image "docker.io/library/nope:1": failed to resolve reference: '
    "pull access denied, repository does not exist or may require authorization"
)
MOUNT_SAYS = (
    'MountVolume.SetUp failed for volume "working-dir-source" : hostPath type check failed: '
    "/usr1/deploy is not a directory"
)


def bound_pod(*waiting: tuple[str, str, str], init: bool = False) -> dict[str, Any]:
    """The first attempt's pod, bound at(1), its containers waiting: (name, reason, message)."""
    made = pod(node="real-0")
    made["status"]["conditions"] = [
        {"type": "PodScheduled", "status": "True", "lastTransitionTime": "2025-01-02T03:04:06Z"}
    ]
    statuses = [
        {"name": name, "image": "nope:1", "state": {"waiting": {"reason": reason, "message": message}}}
        for name, reason, message in waiting
    ]
    made["status"]["initContainerStatuses" if init else "containerStatuses"] = statuses
    return made


def decided(view: jobs.Job, seen: lifecycle.Observation, seconds: float) -> lifecycle.Act:
    act = lifecycle.decide(view, seen, now=at(seconds), config=CONFIG)
    assert isinstance(act, lifecycle.Act)
    return act


def test_an_image_that_cannot_be_pulled_keeps_the_job_pending_then_fails_it_and_its_pod_goes() -> None:
    view = started(runtimeEnv={"image_uri": "nope:1"})
    pulling = lifecycle.PodSeen(pod=bound_pod(("job", "ErrImagePull", PULL_SAYS)))
    act = decided(view, pulling, 3)
    view = apply(view, act)
    said = f"runtime_env.image_uri: image nope:1 cannot be pulled: {PULL_SAYS}"
    started_condition = condition(view, models.ConditionType.STARTED)
    assert (started_condition.status, started_condition.reason, started_condition.message) == (
        "False",
        "ImagePullBackOff",
        said,
    )
    assert (view.status.state, view.status.message) == ("PENDING", f"pod app-1-1 cannot start yet: {said}")
    assert [(e.type, e.reason, e.message) for e in act.events] == [("Warning", "ImagePullBackOff", said)]
    assert act.wake_at == at(3 + CONFIG.start_timeout_seconds)

    # The kubelet backs off and tries again: nothing new to write.
    backing_off = bound_pod(("job", "ImagePullBackOff", 'Back-off pulling image "nope:1"'))
    assert decided(view, lifecycle.PodSeen(pod=backing_off), 20).status is None

    act = decided(view, lifecycle.PodSeen(pod=backing_off), 3 + CONFIG.start_timeout_seconds)
    view = apply(view, act)
    assert (view.status.state, view.status.error_type) == ("FAILED", "StartFailed")
    assert view.status.message == f"the job could not start within {CONFIG.start_timeout_seconds} s: {said}"
    assert act.delete_pod == lifecycle.PodToDelete(
        name="app-1-1", attempt=1, uid="pod-uid-1", resource_version="100"
    )
    assert reasons(act) == ["StartFailed"]


def test_an_invalid_image_name_fails_the_job_at_once() -> None:
    view = started()
    invalid = bound_pod(("job", "InvalidImageName", 'couldn\'t parse image name "Nope::1"'))
    act = decided(view, lifecycle.PodSeen(pod=invalid), 2)
    view = apply(view, act)
    assert (view.status.state, view.status.error_type) == ("FAILED", "StartFailed")
    assert view.status.message.startswith(
        "the job cannot start: the deployment's JOBGATE_IMAGE: image nope:1 cannot be used (InvalidImageName)"
    )
    assert act.delete_pod is not None


def test_a_volume_that_cannot_be_mounted_is_found_in_the_kubelets_events() -> None:
    view = started(runtimeEnv={"working_dir": "https://example.com/src.zip"})
    stuck = bound_pod(("fetch-working-dir", "PodInitializing", ""), init=True)
    # Just bound: looked at again once a normal start would be over.
    assert decided(view, lifecycle.PodSeen(pod=stuck), 2).wake_at == at(1) + pods.MOUNT_GRACE
    assert pods.may_fail_to_mount(stuck, now=at(7))
    act = decided(view, lifecycle.PodSeen(pod=stuck, mount_failures=("older", MOUNT_SAYS)), 7)
    view = apply(view, act)
    said = f"runtime_env.working_dir: waiting for volume working-dir-source: {MOUNT_SAYS}"
    assert condition(view, models.ConditionType.STARTED).reason == "FailedMount"
    assert view.status.message == f"pod app-1-1 cannot start yet: {said}"
    assert act.wake_at == at(7) + lifecycle.MOUNT_POLL
    # Its events not read this time: what was said stands.
    assert decided(view, lifecycle.PodSeen(pod=stuck), 17).status is None
    act = decided(view, lifecycle.PodSeen(pod=stuck), 7 + CONFIG.start_timeout_seconds)
    assert apply(view, act).status.error_type == "StartFailed"


def test_a_pod_that_starts_after_all_runs_and_says_so() -> None:
    view = started()
    view = apply(view, decided(view, lifecycle.PodSeen(pod=bound_pod(("job", "ErrImagePull", PULL_SAYS))), 3))
    running = pod(phase="Running", node="real-0")
    view = apply(view, decided(view, lifecycle.PodSeen(pod=running), 30))
    assert view.status.state == "RUNNING"
    assert condition(view, models.ConditionType.STARTED).status == "True"
    assert decided(view, lifecycle.PodSeen(pod=running), 200).status is None  # no start timeout left


def test_a_running_fetch_is_not_suspected_of_a_failing_mount() -> None:
    fetching = bound_pod(("fetch-working-dir", "PodInitializing", ""), init=True)
    status = fetching["status"]
    status["initContainerStatuses"][0]["state"] = {"running": {"startedAt": "2025-01-02T03:04:07Z"}}
    status["containerStatuses"] = [{"name": "job", "state": {"waiting": {"reason": "PodInitializing"}}}]
    assert not pods.may_fail_to_mount(fetching, now=at(60))
    assert pods.start_problem(fetching, (MOUNT_SAYS,)) is None  # an old event, mounted since


def test_a_failed_attempt_waiting_for_its_backoff_has_no_other_deadline() -> None:
    view = started(maxAttempts=2, schedulingTimeoutMs=1000)
    pulling = lifecycle.PodSeen(pod=bound_pod(("job", "ErrImagePull", PULL_SAYS)))
    view = apply(view, decided(view, pulling, 3))  # Started=False since at(3)
    failed = pod(phase="Failed", node="real-0", exit_code=1)
    view = apply(view, decided(view, lifecycle.PodSeen(pod=failed), 4))
    # Past the start timeout and the scheduling timeout, within the back-off: only the back-off wakes it.
    later = lifecycle.decide(view, lifecycle.PodSeen(pod=failed), now=at(8), config=CONFIG)
    assert later == lifecycle.Act(wake_at=at(14))
    assert decided(view, lifecycle.PodGone(), 8).wake_at == at(14)


# -- the log archive ------------------------------------------------------------------------------


def test_with_an_object_store_the_first_status_written_says_where_the_logs_go() -> None:
    archiving = config.Config(s3_bucket="logs", s3_prefix="jg/")
    act = lifecycle.decide(started(), lifecycle.PodSeen(pod=pod(node="cpu-a-0")), now=at(1), config=archiving)
    assert isinstance(act, lifecycle.Act)
    assert act.status is not None
    assert act.status["logRef"] == "s3://logs/jg/logs/ns/app-1/job-uid/"
    # Without a store there is no archive to name.
    plain = lifecycle.decide(started(), lifecycle.PodSeen(pod=pod(node="cpu-a-0")), now=at(1), config=CONFIG)
    assert isinstance(plain, lifecycle.Act)
    assert plain.status is not None
    assert "logRef" not in plain.status
