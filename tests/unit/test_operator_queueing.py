"""The work queue: one job at a time, triggers merged, nothing lost."""

from __future__ import annotations

import threading

import pytest

from jobgate.operator import queueing

LOOK = queueing.Trigger(look=True)


def pods(*names: str) -> queueing.Trigger:
    return queueing.Trigger(pods=frozenset(names))


def test_triggers_of_a_waiting_job_are_merged_in_arrival_order() -> None:
    queue: queueing.WorkQueue[str] = queueing.WorkQueue()
    queue.add("a", pods("a-1"))
    queue.add("b", queueing.Trigger())
    queue.add("a", LOOK)
    queue.add("a", pods("a-2"))
    assert len(queue) == 2
    assert queue.take() == ("a", queueing.Trigger(look=True, pods=frozenset({"a-1", "a-2"})))
    assert queue.take() == ("b", queueing.Trigger())


def test_a_busy_job_is_not_handed_out_again_until_done() -> None:
    queue: queueing.WorkQueue[str] = queueing.WorkQueue()
    queue.add("a", LOOK)
    assert queue.take() == ("a", LOOK)
    queue.add("a", pods("a-1"))  # triggered again while busy
    queue.add("b", LOOK)
    assert queue.take() == ("b", LOOK)  # "a" waits for its worker
    queue.done("a")
    assert queue.take() == ("a", pods("a-1"))


@pytest.mark.timeout(10)
def test_workers_handle_every_job_and_survive_errors() -> None:
    queue: queueing.WorkQueue[int] = queueing.WorkQueue()
    handled: set[int] = set()
    all_done = threading.Event()

    def handle(key: int, trigger: queueing.Trigger) -> None:
        handled.add(key)
        if len(handled) == 20:
            all_done.set()
        if key % 3 == 0:
            raise RuntimeError("a bug in one job must not stop the others")

    queueing.start_workers(queue, handle, count=4)
    for key in range(20):
        queue.add(key, LOOK)
    assert all_done.wait(5)
    assert handled == set(range(20))
