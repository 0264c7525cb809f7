"""Jobs waiting to be handled: each job at most once at a time, its triggers merged.

kopf hands every watch event to a handler; here a handler only records which job needs a
look and why, and returns. Worker threads then take the jobs one at a time. A burst of
events for one job becomes one look, a job is never handled by two workers at once, and
the memory held is one small entry per waiting job, never the events' bodies.

An entry may be held back a little (`delay`): a pod's events come in bursts (bound to a
node, then running a moment later), and handled together they are one status write instead
of two, as the Job controller batches its pods' events (`syncJobBatchPeriod`).
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable, Hashable
from typing import Final, Generic, TypeVar

logger = logging.getLogger(__name__)

Key = TypeVar("Key", bound=Hashable)

POD_BATCH: Final = 0.1  # seconds a pod's event waits for the rest of its burst


@dataclasses.dataclass(frozen=True)
class Trigger:
    """Why a job is looked at: which of its pods to read along with it."""

    look: bool = False  # the current attempt's pod
    pods: frozenset[str] = frozenset()  # pods named by their own events

    def __or__(self, other: Trigger) -> Trigger:
        return Trigger(look=self.look or other.look, pods=self.pods | other.pods)


class WorkQueue(Generic[Key]):
    def __init__(self) -> None:
        self._changed = threading.Condition()
        # Key -> (trigger, not before: monotonic seconds), in arrival order.
        self._waiting: dict[Key, tuple[Trigger, float]] = {}
        self._busy: set[Key] = set()

    def add(self, key: Key, trigger: Trigger, *, delay: float = 0.0) -> None:
        """Queue `key`; with `delay`, not before then (an earlier time already queued stands)."""
        with self._changed:
            due = time.monotonic() + delay
            if key in self._waiting:
                queued, queued_due = self._waiting[key]
                trigger, due = queued | trigger, min(queued_due, due)
            self._waiting[key] = (trigger, due)
            if key not in self._busy:
                self._changed.notify()

    def take(self) -> tuple[Key, Trigger]:
        """The next due job no worker is busy with (waits for one); `done` must follow."""
        with self._changed:
            while True:
                now, soonest = time.monotonic(), None
                for key, (trigger, due) in self._waiting.items():
                    if key in self._busy:
                        continue
                    if due <= now:
                        self._busy.add(key)
                        del self._waiting[key]
                        return key, trigger
                    soonest = due if soonest is None else min(soonest, due)
                self._changed.wait(None if soonest is None else soonest - now)

    def done(self, key: Key) -> None:
        with self._changed:
            self._busy.discard(key)
            if key in self._waiting:  # it was triggered again meanwhile
                self._changed.notify()

    def __len__(self) -> int:
        with self._changed:
            return len(self._waiting)


def start_workers(
    queue: WorkQueue[Key], handle: Callable[[Key, Trigger], None], *, count: int, name: str = "jobgate-worker"
) -> None:
    """Daemon threads that handle the queue's jobs forever (they end with the process)."""

    def work() -> None:
        while True:
            key, trigger = queue.take()
            try:
                handle(key, trigger)
            except Exception:  # the handler deals with its errors; this only keeps the thread
                logger.exception("unexpected error handling %s", key)
            finally:
                queue.done(key)

    for number in range(count):
        threading.Thread(target=work, name=f"{name}-{number}", daemon=True).start()
