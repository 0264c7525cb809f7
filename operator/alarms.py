"""Wake-ups at jobs' deadlines: one task and one heap for all jobs.

Scheduling timeouts, active deadlines, quota retries and TTLs all need a job to be looked
at later. A kopf timer or daemon per job would cost an asyncio task per job; here a job
costs one heap entry while it has a deadline ahead, and nothing once it has none.
"""

from __future__ import annotations

import asyncio
import heapq
import threading
import time
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

Key = TypeVar("Key", bound=Hashable)


class Alarms(Generic[Key]):
    """Keys due at wall-clock times; `set` may be called from any thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._due: dict[Key, float] = {}
        self._heap: list[tuple[float, int, Key]] = []
        self._counter = 0  # ties in the heap are broken by insertion, never by comparing keys
        self._changed: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def set(self, key: Key, at: float) -> None:
        """Wake `key` at `at` (time.time() seconds), unless it is due earlier already."""
        with self._lock:
            if key in self._due and self._due[key] <= at:
                return
            self._due[key] = at
            self._counter += 1
            heapq.heappush(self._heap, (at, self._counter, key))
            earliest = self._heap[0][2] == key
        if earliest and self._loop is not None and self._changed is not None:
            self._loop.call_soon_threadsafe(self._changed.set)

    def cancel(self, key: Key) -> None:
        with self._lock:
            self._due.pop(key, None)  # its heap entry is skipped when it surfaces

    def pop_due(self, now: float) -> list[Key]:
        """The keys due by `now`, removed."""
        due = []
        with self._lock:
            while self._heap and self._heap[0][0] <= now:
                at, _, key = heapq.heappop(self._heap)
                if self._due.get(key) == at:
                    del self._due[key]
                    due.append(key)
        return due

    def next_at(self) -> float | None:
        with self._lock:
            while self._heap and self._due.get(self._heap[0][2]) != self._heap[0][0]:
                heapq.heappop(self._heap)  # cancelled or moved earlier
            return self._heap[0][0] if self._heap else None

    def __len__(self) -> int:
        return len(self._due)

    async def run(self, fire: Callable[[Key], None]) -> None:
        """Call `fire(key)` (which must not block) for each key when it is due, until cancelled."""
        self._loop, self._changed = asyncio.get_running_loop(), asyncio.Event()
        while True:
            for key in self.pop_due(time.time()):
                fire(key)
            self._changed.clear()
            at = self.next_at()
            try:
                timeout = None if at is None else max(at - time.time(), 0)
                await asyncio.wait_for(self._changed.wait(), timeout=timeout)
            except TimeoutError:
                pass
