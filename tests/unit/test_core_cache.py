"""The newest copy seen wins, learnt from the order of events, never by comparing versions."""

from __future__ import annotations

from typing import Any

import pytest

from jobgate.core import cache


def _version(rv: str, note: str) -> dict[str, Any]:
    return {"metadata": {"resourceVersion": rv}, "note": note}


def _write(newest: cache.Newest[str], key: str, answer: dict[str, Any]) -> None:
    with newest.requesting(key) as request:
        request.wrote(answer)


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_watch_events_from_before_our_write_do_not_replace_its_answer() -> None:
    newest: cache.Newest[str] = cache.Newest()
    _write(newest, "job", _version("b7", "our write's answer"))
    newest.watched("job", _version("a9", "a watch event from before it"))
    assert newest.get("job") == _version("b7", "our write's answer")
    newest.watched("job", _version("b7", "the watch shows our write"))
    newest.watched("job", _version("zz", "a later change"))  # not a number, and "smaller" as text
    assert newest.get("job") == _version("zz", "a later change")


def test_a_write_the_watch_showed_while_it_was_under_way_is_not_waited_for() -> None:
    newest: cache.Newest[str] = cache.Newest()
    with newest.requesting("pod") as request:
        newest.watched("pod", _version("1", "created (the write's own event, early)"))
        newest.watched("pod", _version("2", "bound"))
        request.wrote(_version("1", "the create's answer, late"))
    assert newest.get("pod") == _version("2", "bound")
    newest.watched("pod", _version("3", "running"))
    assert newest.get("pod") == _version("3", "running")


def test_a_failed_write_leaves_nothing_pending() -> None:
    newest: cache.Newest[str] = cache.Newest()
    with pytest.raises(RuntimeError), newest.requesting("job"):
        raise RuntimeError("409")
    newest.watched("job", _version("4", "someone else's change"))
    assert newest.get("job") == _version("4", "someone else's change")


def test_without_a_write_every_watch_event_replaces_the_copy() -> None:
    newest: cache.Newest[str] = cache.Newest()
    newest.watched("pod", _version("9", "a"))
    newest.watched("pod", _version("10", "b"))
    assert newest.get("pod") == _version("10", "b")


def test_a_relist_replaces_the_copy_and_what_was_pending() -> None:
    newest: cache.Newest[str] = cache.Newest()
    _write(newest, "job", _version("5", "written"))
    newest.listed("job", _version("8", "listed"))
    newest.watched("job", _version("9", "after the list"))
    assert newest.get("job") == _version("9", "after the list")


def test_dropped_objects_are_gone() -> None:
    newest: cache.Newest[str] = cache.Newest()
    _write(newest, "pod", _version("7", "a"))
    newest.drop("pod")
    newest.drop("never seen")
    assert newest.get("pod") is None
    assert len(newest) == 0
    newest.watched("pod", _version("3", "a namesake"))  # nothing pending is left from the write
    assert newest.get("pod") == _version("3", "a namesake")


def test_a_read_is_kept_but_never_waited_for() -> None:
    # The watch showed "6" before the read began, and never shows it again: waiting for it
    # would ignore every later event of the object.
    newest: cache.Newest[str] = cache.Newest()
    newest.watched("pod", _version("6", "bound"))
    with newest.requesting("pod") as request:
        request.read(_version("6", "bound, read"))
    assert newest.get("pod") == _version("6", "bound, read")
    newest.watched("pod", _version("7", "running"))
    assert newest.get("pod") == _version("7", "running")


def test_a_relist_during_a_write_stands_over_its_answer() -> None:
    # The list may hold the write already (its version is then never watched): the watch
    # goes on from the list.
    newest: cache.Newest[str] = cache.Newest()
    with newest.requesting("job") as request:
        newest.listed("job", _version("12", "listed, after the write"))
        request.wrote(_version("11", "the write's answer"))
    assert newest.get("job") == _version("12", "listed, after the write")
    newest.watched("job", _version("13", "a later change"))
    assert newest.get("job") == _version("13", "a later change")


def test_a_write_the_watch_never_shows_is_waited_for_a_bounded_time() -> None:
    clock = _Clock()
    pending: cache.Pending[str] = cache.Pending(clock=clock)
    pending.begin("job")
    assert pending.end("job", "20")
    assert not pending.accepts("job", "19")  # from before the write
    clock.now += cache.PATIENCE
    assert pending.accepts("job", "25")  # the watch resumed past it
    assert pending.accepts("job", "26")
    assert "job" not in pending


def test_a_relist_of_everything_overtakes_requests_under_way() -> None:
    pending: cache.Pending[str] = cache.Pending()
    pending.begin("job")
    pending.clear()
    assert not pending.end("job", "30")
    assert pending.accepts("job", "29")
