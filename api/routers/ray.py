"""Ray's Jobs API at `/ray`: point `RAY_ADDRESS` (or `--address`) at `http://<host>:8265/ray`
and `ray job ...` / `JobSubmissionClient` work unchanged.

Ray's shapes: submit answers `{"job_id", "submission_id"}`, stop `{"stopped"}`, delete
`{"deleted"}` (and refuses a job that has not ended, as Ray does), logs `{"logs"}`; errors
are plain text, which Ray's client shows as they are. Tenant and pool come from the same
headers as the seed's (`JobSubmissionClient(address, headers={...})`, or `RAY_JOB_HEADERS`
for the CLI). Ray's calls for package uploads are in `packages`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Final

from fastapi import APIRouter, WebSocket, WebSocketDisconnect

from jobgate.api import deps, errors, models
from jobgate.api.routers import add_job_reads, documented_errors

log = logging.getLogger(__name__)

DIALECT: Final = models.Dialect.RAY
PREFIX: Final = models.RAY_PREFIX + "/api"
_WS_NORMAL, _WS_INTERNAL_ERROR = 1000, 1011
_TEXT: Final = {"text/plain": {"schema": {"type": "string"}}}
_ERRORS: Final = documented_errors(not_found="`Job <id> does not exist`", media_type="text/plain")

router = APIRouter(prefix=PREFIX, tags=["Ray Jobs API"], strict_content_type=False)
add_job_reads(
    router, jobs_path="/jobs", slash=True, details=models.RayJobDetails, dialect=DIALECT, errors=_ERRORS
)


@router.get("/version", response_model=models.VersionResponse)
async def version() -> models.VersionResponse:
    """What Ray's client checks before each command: the Jobs API version it speaks."""
    return models.VersionResponse()


@router.post(
    "/jobs/",
    response_model=models.RaySubmitResponse,
    responses={**_ERRORS, 500: {"description": "`create app failed, ...`", "content": _TEXT}},
)
@router.post("/jobs", include_in_schema=False)
async def submit_job(
    body: models.RaySubmitRequest, tenant: deps.Tenant, pool_labels: deps.PoolLabels, jobs: deps.Jobs
) -> models.RaySubmitResponse:
    submission_id = await jobs.submit(body, dialect=DIALECT, tenant=tenant, pool_labels=pool_labels)
    return models.RaySubmitResponse(job_id=submission_id, submission_id=submission_id)


@router.post("/jobs/{submission_id}/stop", response_model=models.RayStopResponse, responses=_ERRORS)
async def stop_job(submission_id: str, tenant: deps.Tenant, jobs: deps.Jobs) -> models.RayStopResponse:
    return models.RayStopResponse(stopped=await jobs.stop(tenant, submission_id))


@router.delete("/jobs/{submission_id}", response_model=models.RayDeleteResponse, responses=_ERRORS)
async def delete_job(submission_id: str, tenant: deps.Tenant, jobs: deps.Jobs) -> models.RayDeleteResponse:
    """Delete a job that has ended; one still pending or running is refused (400), as Ray does."""
    if not await jobs.delete(tenant, submission_id):
        raise errors.NotTerminalError(submission_id, jobs.get(tenant, submission_id).state)
    return models.RayDeleteResponse(deleted=True)


@router.websocket("/jobs/{submission_id}/logs/tail")
async def tail_job_logs(
    websocket: WebSocket, submission_id: str, tenant: deps.Tenant, jobs: deps.Jobs
) -> None:
    """The job's log as text frames while it runs; closed normally once the job has ended.

    Refused before the websocket is accepted, with an HTTP answer: 404 for an unknown job (or
    another tenant's), as Ray's server answers, and 429 past the caps on tails.
    """
    jobs.get(tenant, submission_id)  # JobNotFoundError: the handler refuses the websocket
    with jobs.tail_slot(tenant):  # TooManyTailsError: refused the same way
        await _tail(websocket, jobs.follow_logs(tenant, submission_id, dialect=DIALECT), submission_id)


async def _tail(websocket: WebSocket, follow: AsyncGenerator[str, None], submission_id: str) -> None:
    await websocket.accept()
    sender = asyncio.ensure_future(_send_all(websocket, follow))
    # The client sends nothing; receiving only notices it leave, and its stream stops then.
    listener = asyncio.ensure_future(_until_disconnected(websocket))
    done, pending = await asyncio.wait({sender, listener}, return_when=asyncio.FIRST_COMPLETED)
    for task in pending:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, WebSocketDisconnect):
            await task
    await follow.aclose()
    if sender in done:
        failure = sender.exception()
        if failure is not None and not isinstance(failure, WebSocketDisconnect):
            log.warning("tailing the logs of %s failed: %s", submission_id, failure)
        with contextlib.suppress(RuntimeError, WebSocketDisconnect):
            await websocket.close(code=_WS_NORMAL if failure is None else _WS_INTERNAL_ERROR)


async def _send_all(websocket: WebSocket, texts: AsyncIterator[str]) -> None:
    async for text in texts:
        await websocket.send_text(text)


async def _until_disconnected(websocket: WebSocket) -> None:
    with contextlib.suppress(WebSocketDisconnect):
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
