"""Where a job's `runtime_env.working_dir` and `py_modules` come from, and how its init
containers get them (one container each).

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
A py_module ending in `.whl` is a wheel: fetched as the file it is, and installed by pip; its
file name must be a wheel's (pip reads the package's name and tags from it).
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
WHEEL_SUFFIX: Final = ".whl"
# PEP 427's file name: {distribution}-{version}(-{build tag})?-{python tag}-{abi tag}-{platform tag}.whl
WHEEL_NAME: Final = re.compile(
    r"[A-Za-z0-9_.]+-[A-Za-z0-9_.!+]+(-[0-9][A-Za-z0-9_.]*)?-[A-Za-z0-9_.]+-[A-Za-z0-9_.]+-[A-Za-z0-9_.]+\.whl"
)
WHEEL_RULE: Final = "{distribution}-{version}-{python tag}-{abi tag}-{platform tag}.whl (PEP 427)"
PACKAGES_PATH: Final = "/api/packages/gcs/"
# Archives are mounted as a file, anything else as a directory (hostPath's type checks which).
ARCHIVE_SUFFIXES: Final = (".zip", ".tar", ".tar.gz", ".tgz")
_PACKAGE_NAME = re.compile(r"[A-Za-z0-9_.+!-]+")  # a wheel's name may hold + and !


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
    loc: tuple[str, ...] = LOC  # its field in the Job's spec
    host_path: str | None = None  # the node directory mounted at MOUNTED_SOURCE (the root)
    package: bool = False  # an uploaded package: fetched with the job's identity (`for_job`)
    wheel: str | None = None  # a wheel's file name: the file is kept as it is, for pip

    @property
    def field(self) -> str:
        """The runtime_env field it is, as messages name it: working_dir or py_modules[i]."""
        return self.loc[1] + "".join(f"[{part}]" for part in self.loc[2:])

    def for_job(self, *, namespace: str, name: str, uid: str) -> str:
        """Where the job's init container fetches it: a package's URL carries the Job's
        identity, its credential (the API serves a package to the unfinished Job using it)."""
        if not self.package:
            return self.location
        return f"{self.location}?{urllib.parse.urlencode({'namespace': namespace, 'job': name, 'uid': uid})}"


MOUNTED_SOURCE: Final = "/jobgate/source"


def source_for(
    uri: str, *, policy: WorkingDirPolicy, tenant: str | None = None, loc: tuple[str, ...] = LOC
) -> Source:
    """The fetch plan for the URI of the tenant's job in the field at `loc` (the working_dir,
    or a py_module: only these may be wheels); `SpecError` when this deployment cannot serve it."""
    parts = urllib.parse.urlsplit(uri)
    scheme = parts.scheme.lower()
    allowed = policy.schemes(tenant)
    if scheme not in allowed:
        raise errors.UnfetchableError(loc, f"cannot fetch {uri!r} on this deployment", allowed=allowed)
    # An uploaded package's name is all after gcs:// (urlsplit reads it as the host).
    file_name = (
        uri[len("gcs://") :] if scheme == "gcs" else posixpath.basename(urllib.parse.unquote(parts.path))
    )
    wheel = file_name if loc != LOC and file_name.endswith(WHEEL_SUFFIX) else None
    if wheel is not None and not WHEEL_NAME.fullmatch(wheel):
        raise errors.SpecError(loc, f"{uri!r} is not named as a wheel: {WHEEL_RULE}")
    if scheme == "gcs":
        source = _package(uri, base_url=policy.package_base_url or "", loc=loc)
    elif scheme == "file":
        source = _node_path(uri, root=policy.root_for(tenant) or "", loc=loc)
    else:
        source = Source(location=uri, strip_top_dir=True, loc=loc)
    return dataclasses.replace(source, wheel=wheel, strip_top_dir=source.strip_top_dir and not wheel)


def _package(uri: str, *, base_url: str, loc: tuple[str, ...]) -> Source:
    name = uri[len("gcs://") :]
    if not _PACKAGE_NAME.fullmatch(name):
        raise errors.SpecError(loc, f"{uri!r} does not name an uploaded package (gcs://<name>)")
    # Ray's uploaded packages hold the directory's contents at their root: nothing to strip.
    return Source(
        location=base_url.rstrip("/") + PACKAGES_PATH + name, strip_top_dir=False, package=True, loc=loc
    )


def _node_path(uri: str, *, root: str, loc: tuple[str, ...]) -> Source:
    parts = urllib.parse.urlsplit(uri)
    path = posixpath.normpath(urllib.parse.unquote(parts.path))
    if not path.isprintable():
        raise errors.SpecError(loc, f"{uri!r} holds a control character (a path is printable characters)")
    if parts.netloc or not path.startswith("/") or posixpath.commonpath([path, root]) != root:
        raise errors.SpecError(loc, f"{uri!r} is not a file:///path under {root}", allowed=(root,))
    inside = posixpath.relpath(path, root)
    return Source(
        location=MOUNTED_SOURCE if inside == "." else posixpath.join(MOUNTED_SOURCE, inside),
        strip_top_dir=path.endswith(ARCHIVE_SUFFIXES),
        host_path=root,
        loc=loc,
    )
