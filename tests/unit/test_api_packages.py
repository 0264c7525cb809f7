"""Package storage: whole files under checked names, or nothing."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from jobgate.api import errors, packages


async def body(*chunks: bytes, fail: bool = False) -> AsyncIterator[bytes]:
    for chunk in chunks:
        yield chunk
    if fail:
        raise ConnectionError("the client went away")


def test_a_package_is_stored_whole(tmp_path: Path) -> None:
    store = packages.Packages(tmp_path / "p")
    store.open()
    assert store.find("gcs", "_ray_pkg_a.zip") is None
    asyncio.run(store.save("gcs", "_ray_pkg_a.zip", body(b"PK", b"rest")))
    found = store.find("gcs", "_ray_pkg_a.zip")
    assert found is not None
    assert found.read_bytes() == b"PKrest"
    asyncio.run(store.save("gcs", "_ray_pkg_a.zip", body(b"again")))  # the same name: replaced
    assert found.read_bytes() == b"again"


def test_an_interrupted_upload_leaves_nothing(tmp_path: Path) -> None:
    store = packages.Packages(tmp_path)
    with pytest.raises(ConnectionError):
        asyncio.run(store.save("gcs", "_ray_pkg_b.zip", body(b"PK", fail=True)))
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("protocol", "name", "message"),
    [
        ("s3", "a.zip", "package protocol must be 'gcs'"),
        ("gcs", "..", "package name must be"),
        ("gcs", ".hidden", "package name must be"),
        ("gcs", "a/b.zip", "package name must be"),
        ("gcs", "x" * 202, "package name must be"),
    ],
)
def test_names_are_checked(tmp_path: Path, protocol: str, name: str, message: str) -> None:
    store = packages.Packages(tmp_path)
    with pytest.raises(errors.InvalidRequestError, match=message):
        store.find(protocol, name)
