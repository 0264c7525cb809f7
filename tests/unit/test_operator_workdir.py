"""working_dir URIs -> what the init container fetches, and the fetch script itself."""

from __future__ import annotations

import functools
import http.server
import io
import stat
import struct
import tarfile
import threading
import zipfile
from collections.abc import Iterator
from pathlib import Path

import archives
import pytest

from jobgate.crds import errors, fetch_working_dir, workdir

EVERYTHING = workdir.WorkingDirPolicy(package_base_url="http://api.jobgate:8265/", file_root="/usr1")


@pytest.mark.parametrize("uri", ["https://example.com/src.zip", "http://10.0.0.1/a.tar.gz"])
def test_http_archives_are_downloaded_with_their_top_directory_stripped(uri: str) -> None:
    source = workdir.source_for(uri, policy=workdir.WorkingDirPolicy())
    assert source == workdir.Source(location=uri, strip_top_dir=True)


def test_uploaded_packages_come_from_the_api() -> None:
    source = workdir.source_for("gcs://_ray_pkg_0123abcd.zip", policy=EVERYTHING)
    assert source.location == "http://api.jobgate:8265/api/packages/gcs/_ray_pkg_0123abcd.zip"
    assert not source.strip_top_dir


def test_file_uris_mount_only_that_path_from_the_node() -> None:
    archive = workdir.source_for("file:///usr1/deploy/file.zip", policy=EVERYTHING)
    assert (archive.host_path, archive.host_path_type) == ("/usr1/deploy/file.zip", "File")
    assert archive.location == workdir.MOUNTED_SOURCE
    directory = workdir.source_for("file:///usr1/deploy/app", policy=EVERYTHING)
    assert (directory.host_path, directory.host_path_type, directory.strip_top_dir) == (
        "/usr1/deploy/app",
        "Directory",
        False,
    )


@pytest.mark.parametrize(
    ("uri", "policy", "complaint"),
    [
        ("file:///usr1/deploy/file.zip", workdir.WorkingDirPolicy(), "allowed: http, https"),
        ("gcs://_ray_pkg_1.zip", workdir.WorkingDirPolicy(), "allowed: http, https"),
        ("s3://bucket/src.zip", EVERYTHING, "allowed: http, https, gcs, file"),
        ("/usr1/deploy/file.zip", EVERYTHING, "cannot fetch"),
        ("file:///etc/passwd", EVERYTHING, "under /usr1"),
        ("file:///usr1/../etc/shadow", EVERYTHING, "under /usr1"),
        ("gcs://../../secret", EVERYTHING, "uploaded package"),
    ],
)
def test_sources_this_deployment_cannot_serve_are_errors_naming_the_field(
    uri: str, policy: workdir.WorkingDirPolicy, complaint: str
) -> None:
    with pytest.raises(errors.SpecError) as caught:
        workdir.source_for(uri, policy=policy)
    assert caught.value.field == "spec.runtimeEnv.working_dir"
    assert complaint in str(caught.value)


# -- the init container's script, run here against a local HTTP server ----------------------


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """A directory served over HTTP on loopback: (directory, base URL)."""
    root = tmp_path / "www"
    root.mkdir()

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield root, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_a_downloaded_zip_is_unpacked_without_its_top_directory(
    served: tuple[Path, str], tmp_path: Path
) -> None:
    root, base = served
    (root / "src.zip").write_bytes(
        archives.zipped({"proj/script.py": "print(1)", "proj/proj/inner.txt": "x"})
    )
    fetch_working_dir.main([f"{base}/src.zip", str(tmp_path / "wd"), "--strip-top-dir"])
    assert (tmp_path / "wd" / "script.py").read_text() == "print(1)"
    assert (tmp_path / "wd" / "proj" / "inner.txt").read_text() == "x"


def test_a_package_keeps_its_layout(served: tuple[Path, str], tmp_path: Path) -> None:
    root, base = served
    (root / "pkg.zip").write_bytes(archives.zipped({"src/main.py": "print(2)"}))
    fetch_working_dir.main([f"{base}/pkg.zip", str(tmp_path / "wd")])
    assert (tmp_path / "wd" / "src" / "main.py").read_text() == "print(2)"


def test_local_tar_archives_and_directories_are_copied(tmp_path: Path) -> None:
    (tmp_path / "app.tgz").write_bytes(archives.tarred({"top/run.sh": "echo hi"}))
    fetch_working_dir.main([str(tmp_path / "app.tgz"), str(tmp_path / "a"), "--strip-top-dir"])
    assert (tmp_path / "a" / "run.sh").read_text() == "echo hi"
    (tmp_path / "dir").mkdir()
    (tmp_path / "dir" / "f.txt").write_text("f")
    fetch_working_dir.main([str(tmp_path / "dir"), str(tmp_path / "b")])
    assert (tmp_path / "b" / "f.txt").read_text() == "f"


# -- the archive check, shared by the init container and the API's package upload -----------

LIMITS = fetch_working_dir.Limits(max_bytes=1 << 20, max_entries=10)


def _tar_of(*members: tuple[str, bytes], kind: bytes = tarfile.REGTYPE, link: str = "") -> bytes:
    """A tar.gz of `members`; the last one is of `kind` (pointing at `link` when a link)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for number, (name, data) in enumerate(members, start=1):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            if number == len(members):
                info.type, info.linkname = kind, link
            archive.addfile(info, io.BytesIO(data) if info.isfile() else None)
    return buffer.getvalue()


def _zip_symlink(name: str, target: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        info = zipfile.ZipInfo(name)
        info.external_attr = (stat.S_IFLNK | 0o777) << 16  # how `zip --symlinks` stores one
        archive.writestr(info, target)
    return buffer.getvalue()


def _declaring(data: bytes, size: int) -> bytes:
    """A one-file zip that declares its file `size` bytes long (the bytes stay the same)."""
    header = data.rindex(b"PK\x01\x02")  # the central directory entry, which zipfile trusts
    return data[: header + 24] + struct.pack("<I", size) + data[header + 28 :]


def _zeros_zip(size: int) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("zeros", bytes(size))
    return buffer.getvalue()


def test_ordinary_archives_pass() -> None:
    fetch_working_dir.check_archive(
        io.BytesIO(archives.zipped({"dir/": "", "dir/a.py": "x", "./b.txt": "y", "c..d": ""})), limits=LIMITS
    )
    fetch_working_dir.check_archive(io.BytesIO(archives.tarred({"top/run.sh": "echo hi"})), limits=LIMITS)
    fetch_working_dir.check_archive(io.BytesIO(_zeros_zip(1 << 20)), limits=LIMITS)  # exactly the limit


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (archives.zipped({"../x": ""}), "entry '../x' leaves the working directory ('..' is not allowed)"),
        (archives.zipped({"a/../../x": ""}), "entry 'a/../../x' leaves the working directory"),
        (archives.zipped({"/etc/cron.d/x": ""}), "entry '/etc/cron.d/x' is an absolute path"),
        (_tar_of(("../../x", b"")), "entry '../../x' leaves the working directory"),
        (_tar_of(("/x", b"")), "entry '/x' is an absolute path"),
        (_zip_symlink("link", "/etc/passwd"), "entry 'link' is a symbolic link (only files and directories"),
        (_tar_of(("l", b""), kind=tarfile.SYMTYPE, link="/etc"), "entry 'l' is a symbolic link"),
        (_tar_of(("f", b"x"), ("h", b""), kind=tarfile.LNKTYPE, link="f"), "entry 'h' is a hard link"),
        (_tar_of(("dev", b""), kind=tarfile.CHRTYPE), "entry 'dev' is a special file"),
        (_tar_of(("fifo", b""), kind=tarfile.FIFOTYPE), "entry 'fifo' is a special file"),
        (archives.zipped({str(n): "" for n in range(11)}), "holds more than 10 entries (the most allowed)"),
        (_zeros_zip((1 << 20) + 1), "unpacks to more than 1048576 bytes (the most allowed), 1048577 by"),
        (_declaring(archives.zipped({"bomb": "x"}), 0xFFFFFFFF), "unpacks to more than 1048576 bytes"),
        (_tar_of(*((f"{n}", bytes(1 << 17)) for n in range(9))), "unpacks to more than 1048576 bytes"),
        (b"", "is not a zip or tar archive"),
        (b"#!/bin/sh\nrm -rf /\n", "is not a zip or tar archive"),
        (archives.zipped({"a": "b"})[:-30], "is not a zip or tar archive"),
        (archives.tarred({"a": "b" * 1000})[:40], "is a damaged zip or tar archive (Compressed file ended"),
    ],
    ids=lambda value: value if isinstance(value, str) else "",
)
def test_unsafe_or_foreign_archives_are_refused(data: bytes, message: str) -> None:
    with pytest.raises(fetch_working_dir.ArchiveError) as caught:
        fetch_working_dir.check_archive(io.BytesIO(data), limits=LIMITS)
    assert message in str(caught.value)


def test_a_bomb_is_refused_at_its_declared_size_without_unpacking_it() -> None:
    """A few hundred bytes declaring 4 GiB: refused with the default limits, nothing inflated."""
    bomb = _declaring(archives.zipped({"bomb": "x"}), 0xFFFFFFFF)
    assert len(bomb) < 200
    with pytest.raises(fetch_working_dir.ArchiveError, match="more than 1073741824 bytes"):
        fetch_working_dir.check_archive(io.BytesIO(bomb), limits=fetch_working_dir.Limits())


@pytest.mark.parametrize(
    "data",
    [archives.zipped({"a/b.py": "print(1)" * 20, "c": "d"}), archives.tarred({"a/b.py": "print(1)" * 20})],
    ids=["zip", "tar.gz"],
)
def test_any_truncated_archive_is_an_archive_error(data: bytes) -> None:
    """Every cut short of the whole archive (0 to len - 1 bytes kept) is refused as damaged."""
    accepted: list[int] = []
    other: dict[int, str] = {}
    for cut in range(len(data)):
        try:
            fetch_working_dir.check_archive(io.BytesIO(data[:cut]), limits=LIMITS)
        except fetch_working_dir.ArchiveError:
            continue
        except Exception as e:  # not the archive error: a crash of the check itself
            other[cut] = repr(e)
        else:
            accepted.append(cut)
    assert (accepted, other) == ([], {}), (
        f"of {len(data)} bytes, these cuts were accepted: {accepted}; these raised another error: {other}"
    )


def test_the_init_container_unpacks_nothing_of_a_refused_archive(tmp_path: Path) -> None:
    (tmp_path / "evil.zip").write_bytes(archives.zipped({"ok.py": "", "../escaped": "x"}))
    with pytest.raises(SystemExit) as caught:
        fetch_working_dir.main([str(tmp_path / "evil.zip"), str(tmp_path / "wd")])
    assert str(caught.value) == (
        f"working_dir {tmp_path / 'evil.zip'}: entry '../escaped' leaves the working directory "
        "('..' is not allowed)"
    )
    assert list((tmp_path / "wd").iterdir()) == []
    assert not (tmp_path / "escaped").exists()
    (tmp_path / "many.tgz").write_bytes(archives.tarred({"a": "", "b": ""}))
    with pytest.raises(SystemExit, match="holds more than 1 entries"):
        fetch_working_dir.main([str(tmp_path / "many.tgz"), str(tmp_path / "wd"), "--max-entries", "1"])
