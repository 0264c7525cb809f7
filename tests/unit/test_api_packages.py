"""Package storage: whole files under checked names, checked as the init container checks
them, or nothing."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path

import archives
import pytest

from jobgate.api import errors, packages
from jobgate.crds import fetch_working_dir

LIMITS = fetch_working_dir.Limits(max_bytes=1000, max_entries=5)
A, B = "jobgate-t-a", "jobgate-t-b"  # two tenants' namespaces


async def body(*chunks: bytes, fail: bool = False) -> AsyncIterator[bytes]:
    for chunk in chunks:
        yield chunk
    if fail:
        raise ConnectionError("the client went away")


def test_a_package_is_stored_whole_and_never_changes(tmp_path: Path) -> None:
    store = packages.Packages(tmp_path / "p", limits=LIMITS)
    store.open()
    assert store.find("gcs", "_ray_pkg_a.zip", space=A) is None
    first, second = archives.zipped({"a.py": "1"}), archives.zipped({"b.py": "2"})
    asyncio.run(store.save("gcs", "_ray_pkg_a.zip", body(first[:10], first[10:]), space=A))
    found = store.find("gcs", "_ray_pkg_a.zip", space=A)
    assert found is not None
    assert found.read_bytes() == first
    asyncio.run(store.save("gcs", "_ray_pkg_a.zip", body(first), space=A))  # the same again: fine
    with pytest.raises(errors.PackageTakenError, match=r"gcs://_ray_pkg_a\.zip exists with other contents"):
        asyncio.run(store.save("gcs", "_ray_pkg_a.zip", body(second), space=A))
    assert found.read_bytes() == first
    assert [path.name for path in found.parent.iterdir()] == ["_ray_pkg_a.zip"]  # no upload left


def test_each_tenant_has_its_own_packages(tmp_path: Path) -> None:
    store = packages.Packages(tmp_path, limits=LIMITS)
    mine, theirs = archives.zipped({"a.py": "mine"}), archives.zipped({"a.py": "theirs"})
    asyncio.run(store.save("gcs", "_ray_pkg_a.zip", body(mine), space=A))
    assert store.find("gcs", "_ray_pkg_a.zip", space=B) is None  # nothing said of A's
    asyncio.run(store.save("gcs", "_ray_pkg_a.zip", body(theirs), space=B))  # B's own
    assert (tmp_path / A / "_ray_pkg_a.zip").read_bytes() == mine
    assert (tmp_path / B / "_ray_pkg_a.zip").read_bytes() == theirs
    with pytest.raises(ValueError, match="not a namespace name"):
        store.find("gcs", "_ray_pkg_a.zip", space="..")


def test_an_interrupted_upload_leaves_nothing(tmp_path: Path) -> None:
    store = packages.Packages(tmp_path, limits=LIMITS)
    with pytest.raises(ConnectionError):
        asyncio.run(store.save("gcs", "_ray_pkg_b.zip", body(b"PK", fail=True), space=A))
    assert list((tmp_path / A).iterdir()) == []


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (archives.zipped({"../x": ""}), "package entry '../x' leaves the working directory"),
        (archives.zipped({"x": "y" * 1001}), "package unpacks to more than 1000 bytes"),
        (archives.zipped({f"{n}": "" for n in range(6)}), "package holds more than 5 entries"),
        (b"PK\x03\x04 not a zip", "package is not a zip or tar archive"),
    ],
    ids=["traversal", "bomb", "entries", "garbage"],
)
def test_a_package_the_job_could_not_unpack_is_refused_and_not_kept(
    tmp_path: Path, data: bytes, message: str
) -> None:
    store = packages.Packages(tmp_path, limits=LIMITS)
    with pytest.raises(errors.InvalidRequestError, match=message):
        asyncio.run(store.save("gcs", "_ray_pkg_c.zip", body(data), space=A))
    assert list((tmp_path / A).iterdir()) == []


def test_a_wheel_is_stored_under_its_own_name_and_checked_as_a_wheel(tmp_path: Path) -> None:
    store = packages.Packages(tmp_path, limits=fetch_working_dir.Limits())
    name, data = archives.wheel("tool", "1.0", {"tool/__init__.py": ""})
    asyncio.run(store.save("gcs", name, body(data), space=A))  # a zip, but read as a wheel
    assert store.find("gcs", name, space=A) is not None
    with pytest.raises(errors.InvalidRequestError, match=r"'tool\.whl' is not named as a wheel"):
        asyncio.run(store.save("gcs", "tool.whl", body(data), space=A))
    with pytest.raises(errors.InvalidRequestError, match=r"has no <name>\.dist-info/WHEEL"):
        asyncio.run(
            store.save("gcs", "tool-1.0-py3-none-any.whl", body(archives.zipped({"a.py": ""})), space=A)
        )
    with pytest.raises(errors.InvalidRequestError, match=r"is not a zip or tar archive"):
        asyncio.run(store.save("gcs", "tool-2.0-py3-none-any.whl", body(b"not a zip"), space=A))
    assert sorted(path.name for path in (tmp_path / A).iterdir()) == [name]


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
    store = packages.Packages(tmp_path, limits=LIMITS)
    with pytest.raises(errors.InvalidRequestError, match=message):
        store.find(protocol, name, space=A)


def test_packages_nobody_wants_are_removed(tmp_path: Path) -> None:
    store = packages.Packages(tmp_path, limits=LIMITS)
    for space, name in ((A, "_ray_pkg_old.zip"), (A, "_ray_pkg_used.zip"), (B, "_ray_pkg_new.zip")):
        asyncio.run(store.save("gcs", name, body(archives.zipped({"a.py": name})), space=space))
    for name in ("_ray_pkg_old.zip", "_ray_pkg_used.zip"):
        os.utime(tmp_path / A / name, (1000, 1000))  # untouched since long ago
    (tmp_path / A / ".upload-abandoned").write_bytes(b"PK")
    os.utime(tmp_path / A / ".upload-abandoned", (1000, 1000))
    removed = store.remove_unused(idle_since=2000, in_use={(A, "_ray_pkg_used.zip")})
    assert sorted(removed) == [f"{A}/.upload-abandoned", f"{A}/_ray_pkg_old.zip"]
    assert store.find("gcs", "_ray_pkg_used.zip", space=A) is not None  # a Job uses it
    assert store.find("gcs", "_ray_pkg_new.zip", space=B) is not None  # wanted lately
    # Asking for a package makes it wanted now: it waits a whole TTL again.
    os.utime(tmp_path / B / "_ray_pkg_new.zip", (1000, 1000))
    assert store.find("gcs", "_ray_pkg_new.zip", space=B, touch=True) is not None
    assert store.remove_unused(idle_since=2000, in_use=set()) == [f"{A}/_ray_pkg_used.zip"]
