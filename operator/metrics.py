"""Prometheus metrics of the operator, served on `JOBGATE_OPERATOR_METRICS_PORT` (any path).

    jobgate_operator_job_transitions_total{state}   status writes that moved a job into `state`
    jobgate_operator_reconcile_duration_seconds      time to handle a job once (read, decide, write)
    jobgate_operator_reconcile_errors_total          handlings that failed (the job is retried later)
    jobgate_operator_pods_created_total              pods created (an adopted existing pod is not counted)
    jobgate_operator_queue_depth                     jobs waiting for a worker
    jobgate_operator_leader                          1 on the replica that does the work, 0 on a standby
    jobgate_operator_log_archive_backlog             pods' logs (and Jobs' archives to delete) waiting
                                                     for the object store
    jobgate_operator_log_archives_total{result}      logs archived, or lost (the pod went first)

Jobs by status are counted as transitions, not as a gauge: the operator streams only
unfinished Jobs and holds no index of them, so a gauge would be a guess. The current number
of jobs in each state is the API's `jobgate_api_jobs{state}` (its index holds every Job).

The metrics live in prometheus_client's default registry, with its process metrics: one
operator per process, and the code that counts needs no handle passed down to it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import prometheus_client

from jobgate.crds import models

JOB_TRANSITIONS = prometheus_client.Counter(
    "jobgate_operator_job_transitions",
    "Status writes that moved a job into a state (a retried job enters PENDING again).",
    ["state"],
)
RECONCILE_SECONDS = prometheus_client.Histogram(
    "jobgate_operator_reconcile_duration_seconds",
    "Time to handle a job once: read it and its pod, decide, write.",
)
RECONCILE_ERRORS = prometheus_client.Counter(
    "jobgate_operator_reconcile_errors", "Handlings of a job that failed; the job is retried with a backoff."
)
PODS_CREATED = prometheus_client.Counter("jobgate_operator_pods_created", "Pods created for job attempts.")
QUEUE_DEPTH = prometheus_client.Gauge("jobgate_operator_queue_depth", "Jobs waiting for a worker.")
LEADER = prometheus_client.Gauge(
    "jobgate_operator_leader", "1 while this replica does the work (holds the lease, or runs alone)."
)
LOG_ARCHIVE_BACKLOG = prometheus_client.Gauge(
    "jobgate_operator_log_archive_backlog",
    "Pods' logs being archived or waiting to be (the object store down), and archives to delete.",
)
LOG_ARCHIVES = prometheus_client.Counter(
    "jobgate_operator_log_archives",
    "Pods' logs archived, or lost: the pod was gone before its log could be copied.",
    ["result"],
)

for _result in ("archived", "lost"):
    LOG_ARCHIVES.labels(_result)
for _state in models.JobState:  # every series exists from the start, at 0
    JOB_TRANSITIONS.labels(_state.value)

K = TypeVar("K")
T = TypeVar("T")


def serve(*, host: str, port: int) -> None:
    """Serve the metrics over HTTP from a daemon thread, for the life of the process."""
    prometheus_client.start_http_server(port, addr=host)


def status_written(*, before: Mapping[str, Any], patch: Mapping[str, Any]) -> None:
    """Count the transition of a status write: `before` is the status as read, `patch` what was merged.

    A Job without a state yet (never written) is PENDING once written.
    """
    old = before.get("state")
    new = patch.get("state") or old or models.JobState.PENDING.value
    if new != old:
        JOB_TRANSITIONS.labels(new).inc()


def timed(handle: Callable[[K, T], None]) -> Callable[[K, T], None]:
    """`handle`, its every call observed in `RECONCILE_SECONDS`."""

    def observed(key: K, trigger: T) -> None:
        with RECONCILE_SECONDS.time():
            handle(key, trigger)

    return observed
