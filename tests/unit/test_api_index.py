"""The in-memory job index: newer wins (by order, never by comparing resourceVersions), own
writes stick, pages stay cheap at 10,000 jobs."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import pytest

from jobgate.api import index
from jobgate.core import jobs as core_jobs
from jobgate.crds import models as crd


def job(
    name: str,
    *,
    rv: int,
    namespace: str = "ns",
    state: str | None = None,
    uid: str | None = None,
    created: str = "2025-01-01T00:00:00Z",
    tenant: str | None = "acme",
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "metadata": {
            "name": name,
            "namespace": namespace,
            "uid": uid or f"uid-{name}",
            "resourceVersion": str(rv),
            "creationTimestamp": created,
            "managedFields": [{"manager": "kubectl"}],
        },
        "spec": {"submissionId": name, "entrypoint": "true", "tenant": tenant},
    }
    if state:
        body["status"] = {"state": state}
    return body


def loaded(*jobs: dict[str, Any]) -> index.JobIndex:
    jobs_index = index.JobIndex()
    jobs_index.replace(list(jobs))
    return jobs_index


def wrote(jobs_index: index.JobIndex, body: dict[str, Any]) -> None:
    """This process's own write of the Job, answered with `body`."""
    with jobs_index.writing(index.key_of(body)) as answer:
        answer.wrote(core_jobs.parse(body))


def ids(page: index.Page) -> list[str]:
    return [entry.submission_id for entry in page.entries]


def test_it_is_synced_once_loaded_and_trims_managed_fields() -> None:
    jobs_index = index.JobIndex()
    assert not jobs_index.synced
    jobs_index.replace([job("a", rv=1)])
    assert jobs_index.synced
    found = jobs_index.find("ns", "a")
    assert found is not None
    assert "managedFields" not in found.job.body["metadata"]


def test_own_writes_win_over_the_watchs_late_news_and_the_watch_takes_over_after() -> None:
    jobs_index = loaded(job("a", rv=10))
    wrote(jobs_index, job("a", rv=12, state="STOPPED"))
    jobs_index.put(job("a", rv=11, state="RUNNING"))  # late news of a version before the write
    found = jobs_index.find("ns", "a")
    assert found is not None
    assert (found.job.resource_version, found.state) == ("12", crd.JobState.STOPPED)
    jobs_index.put(job("a", rv=12, state="STOPPED"))  # the watch shows the write itself
    jobs_index.put(job("a", rv=9, state="FAILED"))  # after it, every event is newer, whatever its number
    found = jobs_index.find("ns", "a")
    assert found is not None
    assert (found.job.resource_version, found.state) == ("9", crd.JobState.FAILED)


def test_a_write_the_watch_already_showed_is_not_waited_for() -> None:
    jobs_index = loaded()
    key = index.Key("ns", "a")
    with jobs_index.writing(key) as answer:
        jobs_index.put(job("a", rv=1))  # the create's own event, before its answer
        jobs_index.put(job("a", rv=2, state="RUNNING"))
        answer.wrote(core_jobs.parse(job("a", rv=1)))
    found = jobs_index.find("ns", "a")
    assert found is not None
    assert found.state is crd.JobState.RUNNING


def test_a_job_this_process_deleted_stays_deleted_until_the_watch_says_so() -> None:
    jobs_index = loaded(job("a", rv=10))
    entry = jobs_index.find("ns", "a")
    assert entry is not None
    jobs_index.forget(entry)
    assert jobs_index.find("ns", "a") is None
    jobs_index.put(job("a", rv=11, state="SUCCEEDED"))  # the operator's last write, seen late
    assert jobs_index.find("ns", "a") is None
    jobs_index.delete(job("a", rv=12))
    jobs_index.put(job("a", rv=13, uid="new"))  # created again: a new object
    assert jobs_index.find("ns", "a") is not None


def test_a_relist_keeps_own_creations_it_does_not_show_and_drops_what_vanished() -> None:
    jobs_index = loaded(job("a", rv=10), job("b", rv=11))
    wrote(jobs_index, job("c", rv=30))  # created by this process after the list below was taken
    jobs_index.replace([job("a", rv=12)])
    assert jobs_index.find("ns", "a") is not None
    assert jobs_index.find("ns", "b") is None
    assert jobs_index.find("ns", "c") is not None


def test_a_relist_is_the_truth_from_then_on_but_does_not_undo_own_deletions() -> None:
    jobs_index = loaded(job("stopped", rv=10), job("deleted", rv=11))
    wrote(jobs_index, job("stopped", rv=30, state="STOPPED"))
    deleted = jobs_index.find("ns", "deleted")
    assert deleted is not None
    jobs_index.forget(deleted)
    # Versions are not compared: the list wins, and the watch that follows it brings the
    # write again if the list was older.
    jobs_index.replace([job("stopped", rv=10), job("deleted", rv=11)])
    jobs_index.put(job("stopped", rv=30, state="STOPPED"))
    stopped = jobs_index.find("ns", "stopped")
    assert stopped is not None
    assert stopped.state is crd.JobState.STOPPED
    assert jobs_index.find("ns", "deleted") is None  # the same uid: still this process's deletion
    jobs_index.replace([job("deleted", rv=40, uid="again")])  # re-created since
    assert jobs_index.find("ns", "deleted") is not None


def test_deletes_of_another_object_of_the_same_name_are_ignored() -> None:
    jobs_index = loaded(job("a", rv=10, uid="second"))
    jobs_index.delete(job("a", rv=9, uid="first"))
    assert jobs_index.find("ns", "a") is not None


def test_pages_are_in_creation_order_and_filtered() -> None:
    jobs_index = loaded(
        job("c", rv=1, created="2025-01-01T00:00:03Z", state="FAILED"),
        job("a", rv=2, created="2025-01-01T00:00:01Z", state="RUNNING"),
        job("b", rv=3, created="2025-01-01T00:00:01Z", state="FAILED"),
        job("d", rv=4, created="2025-01-01T00:00:04Z", state="FAILED"),
        job("other", rv=5, namespace="elsewhere"),
    )
    everything = jobs_index.page("ns", accept=lambda entry: True)
    assert (ids(everything), everything.next) == (["a", "b", "c", "d"], None)

    first = jobs_index.page("ns", accept=lambda entry: True, limit=3)
    assert ids(first) == ["a", "b", "c"]
    assert first.next is not None
    assert ids(jobs_index.page("ns", accept=lambda entry: True, after=first.next, limit=3)) == ["d"]

    newest = jobs_index.page("ns", accept=lambda entry: True, limit=3, newest_first=True)  # Ray's list
    assert ids(newest) == ["d", "c", "b"]
    assert newest.next is not None
    last = jobs_index.page("ns", accept=lambda entry: True, after=newest.next, limit=3, newest_first=True)
    assert (ids(last), last.next) == (["a"], None)

    failed = jobs_index.page("ns", accept=lambda entry: entry.state is crd.JobState.FAILED, limit=2)
    assert ids(failed) == ["b", "c"]
    rest = jobs_index.page(
        "ns", accept=lambda entry: entry.state is crd.JobState.FAILED, after=failed.next, limit=2
    )
    assert (ids(rest), rest.next) == (["d"], None)  # no empty last page
    exact = jobs_index.page("ns", accept=lambda entry: entry.state is crd.JobState.FAILED, limit=3)
    assert exact.next is None
    assert jobs_index.count_by_state() == {
        crd.JobState.FAILED: 3,
        crd.JobState.RUNNING: 1,
        crd.JobState.PENDING: 1,
    }


def test_ten_thousand_jobs_page_and_render_fast() -> None:
    states = ["PENDING", "RUNNING", "SUCCEEDED", "FAILED", "STOPPED"]
    jobs_index = loaded(
        *(
            job(
                f"job-{number:05d}",
                rv=number + 1,
                state=states[number % 5],
                created=f"2025-01-01T{number // 3600:02d}:{number // 60 % 60:02d}:{number % 60:02d}Z",
            )
            for number in range(10_000)
        )
    )
    running = lambda entry: entry.state is crd.JobState.RUNNING  # noqa: E731

    started = time.perf_counter()
    page = jobs_index.page("ns", accept=running, limit=100)
    for _ in range(9):
        page = jobs_index.page("ns", accept=running, after=page.next, limit=100)
        [entry.details for entry in page.entries]
    per_page = (time.perf_counter() - started) / 10
    assert per_page < 0.05, f"{per_page * 1000:.1f} ms per page of 100"

    started = time.perf_counter()
    everything = jobs_index.page("ns", accept=lambda entry: True)
    [entry.details for entry in everything.entries]
    assert len(everything.entries) == 10_000
    assert time.perf_counter() - started < 2.0


def test_waiters_wake_on_changes_from_another_thread() -> None:
    jobs_index = loaded(job("a", rv=1))
    waiters = index.Waiters(jobs_index)
    key = index.Key("ns", "a")

    seen: list[index.Entry | None] = []
    changer = threading.Thread(target=jobs_index.put, args=(job("a", rv=2, state="RUNNING"),))

    def running(entry: index.Entry | None) -> bool:
        seen.append(entry)
        if len(seen) == 1:  # the waiter is waiting and has looked: now the change comes
            changer.start()
        return entry is not None and entry.state is crd.JobState.RUNNING

    async def scenario() -> index.Entry | None:
        async with asyncio.timeout(5):
            return await waiters.until(key, running)

    entry = asyncio.run(scenario())
    changer.join()
    assert entry is not None
    assert entry.job.resource_version == "2"
    first = seen[0]
    assert first is not None
    assert first.job.resource_version == "1"  # it did wait: the change came after its first look


def test_waiters_see_a_deletion_and_can_time_out() -> None:
    jobs_index = loaded(job("a", rv=1))
    waiters = index.Waiters(jobs_index)
    key = index.Key("ns", "a")

    async def deleted() -> index.Entry | None:
        asyncio.get_running_loop().call_later(0.01, jobs_index.delete, job("a", rv=2))
        return await waiters.until(key, lambda entry: entry is None)

    assert asyncio.run(deleted()) is None

    async def never() -> None:
        async with asyncio.timeout(0.05):
            await waiters.until(key, lambda entry: False)

    with pytest.raises(TimeoutError):
        asyncio.run(never())
