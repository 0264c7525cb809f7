"""Fetch a job's working_dir into its working directory. Runs in the pod's init container.

    python3 -c "<this file's text>" SOURCE DEST [--strip-top-dir]

SOURCE is an http(s) URL of a zip or tar archive, or a local path (an archive or a
directory, mounted from the node). With --strip-top-dir, an archive holding one single
top-level directory has that directory's contents moved up into DEST.

The operator passes this file's text to the job's own image, so it uses the standard
library only and never imports jobgate.
"""

from __future__ import annotations

import io
import os
import shutil
import sys
import tarfile
import urllib.request
import zipfile


def read_source(source: str) -> bytes:
    if source.startswith(("http://", "https://")):
        with urllib.request.urlopen(source, timeout=300) as response:
            data: bytes = response.read()
            return data
    with open(source, "rb") as file:
        return file.read()


def unpack(data: bytes, dest: str) -> None:
    if zipfile.is_zipfile(io.BytesIO(data)):
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            archive.extractall(dest)
        return
    with tarfile.open(fileobj=io.BytesIO(data)) as archive:
        # The "data" filter refuses links and paths leaving DEST (Python >= 3.12, and backports).
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
    source, dest = argv[0], argv[1]
    os.makedirs(dest, exist_ok=True)
    if os.path.isdir(source):
        shutil.copytree(source, dest, dirs_exist_ok=True)
        return
    unpack(read_source(source), dest)
    if "--strip-top-dir" in argv[2:]:
        strip_top_dir(dest)


if __name__ == "__main__":
    main(sys.argv[1:])
