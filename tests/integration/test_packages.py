"""Package storage, on both shelves (a directory; the object store, a real SeaweedFS): whole
packages under checked names, checked as the init container checks them, or nothing."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import time
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import archives
import pytest

from jobgate.api import errors, packages
from jobgate.core import objectstore as objectstores
from jobgate.crds import fetch_working_dir, policy
from jobgate.devcluster import objectstore

LIMITS = fetch_working_dir.Limits(max_bytes=1000, max_entries=5)
A, B = "jobgate-t-a", "jobgate-t-b"  # two tenants' namespaces


@dataclasses.dataclass
class Shelved:
    packages: packages.Packages
    kept: Callable[[], list[str]]  # everything kept, as `space/name`, uploads on the way included


def _directory_shelf(root: Path, limits: fetch_working_dir.Limits) -> Shelved:
    shelf = packages.DirectoryShelf(root)
    shelf.open()
    return Shelved(
        packages.Packages(shelf, limits=limits),
        kept=lambda: sorted(str(path.relative_to(root)) for path in root.glob("*/*")),
    )


def _store_shelf(
    started: objectstore.Store, spool: Path, monkeypatch: pytest.MonkeyPatch, limits: fetch_working_dir.Limits
) -> Shelved:
    for name, value in started.env().items():
        monkeypatch.setenv(name, value)
    prefix = f"test-{uuid.uuid4().hex[:8]}/"  # this test's own corner of the bucket
    store = objectstores.ObjectStore.connect(
        policy.JobPolicy(s3_bucket=started.bucket, s3_endpoint=started.endpoint, s3_prefix=prefix)
    )
    assert store is not None
    shelf = packages.StoreShelf(store, spool=spool)
    shelf.open()

    def kept() -> list[str]:
        stored = [key.removeprefix("packages/") for key in store.keys("packages/")]
        return sorted(stored + [path.name for path in spool.iterdir()])

    return Shelved(packages.Packages(shelf, limits=limits), kept=kept)


@pytest.fixture(params=["directory", "store"])
def shelved(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Shelved:
    if request.param == "directory":
        return _directory_shelf(tmp_path / "packages", LIMITS)
    return _store_shelf(request.getfixturevalue("store"), tmp_path / "spool", monkeypatch, LIMITS)


async def body(*chunks: bytes, fail: bool = False) -> AsyncIterator[bytes]:
    for chunk in chunks:
        yield chunk
    if fail:
        raise ConnectionError("the client went away")


def read(shelved: Shelved, name: str, *, space: str) -> bytes | None:
    chunks = shelved.packages.chunks("gcs", name, space=space)
    return None if chunks is None else b"".join(chunks)


def test_a_package_is_stored_whole_and_never_changes(shelved: Shelved) -> None:
    store = shelved.packages
    assert not store.exists("gcs", "_ray_pkg_a.zip", space=A)
    first, second = archives.zipped({"a.py": "1"}), archives.zipped({"b.py": "2"})
    asyncio.run(store.save("gcs", "_ray_pkg_a.zip", body(first[:10], first[10:]), space=A))
    assert store.exists("gcs", "_ray_pkg_a.zip", space=A)
    assert read(shelved, "_ray_pkg_a.zip", space=A) == first
    asyncio.run(store.save("gcs", "_ray_pkg_a.zip", body(first), space=A))  # the same again: fine
    with pytest.raises(errors.PackageTakenError, match=r"gcs://_ray_pkg_a\.zip exists with other contents"):
        asyncio.run(store.save("gcs", "_ray_pkg_a.zip", body(second), space=A))
    assert read(shelved, "_ray_pkg_a.zip", space=A) == first
    assert shelved.kept() == [f"{A}/_ray_pkg_a.zip"]  # no upload left


def test_each_tenant_has_its_own_packages(shelved: Shelved) -> None:
    store = shelved.packages
    mine, theirs = archives.zipped({"a.py": "mine"}), archives.zipped({"a.py": "theirs"})
    asyncio.run(store.save("gcs", "_ray_pkg_a.zip", body(mine), space=A))
    assert not store.exists("gcs", "_ray_pkg_a.zip", space=B)  # nothing said of A's
    assert read(shelved, "_ray_pkg_a.zip", space=B) is None
    asyncio.run(store.save("gcs", "_ray_pkg_a.zip", body(theirs), space=B))  # B's own
    assert read(shelved, "_ray_pkg_a.zip", space=A) == mine
    assert read(shelved, "_ray_pkg_a.zip", space=B) == theirs
    with pytest.raises(ValueError, match="not a namespace name"):
        store.exists("gcs", "_ray_pkg_a.zip", space="..")


def test_an_interrupted_upload_leaves_nothing(shelved: Shelved) -> None:
    with pytest.raises(ConnectionError):
        asyncio.run(shelved.packages.save("gcs", "_ray_pkg_b.zip", body(b"PK", fail=True), space=A))
    assert shelved.kept() == []


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
    shelved: Shelved, data: bytes, message: str
) -> None:
    with pytest.raises(errors.InvalidRequestError, match=message):
        asyncio.run(shelved.packages.save("gcs", "_ray_pkg_c.zip", body(data), space=A))
    assert shelved.kept() == []


def test_a_wheel_is_stored_under_its_own_name_and_checked_as_a_wheel(tmp_path: Path) -> None:
    shelved = _directory_shelf(tmp_path, fetch_working_dir.Limits())
    store = shelved.packages
    name, data = archives.wheel("tool", "1.0", {"tool/__init__.py": ""})
    asyncio.run(store.save("gcs", name, body(data), space=A))  # a zip, but read as a wheel
    assert store.exists("gcs", name, space=A)
    with pytest.raises(errors.InvalidRequestError, match=r"'tool\.whl' is not named as a wheel"):
        asyncio.run(store.save("gcs", "tool.whl", body(data), space=A))
    with pytest.raises(errors.InvalidRequestError, match=r"has no <name>\.dist-info/WHEEL"):
        asyncio.run(
            store.save("gcs", "tool-1.0-py3-none-any.whl", body(archives.zipped({"a.py": ""})), space=A)
        )
    with pytest.raises(errors.InvalidRequestError, match=r"is not a zip or tar archive"):
        asyncio.run(store.save("gcs", "tool-2.0-py3-none-any.whl", body(b"not a zip"), space=A))
    assert shelved.kept() == [f"{A}/{name}"]


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
    store = _directory_shelf(tmp_path, LIMITS).packages
    with pytest.raises(errors.InvalidRequestError, match=message):
        store.exists(protocol, name, space=A)


def test_packages_nobody_wants_are_removed(shelved: Shelved) -> None:
    """Only those no unfinished Job uses that nobody wanted since the cut-off."""
    store = shelved.packages
    for space, name in ((A, "_ray_pkg_old.zip"), (A, "_ray_pkg_used.zip"), (B, "_ray_pkg_new.zip")):
        asyncio.run(store.save("gcs", name, body(archives.zipped({"a.py": name})), space=space))
    assert store.remove_unused(idle_since=time.time() - 3600, in_use=set()) == []  # all wanted lately
    removed = store.remove_unused(idle_since=time.time() + 3600, in_use={(A, "_ray_pkg_used.zip")})
    assert sorted(removed) == [f"{A}/_ray_pkg_old.zip", f"{B}/_ray_pkg_new.zip"]
    assert shelved.kept() == [f"{A}/_ray_pkg_used.zip"]  # a Job uses it
    assert not store.exists("gcs", "_ray_pkg_old.zip", space=A)


def test_asking_for_a_package_makes_it_wanted_now(tmp_path: Path) -> None:
    """Ray's client asks before each submit: the package waits a whole TTL again (the
    directory's file times can be set back; the store's cannot, so only here)."""
    shelved = _directory_shelf(tmp_path, LIMITS)
    store = shelved.packages
    asyncio.run(store.save("gcs", "_ray_pkg_a.zip", body(archives.zipped({"a.py": ""})), space=A))
    (tmp_path / A / ".upload-abandoned").write_bytes(b"PK")
    for path in (tmp_path / A).iterdir():
        os.utime(path, (1000, 1000))  # untouched since long ago
    assert store.exists("gcs", "_ray_pkg_a.zip", space=A)
    assert store.remove_unused(idle_since=2000, in_use=set()) == [f"{A}/.upload-abandoned"]
    assert shelved.kept() == [f"{A}/_ray_pkg_a.zip"]
