"""A job's resources -> the pod's requests and limits (they are equal: the job gets what it asked).

    cpus 0.3      -> cpu: 300m            (rounded up to whole millicores)
    memory N      -> memory: "N"          (bytes)
    gpus 2        -> nvidia.com/gpu: "2"  (the GPU resource name is configurable)
    custom NPU: 1 -> huawei.com/Ascend910: "1"   (through the configurable mapping)

A 0 means "not requested". GPUs and custom resources are Kubernetes extended resources,
which only come in whole units: a fractional count is refused, never rounded. A custom
resource name the mapping does not know is refused too. Both raise `SpecError` naming the
field, so the API can turn them into a 400 before it creates anything.
"""

from __future__ import annotations

import collections
import dataclasses
import decimal
import math
import re
from collections.abc import Mapping
from typing import Final

from jobgate.crds import errors, models

DEFAULT_GPU_RESOURCE: Final = "nvidia.com/gpu"
DEFAULT_CUSTOM_RESOURCES: Final = {"NPU": "huawei.com/Ascend910"}
# The reference server's minimums: a job that names no cpus/memory gets the smallest job.
DEFAULT_CPUS: Final = models.MIN_CPUS
DEFAULT_MEMORY: Final = models.MIN_MEMORY_BYTES

# An extended resource name: a DNS-subdomain prefix, a slash, and a name (`vendor.com/thing`).
EXTENDED_RESOURCE_PATTERN: Final = re.compile(
    r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?"
)


@dataclasses.dataclass(frozen=True, kw_only=True)
class ResourcePolicy:
    """How this deployment turns a job's resources into Kubernetes resources."""

    custom: Mapping[str, str] = dataclasses.field(default_factory=lambda: dict(DEFAULT_CUSTOM_RESOURCES))
    gpu: str = DEFAULT_GPU_RESOURCE
    default_cpus: float = DEFAULT_CPUS
    default_memory: int = DEFAULT_MEMORY

    def __post_init__(self) -> None:
        for name in (self.gpu, *self.custom.values()):
            extended_resource(name)
        cpus(self.default_cpus)
        memory(self.default_memory)


# Checks of the policy's values, also used to parse them from the environment (`config`).


def extended_resource(name: str) -> str:
    if not EXTENDED_RESOURCE_PATTERN.fullmatch(name):
        raise ValueError(f"{name!r} is not an extended resource name (like vendor.com/thing)")
    return name


def cpus(value: float) -> float:
    if not models.MIN_CPUS <= value <= models.MAX_CPUS:
        raise ValueError(f"{value} cpus is outside [{models.MIN_CPUS}, {models.MAX_CPUS}]")
    return value


def memory(value: int) -> int:
    if not models.MIN_MEMORY_BYTES <= value <= models.MAX_MEMORY_BYTES:
        raise ValueError(f"{value} bytes is outside [{models.MIN_MEMORY_BYTES}, {models.MAX_MEMORY_BYTES}]")
    return value


def quantities(resources: models.Resources, *, policy: ResourcePolicy) -> dict[str, str]:
    """The pod's resource quantities (used as both requests and limits).

    Raises `SpecError` for a fractional GPU/custom count or an unknown custom resource.
    """
    cores = policy.default_cpus if resources.cpus is None else resources.cpus
    size = policy.default_memory if resources.memory is None else resources.memory
    extended: collections.Counter[str] = collections.Counter()
    if resources.gpus:
        extended[policy.gpu] += _whole(resources.gpus, loc=("resources", "gpus"), unit=policy.gpu)
    for name, amount in resources.custom.items():
        if not amount:
            continue  # 0 = not needed, whatever the name
        loc = ("resources", "custom", name)
        if name not in policy.custom:
            raise errors.SpecError(loc, f"unknown custom resource {name!r}", allowed=sorted(policy.custom))
        extended[policy.custom[name]] += _whole(amount, loc=loc, unit=policy.custom[name])
    return {
        "cpu": cpu_quantity(cores),
        "memory": str(size),
        **{name: str(count) for name, count in sorted(extended.items())},
    }


def cpu_quantity(cores: float) -> str:
    """Cores as a Kubernetes quantity: whole cores as `3`, else millicores (`300m`), rounded up."""
    # Through the float's shortest repr, so that 0.3 is 300m and not 300.00000000000006 -> 301m.
    millicores = math.ceil(decimal.Decimal(repr(cores)) * 1000)
    return str(millicores // 1000) if millicores % 1000 == 0 else f"{millicores}m"


def _whole(amount: float, *, loc: tuple[str, ...], unit: str) -> int:
    if amount != int(amount):
        raise errors.SpecError(
            loc, f"{amount:g} is not a whole number; {unit} is only granted in whole units"
        )
    return int(amount)
