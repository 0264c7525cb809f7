"""Fetch a job's working_dir (or a py_module) into its directory. Runs in the pod's init containers.

    python3 -c "<this file's text>" SOURCE DEST [--strip-top-dir] [--within DIR]
        [--max-bytes N] [--max-entries N] [--patience SECONDS] [--field NAME] [--keep-file NAME]

SOURCE is an http(s) URL of a zip or tar archive, or a local path (an archive or a
directory, mounted from the node). With --within, the local path must resolve (symbolic
links followed) inside DIR: the root mounted from the node. With --strip-top-dir, an
archive holding one single top-level directory has that directory's contents moved up
into DEST. An archive is checked (`check_archive`) before anything is unpacked: the API
checks uploaded packages with the same function. With --keep-file (a wheel, which pip
installs), the source is stored as DEST/NAME, not unpacked. --field names the runtime_env
field in the messages (working_dir by default).

The operator passes this file's text to the job's own image, so it uses the standard
library only and never imports jobgate.
"""

from __future__ import annotations

import argparse
import bz2
import contextlib
import dataclasses
import gzip
import io
import lzma
import os
import shutil
import stat
import sys
import tarfile
import time
import urllib.error
import urllib.parse
import urllib.request
import zipfile
import zlib
from collections.abc import Iterator
from typing import BinaryIO, cast

DEFAULT_MAX_BYTES = 1 << 30  # 1 GiB unpacked: ten times the largest upload the API takes by default
DEFAULT_MAX_ENTRIES = 100_000
_RETRY_PAUSE = 2.0  # seconds between tries of a patient download (see read_source)
_CHUNK = 1 << 20
_BLOCK = 512
# A tar's header records (a GNU long name or link name, a pax header) are at most this big:
# tarfile holds each whole in memory, and before Python 3.11.10 parses a pax header in time
# that grows with the square of its size (CVE-2024-6232).
MAX_HEADER_RECORD = 64 << 10
_HEADER_RECORDS = {b"L": "GNU long name", b"K": "GNU long link name", b"x": "pax header", b"g": "pax header"}
# What reading a damaged or foreign archive raises, from the archive modules and their decompressors.
_UNREADABLE = (tarfile.TarError, zipfile.BadZipFile, EOFError, OSError, zlib.error, lzma.LZMAError)
_NOT_AN_ARCHIVE = "is not a zip or tar archive (nor a tar compressed by gzip, bzip2 or xz)"


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
    # Before tarfile reads a single header (is_tarfile parses the first).
    _check_tar_headers(file)
    file.seek(0)
    # Not tarfile.open's error: it lists each compression tried, too much to show.
    if not tarfile.is_tarfile(file):
        raise ArchiveError(_NOT_AN_ARCHIVE)
    file.seek(0)
    with tarfile.open(fileobj=file) as archive:
        for member in archive:
            yield member.name, _tar_kind(member), member.size
        # The members end at the tar's first zero block; a compressed stream cut after it
        # (its check bytes lost) would pass unnoticed: read it to its end, which checks them.
        while archive.fileobj is not None and archive.fileobj.read(_CHUNK):
            pass


def _check_tar_headers(file: BinaryIO) -> None:
    """Walk the tar's blocks (decompressed) before tarfile reads any: its header records
    must be at most MAX_HEADER_RECORD bytes, and a pax header's records well formed."""
    with _decompressed(file) as stream:
        first = True
        while len(header := stream.read(_BLOCK)) == _BLOCK and header.strip(b"\0"):
            if not _checksum_holds(header):
                if first:
                    raise ArchiveError(_NOT_AN_ARCHIVE)
                raise ArchiveError("is a damaged tar archive (a header's checksum does not match)")
            first = False
            size = _tar_size(header[124:136])
            kind = _HEADER_RECORDS.get(header[156:157])
            if kind is not None and size > MAX_HEADER_RECORD:
                raise ArchiveError(
                    f"has a {kind} of {size} bytes (at most {MAX_HEADER_RECORD} bytes are allowed)"
                )
            if kind == "pax header":
                _check_pax(stream.read(size))
                _skip(stream, -size % _BLOCK)
            else:
                _skip(stream, size + -size % _BLOCK)


def _decompressed(file: BinaryIO) -> contextlib.AbstractContextManager[BinaryIO]:
    """The tar inside a gzip, bzip2 or xz stream (closing it leaves `file` open), or `file`."""
    magic = file.read(6)
    file.seek(0)
    if magic.startswith(b"\x1f\x8b"):
        return cast(BinaryIO, gzip.GzipFile(fileobj=file))
    if magic.startswith(b"BZh"):
        return cast(BinaryIO, bz2.BZ2File(file))
    if magic.startswith(b"\xfd7zXZ\x00"):
        return cast(BinaryIO, lzma.LZMAFile(file))
    return contextlib.nullcontext(file)


def _checksum_holds(header: bytes) -> bool:
    """The header's checksum: the sum of its bytes, its own field counted as spaces."""
    digits = header[148:156].split(b"\0", 1)[0].strip()
    if not digits or not set(digits) <= set(b"01234567"):
        return False
    return int(digits, 8) == sum(header[:148]) + 8 * ord(" ") + sum(header[156:])


def _skip(stream: BinaryIO, count: int) -> None:
    while count > 0:
        read = len(stream.read(min(_CHUNK, count)))
        if not read:
            return  # cut short: tarfile says so next
        count -= read


def _tar_size(field: bytes) -> int:
    if field[:1] in (b"\x80", b"\xff"):  # base-256, for sizes past the octal field's reach
        size = int.from_bytes(field[1:], "big") if field[:1] == b"\x80" else -1
        if size < 0:
            raise ArchiveError("has a tar header with a negative size")
        return size
    digits = field.split(b"\0", 1)[0].strip()
    try:
        return int(digits or b"0", 8)
    except ValueError:
        raise ArchiveError(f"has a tar header with a size that is not a number ({digits[:20]!r})") from None


def _check_pax(record: bytes) -> None:
    """Each record is `<length> <keyword>=<value>\\n`, its length counting all of it."""
    position = 0
    while position < len(record):
        space = record.find(b" ", position, position + 20)
        length = record[position:space]
        if space < 0 or not length.isdigit() or int(length) < space - position + 3:
            raise ArchiveError("has a malformed pax header")
        end = position + int(length)
        if end > len(record) or record[end - 1 : end] != b"\n" or b"=" not in record[space:end]:
            raise ArchiveError("has a malformed pax header")
        position = end


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


def read_source(source: str, *, patience: float = 0) -> bytes:
    """The archive's bytes; `ArchiveError` saying why there are none. For `patience`
    seconds, a 404, 429 or 5xx answer or a failed connection is tried again: a package's
    server (one API replica of several) may not have seen the job yet, or be restarting."""
    if not source.startswith(("http://", "https://")):
        with open(source, "rb") as file:
            return file.read()
    deadline = time.monotonic() + patience
    while True:
        try:
            with urllib.request.urlopen(source, timeout=300) as response:
                data: bytes = response.read()
                return data
        except urllib.error.HTTPError as e:
            failure = ArchiveError(f"HTTP {e.code} from {public(source)}")
            transient = e.code in (404, 429) or e.code >= 500
        except (urllib.error.URLError, OSError) as e:
            failure = ArchiveError(f"cannot be downloaded from {public(source)}: {getattr(e, 'reason', e)}")
            transient = True
        if not transient or time.monotonic() >= deadline:
            raise failure
        time.sleep(_RETRY_PAUSE)


def public(url: str) -> str:
    """The URL as messages may show it: without credentials, query or fragment (tokens)."""
    parts = urllib.parse.urlsplit(url)
    return urllib.parse.urlunsplit((parts.scheme, parts.netloc.rpartition("@")[2], parts.path, "", ""))


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


def _check_within(source: str, root: str, *, field: str) -> None:
    """Exit with the reason unless `source` exists and resolves inside `root`."""
    inside = os.path.relpath(source, root)
    shown = "the root of the file:// working dirs" if inside == "." else inside
    real, real_root = os.path.realpath(source), os.path.realpath(root)
    if os.path.commonpath([real, real_root]) != real_root:
        sys.exit(f"{field} {shown}: leaves the root of the file:// working dirs (a symbolic link)")
    if not os.path.exists(real):
        sys.exit(f"{field} {shown}: no such file or directory under the root of the file:// working dirs")


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="fetch_working_dir")
    parser.add_argument("source")
    parser.add_argument("dest")
    parser.add_argument("--strip-top-dir", action="store_true")
    parser.add_argument("--within")
    parser.add_argument("--max-bytes", type=int, default=DEFAULT_MAX_BYTES)
    parser.add_argument("--max-entries", type=int, default=DEFAULT_MAX_ENTRIES)
    parser.add_argument("--patience", type=float, default=0, help="seconds to try a download again")
    parser.add_argument("--field", default="working_dir", help="the runtime_env field, for messages")
    parser.add_argument("--keep-file", metavar="NAME", help="store the source as DEST/NAME, not unpacked")
    args = parser.parse_args(argv)
    os.makedirs(args.dest, exist_ok=True)
    shown = public(args.source)
    if args.within is not None:
        _check_within(args.source, args.within, field=args.field)
        shown = os.path.relpath(args.source, args.within)
    if args.keep_file:
        try:
            data = read_source(args.source, patience=args.patience)
        except (ArchiveError, OSError) as e:
            sys.exit(f"{args.field} {shown}: {e}")
        if len(data) > args.max_bytes:  # a wheel is not unpacked here, but pip would
            sys.exit(f"{args.field} {shown}: is more than {args.max_bytes} bytes (the most allowed)")
        with open(os.path.join(args.dest, args.keep_file), "wb") as file:
            file.write(data)
        return
    if os.path.isdir(args.source):
        # Links are copied as links: they resolve in the job's container, never on the node.
        shutil.copytree(args.source, args.dest, symlinks=True, dirs_exist_ok=True)
        return
    limits = Limits(max_bytes=args.max_bytes, max_entries=args.max_entries)
    try:
        unpack(read_source(args.source, patience=args.patience), args.dest, limits=limits)
    except ArchiveError as e:
        # The container's log (kubectl logs -c fetch-working-dir) says why; nothing was unpacked.
        sys.exit(f"{args.field} {shown}: {e}")
    if args.strip_top_dir:
        strip_top_dir(args.dest)


if __name__ == "__main__":
    main(sys.argv[1:])
