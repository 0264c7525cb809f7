"""The newest copy seen of each object, from watch events and from this process's own requests.

resourceVersion is opaque (Kubernetes API conventions): it is compared for equality only,
never as a number. What is newer is learnt from order instead. A watch delivers an object's
changes in order; the answer to a write is newer than every event the watch delivers before
the event of that very write. So after a write, `Pending` remembers the version written,
and watch events of the object are ignored until the one carrying that version arrives:
from then on the watch is ahead of the write again, and each event replaces the copy. (If
the watch showed that version while the write was under way, it is ahead already.)

Three things end that wait early, each because the watch may never show that version:
a relist (the list may already hold it, or something newer: the watch goes on from the
list), the object's deletion, and `PATIENCE` running out (a watch that broke and resumed
from a newer version). The answer to a read is kept but never waited for: the watch may
have shown that very version before the read began, and would never show it again.

A copy may be stale by the time it is used; callers make that safe (a status write carries
the resourceVersion it was decided on, and fails on a stale one).
"""

from __future__ import annotations

import contextlib
import dataclasses
import threading
import time
from collections.abc import Callable, Hashable, Iterator, Mapping
from typing import Any, Final, Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

# Seconds a write's answer outranks the watch. A watch shows a write within milliseconds
# when it is healthy; one that broke may resume past it, and its events win after this.
PATIENCE: Final = 10.0


def resource_version(body: Mapping[str, Any]) -> str:
    return str((body.get("metadata") or {}).get("resourceVersion") or "")


@dataclasses.dataclass
class _Flight:
    """Requests of one object under way, and what the watch showed meanwhile."""

    count: int = 0
    watched: set[str] = dataclasses.field(default_factory=set)
    overtaken: bool = False  # a relist (or the deletion) came meanwhile: it stands


class Answer(Generic[V]):
    """What a bracketed request calls with the copy the apiserver answered."""

    def __init__(self) -> None:
        self.copy: V | None = None
        self.written = False

    def wrote(self, copy: V) -> None:
        """The answer to a write: newer than every event the watch showed before its own."""
        self.copy, self.written = copy, True

    def read(self, copy: V) -> None:
        """The answer to a read: as new as the watch's copy at least, maybe not newer."""
        self.copy, self.written = copy, False


class Pending(Generic[K]):
    """Versions this process wrote that its watch has not shown yet (callers hold a lock).

    A request is bracketed: `begin` before it, `end` with its answer. The watch may show
    a write's own event before the answer comes back: versions watched in between are
    noted, and an answer the watch has already shown is not waited for.
    """

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._written: dict[K, tuple[str, float]] = {}  # version, and until when it is waited for
        self._in_flight: dict[K, _Flight] = {}

    def __contains__(self, key: object) -> bool:
        return key in self._written

    def begin(self, key: K) -> None:
        self._in_flight.setdefault(key, _Flight()).count += 1

    def end(self, key: K, version: str | None, *, written: bool = True) -> bool:
        """The request answered `version` (None: it failed); whether that answer is to be
        kept: it is, unless the watch (or a relist) showed as much meanwhile. A written
        version is then waited for (see the module's docstring)."""
        flight = self._in_flight.pop(key, _Flight(count=1))
        if flight.count > 1:
            flight.count -= 1
            self._in_flight[key] = flight
        if version is None or version in flight.watched or flight.overtaken:
            return False
        if written:
            self._written[key] = (version, self._clock() + PATIENCE)
        return True

    @contextlib.contextmanager
    def bracket(
        self, key: K, *, lock: threading.Lock, version: Callable[[V], str], keep: Callable[[V], None]
    ) -> Iterator[Answer[V]]:
        """Around a request: tell what it yields the copy answered (`wrote` or `read`);
        `keep(copy)` follows, under `lock`, unless the watch has shown that version already
        (its own copy is as new, or newer)."""
        answer: Answer[V] = Answer()
        with lock:
            self.begin(key)
        try:
            yield answer
        finally:
            with lock:
                got = answer.copy
                if self.end(key, None if got is None else version(got), written=answer.written):
                    assert got is not None
                    keep(got)

    def accepts(self, key: K, version: str) -> bool:
        """Whether a watched `version` is at least as new as what this process wrote."""
        if key in self._in_flight:
            self._in_flight[key].watched.add(version)
        expected = self._written.get(key)
        if expected is None:
            return True
        written, until = expected
        if version != written and self._clock() < until:
            return False  # the watch is behind this process's own write
        del self._written[key]
        return True

    def forget(self, key: K) -> None:
        """The object was relisted or deleted: nothing of it is waited for, nor kept from
        requests under way."""
        self._written.pop(key, None)
        if key in self._in_flight:
            self._in_flight[key].overtaken = True

    def clear(self) -> None:
        """Everything was relisted."""
        self._written.clear()
        for flight in self._in_flight.values():
            flight.overtaken = True


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

    def requesting(self, key: K) -> contextlib.AbstractContextManager[Answer[Mapping[str, Any]]]:
        """Around a request answered with a copy of the object: tell what it yields that
        copy (`wrote` or `read`). It is kept unless the watch has shown as much already."""

        def keep(body: Mapping[str, Any]) -> None:
            self._objects[key] = dict(body)

        return self._pending.bracket(key, lock=self._lock, version=resource_version, keep=keep)

    def drop(self, key: K) -> None:
        with self._lock:
            self._pending.forget(key)
            self._objects.pop(key, None)
