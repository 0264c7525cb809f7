"""Where a job's `runtime_env.working_dir` comes from, and how its init container gets it.

    http://…, https://…   a zip or tar archive, downloaded by the init container; a single
                          top-level directory inside it is stripped (as Ray does for remote URIs)
    gcs://<package>       a package uploaded to the API (Ray's `--working-dir` upload), downloaded
                          from `<package base URL>/api/packages/gcs/<package>`
    file:///<path>        opt-in: a zip/tar file or a directory on the node, under the root the
                          cluster operator sets for the job's tenant (never `/`); that root is
                          mounted read-only (hostPath) into the init container, which resolves
                          the path there: a symbolic link cannot lead out of it to the node's
                          own files (it resolves inside the container), and one that leaves the
                          root is refused

Anything else (or gcs:// / file:// when not configured) raises `SpecError`. Archives are
checked before they are unpacked (`fetch_working_dir.check_archive`, within `unpack_limits`).
"""

from __future__ import annotations

import dataclasses
import posixpath
import re
import urllib.parse
from collections.abc import Mapping
from typing import Final

from jobgate.crds import errors, fetch_working_dir

LOC: Final = ("runtimeEnv", "working_dir")
PACKAGES_PATH: Final = "/api/packages/gcs/"
# Archives are mounted as a file, anything else as a directory (hostPath's type checks which).
ARCHIVE_SUFFIXES: Final = (".zip", ".tar", ".tar.gz", ".tgz")
_PACKAGE_NAME = re.compile(r"[A-Za-z0-9_.-]+")


@dataclasses.dataclass(frozen=True, kw_only=True)
class WorkingDirPolicy:
    """Which working_dir sources this deployment can serve, and how large an archive may unpack."""

    package_base_url: str | None = None  # the API's base URL, as pods can reach it
    file_root: str | None = None  # file:// URIs must point inside this node directory
    file_roots: Mapping[str, str] = dataclasses.field(default_factory=dict)  # tenant -> its own root
    unpack_limits: fetch_working_dir.Limits = dataclasses.field(default_factory=fetch_working_dir.Limits)

    def root_for(self, tenant: str | None) -> str | None:
        """The node directory the tenant's file:// working dirs must be in (None: not allowed)."""
        return self.file_roots.get(tenant or "", self.file_root)

    def schemes(self, tenant: str | None = None) -> tuple[str, ...]:
        optional = (("gcs", self.package_base_url), ("file", self.root_for(tenant)))
        return ("http", "https", *(scheme for scheme, setting in optional if setting))


def check_root(root: str) -> str:
    """`root` if it can hold file:// working dirs: a normalised absolute path other than `/`."""
    if not root.startswith("/") or posixpath.normpath(root) != root.rstrip("/") or not root.strip("/"):
        raise ValueError(f"expected a normalised absolute directory other than /, got {root!r}")
    if not root.isprintable():
        raise ValueError(f"a root is printable characters only, got {root!r}")
    return root.rstrip("/")


@dataclasses.dataclass(frozen=True, kw_only=True)
class Source:
    """What the init container fetches.

    `location` is a URL, or (with `host_path`) the path where the node's file or directory
    is mounted. `strip_top_dir` removes an archive's single top-level directory.
    """

    location: str
    strip_top_dir: bool
    host_path: str | None = None  # the node directory mounted at MOUNTED_SOURCE (the root)
    package: bool = False  # an uploaded package: fetched with the job's identity (`for_job`)

    def for_job(self, *, namespace: str, name: str, uid: str) -> str:
        """Where the job's init container fetches it: a package's URL carries the Job's
        identity, its credential (the API serves a package to the unfinished Job using it)."""
        if not self.package:
            return self.location
        return f"{self.location}?{urllib.parse.urlencode({'namespace': namespace, 'job': name, 'uid': uid})}"


MOUNTED_SOURCE: Final = "/jobgate/source"


def source_for(uri: str, *, policy: WorkingDirPolicy, tenant: str | None = None) -> Source:
    """The fetch plan for a working_dir URI of the tenant's job; `SpecError` when this
    deployment cannot serve it."""
    scheme = urllib.parse.urlsplit(uri).scheme.lower()
    allowed = policy.schemes(tenant)
    if scheme not in allowed:
        raise errors.UnfetchableError(LOC, f"cannot fetch {uri!r} on this deployment", allowed=allowed)
    if scheme == "gcs":
        return _package(uri, base_url=policy.package_base_url or "")
    if scheme == "file":
        return _node_path(uri, root=policy.root_for(tenant) or "")
    return Source(location=uri, strip_top_dir=True)


def _package(uri: str, *, base_url: str) -> Source:
    name = uri[len("gcs://") :]
    if not _PACKAGE_NAME.fullmatch(name):
        raise errors.SpecError(LOC, f"{uri!r} does not name an uploaded package (gcs://<name>)")
    # Ray's uploaded packages hold the directory's contents at their root: nothing to strip.
    return Source(location=base_url.rstrip("/") + PACKAGES_PATH + name, strip_top_dir=False, package=True)


def _node_path(uri: str, *, root: str) -> Source:
    parts = urllib.parse.urlsplit(uri)
    path = posixpath.normpath(urllib.parse.unquote(parts.path))
    if not path.isprintable():
        raise errors.SpecError(LOC, f"{uri!r} holds a control character (a path is printable characters)")
    if parts.netloc or not path.startswith("/") or posixpath.commonpath([path, root]) != root:
        raise errors.SpecError(LOC, f"{uri!r} is not a file:///path under {root}", allowed=(root,))
    inside = posixpath.relpath(path, root)
    return Source(
        location=MOUNTED_SOURCE if inside == "." else posixpath.join(MOUNTED_SOURCE, inside),
        strip_top_dir=path.endswith(ARCHIVE_SUFFIXES),
        host_path=root,
    )
