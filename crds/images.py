"""Which container images a job may name (`runtime_env.image_uri`): an allow-list of prefixes.

A job's image runs on the cluster's nodes with the node's network, so the cluster operator
says where images may come from. References are compared in their full form, as the
container runtime pulls them: `python:3.12` is `docker.io/library/python:3.12`,
`acme/tool` is `docker.io/acme/tool`. Without a list, the registry of the deployment's own
job image (`JOBGATE_IMAGE`) is the only one; `*` allows any image.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Final

from jobgate.crds import errors

ANY: Final = "*"
_DEFAULT_REGISTRY: Final = "docker.io"
_LOC: Final = ("runtimeEnv", "image_uri")


def normalized(reference: str) -> str:
    """The image reference in full: its registry first, Docker Hub's `library/` filled in."""
    first, slash, _ = reference.partition("/")
    if not slash:
        return f"{_DEFAULT_REGISTRY}/library/{reference}"
    if "." in first or ":" in first or first == "localhost":
        return reference
    return f"{_DEFAULT_REGISTRY}/{reference}"


def registry(reference: str) -> str:
    return normalized(reference).partition("/")[0]


@dataclasses.dataclass(frozen=True)
class ImagePolicy:
    allowed: Sequence[str]  # prefixes of full references, or ANY

    @classmethod
    def for_images(cls, allowed: Sequence[str], *, job_image: str) -> ImagePolicy:
        return cls(allowed=tuple(allowed) or (registry(job_image) + "/",))

    def check(self, reference: str) -> None:
        """`errors.SpecError` naming runtime_env.image_uri unless the image may be used."""
        if ANY in self.allowed or normalized(reference).startswith(tuple(self.allowed)):
            return
        raise errors.SpecError(
            _LOC,
            f"image {reference!r} ({normalized(reference)}) is not allowed here: images must start "
            f"with {' or '.join(repr(prefix) for prefix in self.allowed)} (JOBGATE_ALLOWED_IMAGES)",
        )
