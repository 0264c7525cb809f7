"""What both dialects do: submit, read, list, stop, delete jobs and read their logs.

Tenancy is enforced here, once: a job is visible to a tenant only if it lives in the
tenant's namespace and its `spec.tenant` is the tenant (or unset, for a Job someone
applied there with kubectl). Anything else is `JobNotFoundError`, exactly as if it did not exist.

Reads come from the index; writes go through the store (in a thread: it blocks) and land
in the index before the call returns, so the next read sees them.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import logging
import threading
from collections.abc import AsyncGenerator, AsyncIterator, Collection, Iterator, Sequence
from typing import Final

from jobgate.api import errors, index, models, packages, store, translate, views
from jobgate.api.config import Settings, SubmitWait, pod_security_for
from jobgate.core import jobs, logs, objectstore, pods
from jobgate.crds import models as crd
from jobgate.crds import names

log = logging.getLogger(__name__)

# A submit fails (500) when the operator ended its job for one of these reasons before it
# ever ran: the job was not "created" in the seed's sense.
CREATE_FAILURES: Final = frozenset({crd.Reason.SCHEDULING_TIMEOUT, crd.Reason.INVALID_SPEC})
# A followed log stream that outlives its job's end by this much is closed (seconds).
_TAIL_GRACE: Final = 2.0
# How long after a job ends its log may still be on its way to the archive: a stopped pod's is
# followed until its container ends (its grace period, 30 s by default) or is silent for 60 s
# (operator/archiver.py), then uploaded. Until then a missing log is "try again", not "gone".
ARCHIVING_SECONDS: Final = 120.0
_TAIL_CHECK: Final = 0.5  # how often a quiet log stream looks whether its job ended


class Jobs:
    def __init__(
        self,
        *,
        kube: store.Store,
        waiters: index.Waiters,
        settings: Settings,
        archive: objectstore.ObjectStore | None = None,
    ) -> None:
        self._kube = kube
        self._archive = archive  # where the operator archives ended pods' logs (None: nowhere)
        self._index = kube.jobs
        self._waiters = waiters
        self._settings = settings
        self._tails = TailSlots(total=settings.max_log_tails, per_tenant=settings.max_log_tails_per_tenant)

    @property
    def ready(self) -> bool:
        """The job index is loaded and watched: reads are current."""
        return self._kube.ready

    # -- submit -----------------------------------------------------------------------------

    async def submit(
        self,
        request: models.SubmitRequest | models.RaySubmitRequest,
        *,
        dialect: models.Dialect,
        tenant: str,
        pool_labels: Sequence[str],
    ) -> str:
        """Create the job; with `submit_wait=scheduled`, return once its pod is placed.

        Raises `InvalidRequestError` (nothing created), `DuplicateJobError`, or
        `SubmitFailedError` (the Job exists but could not be placed within its scheduling
        timeout).
        """
        spec = translate.job_spec(
            request, dialect=dialect, tenant=tenant, pool_labels=pool_labels, settings=self._settings
        )
        submission_id = spec.submission_id or ""
        logs.bind(submission_id=submission_id)  # this request's log lines name the job from now on
        namespace = self._namespace(tenant)
        self._require_index()
        if self._index.find(namespace, submission_id) is not None:
            raise errors.DuplicateJobError(submission_id)
        try:
            created = await asyncio.to_thread(
                self._kube.create_job,
                translate.manifest(spec, namespace=namespace),
                tenant=tenant,
                pod_security=pod_security_for(self._settings, tenant),
            )
        except jobs.AlreadyExistsError as e:
            raise errors.DuplicateJobError(submission_id) from e
        if self._settings.submit_wait is SubmitWait.STORED or not spec.scheduling_timeout_ms:
            # With no scheduling timeout there is no bound to wait for: the job waits for
            # its node in the cluster, not in this request.
            return submission_id
        key = index.Key(created.ref.namespace, created.ref.name)
        await self._until_placed(key, submission_id, timeout_ms=spec.scheduling_timeout_ms)
        return submission_id

    async def _until_placed(self, key: index.Key, submission_id: str, *, timeout_ms: int) -> None:
        try:
            async with asyncio.timeout((timeout_ms + self._settings.submit_grace_ms) / 1000):
                entry = await self._waiters.until(key, _placed_or_ended)
        except TimeoutError:
            entry = self._index.get(key)
        if entry is None:
            return  # created, and deleted since by someone: it was created all the same
        status = entry.job.status
        if entry.state is crd.JobState.FAILED and status.error_type in CREATE_FAILURES:
            raise errors.SubmitFailedError(submission_id, status.message)
        if not _placed_or_ended(entry):
            raise errors.SubmitFailedError(
                submission_id,
                f"the instance was not scheduled within {timeout_ms} ms and the operator has not "
                "reported a verdict (is it running?); the job is stored and stays PENDING",
            )

    # -- reads ------------------------------------------------------------------------------

    def get(self, tenant: str, submission_id: str) -> index.Entry:
        """The tenant's job; `JobNotFoundError` if the tenant has no such job."""
        self._require_index()
        entry = self._index.find(self._namespace(tenant), submission_id)
        if entry is None or entry.tenant not in (None, tenant):
            raise errors.JobNotFoundError(submission_id)
        return entry

    def list(
        self,
        tenant: str,
        *,
        states: Collection[crd.JobState] = (),
        after: index.Order | None = None,
        limit: int | None = None,
        newest_first: bool = False,
    ) -> index.Page:
        """The tenant's jobs, oldest first (or newest first); only those in `states` when any are given."""
        self._require_index()
        return self._index.page(
            self._namespace(tenant),
            accept=lambda entry: entry.tenant in (None, tenant) and (not states or entry.state in states),
            after=after,
            limit=limit,
            newest_first=newest_first,
        )

    # -- stop and delete --------------------------------------------------------------------

    async def stop(self, tenant: str, submission_id: str) -> bool:
        """Ask the operator to stop the job: True if it was pending or running, False if over."""
        entry = self.get(tenant, submission_id)
        if entry.state.terminal:
            return False
        await asyncio.to_thread(self._kube.stop_job, entry)
        return True

    async def delete(self, tenant: str, submission_id: str) -> bool:
        """Delete a finished job (and its pods): True; False if it is not finished (kept)."""
        entry = self.get(tenant, submission_id)
        if not entry.state.terminal:
            return False
        await asyncio.to_thread(self._kube.delete_job, entry)
        if self._archive is not None:
            folder = names.log_folder(entry.key.namespace, entry.key.name, entry.job.ref.uid)
            try:
                await asyncio.to_thread(self._archive.delete_under, folder)
            except objectstore.UnavailableError as e:
                # The Job is gone: the operator's sweep deletes what it left in the archive.
                log.warning("the archived logs of %s stay until the next sweep: %s", submission_id, e)
        return True

    def packages_in_use(self) -> set[tuple[str, str]]:
        """(namespace, package name) of every unfinished Job's uploaded working_dir and py_modules."""
        return {
            (entry.key.namespace, name)
            for entry in self._index.unfinished()
            if isinstance(entry.job.spec, crd.JobSpec)
            for name in packages.package_names(entry.job.spec.runtime_env)
        }

    def fetches(self, job: index.Key, *, uid: str, package: str) -> bool:
        """Whether that Job, of that uid (unguessable, and never shown by the API), is
        unfinished and has the package named `package` as its working_dir or a py_module: its
        init containers' credential.
        `UnavailableError` (503: try again) while the index is not loaded."""
        self._require_index()
        entry = self._index.get(job)
        if entry is None or entry.job.ref.uid != uid or entry.state.terminal:
            return False
        spec = entry.job.spec
        return isinstance(spec, crd.JobSpec) and package in packages.package_names(spec.runtime_env)

    # -- logs -------------------------------------------------------------------------------

    async def logs(self, tenant: str, submission_id: str, *, dialect: models.Dialect) -> str:
        """The log of the job's (latest) pod so far, after the dialect's own lines: "" before
        it has a pod; from the archive once the pod is gone (`LogsGoneError`: not there)."""
        entry = self.get(tenant, submission_id)
        pod = _pod_of(entry)
        if pod is None:
            return ""
        header = views.log_header(entry.job, dialect)
        try:
            return header + await asyncio.to_thread(
                self._kube.read_log, entry.key.namespace, pod, limit_bytes=self._settings.log_limit_bytes
            )
        except pods.LogNotReadyError:
            return header
        except pods.PodGoneError:
            return header + await self._archived_log(entry, pod)

    async def _archived_log(self, entry: index.Entry, pod: str) -> str:
        """The archived log of the job's latest attempt (as much as a pod's read gives).
        `LogsGoneError` if there is none; `UnavailableError` if the archive cannot be read."""
        submission_id = entry.job.submission_id
        if self._archive is None:
            raise errors.LogsGoneError(submission_id, pod, archived=False)
        ref = entry.job.ref
        key = names.log_key(ref.namespace, ref.name, ref.uid, max(entry.job.status.attempts, 1))
        try:
            data = await asyncio.to_thread(
                self._archive.read, key, limit_bytes=self._settings.log_limit_bytes
            )
        except objectstore.MissingError as e:
            if _ended_within(entry, ARCHIVING_SECONDS):
                raise errors.UnavailableError(
                    f"the log of job {submission_id} is being archived (its pod {pod} went as the job "
                    "ended): try again shortly"
                ) from e
            raise errors.LogsGoneError(submission_id, pod, archived=True) from e
        except objectstore.UnavailableError as e:
            raise errors.UnavailableError(
                f"the logs of job {submission_id} are in the log archive, which cannot be read now: "
                "try again shortly"
            ) from e
        return data.decode(errors="replace")

    def tail_slot(self, tenant: str) -> contextlib.AbstractContextManager[None]:
        """Held while a log tail is followed (`TooManyTailsError` past the caps)."""
        return self._tails.hold(tenant)

    async def follow_logs(
        self, tenant: str, submission_id: str, *, dialect: models.Dialect
    ) -> AsyncGenerator[str, None]:
        """The job's log as it is written, after the dialect's own lines, pod after pod (a
        retried job has several), until the job is over or deleted. `JobNotFoundError` is
        raised before anything is yielded."""
        key = self.get(tenant, submission_id).key
        followed: set[str] = set()

        def news(entry: index.Entry | None) -> bool:
            if entry is None or entry.state.terminal:
                return True
            pod = _pod_of(entry)  # a pod to follow once its container started (RUNNING)
            return pod is not None and pod not in followed and entry.state is not crd.JobState.PENDING

        while True:
            entry = await self._waiters.until(key, news)
            pod = _pod_of(entry) if entry else None
            if entry is None or pod is None or pod in followed:
                return  # deleted, or over without a pod to show
            if not followed and (header := views.log_header(entry.job, dialect)):
                yield header
            followed.add(pod)
            async for text in self._follow_pod(key, pod):
                yield text
            if entry.state.terminal:
                return

    async def _follow_pod(self, key: index.Key, pod: str) -> AsyncIterator[str]:
        try:
            stream = await asyncio.to_thread(self._kube.follow_log, key.namespace, pod)
        except pods.LogNotReadyError:
            return
        except pods.PodGoneError:
            # Over before the tail began: its log, from the archive, if it is there already.
            entry = self._index.get(key)
            if entry is not None:
                with contextlib.suppress(errors.LogsGoneError, errors.UnavailableError):
                    yield await self._archived_log(entry, pod)
            return
        loop = asyncio.get_running_loop()
        chunks: asyncio.Queue[str | None] = asyncio.Queue()

        def pump() -> None:
            with contextlib.suppress(RuntimeError):  # the loop is closed: the process is stopping
                try:
                    for text in stream:
                        loop.call_soon_threadsafe(chunks.put_nowait, text)
                finally:
                    loop.call_soon_threadsafe(chunks.put_nowait, None)

        # A thread of its own, not the shared executor's: a tail may last as long as its job.
        threading.Thread(target=pump, name=f"jobgate-api-tail-{pod}", daemon=True).start()
        ended_at: float | None = None
        try:
            while True:
                try:
                    text = await asyncio.wait_for(chunks.get(), _TAIL_CHECK)
                except TimeoutError:
                    # A quiet stream: close it if its job ended a while ago (a stream that
                    # stays open after its container ended must not hold the client forever).
                    entry = self._index.get(key)
                    if entry is None or entry.state.terminal:
                        ended_at = ended_at or loop.time()
                        if loop.time() - ended_at > _TAIL_GRACE:
                            return
                    continue
                if text is None:
                    return
                yield text
        finally:
            stream.close()  # ends the thread's read, and so the thread

    # -- plumbing ---------------------------------------------------------------------------

    def _namespace(self, tenant: str) -> str:
        return names.tenant_namespace(tenant, prefix=self._settings.namespace_prefix)

    def _require_index(self) -> None:
        if not self._index.synced:
            raise errors.UnavailableError("the job list is not loaded from Kubernetes yet; try again shortly")


def _placed_or_ended(entry: index.Entry | None) -> bool:
    return entry is None or entry.state is not crd.JobState.PENDING or views.is_scheduled(entry.job)


def _pod_of(entry: index.Entry | None) -> str | None:
    return (entry.job.status.pod_name or None) if entry else None


class TailSlots:
    """Log tails under way, in all and per tenant. Each holds a thread and an apiserver
    connection as long as its client keeps it open, so one client could otherwise take all
    of them. Only the event loop calls it: no lock."""

    def __init__(self, *, total: int, per_tenant: int) -> None:
        self._total, self._per_tenant = total, per_tenant
        self._held: dict[str, int] = {}

    @contextlib.contextmanager
    def hold(self, tenant: str) -> Iterator[None]:
        held = self._held.get(tenant, 0)
        if held >= self._per_tenant:
            raise errors.TooManyTailsError(
                f"tenant {tenant} follows {held} logs already, the most it may at once: close one first"
            )
        if sum(self._held.values()) >= self._total:
            raise errors.TooManyTailsError(
                f"this API process follows {self._total} logs already, the most it may at once: "
                "try again later"
            )
        self._held[tenant] = held + 1
        try:
            yield
        finally:
            self._held[tenant] -= 1
            if not self._held[tenant]:
                del self._held[tenant]


def _ended_within(entry: index.Entry, seconds: float) -> bool:
    """Whether the job ended less than `seconds` ago."""
    ended = entry.job.status.end_time
    if ended is None:
        return False
    at = datetime.datetime.fromisoformat(ended)
    return (datetime.datetime.now(datetime.UTC) - at).total_seconds() < seconds
