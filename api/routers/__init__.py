"""The HTTP routes, one module per API: `seed` (the seed's job API, at /), `ray` (Ray's Jobs
API, at /ray), `packages` (working_dir uploads and downloads), `system` (health, metrics).

The reads (list, get, logs) are the same in both dialects but for the shape of a job's
details and the lines a log starts with, so `add_job_reads` adds them to either. Details
go out as JSON straight from the index's cached models, shaped by the dialect's model (the
seed's has no `job_id`), without FastAPI validating every item again: a list of 10,000
jobs is serialized once, in pydantic's core.
"""

from __future__ import annotations

from typing import Any, Final

from fastapi import APIRouter, responses
from pydantic import TypeAdapter

from jobgate.api import deps, models

CONTINUE_HEADER: Final = "X-Continue"
Responses = dict[int | str, dict[str, Any]]


def documented_errors(*, not_found: str, media_type: str) -> Responses:
    """The errors any job route may answer, for the OpenAPI document (bodies are strings)."""
    described = {
        400: "Invalid request; the message names the field",
        401: "Bearer token required",
        403: "Bearer token not valid",
        404: f"{not_found} (also for another tenant's job)",
        503: "Kubernetes unreachable, or the job list not loaded yet",
    }
    content = {media_type: {"schema": {"type": "string"}}}
    return {status: {"description": text, "content": content} for status, text in described.items()}


def add_job_reads(
    router: APIRouter,
    *,
    jobs_path: str,
    slash: bool,
    details: type[models.JobDetails],
    dialect: models.Dialect,
    errors: Responses,
) -> None:
    """Add `GET <jobs_path>[/]` (the list; `slash`: its documented form ends in "/"),
    `GET <jobs_path>/{submission_id}` and `GET <jobs_path>/{submission_id}/logs` to `router`.

    Added to the dialect's router itself (not included as a router of their own), so that
    each route knows its whole path, which the metrics use.
    """
    one: TypeAdapter[Any] = TypeAdapter(details)
    many: TypeAdapter[Any] = TypeAdapter(list[details])  # type: ignore[valid-type]  # a class, as a value

    @router.get(jobs_path + "/" * slash, response_model=list[details], responses=errors)  # type: ignore[valid-type]
    @router.get(jobs_path + "/" * (not slash), include_in_schema=False)
    async def list_jobs(tenant: deps.Tenant, query: deps.Listing, jobs: deps.Jobs) -> responses.Response:
        """The tenant's jobs, oldest first (Ray's dialect: newest first, as `ray job list`
        users expect): all of them, or a page of `limit` (the next page's token in the
        X-Continue header); only those in `status` when it is given."""
        page = jobs.list(
            tenant,
            states=query.states,
            after=query.after,
            limit=query.limit,
            newest_first=dialect is models.Dialect.RAY,
        )
        headers = {CONTINUE_HEADER: deps.encode_continue(page.next)} if page.next else None
        body = many.dump_json([entry.details for entry in page.entries])
        return responses.Response(body, media_type="application/json", headers=headers)

    @router.get(jobs_path + "/{submission_id}", response_model=details, responses=errors)
    async def get_job(submission_id: str, tenant: deps.Tenant, jobs: deps.Jobs) -> responses.Response:
        body = one.dump_json(jobs.get(tenant, submission_id).details)
        return responses.Response(body, media_type="application/json")

    @router.get(
        jobs_path + "/{submission_id}/logs",
        response_model=models.LogsResponse,
        responses={**errors, 410: {"description": "The job's pod, and its logs, are gone"}},
    )
    async def get_job_logs(submission_id: str, tenant: deps.Tenant, jobs: deps.Jobs) -> models.LogsResponse:
        """The log of the job's (latest) pod so far; empty before it starts."""
        return models.LogsResponse(logs=await jobs.logs(tenant, submission_id, dialect=dialect))
