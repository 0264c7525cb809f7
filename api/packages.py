"""Uploaded working_dir packages (Ray's `--working-dir`), kept as files in one directory.

Ray's client zips a local working_dir, names it by a hash of its contents
(`_ray_pkg_<16 hex>.zip`), asks whether `gcs://<name>` exists and uploads it if not; the
job then says `working_dir: gcs://<name>`, and the job's init container downloads it from
the API (`GET /api/packages/gcs/<name>`). A package is written to a temporary file, synced
and renamed into place, so a crash never leaves half a package under its name; it is kept
until someone removes the file (names are content hashes: the same upload is the same file).
Before that it is checked as the job's init container checks it before unpacking
(`fetch_working_dir.check_archive`): a package the job could not unpack is refused with a
400 naming the problem, and nothing is kept.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import BinaryIO, Final

from jobgate.api import errors
from jobgate.crds import fetch_working_dir

PROTOCOL: Final = "gcs"  # the only package protocol Ray's client uploads to the job server
_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,200}")


class Packages:
    def __init__(self, directory: Path, *, limits: fetch_working_dir.Limits) -> None:
        self._directory = directory
        self._limits = limits  # the same as the init container's (the operator's settings)

    def open(self) -> None:
        """Create the directory if needed (at start: a bad directory fails there, not at upload)."""
        self._directory.mkdir(parents=True, exist_ok=True)

    def find(self, protocol: str, name: str) -> Path | None:
        """The stored package's file, None if there is none."""
        path = self._directory / self._checked(protocol, name)
        return path if path.is_file() else None

    async def save(self, protocol: str, name: str, body: AsyncIterator[bytes]) -> None:
        """Store a package from the request body (whose size the route limits)."""
        name = self._checked(protocol, name)
        descriptor, temporary = tempfile.mkstemp(dir=self._directory, prefix=".upload-")
        try:
            with os.fdopen(descriptor, "w+b") as file:
                async for chunk in body:
                    file.write(chunk)
                # Checking and syncing block for as long as the disk takes: not on the event loop.
                await asyncio.to_thread(self._check_archive, file)
                await asyncio.to_thread(_commit, file, temporary, self._directory / name)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temporary)
            raise

    def _check_archive(self, file: BinaryIO) -> None:
        file.flush()
        try:
            fetch_working_dir.check_archive(file, limits=self._limits)
        except fetch_working_dir.ArchiveError as e:
            raise errors.InvalidRequestError(f"package {e}") from e

    def _checked(self, protocol: str, name: str) -> str:
        if protocol != PROTOCOL:
            raise errors.InvalidRequestError(f"package protocol must be {PROTOCOL!r}, got {protocol!r}")
        if not _NAME.fullmatch(name):
            raise errors.InvalidRequestError(
                f"package name must be 1 to 201 of [A-Za-z0-9_.-], not starting with '.' or '-', got {name!r}"
            )
        return name


def _commit(file: BinaryIO, temporary: str, target: Path) -> None:
    """Sync the written file, rename it into place, and make the rename durable too."""
    file.flush()
    os.fsync(file.fileno())
    os.replace(temporary, target)
    descriptor = os.open(target.parent, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
