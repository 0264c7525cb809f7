"""The log archive's pure parts: where a log is kept, and how a log over the cap is cut."""

from __future__ import annotations

import io

import pytest

from jobgate.crds import names
from jobgate.operator import archiver


def test_each_attempt_of_each_job_incarnation_has_its_own_key() -> None:
    key = names.log_key("jobgate-t-acme", "app-1", "uid-1", 2)
    assert key == "logs/jobgate-t-acme/app-1/uid-1/2.log"
    assert key.startswith(names.log_folder("jobgate-t-acme", "app-1", "uid-1"))
    assert names.log_owner_uid(key) == "uid-1"
    # A namesake (the Job deleted and made again) has another uid, so another folder.
    assert names.log_folder("jobgate-t-acme", "app-1", "uid-2") != names.log_folder(
        "jobgate-t-acme", "app-1", "uid-1"
    )


@pytest.mark.parametrize(
    "key", ["logs/ns/app/uid", "logs/ns/app//1.log", "packages/ns/app/uid/1.log", "logs/ns/app/uid/1/x.log"]
)
def test_keys_that_are_no_archived_log_have_no_owner(key: str) -> None:
    assert names.log_owner_uid(key) is None


@pytest.mark.parametrize(
    ("chunks", "limit", "kept"),
    [
        ([b"abc", b"def"], 6, b"abcdef"),  # exactly the limit: whole, no mark
        ([b"abc", b"def"], 10, b"abcdef"),
        ([b"abc", b"def", b"ghi"], 5, b"abcde"),
        ([b"abcdefgh"], 4, b"abcd"),
    ],
)
def test_a_log_is_cut_at_the_limit_and_the_cut_is_marked(
    chunks: list[bytes], limit: int, kept: bytes
) -> None:
    out = io.BytesIO()
    read: list[bytes] = []
    archiver.write_capped((read.append(chunk) or chunk for chunk in chunks), out, limit=limit)
    cut = len(b"".join(chunks)) > limit
    mark = archiver.CUT_MARK.format(limit=limit).encode() if cut else b""
    assert out.getvalue() == kept + mark
    if cut:  # nothing read past the chunk that crossed the limit
        assert len(read) == next(i for i in range(len(chunks)) if len(b"".join(chunks[: i + 1])) > limit) + 1
