"""Container images for the dev cluster's real node, built here without any registry.

Two images, each written as an OCI image-layout archive (a tar of `oci-layout`,
`index.json` and `blobs/sha256/...`, which this module writes itself) and imported into
the node's containerd with `ctr -n k8s.io images import`:

- the job image `jobgate.local/job-runtime:py3-<key>`: a Debian rootfs made by
  `debootstrap --variant=minbase` from Debian's own packages, plus python3 (and
  python-is-python3, so an entrypoint `python -c ...` works, and python3-pip for
  runtime_env.pip). `<key>` hashes the recipe below, so a changed recipe is a new tag and
  a cached archive is never stale.
- the sandbox image `registry.k8s.io/pause:3.10`, one layer holding our own static `pause`
  (hack/node/pause, built by hack/node/build.sh). containerd's CRI is configured to use
  exactly this reference as its sandbox image, so it never tries to pull one.

Archives are cached in `.cache/images/` (git-ignored) and rebuilt only when missing;
`python -m jobgate.devcluster.nodectl prepare` builds them (and the node's binaries).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Protocol

REPO_ROOT: Final = Path(__file__).resolve().parent.parent
CACHE_DIR: Final = REPO_ROOT / ".cache" / "images"
DEBIAN_PACKAGES_SCRIPT: Final = REPO_ROOT / "hack" / "node" / "debian-packages.sh"

PAUSE_IMAGE: Final = "registry.k8s.io/pause:3.10"
JOB_IMAGE_REPOSITORY: Final = "jobgate.local/job-runtime"

# Everything that decides the job image's content; its hash is the image's tag.
JOB_IMAGE_RECIPE: Final[dict[str, Any]] = {
    "recipe": 2,  # bump when the build or pruning below changes
    "suite": "bookworm",
    "variant": "minbase",
    "include": ["python3", "python-is-python3", "python3-pip"],  # pip: runtime_env.pip
    "prune": [
        "var/cache/apt/archives",
        "var/cache/apt/pkgcache.bin",
        "var/cache/apt/srcpkgcache.bin",
        "var/lib/apt/lists",
        "var/cache/debconf/templates.dat-old",
        "var/log",
        "usr/share/doc",
        "usr/share/man",
        "usr/share/info",
        "usr/share/lintian",
        "usr/share/locale",
    ],
}
DEFAULT_MIRROR: Final = "http://deb.debian.org/debian"
_PATH: Final = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

_MEDIA_INDEX: Final = "application/vnd.oci.image.index.v1+json"
_MEDIA_MANIFEST: Final = "application/vnd.oci.image.manifest.v1+json"
_MEDIA_CONFIG: Final = "application/vnd.oci.image.config.v1+json"
_MEDIA_LAYER: Final = "application/vnd.oci.image.layer.v1.tar+gzip"


class ImageBuildError(RuntimeError):
    """An image could not be built; the message names the step and shows its output."""


@dataclass(frozen=True)
class ImageArchive:
    """An OCI archive on disk and the reference (`name:tag`) it imports as."""

    ref: str
    path: Path


def job_image_ref() -> str:
    """The job image's reference, known without building it (the operator's dev default)."""
    return f"{JOB_IMAGE_REPOSITORY}:py3-{_digest(JOB_IMAGE_RECIPE)[:12]}"


def _digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()


# ----- OCI layout ------------------------------------------------------------------------


class _Sink(Protocol):
    def write(self, data: memoryview, /) -> object: ...


class _HashingWriter(io.RawIOBase):
    """A write-only stream that hashes and counts what passes through to `target`."""

    def __init__(self, target: _Sink) -> None:
        self.target = target
        self.sha = hashlib.sha256()
        self.size = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        view = memoryview(data).cast("B")
        self.sha.update(view)
        self.size += len(view)
        self.target.write(view)
        return len(view)


@dataclass(frozen=True)
class _Blob:
    digest: str  # sha256:<hex>
    size: int
    path: Path


def _write_layer(rootfs: Path, blob_dir: Path) -> tuple[_Blob, str]:
    """gzip(tar(rootfs)) into `blob_dir`; returns the blob and the uncompressed diff_id."""
    tmp = blob_dir / "layer.tmp"
    with tmp.open("wb") as raw:
        compressed = _HashingWriter(raw)
        # mtime=0: the gzip header carries no timestamp, the same tar gives the same blob.
        with gzip.GzipFile(fileobj=compressed, mode="wb", mtime=0, compresslevel=6) as gz:
            uncompressed = _HashingWriter(gz)
            with tarfile.open(fileobj=uncompressed, mode="w|", format=tarfile.PAX_FORMAT) as tar:
                _add_tree(tar, rootfs)
    digest = "sha256:" + compressed.sha.hexdigest()
    path = blob_dir / compressed.sha.hexdigest()
    tmp.replace(path)
    return _Blob(digest, compressed.size, path), "sha256:" + uncompressed.sha.hexdigest()


def _add_tree(tar: tarfile.TarFile, rootfs: Path) -> None:
    """Add `rootfs`'s content, sorted, with numeric owners; device nodes and sockets are
    left out (the runtime gives every container its own /dev)."""
    for dirpath, dirnames, filenames in os.walk(rootfs):
        dirnames.sort()
        base = Path(dirpath)
        for name in [*sorted(filenames), *dirnames]:
            path = base / name
            arcname = path.relative_to(rootfs).as_posix()
            info = tar.gettarinfo(str(path), arcname=arcname)
            if info is None or info.ischr() or info.isblk() or info.isfifo():
                continue
            info.uname = info.gname = ""
            if info.isreg():
                with path.open("rb") as f:
                    tar.addfile(info, f)
            else:
                tar.addfile(info)


def _write_blob(blob_dir: Path, data: bytes) -> _Blob:
    sha = hashlib.sha256(data).hexdigest()
    path = blob_dir / sha
    path.write_bytes(data)
    return _Blob(f"sha256:{sha}", len(data), path)


def write_oci_archive(rootfs: Path, *, ref: str, config: dict[str, Any], archive: Path) -> None:
    """Write a one-layer linux/amd64 image of `rootfs` as an OCI layout archive at `archive`.

    `config` is the image config's `config` section (Env, Cmd, ...). The index names the
    image both ways `ctr images import` reads: `io.containerd.image.name` (the full
    reference) and `org.opencontainers.image.ref.name` (the tag).
    """
    archive.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=archive.parent, prefix=".oci-") as tmp:
        layout = Path(tmp)
        blob_dir = layout / "blobs" / "sha256"
        blob_dir.mkdir(parents=True)
        layer, diff_id = _write_layer(rootfs, blob_dir)
        image_config = {
            "architecture": "amd64",
            "os": "linux",
            "config": config,
            "rootfs": {"type": "layers", "diff_ids": [diff_id]},
            "history": [{"created_by": f"jobgate devcluster/nodeimages.py: {ref}"}],
        }
        config_blob = _write_blob(blob_dir, json.dumps(image_config, sort_keys=True).encode())
        manifest = {
            "schemaVersion": 2,
            "mediaType": _MEDIA_MANIFEST,
            "config": {"mediaType": _MEDIA_CONFIG, "digest": config_blob.digest, "size": config_blob.size},
            "layers": [{"mediaType": _MEDIA_LAYER, "digest": layer.digest, "size": layer.size}],
        }
        manifest_blob = _write_blob(blob_dir, json.dumps(manifest, sort_keys=True).encode())
        index = {
            "schemaVersion": 2,
            "mediaType": _MEDIA_INDEX,
            "manifests": [
                {
                    "mediaType": _MEDIA_MANIFEST,
                    "digest": manifest_blob.digest,
                    "size": manifest_blob.size,
                    "platform": {"architecture": "amd64", "os": "linux"},
                    "annotations": {
                        "io.containerd.image.name": ref,
                        "org.opencontainers.image.ref.name": ref.rpartition(":")[2],
                    },
                }
            ],
        }
        (layout / "index.json").write_text(json.dumps(index, sort_keys=True))
        (layout / "oci-layout").write_text(json.dumps({"imageLayoutVersion": "1.0.0"}))
        partial = archive.with_name(archive.name + ".partial")
        with tarfile.open(partial, "w", format=tarfile.PAX_FORMAT) as tar:
            for entry in ("oci-layout", "index.json", "blobs"):
                tar.add(layout / entry, arcname=entry)
        partial.replace(archive)  # only a complete archive ever has the final name


# ----- the two images -------------------------------------------------------------------


def pause_image(node_bin_dir: Path, *, cache_dir: Path = CACHE_DIR) -> ImageArchive:
    """The sandbox image: our static `pause` at /pause (cached per binary)."""
    binary = node_bin_dir / "pause"
    key = hashlib.sha256(binary.read_bytes()).hexdigest()[:16]
    archive = cache_dir / f"pause-{key}.oci.tar"
    if not archive.exists():
        with tempfile.TemporaryDirectory(dir=_mkdir(cache_dir), prefix=".pause-") as tmp:
            rootfs = Path(tmp) / "rootfs"
            rootfs.mkdir()
            shutil.copy2(binary, rootfs / "pause")
            (rootfs / "pause").chmod(0o755)
            write_oci_archive(
                rootfs,
                ref=PAUSE_IMAGE,
                config={"Entrypoint": ["/pause"], "User": "65535:65535", "Env": [_PATH]},
                archive=archive,
            )
    return ImageArchive(PAUSE_IMAGE, archive)


def job_image(*, cache_dir: Path = CACHE_DIR, mirror: str | None = None) -> ImageArchive:
    """The job image (Debian minbase + python3), built with debootstrap unless cached."""
    ref = job_image_ref()
    archive = cache_dir / f"job-runtime-{ref.rpartition(':')[2]}.oci.tar"
    if archive.exists():
        return ImageArchive(ref, archive)
    mirror = mirror or os.environ.get("JOBGATE_DEBIAN_MIRROR") or DEFAULT_MIRROR
    _ensure_debian_packages("images")
    recipe = JOB_IMAGE_RECIPE
    with tempfile.TemporaryDirectory(dir=_mkdir(cache_dir), prefix=".job-runtime-") as tmp:
        rootfs = Path(tmp) / "rootfs"
        print(
            f"nodeimages: debootstrap {recipe['suite']} ({recipe['variant']}) + python3 ...", file=sys.stderr
        )
        # In a mount namespace of its own, with a private /run: the proc/sys mounts debootstrap
        # makes inside the target (and mount's /run/mount bookkeeping) never reach the host.
        _run(
            [
                "unshare",
                "--mount",
                "--propagation=private",
                "--",
                "sh",
                "-c",
                'mount -n -t tmpfs tmpfs /run && exec "$@"',
                "debootstrap",
                "debootstrap",
                f"--variant={recipe['variant']}",
                f"--include={','.join(recipe['include'])}",
                recipe["suite"],
                str(rootfs),
                mirror,
            ],
            what="debootstrap",
        )
        for entry in recipe["prune"]:
            _empty(rootfs / entry)
        # What the image runs under: its own python3, no cache writes into /root.
        config = {"Env": [_PATH, "LANG=C.UTF-8", "PYTHONDONTWRITEBYTECODE=1"], "Cmd": ["python3"]}
        write_oci_archive(rootfs, ref=ref, config=config, archive=archive)
    return ImageArchive(ref, archive)


def _empty(path: Path) -> None:
    """Remove what is inside `path` (a directory stays, empty) or the file `path`."""
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.is_dir():
        for child in path.iterdir():
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child)
            else:
                child.unlink()


def _mkdir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def _ensure_debian_packages(group: str) -> None:
    _run(["bash", str(DEBIAN_PACKAGES_SCRIPT), group], what=f"installing Debian packages ({group})")


def _run(argv: Sequence[str], *, what: str) -> None:
    result = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, check=False)
    if result.returncode != 0:
        tail = "\n".join(result.stdout.splitlines()[-30:])
        raise ImageBuildError(f"{what} failed (exit {result.returncode}): {' '.join(argv)}\n{tail}")
