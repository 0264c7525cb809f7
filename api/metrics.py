"""Prometheus metrics of the API, served at `/metrics`.

    jobgate_api_requests_total{method, route, status}        requests answered
    jobgate_api_request_duration_seconds{method, route}      how long they took
    jobgate_api_jobs{state}                                  jobs by status (all tenants)
    jobgate_api_ready                                        1 while the job index is loaded and watched
    jobgate_api_watch_restarts_total                         times the Jobs watch was listed anew

`route` is the route's path template (`/api/jobs/{submission_id}`), never the raw path, so
ids do not multiply the series. Each app has its own registry (tests build several apps).
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import prometheus_client
from prometheus_client import core, registry
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from jobgate.api import store
from jobgate.crds import models as crd

CONTENT_TYPE = prometheus_client.CONTENT_TYPE_LATEST


class Metrics:
    def __init__(self, *, kube: store.Store) -> None:
        self.registry = prometheus_client.CollectorRegistry()
        self.requests = prometheus_client.Counter(
            "jobgate_api_requests",
            "HTTP requests answered by the API.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.duration = prometheus_client.Histogram(
            "jobgate_api_request_duration_seconds",
            "Time to answer an HTTP request (a waiting submit includes its wait).",
            ["method", "route"],
            registry=self.registry,
        )
        self.registry.register(_JobsCollector(kube))

    def render(self) -> bytes:
        return prometheus_client.generate_latest(self.registry)


class _JobsCollector(registry.Collector):
    """Read at scrape time from the index (no apiserver call)."""

    def __init__(self, kube: store.Store) -> None:
        self._kube = kube

    def collect(self) -> Iterator[core.Metric]:
        jobs = core.GaugeMetricFamily(
            "jobgate_api_jobs", "Jobs known to the API, by status.", labels=["state"]
        )
        counts = self._kube.jobs.count_by_state()
        for state in crd.JobState:
            jobs.add_metric([state.value], counts.get(state, 0))
        yield jobs
        yield core.GaugeMetricFamily(
            "jobgate_api_ready", "1 while the job index is loaded and watched.", value=int(self._kube.ready)
        )
        yield core.CounterMetricFamily(
            "jobgate_api_watch_restarts", "Times the Jobs watch was listed anew.", value=self._kube.restarts
        )


class Middleware:
    """Counts and times every HTTP request (a plain ASGI middleware: bodies stream through)."""

    def __init__(self, app: ASGIApp, *, metrics: Metrics) -> None:
        self._app = app
        self._metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # unless a response starts

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self._app(scope, receive, sending)
        finally:
            # The router writes the matched route into the scope; no match: one series for all.
            route = getattr(scope.get("route"), "path", "(unmatched)")
            method = scope["method"]
            self._metrics.requests.labels(method, route, str(status)).inc()
            self._metrics.duration.labels(method, route).observe(time.perf_counter() - started)
