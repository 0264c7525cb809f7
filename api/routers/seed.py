"""The seed's job API at the root: `/api/jobs` (openYuanrong's "Submit Job" family).

Errors are JSON strings (`"not found app, submissionId: x"`); stop and delete answer a bare
`true`/`false`. Both `/api/jobs` and `/api/jobs/` are served.
"""

from __future__ import annotations

from typing import Final

from fastapi import APIRouter

from jobgate.api import deps, models
from jobgate.api.routers import add_job_reads, documented_errors

DIALECT: Final = models.Dialect.SEED
PREFIX: Final = "/api/jobs"
_ERRORS: Final = documented_errors(
    not_found="`not found app, submissionId: <id>`", media_type="application/json"
)

# strict_content_type=False: a body sent without a Content-Type is still read as JSON.
router = APIRouter(tags=["jobs"], strict_content_type=False)


@router.post(
    PREFIX,
    response_model=models.SubmitResponse,
    responses={**_ERRORS, 500: {"description": "`create app failed, submissionId:[<id>], err: ...`"}},
)
@router.post(PREFIX + "/", include_in_schema=False)
async def submit_job(
    body: models.SubmitRequest, tenant: deps.Tenant, pool_labels: deps.PoolLabels, jobs: deps.Jobs
) -> models.SubmitResponse:
    """Submit a job; answers once its pod is scheduled (or as the deployment's submit wait says)."""
    submission_id = await jobs.submit(body, dialect=DIALECT, tenant=tenant, pool_labels=pool_labels)
    return models.SubmitResponse(submission_id=submission_id)


@router.post(PREFIX + "/{submission_id}/stop", response_model=bool, responses=_ERRORS)
async def stop_job(submission_id: str, tenant: deps.Tenant, jobs: deps.Jobs) -> bool:
    """`true`: the job was pending or running and is being stopped; `false`: it had ended."""
    return await jobs.stop(tenant, submission_id)


@router.delete(PREFIX + "/{submission_id}", response_model=bool, responses=_ERRORS)
async def delete_job(submission_id: str, tenant: deps.Tenant, jobs: deps.Jobs) -> bool:
    """`true`: the job had ended and is deleted; `false`: it is still pending or running (kept)."""
    return await jobs.delete(tenant, submission_id)


add_job_reads(
    router, jobs_path=PREFIX, slash=False, details=models.JobDetails, dialect=DIALECT, errors=_ERRORS
)
