"""A submit request -> the Job custom resource: the one translation, shared by both dialects.

What differs between the dialects is only the id rule (see `submission_id`); everything
else (defaults, resources, runtime_env, pool, tenant, timeouts) is the same. The result is
checked by the operator's own pod rendering (`validation.check_spec`), so a job that
passes here is one the operator can run; every refusal is `errors.InvalidRequestError` naming the
request's field, and nothing has been created yet.
"""

from __future__ import annotations

import json
import re
import secrets
import string
import uuid
from collections.abc import Mapping, Sequence
from typing import Any, Final

import pydantic

from jobgate.api import errors, models
from jobgate.api.config import Settings
from jobgate.crds import errors as spec_errors
from jobgate.crds import models as crd
from jobgate.crds import names, validation

SEED_PREFIX: Final = "app-"
SEED_ID_PATTERN: Final = r"^[a-z0-9-]{1,64}$"
SEED_FORBIDDEN_WORD: Final = "driver"
RAY_PREFIX: Final = "raysubmit_"
_RAY_ID_ALPHABET: Final = string.ascii_letters + string.digits
_RAY_ID_LENGTH: Final = 16

# Job spec fields (as the operator's SpecError names them) -> the request's names for them.
_REQUEST_FIELDS: Final = {
    ("resources", "cpus"): "entrypoint_num_cpus",
    ("resources", "memory"): "entrypoint_memory",
    ("resources", "gpus"): "entrypoint_num_gpus",
    ("resources", "custom"): "entrypoint_resources",
    ("runtimeEnv",): "runtime_env",
    ("entrypoint",): "entrypoint",
    ("metadata",): "metadata",
    ("poolLabels",): "X-Pool-Label",
    # Read from the metadata (see `_retry_fields`), and named as the schema's error has them.
    ("max_attempts",): f"metadata.{crd.METADATA_MAX_ATTEMPTS}",
    ("pod_failure_policy",): f"metadata.{crd.METADATA_POD_FAILURE_POLICY}",
}


def submission_id(requested: str | None, *, dialect: models.Dialect) -> str:
    """The job's id under the dialect's rule.

    Seed: absent -> `app-<uuid>`; without the `app-` prefix it is added; the whole id must
    match `^[a-z0-9-]{1,64}$` and not contain `driver`.
    Ray: absent -> `raysubmit_<16 letters and digits>` (as Ray makes them); a given id is
    kept as it is and must match `^[A-Za-z0-9_-]{1,64}$` (Ray's own ids do).
    An empty string counts as absent in both.
    """
    if dialect is models.Dialect.RAY:
        if not requested:
            return RAY_PREFIX + "".join(secrets.choice(_RAY_ID_ALPHABET) for _ in range(_RAY_ID_LENGTH))
        if not re.fullmatch(crd.SUBMISSION_ID_PATTERN, requested):
            raise errors.InvalidRequestError(
                f"submission_id must match {crd.SUBMISSION_ID_PATTERN} "
                f"(1 to 64 letters, digits, '_' or '-'), got {requested!r}"
            )
        return requested
    if not requested:
        return f"{SEED_PREFIX}{uuid.uuid4()}"
    full = requested if requested.startswith(SEED_PREFIX) else SEED_PREFIX + requested
    if not re.fullmatch(SEED_ID_PATTERN, full) or SEED_FORBIDDEN_WORD in full:
        raise errors.InvalidRequestError(
            f"submission_id must match {SEED_ID_PATTERN} once prefixed with {SEED_PREFIX!r} "
            f"(at most 64 lowercase letters, digits or '-') and must not contain "
            f"{SEED_FORBIDDEN_WORD!r}, got {requested!r}"
        )
    return full


def job_spec(
    request: models.SubmitRequest | models.RaySubmitRequest,
    *,
    dialect: models.Dialect,
    tenant: str,
    pool_labels: Sequence[str],
    settings: Settings,
) -> crd.JobSpec:
    """The Job's spec for a parsed request; `errors.InvalidRequestError` if this deployment cannot run it."""
    requested_id = request.submission_id
    if isinstance(request, models.RaySubmitRequest):
        requested_id = requested_id or request.job_id
        if request.entrypoint_label_selector:
            raise errors.InvalidRequestError(
                "entrypoint_label_selector is not supported: choose the nodes with the X-Pool-Label header"
            )
    runtime_env = request.runtime_env.model_dump(exclude_none=True) if request.runtime_env else {}
    try:
        # Validated as one object, so that an error names the field's whole path.
        spec = crd.JobSpec.model_validate(
            {
                "submission_id": submission_id(requested_id, dialect=dialect),
                "entrypoint": request.entrypoint,
                "runtime_env": runtime_env,
                "resources": {
                    "cpus": request.entrypoint_num_cpus,
                    "memory": request.entrypoint_memory,
                    "gpus": request.entrypoint_num_gpus or 0,
                    "custom": request.entrypoint_resources or {},
                },
                "metadata": request.metadata or {},
                "pool_labels": list(pool_labels),
                "tenant": tenant,
                "scheduling_timeout_ms": settings.scheduling_timeout_ms,
                "ttl_seconds_after_finished": settings.job_ttl_seconds,
                **_retry_fields(request.metadata or {}),
            },
            by_name=True,
        )
    except pydantic.ValidationError as e:
        # The Job schema's bounds (the CRD's too): what passes them can always become a pod.
        raise errors.InvalidRequestError(describe_spec_errors(e)) from e
    try:
        validation.check_spec(spec, rules=settings)
    except spec_errors.SpecError as e:
        # Ray's server takes a job whose working_dir it cannot fetch, which then fails as a
        # runtime env that cannot be set up: the operator ends it so (StartFailed), checked
        # last (every other field passed), and Ray's client sees Ray's error type.
        unfetchable = isinstance(e, spec_errors.UnfetchableError)
        if not (unfetchable and isinstance(request, models.RaySubmitRequest)):
            allowed = f" (allowed: {', '.join(e.allowed)})" if e.allowed else ""
            raise errors.InvalidRequestError(f"{request_field(e.loc)}: {e.message}{allowed}") from e
    return spec


def _retry_fields(metadata: Mapping[str, str]) -> dict[str, Any]:
    """The retries a submission asks for in its metadata: neither dialect has fields for
    them, and both clients set metadata (Ray's `--metadata-json` too)."""
    fields: dict[str, Any] = {}
    if (attempts := metadata.get(crd.METADATA_MAX_ATTEMPTS)) is not None:
        fields["max_attempts"] = attempts  # an integer as text, which the schema reads as one
    if (policy := metadata.get(crd.METADATA_POD_FAILURE_POLICY)) is not None:
        try:
            fields["pod_failure_policy"] = json.loads(policy)
        except json.JSONDecodeError as e:
            raise errors.InvalidRequestError(
                f"metadata.{crd.METADATA_POD_FAILURE_POLICY} must be a JSON podFailurePolicy "
                f'({{"rules": [...]}}, see the README): {e}'
            ) from e
    return fields


def manifest(spec: crd.JobSpec, *, namespace: str) -> dict[str, Any]:
    """The Job object to create for a spec made by `job_spec`."""
    submission = spec.submission_id or ""
    tenant = spec.tenant or ""
    return {
        "apiVersion": crd.API_VERSION,
        "kind": crd.KIND,
        "metadata": {
            "name": names.job_name(submission),
            "namespace": namespace,
            "labels": {
                crd.LABEL_SUBMISSION_ID: names.label_value(submission),
                crd.LABEL_TENANT: names.label_value(tenant),
            },
            # Labels may be shortened; these are the exact values.
            "annotations": {crd.ANNOTATION_SUBMISSION_ID: submission, crd.ANNOTATION_TENANT: tenant},
        },
        "spec": {
            **spec.model_dump(mode="json", by_alias=True, exclude_none=True),
            # As the client gave it, so that it reads back so (Ray's details show it as
            # submitted): the keys it set, none of the defaults.
            "runtimeEnv": spec.runtime_env.model_dump(mode="json", exclude_unset=True),
        },
    }


def request_field(loc: Sequence[str]) -> str:
    """A Job spec field's path as the request names it: ("resources", "gpus") -> entrypoint_num_gpus."""
    for length in (2, 1):
        name = _REQUEST_FIELDS.get(tuple(loc[:length]))
        if name:
            return ".".join((name, *loc[length:]))
    return ".".join(("spec", *loc))


def describe_spec_errors(error: pydantic.ValidationError) -> str:
    return errors.describe([{**item, "loc": _request_loc(item["loc"])} for item in error.errors()])


def _request_loc(loc: Sequence[int | str]) -> tuple[str, ...]:
    parts = [str(part) for part in loc]
    if parts[-1:] == ["[key]"]:  # a map's key: the map, the key, and that it is the key
        return (request_field(parts[:-2]), *parts[-2:])
    return (request_field(parts),)
