"""Probes and metrics (no authentication, no tenant).

GET /healthz   200 while the process serves requests (liveness)
GET /readyz    200 once the job index is loaded and its watch is open, else 503 (readiness)
GET /metrics   Prometheus text format
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response, responses

from jobgate.api import metrics, service

router = APIRouter(tags=["system"])


@router.get("/healthz", response_class=responses.PlainTextResponse)
async def healthz() -> str:
    return "ok"


@router.get(
    "/readyz",
    response_class=responses.PlainTextResponse,
    responses={503: {"description": "Not loaded or not watching yet", "content": {"text/plain": {}}}},
)
async def readyz(request: Request) -> Response:
    jobs: service.Jobs = request.app.state.jobs
    if jobs.ready:
        return responses.PlainTextResponse("ok")
    return responses.PlainTextResponse(
        "the job index is not loaded, or its watch is not open", status_code=503
    )


@router.get("/metrics", response_class=responses.PlainTextResponse)
async def prometheus(request: Request) -> Response:
    registry: metrics.Metrics = request.app.state.metrics
    return Response(registry.render(), media_type=metrics.CONTENT_TYPE)
