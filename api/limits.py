"""Request body limits, answered like every other error (a JSON string, or text under /ray).

A body announced larger than the limit (Content-Length) is refused before it is read; a
chunked one once it grows past it. Ray's package uploads have their own, larger limit.
"""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from jobgate.api import errors, models

UPLOADS = models.RAY_PREFIX + "/api/packages/"


class BodyLimit:
    def __init__(self, app: ASGIApp, *, default: int, uploads: int) -> None:
        self._app = app
        self._default = default
        self._uploads = uploads

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        upload = scope["method"] == "PUT" and scope["path"].startswith(UPLOADS)
        limit = self._uploads if upload else self._default
        message = f"request body too large: at most {limit} bytes"
        length = HTTPConnection(scope).headers.get("content-length", "")
        if length.isdigit() and int(length) > limit:
            response = errors.response(HTTPConnection(scope), errors.TooLargeError(message))
            await response(scope, receive, send)
            return
        received = 0

        async def limited() -> Message:
            nonlocal received
            event = await receive()
            received += len(event.get("body", b""))
            if received > limit:
                # An HTTPException, so that FastAPI passes it on while reading the body; the
                # app's handler answers it as a 413 with this message.
                raise HTTPException(status_code=413, detail=message)
            return event

        await self._app(scope, limited, send)
