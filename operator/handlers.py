"""kopf's side: what the operator watches and how kopf is tuned.

Only `@kopf.on.event` handlers, on purpose: they are kopf's level-triggered "spies", which
store nothing on the objects. With no change-detection handlers (on.create/update/...),
no daemons and no timers, kopf writes no progress or last-handled-configuration
annotations and adds no finalizer, so the only writes per job are the operator's own:
the pod, the status patches and the events (see README.md for the count). The handlers
only queue the job (see `queueing`) and return, so kopf never holds events waiting.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import Any

import kopf

from jobgate.core import logs
from jobgate.crds import models
from jobgate.operator import alarms as alarming
from jobgate.operator import config as configuration
from jobgate.operator import metrics, queueing, reconciler

LIST_PAGE = 200


def build_registry(
    *,
    reconciling: reconciler.Reconciler,
    alarms: alarming.Alarms[reconciler.Key],
    queue: queueing.WorkQueue[reconciler.Key],
    config: configuration.Config,
) -> kopf.OperatorRegistry:
    registry = kopf.OperatorRegistry()

    @kopf.on.login(registry=registry)
    def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
        # The same credentials as the operator's own client: in-cluster, else $KUBECONFIG.
        return kopf.login_via_client(**kwargs)

    @kopf.on.startup(registry=registry)
    async def start(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
        # The Job's events are the operator's own (see lifecycle): kopf posts none.
        settings.posting.enabled = False
        # Server-side filters: only unfinished Jobs, and jobgate's unfinished pods, are
        # streamed, so that neither finished jobs nor the cluster's other pods cost anything
        # here. Something that finishes leaves its stream with a DELETED event.
        unfinished = ",".join(f"status.state!={state}" for state in sorted(models.TERMINAL_STATES))
        settings.watching.field_selectors[models.GROUP, models.VERSION, models.PLURAL] = unfinished
        settings.watching.label_selectors["v1", "pods"] = models.LABEL_JOB_NAME
        settings.watching.field_selectors["v1", "pods"] = "status.phase!=Succeeded,status.phase!=Failed"
        # Lists (at start, and on relists) come in pages, so that the objects of a big cluster
        # pass through in small batches instead of all being held at once.
        settings.watching.chunk_size = LIST_PAGE
        # Each handling of a job is timed, and its log lines name the job (see logs, metrics).
        handle = logs.per_job(metrics.timed(reconciling.reconcile))
        queueing.start_workers(queue, handle, count=config.workers)
        threading.Thread(target=reconciling.resume_ttls, name="jobgate-resume-ttls", daemon=True).start()
        memo["alarms"] = asyncio.create_task(alarms.run(reconciling.alarm))

    @kopf.on.cleanup(registry=registry)
    async def stop(memo: kopf.Memo, **_: Any) -> None:
        memo["alarms"].cancel()

    @kopf.on.event(models.GROUP, models.VERSION, models.PLURAL, registry=registry)
    async def job_event(event: kopf.RawEvent, **_: Any) -> None:
        reconciling.job_event(event_type=event["type"], job=event["object"])

    @kopf.on.event("v1", "pods", labels={models.LABEL_JOB_NAME: kopf.PRESENT}, registry=registry)
    async def pod_event(event: kopf.RawEvent, **_: Any) -> None:
        reconciling.pod_event(event_type=event["type"], pod=event["object"])

    return registry


def quiet_kopf() -> None:
    """kopf logs every handler call at INFO; per job that is noise, the events tell the story."""
    logging.getLogger("kopf.objects").setLevel(logging.WARNING)
