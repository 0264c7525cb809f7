"""One heap of wake-ups for all jobs."""

from __future__ import annotations

import asyncio
import time

import pytest

from jobgate.operator import alarms


def test_the_earliest_time_wins_and_due_keys_are_popped_once() -> None:
    wakeups: alarms.Alarms[str] = alarms.Alarms()
    wakeups.set("a", 30)
    wakeups.set("a", 10)  # earlier: replaces
    wakeups.set("a", 20)  # later: ignored
    wakeups.set("b", 15)
    assert wakeups.next_at() == 10
    assert wakeups.pop_due(12) == ["a"]
    assert wakeups.pop_due(12) == []
    assert wakeups.pop_due(16) == ["b"]
    assert len(wakeups) == 0
    assert wakeups.next_at() is None


def test_a_cancelled_key_never_fires() -> None:
    wakeups: alarms.Alarms[str] = alarms.Alarms()
    wakeups.set("a", 10)
    wakeups.cancel("a")
    assert wakeups.next_at() is None
    assert wakeups.pop_due(99) == []


@pytest.mark.timeout(10)
def test_run_fires_keys_set_from_another_thread() -> None:
    async def scenario() -> list[str]:
        wakeups: alarms.Alarms[str] = alarms.Alarms()
        fired: list[str] = []
        done = asyncio.Event()

        def fire(key: str) -> None:
            fired.append(key)
            if len(fired) == 2:
                done.set()

        runner = asyncio.create_task(wakeups.run(fire))
        await asyncio.sleep(0)  # the loop waits with nothing due
        await asyncio.to_thread(wakeups.set, "later", time.time() + 0.2)
        await asyncio.to_thread(wakeups.set, "now", time.time())
        await done.wait()
        runner.cancel()
        return fired

    assert asyncio.run(scenario()) == ["now", "later"]
