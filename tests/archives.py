"""Small zip and tar archives made in memory, for the tests of packages and working_dirs."""

from __future__ import annotations

import base64
import hashlib
import io
import tarfile
import zipfile


def zipped(files: dict[str, str]) -> bytes:
    """A zip holding `files` (name -> text)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, text in files.items():
            archive.writestr(name, text)
    return buffer.getvalue()


def tarred(files: dict[str, str]) -> bytes:
    """A gzipped tar holding `files` (name -> text)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def wheel(name: str, version: str, files: dict[str, str], *, scripts: str = "") -> tuple[str, bytes]:
    """A pure-Python wheel of `files` (module paths -> text), with `scripts` as its
    console_scripts lines: its file name and bytes, with the metadata and RECORD pip reads."""
    dist = f"{name.replace('-', '_')}-{version}"
    info = f"{dist}.dist-info"
    entry_points = {f"{info}/entry_points.txt": f"[console_scripts]\n{scripts}\n"} if scripts else {}
    contents = {
        **files,
        **entry_points,
        f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
        f"{info}/WHEEL": (
            "Wheel-Version: 1.0\nGenerator: jobgate-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
        ),
    }
    record = [
        f"{path},sha256={_digest(text.encode())},{len(text.encode())}" for path, text in contents.items()
    ]
    contents[f"{info}/RECORD"] = "\n".join([*record, f"{info}/RECORD,,"]) + "\n"
    return f"{dist}-py3-none-any.whl", zipped(contents)


def _digest(data: bytes) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
