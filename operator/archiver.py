"""Each ended pod's log, copied into the object store (`core.objectstore`) so that it outlives
the pod: the API reads a job's log from there once its pod is gone (stopped, TTL, evicted).

What is archived, under `names.log_key` (the Job's namespace, name, uid, and the attempt):
- a pod that ended (Succeeded, Failed), so every attempt of a retried job: its whole log;
- a pod deleted while it runs (a stop, a deadline, someone's delete): its log is followed
  from just before the delete (`follow`) to the container's end, in a thread of its own (at
  most `log_archive_max_follows` at once), until the log ends or stays silent for
  `FOLLOW_SILENCE`. Past that many, a stopped pod's log is read as it is once a worker gets
  to it: without its last lines, or not at all if the pod is gone by then.

Two steps, each retried with back-off: the log is copied from the kubelet into a spool file
on local disk (cut at `log_archive_max_bytes`, the cut marked in it), then uploaded
(multipart: memory stays bounded whatever the size). A store that is down delays only the
second: the pod's log is served meanwhile, and `jobgate_operator_log_archive_backlog` counts
what waits. Nothing here ever holds a job's status back: it runs beside the reconciler.

Restart-safe and idempotent: a sweep, at start and every `log_archive_sweep_seconds`, lists
the archive, the Jobs and the ended pods; it archives what is missing (a pod that ended while
no operator ran, or whose spool a killed operator lost) and deletes the archives of Jobs that
no longer exist (deleted with kubectl, or while no operator ran). A TTL's delete removes its
Job's archive at once (`remove`); so does the API's.
"""

from __future__ import annotations

import dataclasses
import logging
import tempfile
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import BinaryIO, Final

import urllib3

from jobgate.core import client as clients
from jobgate.core import jobs, objectstore
from jobgate.core import pods as kube_pods
from jobgate.crds import names
from jobgate.operator import config as configuration
from jobgate.operator import metrics, pods, podspec, queueing

logger = logging.getLogger(__name__)

CUT_MARK: Final = "\n[jobgate: the log is cut here, at the archive's limit of {limit} bytes]\n"
# A stopped pod's log is followed until the container ends, which is within the pod's grace
# period (Kubernetes' default, 30 s; jobgate sets none), or until it says nothing for twice
# that: a kubelet that never ends a followed log (kwok's) must not hold a thread forever.
FOLLOW_SILENCE: Final = 60.0
FOLLOW_MARK: Final = (
    "\n[jobgate: the log said nothing for {silence:.0f} s after the pod's stop; archived as far as it came]\n"
)
# How long a stop waits for the followed log to open before it deletes the pod: the log's
# end goes with the pod unless it is open, but a kubelet that does not answer must not hold
# up the stop (the log is then read as it is, if the pod is still there).
FOLLOW_OPEN_WAIT: Final = 5.0
_CHUNK: Final = 1 << 16
# A log stream that broke on the way (the kubelet or the apiserver went away): copied again.
_BROKEN: Final = (urllib3.exceptions.HTTPError, OSError)
_MAX_BACKOFF: Final = 300.0  # seconds between tries of a store (or an apiserver) that is down


@dataclasses.dataclass(kw_only=True)
class _Log:
    """A pod's log to archive: copied to `spool` first, then uploaded."""

    job: jobs.JobRef
    pod: str
    spool: Path | None = None
    failures: int = 0


@dataclasses.dataclass(kw_only=True)
class _Removal:
    """A deleted Job's archive (a folder) to delete."""

    failures: int = 0


class Archiver:
    def __init__(
        self,
        *,
        store: objectstore.ObjectStore,
        job_api: jobs.Jobs,
        pod_api: kube_pods.Pods,
        config: configuration.Config,
    ) -> None:
        self._store = store
        self._job_api = job_api
        self._pod_api = pod_api
        self._config = config
        self._queue: queueing.WorkQueue[str] = queueing.WorkQueue()
        self._lock = threading.Lock()
        self._pending: dict[str, _Log | _Removal] = {}  # by key (a folder, for a removal)
        self._archived: set[str] = set()  # keys in the store, as far as this process knows
        self._spool_dir = Path(tempfile.mkdtemp(prefix="jobgate-log-spool-", dir=config.log_spool_dir))
        self._follows = threading.BoundedSemaphore(config.log_archive_max_follows)  # logs followed at once
        metrics.LOG_ARCHIVE_BACKLOG.set_function(lambda: len(self._pending))

    def start(self) -> None:
        queueing.start_workers(
            self._queue, self._work, count=self._config.log_archive_workers, name="jobgate-archiver"
        )
        threading.Thread(target=self._sweep_forever, name="jobgate-archive-sweep", daemon=True).start()

    # -- what the reconciler asks (from its worker threads; none of it blocks for long) --------

    def ended(self, job: jobs.JobRef, pod: str, attempt: int) -> None:
        """The attempt's pod ended (Succeeded, Failed): archive its log, unless that is done."""
        self._add(names.log_key(job.namespace, job.name, job.uid, attempt), _Log(job=job, pod=pod))

    def follow(self, job: jobs.JobRef, pod: str, attempt: int) -> None:
        """The attempt's pod is about to be deleted while it may run (or is being deleted):
        follow its log to the container's end (a stream opened before the delete outlives
        it). Returns once the stream is open, or after FOLLOW_OPEN_WAIT."""
        key = names.log_key(job.namespace, job.name, job.uid, attempt)
        if self._known(key):
            return
        if not self._follows.acquire(blocking=False):
            # So many stops at once: the log as far as it is when a worker reads it.
            logger.warning(
                "job %s: %d logs followed already; pod %s's is read as it is",
                job,
                self._config.log_archive_max_follows,
                pod,
            )
            self.ended(job, pod, attempt)
            return
        task = _Log(job=job, pod=pod)
        if not self._add(key, task, queued=False):
            self._follows.release()
            return
        opened = threading.Event()
        # A thread of its own: the container may take its whole grace period to end, and a
        # worker waiting for it would hold up every other log.
        threading.Thread(
            target=self._spool_followed, args=(key, task, opened), name="jobgate-log-follow", daemon=True
        ).start()
        opened.wait(FOLLOW_OPEN_WAIT)

    def remove(self, job: jobs.JobRef) -> None:
        """The Job is deleted: so is its archive."""
        self._add(names.log_folder(job.namespace, job.name, job.uid), _Removal())

    # -- the work (in the archiver's own threads) ------------------------------------------------

    def _known(self, key: str) -> bool:
        with self._lock:
            return key in self._archived or key in self._pending

    def _add(self, key: str, task: _Log | _Removal, *, queued: bool = True) -> bool:
        """Whether the task is taken (not if it is done or under way); `queued`: for the workers."""
        with self._lock:
            if key in self._pending or (isinstance(task, _Log) and key in self._archived):
                return False
            self._pending[key] = task
        if queued:
            self._queue.add(key, queueing.Trigger())
        return True

    def _spool_followed(self, key: str, log: _Log, opened: threading.Event) -> None:
        """Follow the log into its spool file (`opened` set once the stream is open, or could
        not be), then leave the upload to the workers, who read the log afresh if this failed."""
        try:
            try:
                stream = self._pod_api.open_log(
                    log.job.namespace,
                    log.pod,
                    container=podspec.MAIN_CONTAINER,
                    follow=True,
                    idle_timeout=FOLLOW_SILENCE,
                )
            finally:
                opened.set()
            log.spool = self._spool(key, stream, followed=True)
        except (kube_pods.PodGoneError, kube_pods.LogNotReadyError):
            with self._lock:
                del self._pending[key]  # its container never started: there is no log
            return
        except (*_BROKEN, clients.UnreachableError, clients.RefusedError) as e:
            logger.warning(
                "job %s: following the log of pod %s failed (%s); reading it again", log.job, log.pod, e
            )
        except Exception:
            logger.exception("job %s: following the log of pod %s failed", log.job, log.pod)
        finally:
            self._follows.release()
        self._queue.add(key, queueing.Trigger())

    def _work(self, key: str, _: queueing.Trigger) -> None:
        task = self._pending[key]
        try:
            if isinstance(task, _Removal):
                self._store.delete_under(key)
                with self._lock:
                    self._archived = {known for known in self._archived if not known.startswith(key)}
            else:
                self._archive(key, task)
        except (kube_pods.PodGoneError, kube_pods.LogNotReadyError):
            assert isinstance(task, _Log)
            logger.warning("job %s: pod %s was gone before its log could be archived", task.job, task.pod)
            metrics.LOG_ARCHIVES.labels("lost").inc()
        except (
            objectstore.UnavailableError,
            clients.UnreachableError,
            urllib3.exceptions.HTTPError,
            OSError,
        ) as e:
            task.failures += 1
            delay = min(2.0**task.failures, _MAX_BACKOFF)
            logger.warning("archiving %s failed (%s), trying again in %.0f s", key, e, delay)
            self._queue.add(key, queueing.Trigger(), delay=delay)
            return
        except Exception:
            logger.exception("archiving %s failed", key)  # a bug: the next sweep tries again
        with self._lock:
            del self._pending[key]

    def _archive(self, key: str, log: _Log) -> None:
        if log.spool is None or not log.spool.exists():  # not copied yet, or the copy is lost
            stream = self._pod_api.open_log(
                log.job.namespace,
                log.pod,
                container=podspec.MAIN_CONTAINER,
                follow=False,
                limit_bytes=self._config.log_archive_max_bytes + 1,
            )
            log.spool = self._spool(key, stream, followed=False)
        self._store.upload(key, log.spool)
        with self._lock:
            self._archived.add(key)
        log.spool.unlink(missing_ok=True)
        metrics.LOG_ARCHIVES.labels("archived").inc()
        logger.info("job %s: archived the log of pod %s as %s", log.job, log.pod, self._store.url(key))

    def _spool(self, key: str, stream: kube_pods.LogStream, *, followed: bool) -> Path:
        """The log in a spool file, at most the archive's limit (then the cut is marked)."""
        limit = self._config.log_archive_max_bytes
        spool = self._spool_dir / f"{names.digest(key, length=16)}.log"
        try:
            with spool.open("wb") as out:
                try:
                    write_capped(stream.chunks(_CHUNK), out, limit=limit)
                except urllib3.exceptions.ReadTimeoutError:
                    if not followed:
                        raise
                    out.write(FOLLOW_MARK.format(silence=FOLLOW_SILENCE).encode())
        except BaseException:
            spool.unlink(missing_ok=True)
            raise
        finally:
            stream.close()
        return spool

    # -- the sweep ------------------------------------------------------------------------------

    def _sweep_forever(self) -> None:
        stopped = threading.Event()  # never set: the sweep ends with the process
        while True:
            try:
                self.sweep()
            except Exception as e:  # the store or the apiserver is down: the next sweep
                logger.warning("sweeping the log archive failed: %s", e)
            stopped.wait(self._config.log_archive_sweep_seconds)

    def sweep(self) -> None:
        """Archive the ended pods' logs that are missing; delete the archives of deleted Jobs.

        The archive is listed before the Jobs: a log archived meanwhile belongs to a Job that
        the list of Jobs has, unless that Job was deleted since (the next sweep then)."""
        stored = set(self._store.keys(names.LOGS))
        alive: set[str] = set()
        for namespace in self._config.namespaces or (None,):
            alive |= self._job_api.uids(namespace=namespace)
        orphans = [key for key in stored if names.log_owner_uid(key) not in alive]
        if orphans:
            self._store.delete(orphans)
            logger.info("deleted %d archived logs of Jobs that no longer exist", len(orphans))
        with self._lock:
            self._archived = {key for key in self._archived | stored if names.log_owner_uid(key) in alive}
        for namespace in self._config.namespaces or (None,):
            for pod in self._pod_api.ended(namespace=namespace):
                owner = kube_pods.owner(pod)
                if owner is not None and owner[1] in alive and pods.attempt(pod) > 0:
                    job = jobs.JobRef(namespace=pod["metadata"]["namespace"], name=owner[0], uid=owner[1])
                    self.ended(job, pods.name(pod), pods.attempt(pod))


def write_capped(chunks: Iterable[bytes], out: BinaryIO, *, limit: int) -> None:
    """Write the chunks, at most `limit` bytes of them; past it, the cut is marked instead
    (and nothing more is read)."""
    written = 0
    for chunk in chunks:
        room = limit - written
        out.write(chunk[:room])
        written += min(len(chunk), room)
        if len(chunk) > room:
            out.write(CUT_MARK.format(limit=limit).encode())
            return
