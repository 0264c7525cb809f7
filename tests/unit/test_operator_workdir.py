"""working_dir URIs -> what the init container fetches, and the fetch script itself."""

from __future__ import annotations

import functools
import http.server
import io
import tarfile
import threading
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from jobgate.operator import errors, fetch_working_dir, workdir

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


def _zip(files: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, text in files.items():
            archive.writestr(name, text)
    return buffer.getvalue()


def _tar(files: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


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
    (root / "src.zip").write_bytes(_zip({"proj/script.py": "print(1)", "proj/proj/inner.txt": "x"}))
    fetch_working_dir.main([f"{base}/src.zip", str(tmp_path / "wd"), "--strip-top-dir"])
    assert (tmp_path / "wd" / "script.py").read_text() == "print(1)"
    assert (tmp_path / "wd" / "proj" / "inner.txt").read_text() == "x"


def test_a_package_keeps_its_layout(served: tuple[Path, str], tmp_path: Path) -> None:
    root, base = served
    (root / "pkg.zip").write_bytes(_zip({"src/main.py": "print(2)"}))
    fetch_working_dir.main([f"{base}/pkg.zip", str(tmp_path / "wd")])
    assert (tmp_path / "wd" / "src" / "main.py").read_text() == "print(2)"


def test_local_tar_archives_and_directories_are_copied(tmp_path: Path) -> None:
    (tmp_path / "app.tgz").write_bytes(_tar({"top/run.sh": "echo hi"}))
    fetch_working_dir.main([str(tmp_path / "app.tgz"), str(tmp_path / "a"), "--strip-top-dir"])
    assert (tmp_path / "a" / "run.sh").read_text() == "echo hi"
    (tmp_path / "dir").mkdir()
    (tmp_path / "dir" / "f.txt").write_text("f")
    fetch_working_dir.main([str(tmp_path / "dir"), str(tmp_path / "b")])
    assert (tmp_path / "b" / "f.txt").read_text() == "f"
