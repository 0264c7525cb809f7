"""The newest copy seen of each object, from watch events and from this process's own writes.

resourceVersion is opaque (Kubernetes API conventions): it is compared for equality only,
never as a number. What is newer is learnt from order instead. A watch delivers an object's
changes in order; the answer to a write is newer than every event the watch delivers before
the event of that very write. So after a write, `Pending` remembers the version written,
and watch events of the object are ignored until the one carrying that version arrives:
from then on the watch is ahead of the write again, and each event replaces the copy. (If
the watch showed that version while the write was under way, it is ahead already.)

A copy may be stale by the time it is used; callers make that safe (a status write carries
the resourceVersion it was decided on, and fails on a stale one).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Hashable, Iterator, Mapping
from typing import Any, Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


def resource_version(body: Mapping[str, Any]) -> str:
    return str((body.get("metadata") or {}).get("resourceVersion") or "")


class Pending(Generic[K]):
    """Versions this process wrote that its watch has not shown yet (callers hold a lock).

    A write is bracketed: `begin` before the request, `end` with its answer. The watch may
    show the write's own event before the answer comes back: versions watched in between are
    noted, and an answer the watch has already shown is not waited for.
    """

    def __init__(self) -> None:
        self._written: dict[K, str] = {}
        self._in_flight: dict[K, tuple[int, list[str]]] = {}  # writes under way, versions watched meanwhile

    def __contains__(self, key: object) -> bool:
        return key in self._written

    def begin(self, key: K) -> None:
        count, seen = self._in_flight.get(key, (0, []))
        self._in_flight[key] = (count + 1, seen)

    def end(self, key: K, version: str | None) -> bool:
        """The write answered `version` (None: it failed); whether that answer is newer than
        every version the watch has shown (so that it, not the watch's copy, is kept)."""
        count, seen = self._in_flight.pop(key, (1, []))
        if count > 1:
            self._in_flight[key] = (count - 1, seen)
        if version is None or version in seen:
            return False
        self._written[key] = version
        return True

    @contextlib.contextmanager
    def bracket(
        self, key: K, *, lock: threading.Lock, version: Callable[[V], str], keep: Callable[[V], None]
    ) -> Iterator[Callable[[V], None]]:
        """Around a request answered with a copy of the object (a write, or a read): call what
        it yields with that copy; `keep(copy)` follows, under `lock`, unless the watch has
        shown that version already (its own copy is as new, or newer)."""
        answer: list[V] = []
        with lock:
            self.begin(key)
        try:
            yield answer.append
        finally:
            with lock:
                if self.end(key, version(answer[0]) if answer else None):
                    keep(answer[0])

    def accepts(self, key: K, version: str) -> bool:
        """Whether a watched `version` is at least as new as what this process wrote."""
        if key in self._in_flight:
            self._in_flight[key][1].append(version)
        expected = self._written.get(key)
        if expected is None:
            return True
        if version != expected:
            return False  # the watch is behind this process's own write
        del self._written[key]
        return True

    def forget(self, key: K) -> None:
        self._written.pop(key, None)

    def clear(self) -> None:
        self._written.clear()


class Newest(Generic[K]):
    """Thread-safe: watch events come on the event loop, writes' answers from worker threads."""

    def __init__(self) -> None:
        self._objects: dict[K, dict[str, Any]] = {}
        self._pending: Pending[K] = Pending()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._objects)

    def get(self, key: K) -> dict[str, Any] | None:
        with self._lock:
            return self._objects.get(key)

    def watched(self, key: K, body: Mapping[str, Any]) -> None:
        with self._lock:
            if self._pending.accepts(key, resource_version(body)):
                self._objects[key] = dict(body)

    def listed(self, key: K, body: Mapping[str, Any]) -> None:
        """A copy from a (re)list of the watch: the watch goes on from it."""
        with self._lock:
            self._pending.forget(key)
            self._objects[key] = dict(body)

    def requesting(self, key: K) -> contextlib.AbstractContextManager[Callable[[Mapping[str, Any]], None]]:
        """Around a request answered with a copy of the object (a write, or a read): call
        what it yields with that copy. It is kept unless the watch has shown it already."""

        def keep(body: Mapping[str, Any]) -> None:
            self._objects[key] = dict(body)

        return self._pending.bracket(key, lock=self._lock, version=resource_version, keep=keep)

    def drop(self, key: K) -> None:
        with self._lock:
            self._pending.forget(key)
            self._objects.pop(key, None)
