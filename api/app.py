"""The FastAPI application: both APIs, packages, probes and metrics, over one job store.

`create_app(settings)` builds it; the store's watch starts with the app's lifespan (so an
app that is never started, as in unit tests, never talks to Kubernetes).
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.metadata
import logging
import time
from collections.abc import AsyncIterator
from concurrent import futures
from typing import Any, Final

import fastapi
from fastapi.openapi.utils import get_openapi

from jobgate.api import crosssite, errors, index, limits, logscope, metrics, packages, service, store
from jobgate.api.config import Settings
from jobgate.api.routers import docs, ray, seed, system
from jobgate.api.routers import packages as package_routes
from jobgate.core import objectstore

log = logging.getLogger(__name__)

DESCRIPTION = """\
Submit jobs that run as pods on Kubernetes, in two dialects:

* **the seed's job API** at `/api/jobs` (openYuanrong's "Submit Job" family): errors are JSON strings;
* **Ray's Jobs API** at `/ray/api/...`: `RAY_ADDRESS=http://<host>:8265/ray ray job submit ...` works.

The tenant is `X-Tenant-Id` (or the deployment's default); `X-Pool-Label` chooses the nodes. When the
deployment configures bearer tokens, send `Authorization: Bearer <token>`. Times are milliseconds since
the epoch.
"""


def create_app(settings: Settings, *, kube: store.Store | None = None) -> fastapi.FastAPI:
    """The app; `kube` defaults to a store connected with in-cluster or $KUBECONFIG credentials."""
    kube = kube or store.Store.connect(job_index=index.JobIndex(), namespace_prefix=settings.namespace_prefix)
    archive = objectstore.ObjectStore.connect(settings)
    # With an object store, packages live there (every replica sees them) and the directory
    # only holds uploads while they are checked; without one, the directory keeps them.
    shelf: packages.DirectoryShelf | packages.StoreShelf = (
        packages.DirectoryShelf(settings.package_dir)
        if archive is None
        else packages.StoreShelf(archive, spool=settings.package_dir)
    )
    uploads = packages.Packages(shelf, limits=settings.working_dir.unpack_limits)

    @contextlib.asynccontextmanager
    async def lifespan(app: fastapi.FastAPI) -> AsyncIterator[None]:
        shelf.open()
        # The store blocks; requests call it through asyncio.to_thread, in this executor:
        # as many threads as apiserver connections (the default would be a few per CPU).
        asyncio.get_running_loop().set_default_executor(
            futures.ThreadPoolExecutor(max_workers=store.CONNECTIONS, thread_name_prefix="jobgate-api")
        )
        kube.start()
        collector = asyncio.ensure_future(_collect_packages(uploads, jobs, settings=settings))
        try:
            yield
        finally:
            collector.cancel()
            kube.stop()

    app = fastapi.FastAPI(
        title="jobgate",
        version=importlib.metadata.version("jobgate"),
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,  # served from here (routers/docs.py): no CDN
        redoc_url=None,
    )
    app.state.settings = settings
    jobs = service.Jobs(
        kube=kube,
        waiters=index.Waiters(kube.jobs),
        settings=settings,
        archive=archive,
    )
    app.state.jobs = jobs
    app.state.packages = uploads
    app.state.metrics = metrics.Metrics(kube=kube)
    app.add_middleware(limits.BodyLimit, default=settings.max_body_bytes, uploads=settings.max_package_bytes)
    app.add_middleware(metrics.Middleware, metrics=app.state.metrics)
    app.add_middleware(crosssite.CrossSiteGuard, allowed_origins=settings.allowed_origins)
    app.add_middleware(logscope.JobLogScope)  # added last: outermost
    errors.install(app)
    app.include_router(seed.router)
    app.include_router(ray.router)
    app.include_router(package_routes.router)
    app.include_router(system.router)
    docs.install(app)
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    return app


async def _collect_packages(uploads: packages.Packages, jobs: service.Jobs, *, settings: Settings) -> None:
    """Now and then, remove the packages nobody wants (`Packages.remove_unused`); only once
    the job index is loaded, since a Job it has not seen yet may use one."""
    period = min(settings.package_ttl_seconds / 4, _COLLECT_PERIOD_MAX)
    while True:
        await asyncio.sleep(period)
        if not jobs.ready:
            continue
        idle_since = time.time() - settings.package_ttl_seconds
        try:
            removed = await asyncio.to_thread(
                uploads.remove_unused, idle_since=idle_since, in_use=jobs.packages_in_use()
            )
        except (OSError, objectstore.UnavailableError):
            log.exception("removing unused packages failed; trying again in %.0f s", period)
            continue
        if removed:
            log.info("removed %d unused packages: %s", len(removed), ", ".join(removed[:20]))


_COLLECT_PERIOD_MAX: Final = 3600.0  # seconds between looks for unused packages, at most


def _openapi(app: fastapi.FastAPI) -> dict[str, Any]:
    """FastAPI's document, plus the bearer scheme (checked by `deps.tenant`, not by FastAPI)."""
    if app.openapi_schema is None:
        schema = get_openapi(
            title=app.title, version=app.version, description=app.description, routes=app.routes
        )
        schema.setdefault("components", {})["securitySchemes"] = {
            "bearer": {
                "type": "http",
                "scheme": "bearer",
                "description": "When the deployment configures tokens",
            }
        }
        schema["security"] = [{}, {"bearer": []}]  # optional: only some deployments require it
        app.openapi_schema = schema
    return app.openapi_schema
