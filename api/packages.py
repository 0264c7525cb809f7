"""Uploaded packages (Ray's `--working-dir` and `py_modules`), one space per tenant, kept in
the deployment's object store (every API replica sees them), or without one in a directory.

Ray's client zips a local working_dir, names it by a hash of its contents
(`_ray_pkg_<16 hex>.zip`), asks whether `gcs://<name>` exists and uploads it if not; the
job then says `working_dir: gcs://<name>`, and the job's init container downloads it from
the API (`GET /api/packages/gcs/<name>`, with its job's identity: see `routers.packages`).

A package belongs to the tenant that uploaded it: each tenant has its own directory (named
as its namespace), so another tenant's upload under the same name is another package, and
whether a name exists says nothing about other tenants. A package is create-only: the same
bytes again are fine, other bytes under a name already taken are refused (409), so a job
always runs what was uploaded for it. An upload is written to a local temporary file and
checked there, then stored whole (`Shelf.put`): a crash or a store that is down (503) never
leaves half a package under its name. A package no
unfinished Job uses is removed once nobody has uploaded it, asked for it or started a job
with it for `JOBGATE_PACKAGE_TTL_SECONDS` (`remove_unused`): Ray's client asks before each
submit, and uploads again what is gone. Before that it is checked as the job's init container checks it
before unpacking (`fetch_working_dir.check_archive`): a package the job could not unpack is
refused with a 400 naming the problem, and nothing is kept. A py_module's wheel is uploaded
as it is, under its own file name (`six-1.16.0-py2.py3-none-any.whl`), and checked as a wheel.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import re
import tempfile
import zipfile
from collections.abc import AsyncIterator, Collection, Iterator
from pathlib import Path
from typing import BinaryIO, Final, Protocol

from jobgate.api import errors
from jobgate.core import objectstore
from jobgate.crds import fetch_working_dir, names, workdir
from jobgate.crds import models as crd

PROTOCOL: Final = "gcs"  # the only package protocol Ray's client uploads to the job server
URI_PREFIX: Final = f"{PROTOCOL}://"


def package_names(runtime_env: crd.RuntimeEnv) -> set[str]:
    """The packages a job's working_dir and py_modules name (`gcs://<name>`, the scheme in
    any case, as the operator reads it)."""
    uris = (runtime_env.working_dir or "", *runtime_env.py_modules)
    return {uri[len(URI_PREFIX) :] for uri in uris if uri[: len(URI_PREFIX)].lower() == URI_PREFIX}


_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.+!-]{0,200}")  # a wheel's name may hold + and !
_READ_CHUNK: Final = 1 << 16
# The object store's keys of packages (under the deployment's JOBGATE_S3_PREFIX):
# `packages/<space>/<name>`, and beside each the empty object whose time says when it was
# last wanted (an object's own time cannot be changed in S3).
_PACKAGES: Final = "packages/"
_WANTED: Final = "packages-wanted/"
_DIGEST: Final = "sha256"  # the metadata that names a stored package's bytes


def _key(kind: str, space: str, name: str) -> str:
    """A package's object (`kind` _PACKAGES), or its wanted-marker (_WANTED)."""
    return f"{kind}{space}/{name}"


class Shelf(Protocol):
    """Where the packages' bytes are. Names are checked before they get here."""

    def open(self) -> None:
        """Ready to serve (at start: a bad setting fails there, not at an upload)."""

    def spool_dir(self, space: str) -> Path | None:
        """Where an upload is written while it is checked (None: the system's temporary
        directory)."""

    def has(self, space: str, name: str, *, touch: bool) -> bool:
        """Whether the package is there; `touch`: it is wanted now."""

    def put(self, space: str, name: str, upload: Path, *, digest: str) -> None:
        """Keep the checked upload (its sha256 `digest`) under the name, unless the name is
        taken: the same bytes again are wanted now, others raise `PackageTakenError`."""

    def chunks(self, space: str, name: str) -> Iterator[bytes] | None:
        """The package's bytes, as they are read (None: there is no such package)."""

    def remove_unused(self, *, idle_since: float, in_use: Collection[tuple[str, str]]) -> list[str]:
        """Remove the packages unwanted since `idle_since` (epoch seconds) that `in_use`
        ((space, name)) does not list; what was removed, as `space/name`."""


class Packages:
    def __init__(self, shelf: Shelf, *, limits: fetch_working_dir.Limits) -> None:
        self._shelf = shelf
        self._limits = limits  # the same as the init container's (the operator's settings)

    def exists(self, protocol: str, name: str, *, space: str) -> bool:
        """Whether the tenant (`space`: its namespace) has the package; it is wanted now
        (its removal waits a whole TTL again)."""
        return self._shelf.has(_space(space), self._checked(protocol, name), touch=True)

    def chunks(self, protocol: str, name: str, *, space: str) -> Iterator[bytes] | None:
        """The tenant's package, as read (None if there is none); it is wanted now."""
        name, space = self._checked(protocol, name), _space(space)
        if not self._shelf.has(space, name, touch=True):
            return None
        return self._shelf.chunks(space, name)

    def remove_unused(self, *, idle_since: float, in_use: Collection[tuple[str, str]]) -> list[str]:
        """Remove the packages unwanted since `idle_since` (epoch seconds) that no unfinished
        Job uses (`in_use`: (space, name)), and in a directory the uploads a killed process
        left; what was removed."""
        return self._shelf.remove_unused(idle_since=idle_since, in_use=in_use)

    async def save(self, protocol: str, name: str, body: AsyncIterator[bytes], *, space: str) -> None:
        """Store a package of the tenant from the request body (whose size the route limits);
        `PackageTakenError` if the tenant has other bytes under that name."""
        name, space = self._checked(protocol, name), _space(space)
        directory = self._shelf.spool_dir(space)
        descriptor, temporary = tempfile.mkstemp(dir=directory, prefix=".upload-")
        digest = hashlib.sha256()
        try:
            with os.fdopen(descriptor, "w+b") as file:
                async for chunk in body:
                    file.write(chunk)
                    digest.update(chunk)
                # Checking and storing block for as long as the disk (or the store) takes.
                await asyncio.to_thread(self._check_archive, file, name=name)
            await asyncio.to_thread(self._shelf.put, space, name, Path(temporary), digest=digest.hexdigest())
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temporary)  # still there unless it was linked into place

    def _check_archive(self, file: BinaryIO, *, name: str) -> None:
        file.flush()
        try:
            fetch_working_dir.check_archive(file, limits=self._limits)
            if name.endswith(workdir.WHEEL_SUFFIX):
                _check_wheel(file, name=name)
        except fetch_working_dir.ArchiveError as e:
            raise errors.InvalidRequestError(f"package {e}") from e

    def _checked(self, protocol: str, name: str) -> str:
        if protocol != PROTOCOL:
            raise errors.InvalidRequestError(f"package protocol must be {PROTOCOL!r}, got {protocol!r}")
        if not _NAME.fullmatch(name):
            raise errors.InvalidRequestError(
                "package name must be 1 to 201 of [A-Za-z0-9_.+!-], not starting with '.', '-', '+' or '!', "
                f"got {name!r}"
            )
        return name


def _space(space: str) -> str:
    if not names.DNS_LABEL.fullmatch(space):  # a namespace's name: never a path of its own
        raise ValueError(f"not a namespace name: {space!r}")
    return space


class DirectoryShelf:
    """Packages as files, `<directory>/<space>/<name>`; a file's mtime says when it was last
    wanted. Every API replica must see the same directory (one replica, or a ReadWriteMany
    volume): a deployment with an object store keeps its packages there instead."""

    def __init__(self, directory: Path) -> None:
        self._directory = directory

    def open(self) -> None:
        """Create the directory if needed (at start: a bad directory fails there, not at upload)."""
        self._directory.mkdir(parents=True, exist_ok=True)

    def spool_dir(self, space: str) -> Path:
        # Beside its package: linked into place from there.
        directory = self._directory / space
        directory.mkdir(exist_ok=True)
        return directory

    def has(self, space: str, name: str, *, touch: bool) -> bool:
        path = self._directory / space / name
        if not path.is_file():
            return False
        if touch:
            try:
                os.utime(path)
            except FileNotFoundError:  # removed meanwhile: it is not there
                return False
        return True

    def put(self, space: str, name: str, upload: Path, *, digest: str) -> None:
        """Sync the upload and link it into place, durably (never replacing a package)."""
        target = self._directory / space / name
        with upload.open("rb") as file:
            os.fsync(file.fileno())
        try:
            os.link(upload, target)  # fails if the name is taken
        except FileExistsError:
            with target.open("rb") as file:
                if hashlib.file_digest(file, "sha256").hexdigest() != digest:
                    raise errors.PackageTakenError(f"package {URI_PREFIX}{name}") from None
            os.utime(target)  # uploaded again: wanted now
            return
        descriptor = os.open(target.parent, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)

    def chunks(self, space: str, name: str) -> Iterator[bytes] | None:
        try:
            file = (self._directory / space / name).open("rb")
        except FileNotFoundError:
            return None
        return _file_chunks(file)

    def remove_unused(self, *, idle_since: float, in_use: Collection[tuple[str, str]]) -> list[str]:
        removed = []
        for space in self._directory.iterdir():
            if not space.is_dir():
                continue
            for path in space.iterdir():
                with contextlib.suppress(FileNotFoundError):  # another replica removed it first
                    if (space.name, path.name) not in in_use and path.stat().st_mtime < idle_since:
                        path.unlink()
                        removed.append(f"{space.name}/{path.name}")
        return removed


def _file_chunks(file: BinaryIO) -> Iterator[bytes]:
    with file:
        while chunk := file.read(_READ_CHUNK):
            yield chunk


class StoreShelf:
    """Packages in the object store, `packages/<space>/<name>` with their sha256 as metadata,
    and `packages-wanted/<space>/<name>` written each time one is wanted. Every replica sees
    every package; `objectstore.UnavailableError` (a 503) when the store cannot be reached."""

    def __init__(self, store: objectstore.ObjectStore, *, spool: Path | None = None) -> None:
        self._store = store
        self._spool = spool

    def open(self) -> None:
        if self._spool is not None:
            self._spool.mkdir(parents=True, exist_ok=True)

    def spool_dir(self, space: str) -> Path | None:
        return self._spool

    def has(self, space: str, name: str, *, touch: bool) -> bool:
        try:
            self._store.metadata(_key(_PACKAGES, space, name))
        except objectstore.MissingError:
            return False
        if touch:
            self._store.mark(_key(_WANTED, space, name))
        return True

    def put(self, space: str, name: str, upload: Path, *, digest: str) -> None:
        key = _key(_PACKAGES, space, name)
        if not self._store.create(key, upload, metadata={_DIGEST: digest}):
            try:
                kept = self._store.metadata(key).get(_DIGEST)
            except objectstore.MissingError:  # removed since: the client tries again
                raise objectstore.UnavailableError(f"package {name} was removed during its upload") from None
            if kept != digest:
                raise errors.PackageTakenError(f"package {URI_PREFIX}{name}")
        self._store.mark(_key(_WANTED, space, name))

    def chunks(self, space: str, name: str) -> Iterator[bytes] | None:
        try:
            return self._store.chunks(_key(_PACKAGES, space, name))
        except objectstore.MissingError:
            return None

    def remove_unused(self, *, idle_since: float, in_use: Collection[tuple[str, str]]) -> list[str]:
        wanted = {key.removeprefix(_WANTED): when for key, when in self._store.listing(_WANTED)}
        unused = []
        for key, written in self._store.listing(_PACKAGES):
            package = key.removeprefix(_PACKAGES)
            space, _, name = package.partition("/")
            last = max(written, wanted.get(package, written))
            if (space, name) not in in_use and last.timestamp() < idle_since:
                # Wanted since it was listed (Ray's client asked, a job starts)? Then it stays.
                again = self._store.modified(_WANTED + package)
                if again is None or again.timestamp() < idle_since:
                    unused.append(package)
        self._store.delete([prefix + package for package in unused for prefix in (_PACKAGES, _WANTED)])
        return unused


def _check_wheel(file: BinaryIO, *, name: str) -> None:
    """A py_module's wheel (Ray's client uploads it as it is, under its own file name): pip
    must take it, so its name is a wheel's and it holds its `<name>.dist-info/WHEEL`."""
    if not workdir.WHEEL_NAME.fullmatch(name):
        raise fetch_working_dir.ArchiveError(f"{name!r} is not named as a wheel: {workdir.WHEEL_RULE}")
    file.seek(0)
    if not zipfile.is_zipfile(file):
        raise fetch_working_dir.ArchiveError(f"{name!r} is not a wheel (a wheel is a zip archive)")
    with zipfile.ZipFile(file) as wheel:
        if not any(re.fullmatch(r"[^/]+\.dist-info/WHEEL", entry) for entry in wheel.namelist()):
            raise fetch_working_dir.ArchiveError(
                f"{name!r} is not a wheel (it has no <name>.dist-info/WHEEL)"
            )
