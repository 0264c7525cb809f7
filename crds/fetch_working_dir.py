"""Fetch a job's working_dir into its working directory. Runs in the pod's init container.

    python3 -c "<this file's text>" SOURCE DEST [--strip-top-dir] [--max-bytes N] [--max-entries N]

SOURCE is an http(s) URL of a zip or tar archive, or a local path (an archive or a
directory, mounted from the node). With --strip-top-dir, an archive holding one single
top-level directory has that directory's contents moved up into DEST. An archive is
checked (`check_archive`) before anything is unpacked: the API checks uploaded packages
with the same function.

The operator passes this file's text to the job's own image, so it uses the standard
library only and never imports jobgate.
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import os
import shutil
import stat
import sys
import tarfile
import urllib.request
import zipfile
import zlib
from collections.abc import Iterator
from typing import BinaryIO

DEFAULT_MAX_BYTES = 1 << 30  # 1 GiB unpacked: ten times the largest upload the API takes by default
DEFAULT_MAX_ENTRIES = 100_000
_CHUNK = 1 << 20
# What reading a damaged or foreign archive raises, from the archive modules and their decompressors.
_UNREADABLE = (tarfile.TarError, zipfile.BadZipFile, EOFError, OSError, zlib.error)


class ArchiveError(ValueError):
    """An archive that must not be unpacked; the message says why, to follow its name."""


@dataclasses.dataclass(frozen=True, kw_only=True)
class Limits:
    """How much an archive may unpack to."""

    max_bytes: int = DEFAULT_MAX_BYTES  # the sum of its files' sizes
    max_entries: int = DEFAULT_MAX_ENTRIES  # files, directories and anything else


def check_archive(file: BinaryIO, *, limits: Limits) -> None:
    """Raise `ArchiveError` unless `file` is a zip or tar archive that is safe to unpack.

    Refused: entries with an absolute path or a `..` component, links and special files,
    more than `limits.max_entries` entries, more than `limits.max_bytes` bytes unpacked
    (sizes as the archive declares them: unpacking never writes more than that), and data
    that is not a zip or tar archive. Reads no more of a tar than up to the first refusal.
    """
    entries = bytes_total = 0
    try:
        for name, kind, size in _entries(file):
            entries += 1
            bytes_total += size
            if entries > limits.max_entries:
                raise ArchiveError(f"holds more than {limits.max_entries} entries (the most allowed)")
            if bytes_total > limits.max_bytes:
                raise ArchiveError(
                    f"unpacks to more than {limits.max_bytes} bytes (the most allowed), "
                    f"{bytes_total} by entry {name!r}"
                )
            parts = name.split("/")
            if name.startswith("/"):
                raise ArchiveError(f"entry {name!r} is an absolute path (only relative paths are allowed)")
            if ".." in parts:
                raise ArchiveError(f"entry {name!r} leaves the working directory ('..' is not allowed)")
            if kind:
                raise ArchiveError(f"entry {name!r} is a {kind} (only files and directories are allowed)")
    except _UNREADABLE as e:
        raise ArchiveError(f"is a damaged zip or tar archive ({e})") from e


def _entries(file: BinaryIO) -> Iterator[tuple[str, str, int]]:
    """(name, kind, size) of each entry; kind is "" for files and directories."""
    file.seek(0)
    if zipfile.is_zipfile(file):
        file.seek(0)
        with zipfile.ZipFile(file) as archive:
            for info in archive.infolist():
                yield info.filename, _zip_kind(info.external_attr >> 16), info.file_size
        return
    file.seek(0)
    # Not tarfile.open's error: it lists each compression tried, too much to show.
    if not tarfile.is_tarfile(file):
        raise ArchiveError("is not a zip or tar archive (nor a tar compressed by gzip, bzip2 or xz)")
    with tarfile.open(fileobj=file) as archive:
        for member in archive:
            yield member.name, _tar_kind(member), member.size
        # The members end at the tar's first zero block; a compressed stream cut after it
        # (its check bytes lost) would pass unnoticed: read it to its end, which checks them.
        while archive.fileobj is not None and archive.fileobj.read(_CHUNK):
            pass


def _zip_kind(mode: int) -> str:
    # The Unix mode sits in the high bytes of external_attr; 0 there (zips from DOS tools) is a file.
    if stat.S_IFMT(mode) in (0, stat.S_IFREG, stat.S_IFDIR):
        return ""
    return "symbolic link" if stat.S_ISLNK(mode) else "special file"


def _tar_kind(member: tarfile.TarInfo) -> str:
    if member.isfile() or member.isdir():
        return ""
    if member.issym():
        return "symbolic link"
    return "hard link" if member.islnk() else "special file"


def read_source(source: str) -> bytes:
    if source.startswith(("http://", "https://")):
        with urllib.request.urlopen(source, timeout=300) as response:
            data: bytes = response.read()
            return data
    with open(source, "rb") as file:
        return file.read()


def unpack(data: bytes, dest: str, *, limits: Limits) -> None:
    """Check the archive, then unpack it into `dest`."""
    check_archive(io.BytesIO(data), limits=limits)
    if zipfile.is_zipfile(io.BytesIO(data)):
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            archive.extractall(dest)
        return
    with tarfile.open(fileobj=io.BytesIO(data)) as archive:
        # The "data" filter also refuses links and paths leaving DEST (Python >= 3.12, and backports).
        if hasattr(tarfile, "data_filter"):
            archive.extractall(dest, filter="data")
        else:
            archive.extractall(dest)


def strip_top_dir(dest: str) -> None:
    entries = os.listdir(dest)
    if len(entries) != 1 or not os.path.isdir(os.path.join(dest, entries[0])):
        return
    # Renamed first, so that an entry named like the top directory itself can move up.
    top = os.path.join(dest, ".jobgate-top")
    os.rename(os.path.join(dest, entries[0]), top)
    for name in os.listdir(top):
        shutil.move(os.path.join(top, name), os.path.join(dest, name))
    os.rmdir(top)


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="fetch_working_dir")
    parser.add_argument("source")
    parser.add_argument("dest")
    parser.add_argument("--strip-top-dir", action="store_true")
    parser.add_argument("--max-bytes", type=int, default=DEFAULT_MAX_BYTES)
    parser.add_argument("--max-entries", type=int, default=DEFAULT_MAX_ENTRIES)
    args = parser.parse_args(argv)
    os.makedirs(args.dest, exist_ok=True)
    if os.path.isdir(args.source):
        shutil.copytree(args.source, args.dest, dirs_exist_ok=True)
        return
    limits = Limits(max_bytes=args.max_bytes, max_entries=args.max_entries)
    try:
        unpack(read_source(args.source), args.dest, limits=limits)
    except ArchiveError as e:
        # The container's log (kubectl logs -c fetch-working-dir) says why; nothing was unpacked.
        sys.exit(f"working_dir {args.source}: {e}")
    if args.strip_top_dir:
        strip_top_dir(args.dest)


if __name__ == "__main__":
    main(sys.argv[1:])
