"""Log lines written while a request about a job is handled name the job.

A pure ASGI middleware (outermost, so that uvicorn's access line, written when the response
starts, is inside it) opens a log scope (`jobgate.core.logs.job_scope`) per request,
with the submission id when the path names one (`/api/jobs/<id>...`, under `/ray` too);
submit adds the id once it has chosen it (`logs.bind`). With `JOBGATE_LOG_FORMAT=json`
each line then carries `"submission_id"`.
"""

from __future__ import annotations

import re
import urllib.parse
from typing import Final

from starlette.types import ASGIApp, Receive, Scope, Send

from jobgate.api import models
from jobgate.core import logs

_JOB_PATH: Final = re.compile(rf"^(?:{re.escape(models.RAY_PREFIX)})?/api/jobs/([^/]+)")


class JobLogScope:
    def __init__(self, app: ASGIApp) -> None:
        self._app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self._app(scope, receive, send)
            return
        named = _JOB_PATH.match(scope["path"])
        fields = {"submission_id": urllib.parse.unquote(named[1])} if named else {}
        with logs.job_scope(**fields):
            await self._app(scope, receive, send)
