"""The error for a Job spec that is well-formed but cannot be run by this deployment."""

from __future__ import annotations

from collections.abc import Sequence


class SpecError(ValueError):
    """A Job spec this deployment cannot run, naming the offending field.

    `loc` is the field's path inside the Job's `spec`, pydantic-style, e.g.
    `("resources", "custom", "TPU")`; `allowed` lists the accepted values when there is a
    closed set of them (e.g. the custom resource names this deployment maps), else is empty.
    """

    def __init__(self, loc: Sequence[str], message: str, *, allowed: Sequence[str] = ()) -> None:
        self.loc = tuple(loc)
        self.message = message
        self.allowed = tuple(allowed)
        known = f" (allowed: {', '.join(self.allowed)})" if self.allowed else ""
        super().__init__(f"{self.field}: {message}{known}")

    @property
    def field(self) -> str:
        """The field's path as `kubectl explain` spells it: `spec.resources.custom.TPU`."""
        return ".".join(("spec", *self.loc))


class UnfetchableError(SpecError):
    """A working_dir or py_module this deployment has no way to fetch (its scheme): a runtime environment
    that cannot be set up. Ray's server accepts such a job and fails it so; the seed
    dialect refuses it at submit."""
