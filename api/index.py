"""Every Job the API can show, in memory: an informer-style index fed by one watch.

`store` lists the Jobs once and then follows one watch for the whole process, feeding each
event to `put`/`delete` here; the API's own writes go in too (`wrote` the created or
patched object, `forget` a deleted one), so a request sees its own write at once, before the
watch brings it (read your writes). Older news never overwrites newer: after its own write,
the index ignores the watch's events of that Job until the one of that write arrives
(`core.cache.Pending`: resourceVersion is opaque, so order tells what is newer).

Reads (`find`, `page`) never call the apiserver. Listing stays cheap at 10,000 jobs: each
namespace keeps its jobs sorted by (creation time, name), a page starts by bisection after
the last key of the previous one, and each entry renders its details once per version.

`Waiters` lets coroutines wait for a job to change (e.g. until it is scheduled) without a
watch or a poll of their own: the index tells them when an entry changed.
"""

from __future__ import annotations

import asyncio
import bisect
import collections
import contextlib
import dataclasses
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, NamedTuple

from jobgate.api import models, views
from jobgate.core import cache, jobs
from jobgate.crds import models as crd


class Key(NamedTuple):
    namespace: str
    name: str


def key_of(job: Mapping[str, Any]) -> Key:
    return Key(job["metadata"]["namespace"], job["metadata"]["name"])


class Order(NamedTuple):
    """Where a job sits in its namespace's list: oldest first, then by name."""

    created: str  # RFC 3339 in UTC: sorts as text
    name: str


class Entry:
    """One Job as last seen; immutable except for its details, rendered on first use."""

    __slots__ = ("_details", "job", "key", "order", "state", "submission_id", "tenant")

    def __init__(self, job: jobs.Job) -> None:
        self.job = job
        self.key = Key(job.ref.namespace, job.ref.name)
        self.order = Order(job.created, job.ref.name)
        self.submission_id = job.submission_id
        self.tenant = job.tenant
        self.state = job.status.state
        self._details: models.RayJobDetails | None = None

    @property
    def details(self) -> models.RayJobDetails:
        if self._details is None:
            self._details = views.details(self.job)
        return self._details


@dataclasses.dataclass
class Page:
    entries: list[Entry]
    next: Order | None  # where the next page starts (after this key); None: this was the last


class JobIndex:
    """Thread-safe: the watch thread writes, the event loop reads (and writes its own writes)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[Key, Entry] = {}
        self._by_id: dict[tuple[str, str], Key] = {}  # (namespace, submission id) -> key
        self._sorted: dict[str, list[Order]] = collections.defaultdict(list)  # per namespace
        # Jobs this process deleted, by key -> uid: stale events about them are ignored
        # until the watch reports the deletion (a Job re-created under the name has a new uid).
        self._deleted: dict[Key, str] = {}
        self._pending: cache.Pending[Key] = cache.Pending()  # this process's writes not watched yet
        self._listeners: list[Callable[[set[Key]], None]] = []
        self._synced = threading.Event()

    @property
    def synced(self) -> bool:
        """Whether the first full list has been loaded (before that, reads would miss jobs)."""
        return self._synced.is_set()

    def subscribe(self, listener: Callable[[set[Key]], None]) -> None:
        """Call `listener(keys)` after entries changed (from the thread that changed them)."""
        self._listeners.append(listener)

    # -- writes -----------------------------------------------------------------------------

    def replace(self, items: Sequence[dict[str, Any]]) -> None:
        """Load a full list (at start, and when the watch expired).

        Listed Jobs replace what was kept; of this process's own writes since, Jobs it
        created that the list does not show yet stay, and so do deletions it does not show yet.
        """
        listed = {entry.key: entry for entry in (Entry(jobs.parse(item)) for item in items)}
        with self._lock:
            created = [
                entry for key, entry in self._entries.items() if key in self._pending and key not in listed
            ]
            deleted = {
                key: uid
                for key, uid in self._deleted.items()
                if key in listed and listed[key].job.ref.uid == uid
            }
            for key in deleted:
                del listed[key]
            listed.update((entry.key, entry) for entry in created)
            changed = set(self._entries) | set(listed)
            self._entries.clear()
            self._by_id.clear()
            self._sorted.clear()
            self._pending.clear()
            self._deleted = deleted
            for entry in listed.values():
                self._insert(entry)
            self._synced.set()
        self._notify(changed)

    def put(self, item: dict[str, Any]) -> None:
        """A Job as watched: kept unless this process wrote a version the watch has not shown yet."""
        entry = Entry(jobs.parse(item))
        with self._lock:
            if not self._pending.accepts(entry.key, entry.job.resource_version):
                return  # from before this process's own write
            self._keep(entry)
        self._notify({entry.key})

    @contextlib.contextmanager
    def writing(self, key: Key) -> Iterator[cache.Answer[jobs.Job]]:
        """Around this process's write of a Job: tell what it yields the Job as written."""
        kept: list[jobs.Job] = []

        def keep(job: jobs.Job) -> None:
            self._keep(Entry(job))
            kept.append(job)

        with self._pending.bracket(
            key, lock=self._lock, version=lambda job: job.resource_version, keep=keep
        ) as answer:
            yield answer
        if kept:
            self._notify({key})

    def _keep(self, entry: Entry) -> None:
        if self._deleted.get(entry.key) == entry.job.ref.uid:
            return  # stale news of a Job this process deleted
        self._deleted.pop(entry.key, None)
        current = self._entries.get(entry.key)
        if current is not None:
            self._remove(current)
        self._insert(entry)

    def delete(self, job: Mapping[str, Any]) -> None:
        """The watch saw the Job deleted."""
        key = key_of(job)
        with self._lock:
            self._deleted.pop(key, None)
            current = self._entries.get(key)
            if current is None or current.job.ref.uid != job["metadata"].get("uid"):
                return
            self._pending.forget(key)
            self._remove(current)
        self._notify({key})

    def forget(self, entry: Entry) -> None:
        """This process deleted the job: gone from reads at once, whatever the watch says late."""
        with self._lock:
            current = self._entries.get(entry.key)
            if current is None:
                return
            self._deleted[entry.key] = current.job.ref.uid
            self._pending.forget(entry.key)
            self._remove(current)
        self._notify({entry.key})

    # -- reads ------------------------------------------------------------------------------

    def get(self, key: Key) -> Entry | None:
        return self._entries.get(key)

    def find(self, namespace: str, submission_id: str) -> Entry | None:
        with self._lock:
            key = self._by_id.get((namespace, submission_id))
            return self._entries.get(key) if key else None

    def page(
        self,
        namespace: str,
        *,
        accept: Callable[[Entry], bool],
        after: Order | None = None,
        limit: int | None = None,
        newest_first: bool = False,
    ) -> Page:
        """The namespace's accepted entries after `after`, oldest first (or newest first), at
        most `limit`."""
        with self._lock:
            order = self._sorted.get(namespace, [])
            if newest_first:
                positions = range((bisect.bisect_left(order, after) if after else len(order)) - 1, -1, -1)
            else:
                positions = range(bisect.bisect_right(order, after) if after else 0, len(order))
            found: list[Entry] = []
            for position in positions:
                entry = self._entries[Key(namespace, order[position].name)]
                if not accept(entry):
                    continue
                if limit is not None and len(found) == limit:
                    return Page(entries=found, next=found[-1].order)
                found.append(entry)
            return Page(entries=found, next=None)

    def unfinished(self) -> list[Entry]:
        with self._lock:
            return [entry for entry in self._entries.values() if not entry.state.terminal]

    def count_by_state(self) -> collections.Counter[crd.JobState]:
        with self._lock:
            return collections.Counter(entry.state for entry in self._entries.values())

    # -- plumbing (callers hold the lock) ---------------------------------------------------

    def _insert(self, entry: Entry) -> None:
        self._entries[entry.key] = entry
        self._by_id[(entry.key.namespace, entry.submission_id)] = entry.key
        bisect.insort(self._sorted[entry.key.namespace], entry.order)

    def _remove(self, entry: Entry) -> None:
        del self._entries[entry.key]
        if self._by_id.get((entry.key.namespace, entry.submission_id)) == entry.key:
            del self._by_id[(entry.key.namespace, entry.submission_id)]
        order = self._sorted[entry.key.namespace]
        position = bisect.bisect_left(order, entry.order)
        if position < len(order) and order[position] == entry.order:
            del order[position]
        if not order:
            del self._sorted[entry.key.namespace]

    def _notify(self, keys: set[Key]) -> None:
        for listener in self._listeners:
            listener(keys)


class Waiters:
    """Coroutines waiting for jobs to change, woken by the index (one watch serves them all)."""

    def __init__(self, index: JobIndex) -> None:
        self._index = index
        self._loop: asyncio.AbstractEventLoop | None = None  # the serving loop, known at first wait
        self._waiting: dict[Key, set[asyncio.Event]] = collections.defaultdict(set)
        index.subscribe(self._changed)

    async def until(self, key: Key, done: Callable[[Entry | None], bool]) -> Entry | None:
        """The job's entry once `done(entry)` holds (None: the job is gone).

        Waits as long as it takes: bound it with `asyncio.timeout`.
        """
        self._loop = asyncio.get_running_loop()
        event = asyncio.Event()
        self._waiting[key].add(event)
        try:
            while True:
                # Cleared before looking, and nothing is awaited in between: a change made
                # after the look sets the event again, so none is missed.
                event.clear()
                entry = self._index.get(key)
                if done(entry):
                    return entry
                await event.wait()
        finally:
            self._waiting[key].discard(event)
            if not self._waiting[key]:
                del self._waiting[key]

    def _changed(self, keys: set[Key]) -> None:
        # Called from the watch thread (or the loop itself): hand over to the loop. Nobody
        # waiting, nobody to wake (a waiter registers before it looks at the index, so a
        # change it could miss here is one it sees when it looks).
        if self._waiting and self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._wake, keys)

    def _wake(self, keys: set[Key]) -> None:
        for key in keys & self._waiting.keys():
            for event in self._waiting[key]:
                event.set()
