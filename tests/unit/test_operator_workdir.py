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


def test_file_uris_mount_their_root_and_name_the_path_inside_it() -> None:
    archive = workdir.source_for("file:///usr1/deploy/file.zip", policy=EVERYTHING)
    assert archive == workdir.Source(
        location=workdir.MOUNTED_SOURCE + "/deploy/file.zip", strip_top_dir=True, host_path="/usr1"
    )
    directory = workdir.source_for("file:///usr1/deploy/app", policy=EVERYTHING)
    assert (directory.location, directory.strip_top_dir) == (workdir.MOUNTED_SOURCE + "/deploy/app", False)
    assert workdir.source_for("file:///usr1", policy=EVERYTHING).location == workdir.MOUNTED_SOURCE


def test_a_tenant_with_a_root_of_its_own_is_held_to_it() -> None:
    policy = workdir.WorkingDirPolicy(file_root="/usr1", file_roots={"acme": "/srv/acme"})
    own = workdir.source_for("file:///srv/acme/app.zip", policy=policy, tenant="acme")
    assert own.host_path == "/srv/acme"
    with pytest.raises(errors.SpecError, match="under /srv/acme"):
        workdir.source_for("file:///usr1/deploy/file.zip", policy=policy, tenant="acme")
    with pytest.raises(errors.SpecError, match="under /usr1"):
        workdir.source_for("file:///srv/acme/app.zip", policy=policy, tenant="other")
    only_listed = workdir.WorkingDirPolicy(file_roots={"acme": "/srv/acme"})
    assert only_listed.schemes("other") == ("http", "https")


@pytest.mark.parametrize("root", ["/", "//", "relative", "/a/../b", "/a/./b", "/a\x00b", ""])
def test_a_root_is_a_normalised_directory_other_than_slash(root: str) -> None:
    with pytest.raises(ValueError, match=r"other than /|printable"):
        workdir.check_root(root)


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
        ("file:///usr1/a%00b", EVERYTHING, "holds a control character"),
        ("file:///usr10/x", EVERYTHING, "under /usr1"),
        ("file://node/usr1/x", EVERYTHING, "under /usr1"),
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


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("missing.zip", "working_dir {base}/missing.zip: HTTP 404 from {base}/missing.zip"),
        ("page.html", "working_dir {base}/page.html: is not a zip or tar archive"),
    ],
)
def test_an_archive_that_cannot_be_fetched_says_why(
    served: tuple[Path, str], tmp_path: Path, name: str, why: str
) -> None:
    root, base = served
    (root / "page.html").write_text("<html></html>")
    with pytest.raises(SystemExit) as caught:
        fetch_working_dir.main([f"{base}/{name}?token=secret", str(tmp_path / "wd")])
    assert str(caught.value).startswith(why.format(base=base))
    assert "secret" not in str(caught.value)


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


def test_a_local_path_must_resolve_inside_its_root(tmp_path: Path) -> None:
    root, outside = tmp_path / "root", tmp_path / "outside"
    (root / "app").mkdir(parents=True)
    outside.mkdir()
    (outside / "secret").write_text("node key")
    (root / "app" / "run.sh").write_text("echo hi")
    (root / "app" / "etc").symlink_to("/etc")  # copied as a link: it resolves in the job's container
    (root / "escape").symlink_to(outside)
    (root / "escape.zip").symlink_to(outside / "secret")
    fetch_working_dir.main([str(root / "app"), str(tmp_path / "a"), "--within", str(root)])
    assert (tmp_path / "a" / "run.sh").read_text() == "echo hi"
    assert (tmp_path / "a" / "etc").is_symlink()
    for name, why in [
        ("escape", "working_dir escape: leaves the root of the file:// working dirs (a symbolic link)"),
        ("escape.zip", "working_dir escape.zip: leaves the root"),
        ("missing.zip", "working_dir missing.zip: no such file or directory under the root"),
    ]:
        with pytest.raises(SystemExit) as caught:
            fetch_working_dir.main([str(root / name), str(tmp_path / name), "--within", str(root)])
        assert str(caught.value).startswith(why)
        assert not any((tmp_path / name).iterdir())


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


def _tar_in(format: int, name: str, *, pax: dict[str, str] | None = None, mode: str = "w:gz") -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode=mode, format=format) as archive:
        info = tarfile.TarInfo(name)
        info.pax_headers = pax or {}
        archive.addfile(info, io.BytesIO(b""))
    return buffer.getvalue()


def _with_pax_record(record: bytes) -> bytes:
    """An uncompressed tar whose first header is a pax header holding `record` as it is."""
    header = tarfile.TarInfo("././@PaxHeader")
    header.type, header.size = tarfile.XHDTYPE, len(record)
    padded = record + bytes(-len(record) % 512)
    return header.tobuf(format=tarfile.USTAR_FORMAT) + padded + tarfile.TarInfo("f").tobuf() + bytes(1024)


@pytest.mark.parametrize("mode", ["w:gz", "w:bz2", "w:xz", "w"])
def test_long_names_within_the_bound_pass(mode: str) -> None:
    long = "d/" * 200 + "file"
    for format in (tarfile.GNU_FORMAT, tarfile.PAX_FORMAT):
        fetch_working_dir.check_archive(io.BytesIO(_tar_in(format, long, mode=mode)), limits=LIMITS)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        # 153 KB gzipped, 100 MB of name: tarfile would hold it all in memory.
        (
            _tar_in(tarfile.GNU_FORMAT, "n" * (fetch_working_dir.MAX_HEADER_RECORD + 1)),
            "has a GNU long name of 65538 bytes (at most 65536 bytes are allowed)",
        ),
        (
            _tar_in(tarfile.PAX_FORMAT, "f", pax={"comment": "c" * (1 << 16)}),
            "has a pax header of 65551 bytes (at most 65536 bytes are allowed)",
        ),
        # CVE-2024-6232's shape: a record whose length runs on; tarfile < 3.11.10 parses it
        # in quadratic time.
        (_with_pax_record(b"9999 " + b"a" * 300), "has a malformed pax header"),
        (_with_pax_record(b"10 path\n"), "has a malformed pax header"),
        (_with_pax_record(b"x path=a\n"), "has a malformed pax header"),
        (_with_pax_record(b"11 path=abX"), "has a malformed pax header"),
    ],
    ids=["gnu-long-name", "pax-big", "pax-runs-on", "pax-no-equals", "pax-no-length", "pax-no-newline"],
)
def test_tar_header_records_are_bounded_before_tarfile_reads_them(data: bytes, message: str) -> None:
    with pytest.raises(fetch_working_dir.ArchiveError) as caught:
        fetch_working_dir.check_archive(io.BytesIO(data), limits=LIMITS)
    assert message in str(caught.value)


def test_a_well_formed_pax_record_passes() -> None:
    fetch_working_dir.check_archive(io.BytesIO(_with_pax_record(b"11 path=ab\n")), limits=LIMITS)


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


def test_a_patient_download_tries_a_missing_package_again(
    served: tuple[Path, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    root, base = served
    monkeypatch.setattr(fetch_working_dir, "_RETRY_PAUSE", 0.01)
    tries = 0
    real_urlopen = fetch_working_dir.urllib.request.urlopen

    def appears_on_the_third_try(url: str, **kwargs: object) -> object:
        nonlocal tries
        tries += 1
        if tries == 3:  # the replica has seen the job by now
            (root / "pkg.zip").write_bytes(archives.zipped({"a.py": "1"}))
        return real_urlopen(url, **kwargs)

    monkeypatch.setattr(fetch_working_dir.urllib.request, "urlopen", appears_on_the_third_try)
    with pytest.raises(
        fetch_working_dir.ArchiveError, match=r"HTTP 404 from http://127\.0\.0\.1:\d+/pkg\.zip$"
    ):
        fetch_working_dir.read_source(f"{base}/pkg.zip?uid=secret")  # no patience: at once, uid not shown
    assert fetch_working_dir.read_source(f"{base}/pkg.zip", patience=30)[:2] == b"PK"
    assert tries == 3
