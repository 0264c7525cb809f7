"""A Job object as the operator reads it: identity, parsed spec and status."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import pydantic

from jobgate.crds import models
from jobgate.operator import errors


@dataclasses.dataclass(frozen=True)
class JobRef:
    namespace: str
    name: str
    uid: str


@dataclasses.dataclass(frozen=True, kw_only=True)
class JobView:
    ref: JobRef
    body: Mapping[str, Any]  # the object as read, for event posting
    # A spec the models reject (the CRD and the operator from different versions) is kept as
    # the error, so that the job can be FAILED with InvalidSpec instead of being ignored.
    spec: models.JobSpec | errors.SpecError
    status: models.JobStatus
    resource_version: str
    generation: int | None
    deleting: bool

    @property
    def submission_id(self) -> str:
        return models.submission_id_of(dict(self.body))


def parse_job(body: Mapping[str, Any]) -> JobView:
    meta = body["metadata"]
    spec: models.JobSpec | errors.SpecError
    try:
        spec = models.JobSpec.model_validate(body.get("spec") or {})
    except pydantic.ValidationError as e:
        first = e.errors()[0]
        spec = errors.SpecError([str(part) for part in first["loc"]], first["msg"])
    return JobView(
        ref=JobRef(namespace=meta["namespace"], name=meta["name"], uid=meta["uid"]),
        body=body,
        spec=spec,
        status=models.JobStatus.model_validate(body.get("status") or {}),
        resource_version=meta.get("resourceVersion", ""),
        generation=meta.get("generation"),
        deleting=bool(meta.get("deletionTimestamp")),
    )
