"""Jobs waiting to be handled: each job at most once at a time, its triggers merged.

kopf hands every watch event to a handler; here a handler only records which job needs a
look and why, and returns. Worker threads then take the jobs one at a time. A burst of
events for one job becomes one look, a job is never handled by two workers at once, and
the memory held is one small entry per waiting job, never the events' bodies.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

logger = logging.getLogger(__name__)

Key = TypeVar("Key", bound=Hashable)


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
        self._waiting: dict[Key, Trigger] = {}  # in arrival order
        self._busy: set[Key] = set()

    def add(self, key: Key, trigger: Trigger) -> None:
        with self._changed:
            self._waiting[key] = self._waiting[key] | trigger if key in self._waiting else trigger
            if key not in self._busy:
                self._changed.notify()

    def take(self) -> tuple[Key, Trigger]:
        """The next job no worker is busy with (waits for one); `done` must follow."""
        with self._changed:
            while True:
                key = next((key for key in self._waiting if key not in self._busy), None)
                if key is not None:
                    self._busy.add(key)
                    return key, self._waiting.pop(key)
                self._changed.wait()

    def done(self, key: Key) -> None:
        with self._changed:
            self._busy.discard(key)
            if key in self._waiting:  # it was triggered again meanwhile
                self._changed.notify()

    def __len__(self) -> int:
        with self._changed:
            return len(self._waiting)


def start_workers(queue: WorkQueue[Key], handle: Callable[[Key, Trigger], None], *, count: int) -> None:
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
        threading.Thread(target=work, name=f"jobgate-worker-{number}", daemon=True).start()
