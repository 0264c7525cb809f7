"""The newest version seen of an object wins, whatever the order the versions arrive in."""

from __future__ import annotations

from typing import Any

from jobgate.operator import seen


def _version(rv: str, note: str) -> dict[str, Any]:
    return {"metadata": {"resourceVersion": rv}, "note": note}


def test_an_older_version_arriving_late_does_not_replace_a_newer_one() -> None:
    newest: seen.Newest[str] = seen.Newest()
    newest.put("job", _version("120", "our write's answer"))
    newest.put("job", _version("99", "a watch event from before it"))
    assert newest.get("job") == _version("120", "our write's answer")
    newest.put("job", _version("121", "a later change"))
    assert newest.get("job") == _version("121", "a later change")


def test_a_version_that_is_not_a_number_replaces_what_was_kept() -> None:
    newest: seen.Newest[str] = seen.Newest()
    newest.put("pod", _version("7", "a"))
    newest.put("pod", _version("opaque", "b"))
    assert newest.get("pod") == _version("opaque", "b")


def test_dropped_objects_are_gone() -> None:
    newest: seen.Newest[str] = seen.Newest()
    newest.put("pod", _version("7", "a"))
    newest.drop("pod")
    newest.drop("never seen")
    assert newest.get("pod") is None
    assert len(newest) == 0
