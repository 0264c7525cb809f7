"""Job custom resources, typed: how both processes read and write them.

`Job` is a Job object as read: its identity, its spec and status parsed once through the
`crds` models, and the body itself. `Jobs` reads and writes them on the apiserver: paged
lists, a read, a create, a merge patch of the spec (stop), a status patch guarded by the
resourceVersion it was decided on, and a delete of exactly one object (by uid).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping
from typing import Any, Final

import pydantic

from jobgate.core import client as clients
from jobgate.crds import errors, models

_ALL: Final = f"/apis/{models.GROUP}/{models.VERSION}/{models.PLURAL}"
_IN_NAMESPACE: Final = f"/apis/{models.GROUP}/{models.VERSION}/namespaces/{{namespace}}/{models.PLURAL}"
_ONE: Final = _IN_NAMESPACE + "/{name}"
_MERGE_PATCH: Final = "application/merge-patch+json"


@dataclasses.dataclass(frozen=True)
class JobRef:
    """One Job object: a Job deleted and created again under its name is another (a new uid)."""

    namespace: str
    name: str
    uid: str

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclasses.dataclass(frozen=True, kw_only=True)
class Job:
    ref: JobRef
    body: Mapping[str, Any]  # the object as read (managedFields dropped)
    # A spec the models reject (the CRD and the code from different versions) is kept as
    # the error, so that the operator can FAIL the job with InvalidSpec instead of ignoring it.
    spec: models.JobSpec | errors.SpecError
    status: models.JobStatus
    resource_version: str  # opaque: compared for equality only
    generation: int | None
    created: str  # RFC 3339 in UTC: sorts as text
    deleting: bool

    @property
    def submission_id(self) -> str:
        return models.submission_id_of(dict(self.body))

    @property
    def tenant(self) -> str | None:
        return self.spec.tenant if isinstance(self.spec, models.JobSpec) else None


def parse(body: Mapping[str, Any]) -> Job:
    meta = body["metadata"]
    if isinstance(meta, dict):
        meta.pop("managedFields", None)  # a third of the object's size, and never read
    spec: models.JobSpec | errors.SpecError
    try:
        spec = models.JobSpec.model_validate(body.get("spec") or {})
    except pydantic.ValidationError as e:
        first = e.errors()[0]
        spec = errors.SpecError([str(part) for part in first["loc"]], first["msg"])
    try:
        status = models.JobStatus.model_validate(body.get("status") or {})
    except pydantic.ValidationError:
        status = models.JobStatus()  # written by something else than the operator: start over
    return Job(
        ref=JobRef(namespace=meta["namespace"], name=meta["name"], uid=meta["uid"]),
        body=body,
        spec=spec,
        status=status,
        resource_version=str(meta.get("resourceVersion") or ""),
        generation=meta.get("generation"),
        created=str(meta.get("creationTimestamp") or ""),
        deleting=bool(meta.get("deletionTimestamp")),
    )


class StaleJobError(Exception):
    """The Job changed (or went) since it was read: read it again and decide again."""


class AlreadyExistsError(Exception):
    """A Job of that name exists in the namespace."""


class Jobs:
    def __init__(self, client: clients.Client) -> None:
        self._client = client

    @staticmethod
    def collection(namespace: str | None = None) -> str:
        """The path of the Jobs of one namespace, or of all (to list or watch)."""
        return _ALL if namespace is None else clients.path(_IN_NAMESPACE, namespace=namespace)

    def read(self, namespace: str, name: str) -> Job | None:
        body = self._client.get_or_none(clients.path(_ONE, namespace=namespace, name=name))
        return None if body is None else parse(body)

    def read_ref(self, ref: JobRef) -> Job | None:
        """The Job `ref` names, if it still exists (not a namesake created since)."""
        job = self.read(ref.namespace, ref.name)
        return job if job is not None and job.ref.uid == ref.uid else None

    def list(self, *, namespace: str | None = None, field_selector: str | None = None) -> Iterator[Job]:
        """The Jobs of one namespace (or all), read a page at a time."""
        query = {"fieldSelector": field_selector} if field_selector else {}
        for page in self._client.pages(self.collection(namespace), query=query):
            yield from map(parse, page.get("items") or ())

    def uids(self, *, namespace: str | None = None) -> set[str]:
        """The uids of the Jobs of one namespace (or all), from their metadata alone."""
        pages = self._client.pages(self.collection(namespace), metadata_only=True)
        return {item["metadata"]["uid"] for page in pages for item in page.get("items") or ()}

    def create(self, manifest: Mapping[str, Any]) -> Job:
        """`AlreadyExistsError` if the name is taken; other refusals as `RefusedError`."""
        try:
            created = self._client.call(
                "POST", self.collection(manifest["metadata"]["namespace"]), body=manifest
            )
        except clients.RefusedError as e:
            if e.code == 409:
                raise AlreadyExistsError(manifest["metadata"]["name"]) from e
            raise
        return parse(created)

    def stop(self, ref: JobRef) -> Job:
        """Set `spec.stop` (the operator stops the pod); the Job as written."""
        return parse(self._patch(self._path(ref), {"spec": {"stop": True}}))

    def patch_status(self, job: Job, status: Mapping[str, Any]) -> Job:
        """Merge-patch the status; `StaleJobError` if the Job changed since `job` was read.

        The resourceVersion in the patch makes the apiserver check it: a decision taken on a
        stale Job is never written.
        """
        body = {"metadata": {"resourceVersion": job.resource_version}, "status": dict(status)}
        try:
            return parse(self._patch(self._path(job.ref) + "/status", body))
        except clients.RefusedError as e:
            if e.code in (404, 409):
                raise StaleJobError(str(job.ref)) from e
            raise

    def delete(self, ref: JobRef) -> bool:
        """Delete exactly this Job (its pods go with it); False if it was gone already."""
        return self._client.delete(self._path(ref), preconditions={"uid": ref.uid})

    def _patch(self, path: str, body: Mapping[str, Any]) -> dict[str, Any]:
        return self._client.call("PATCH", path, body=body, content_type=_MERGE_PATCH)

    @staticmethod
    def _path(ref: JobRef) -> str:
        return clients.path(_ONE, namespace=ref.namespace, name=ref.name)
