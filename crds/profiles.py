"""Pod profiles: what the cluster operator adds to the pods of jobs in a pool, or asking for a
resource (`JOBGATE_POD_PROFILES`, a JSON list).

Real GPU and NPU nodes are tainted (`nvidia.com/gpu:NoSchedule`), need a runtime class, a
priority class, a pull secret for their images, a larger `/dev/shm`, a dataset volume. A
job never says any of that: a profile applies to a job when one of its pool labels is one
of the profile's `pools` (exactly as written in `X-Pool-Label`: `pool-gpu`, or `key=value`),
or when it asks for one of the profile's `resources` (`gpu`, a custom resource's name such as
`NPU`, or the extended resource itself, `nvidia.com/gpu`). So a job asking for a GPU gets the
GPU pool's tolerations without naming the pool, and a CPU job that names no GPU pool never
tolerates the GPU nodes' taints. A profile's nodeSelector and runtimeClassName pin the pod:
give them only to profiles whose jobs can land nowhere else (a job naming a CPU pool and the
GPU pool would otherwise be held to the GPU nodes).

Users cannot reach past it: the Job's spec has no field for any of these, the profiles are
the deployment's settings, and a volume is a PersistentVolumeClaim of the job's own
namespace (never a host path). Several profiles that apply add up, in the order listed:
tolerations, pull secrets, volumes and node selectors are joined (of a volume name or a
selector's key, the first profile's counts), of a single value (image, classes,
service account, /dev/shm size) the first profile that sets it wins, and one profile that
lets its jobs run as their image's user is enough.
"""

from __future__ import annotations

import enum
import posixpath
from collections.abc import Mapping, Sequence
from typing import Annotated, Final

from pydantic import AliasGenerator, BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic.alias_generators import to_camel

from jobgate.crds import models, names

SHM_VOLUME: Final = "dshm"  # the emptyDir (in memory) mounted at /dev/shm
SHM_PATH: Final = "/dev/shm"
# The pod's own volumes and mounts (operator/podspec.py): a profile's volume takes neither.
RESERVED_VOLUMES: Final = frozenset({"jobgate", "working-dir-source", SHM_VOLUME})
RESERVED_PATHS: Final = ("/jobgate", SHM_PATH)
# A Kubernetes quantity, as a /dev/shm size limit is written (`1Gi`, `512M`, `1073741824`).
_QUANTITY: Final = r"^[0-9]+(\.[0-9]+)?([KMGTPE]i?|[eE][0-9]+)?$"
_NAME = Annotated[
    str,
    Field(
        pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$",
        max_length=names.MAX_NAME,
    ),
]


class _Camel(BaseModel):
    model_config = ConfigDict(
        alias_generator=AliasGenerator(alias=to_camel), populate_by_name=True, extra="forbid", frozen=True
    )


class TolerationOperator(enum.StrEnum):
    EXISTS = "Exists"
    EQUAL = "Equal"


class TaintEffect(enum.StrEnum):
    NO_SCHEDULE = "NoSchedule"
    PREFER_NO_SCHEDULE = "PreferNoSchedule"
    NO_EXECUTE = "NoExecute"


class Toleration(_Camel):
    """A pod's toleration (core/v1), as the pod gets it."""

    key: str | None = None
    operator: TolerationOperator = TolerationOperator.EQUAL
    value: str | None = None
    effect: TaintEffect | None = None
    toleration_seconds: int | None = None

    @model_validator(mode="after")
    def _as_the_apiserver_takes_it(self) -> Toleration:
        if self.operator == TolerationOperator.EXISTS and self.value:
            raise ValueError("a toleration with operator Exists has no value")
        if self.key is None and self.operator != TolerationOperator.EXISTS:
            raise ValueError("a toleration without a key has operator Exists (it tolerates every taint)")
        return self


class ClaimVolume(_Camel):
    """A PersistentVolumeClaim of the job's namespace, mounted into the job's container."""

    name: Annotated[str, Field(pattern=f"^{names.DNS_LABEL.pattern}$", max_length=names.MAX_LABEL)]
    claim_name: _NAME
    mount_path: Annotated[str, Field(pattern=r"^/.*")]
    read_only: bool = True

    @field_validator("name")
    @classmethod
    def _own_name(cls, name: str) -> str:
        if name in RESERVED_VOLUMES:
            raise ValueError(f"{name!r} is a volume of jobgate's own ({', '.join(sorted(RESERVED_VOLUMES))})")
        return name

    @field_validator("mount_path")
    @classmethod
    def _own_path(cls, path: str) -> str:
        clean = "/" + posixpath.normpath(path).lstrip("/")  # normpath keeps a leading //
        if any(clean == own or clean.startswith(own + "/") for own in RESERVED_PATHS) or clean == "/":
            raise ValueError(f"{path!r} is / or where jobgate mounts its own ({', '.join(RESERVED_PATHS)})")
        return clean


class PodProfile(_Camel):
    pools: tuple[str, ...] = ()  # pool labels, exactly as a job names them (X-Pool-Label)
    resources: tuple[str, ...] = ()  # `gpu`, custom resource names or extended resources (> 0)
    tolerations: tuple[Toleration, ...] = ()
    node_selector: dict[str, str] = Field(default_factory=dict)
    priority_class_name: _NAME | None = None
    runtime_class_name: _NAME | None = None
    image_pull_secrets: tuple[_NAME, ...] = ()
    service_account_name: _NAME | None = None  # its token is still not mounted
    image: str | None = None  # the job's image there, unless runtime_env.image_uri names one
    shm_size: Annotated[str | None, Field(pattern=_QUANTITY)] = None  # an in-memory /dev/shm of this size
    volumes: tuple[ClaimVolume, ...] = ()
    # The jobs here run as their image's own user, root included (images that need it), not
    # as JOBGATE_JOB_USER; tenant namespaces are then held to `baseline`, not `restricted`.
    run_as_image_user: bool = False

    def applies(self, spec: models.JobSpec, quantities: Mapping[str, str]) -> bool:
        """Whether the job names one of its pools (as written), or asks for one of its
        resources: by the job's name for it, or by the extended resource it becomes
        (`quantities`, the pod's), so that every alias of an NPU gets its tolerations."""
        labels = {label.strip() for label in spec.pool_labels}
        asked = {name for name, amount in spec.resources.custom.items() if amount > 0} | set(quantities)
        if spec.resources.gpus > 0:
            asked.add("gpu")
        return bool(labels & set(self.pools) or asked & set(self.resources))


def for_job(
    profiles: Sequence[PodProfile], spec: models.JobSpec, quantities: Mapping[str, str]
) -> PodProfile:
    """The profiles that apply to the job (whose pod asks for `quantities`), added up into
    one (see the module's docstring)."""
    applying = [profile for profile in profiles if profile.applies(spec, quantities)]
    volumes: dict[str, ClaimVolume] = {}
    selector: dict[str, str] = {}
    for profile in applying:  # the first of a volume name, or of a label key, wins
        for volume in profile.volumes:
            volumes.setdefault(volume.name, volume)
        for key, value in profile.node_selector.items():
            selector.setdefault(key, value)

    def first(field: str) -> str | None:
        return next((value for p in applying if (value := getattr(p, field)) is not None), None)

    return PodProfile(
        tolerations=tuple(dict.fromkeys(t for p in applying for t in p.tolerations)),
        node_selector=selector,
        priority_class_name=first("priority_class_name"),
        runtime_class_name=first("runtime_class_name"),
        image_pull_secrets=tuple(dict.fromkeys(s for p in applying for s in p.image_pull_secrets)),
        service_account_name=first("service_account_name"),
        image=first("image"),
        shm_size=first("shm_size"),
        volumes=tuple(volumes.values()),
        run_as_image_user=any(profile.run_as_image_user for profile in applying),
    )
