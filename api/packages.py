"""Uploaded packages (Ray's `--working-dir` and `py_modules`), kept as files, one directory per tenant.

Ray's client zips a local working_dir, names it by a hash of its contents
(`_ray_pkg_<16 hex>.zip`), asks whether `gcs://<name>` exists and uploads it if not; the
job then says `working_dir: gcs://<name>`, and the job's init container downloads it from
the API (`GET /api/packages/gcs/<name>`, with its job's identity: see `routers.packages`).

A package belongs to the tenant that uploaded it: each tenant has its own directory (named
as its namespace), so another tenant's upload under the same name is another package, and
whether a name exists says nothing about other tenants. A package is create-only: the same
bytes again are fine, other bytes under a name already taken are refused (409), so a job
always runs what was uploaded for it. A package is written to a temporary file, synced and
renamed into place, so a crash never leaves half a package under its name. A package no
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
from collections.abc import AsyncIterator, Collection
from pathlib import Path
from typing import BinaryIO, Final

from jobgate.api import errors
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


class Packages:
    def __init__(self, directory: Path, *, limits: fetch_working_dir.Limits) -> None:
        self._directory = directory
        self._limits = limits  # the same as the init container's (the operator's settings)

    def open(self) -> None:
        """Create the directory if needed (at start: a bad directory fails there, not at upload)."""
        self._directory.mkdir(parents=True, exist_ok=True)

    def find(self, protocol: str, name: str, *, space: str, touch: bool = False) -> Path | None:
        """The tenant's stored package (`space`: the tenant's namespace), None if there is none;
        `touch`: it is wanted now (its removal waits a whole TTL again)."""
        path = self._space(space) / self._checked(protocol, name)
        if not path.is_file():
            return None
        if touch:
            with contextlib.suppress(FileNotFoundError):  # removed meanwhile: it is not there
                os.utime(path)
                return path
            return None
        return path

    def remove_unused(self, *, idle_since: float, in_use: Collection[tuple[str, str]]) -> list[str]:
        """Remove the packages (and abandoned uploads) untouched since `idle_since` (epoch
        seconds) that no unfinished Job uses (`in_use`: (space, name)); what was removed."""
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

    async def save(self, protocol: str, name: str, body: AsyncIterator[bytes], *, space: str) -> None:
        """Store a package of the tenant from the request body (whose size the route limits);
        `PackageTakenError` if the tenant has other bytes under that name."""
        name = self._checked(protocol, name)
        directory = self._space(space)
        directory.mkdir(exist_ok=True)
        descriptor, temporary = tempfile.mkstemp(dir=directory, prefix=".upload-")
        try:
            with os.fdopen(descriptor, "w+b") as file:
                async for chunk in body:
                    file.write(chunk)
                # Checking and syncing block for as long as the disk takes: not on the event loop.
                await asyncio.to_thread(self._check_archive, file, name=name)
                await asyncio.to_thread(_commit, file, temporary, directory / name)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temporary)  # still there if it was refused, or was the same again

    def _check_archive(self, file: BinaryIO, *, name: str) -> None:
        file.flush()
        try:
            fetch_working_dir.check_archive(file, limits=self._limits)
            if name.endswith(workdir.WHEEL_SUFFIX):
                _check_wheel(file, name=name)
        except fetch_working_dir.ArchiveError as e:
            raise errors.InvalidRequestError(f"package {e}") from e

    def _space(self, space: str) -> Path:
        if not names.DNS_LABEL.fullmatch(space):  # a namespace's name: never a path of its own
            raise ValueError(f"not a namespace name: {space!r}")
        return self._directory / space

    def _checked(self, protocol: str, name: str) -> str:
        if protocol != PROTOCOL:
            raise errors.InvalidRequestError(f"package protocol must be {PROTOCOL!r}, got {protocol!r}")
        if not _NAME.fullmatch(name):
            raise errors.InvalidRequestError(
                "package name must be 1 to 201 of [A-Za-z0-9_.+!-], not starting with '.', '-', '+' or '!', "
                f"got {name!r}"
            )
        return name


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


def _commit(file: BinaryIO, temporary: str, target: Path) -> None:
    """Sync the written file and link it into place, durably; the same bytes under the name
    already are fine, other bytes are refused (the name stays as it is)."""
    file.flush()
    os.fsync(file.fileno())
    try:
        os.link(temporary, target)  # fails if the name is taken: never replaces a package
    except FileExistsError:
        if _digest(target) != _digest(Path(temporary)):
            raise errors.PackageTakenError(f"package gcs://{target.name}") from None
        os.utime(target)  # uploaded again: wanted now
        return
    descriptor = os.open(target.parent, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _digest(path: Path) -> bytes:
    with path.open("rb") as file:
        return hashlib.file_digest(file, "sha256").digest()
