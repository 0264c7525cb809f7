"""Cross-site requests refused, and security headers on every answer.

Any page a user's browser shows can send requests to an API it reaches (127.0.0.1, the
cluster network): without tokens, a page could submit jobs that run on the user's
cluster. Browsers say where a request comes from: `Sec-Fetch-Site` (every current browser)
and `Origin` (on every POST, PUT, DELETE and websocket). A request that changes something
(any method but GET, HEAD and OPTIONS) and every websocket (the log tail) is refused with a
403, before anything is read, when it comes from another site: `Sec-Fetch-Site:
cross-site` or `same-site`, or an `Origin` whose host is not the one the request was sent
to, unless that origin is in JOBGATE_ALLOWED_ORIGINS. Clients that are not browsers (curl,
Ray's client and CLI, kubectl) send neither header and are not affected.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Iterable
from typing import Final

from starlette.datastructures import Headers, MutableHeaders
from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from jobgate.api import errors

SAFE_METHODS: Final = frozenset({"GET", "HEAD", "OPTIONS"})
DOCS_PREFIX: Final = "/docs"
# JSON and text need no scripts, styles or frames; the docs page runs Swagger UI (served
# from here, see routers/docs.py) and its inline start-up script.
_API_POLICY: Final = "default-src 'none'; frame-ancestors 'none'"
_DOCS_POLICY: Final = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; frame-ancestors 'none'"
)
_HEADERS: Final = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "cross-origin-resource-policy": "same-origin",
}
_WEBSOCKET_POLICY_VIOLATION: Final = 1008


class CrossSiteGuard:
    def __init__(self, app: ASGIApp, *, allowed_origins: Iterable[str]) -> None:
        self._app = app
        self._allowed = frozenset(origin.rstrip("/") for origin in allowed_origins)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self._app(scope, receive, send)
            return
        connection = HTTPConnection(scope)
        changes = scope["type"] == "websocket" or scope["method"] not in SAFE_METHODS
        why = self.refusal(connection.headers, host=connection.headers.get("host", "")) if changes else None
        if why is not None and scope["type"] == "websocket":
            await receive()  # websocket.connect; closing before accepting answers it with a 403
            await send({"type": "websocket.close", "code": _WEBSOCKET_POLICY_VIOLATION, "reason": why})
            return
        if why is not None:
            await errors.response(connection, errors.CrossSiteError(why))(scope, receive, send)
            return
        policy = _DOCS_POLICY if scope["path"].startswith(DOCS_PREFIX) else _API_POLICY

        async def secured(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in _HEADERS.items():
                    headers.setdefault(name, value)
                headers.setdefault("content-security-policy", policy)
            await send(message)

        await self._app(scope, receive, secured)

    def refusal(self, headers: Headers, *, host: str) -> str | None:
        """Why a request that changes something is refused (None: it is not)."""
        origin = headers.get("origin")
        if origin is not None and origin.rstrip("/") in self._allowed:
            return None
        site = headers.get("sec-fetch-site")
        if site in ("cross-site", "same-site"):
            return f"cross-site requests are refused (Sec-Fetch-Site: {site}); see JOBGATE_ALLOWED_ORIGINS"
        if origin is not None and _host_of(origin) != host.lower():
            return (
                f"requests from another origin are refused (Origin: {origin[:200]}); "
                "see JOBGATE_ALLOWED_ORIGINS"
            )
        return None


def _host_of(origin: str) -> str:
    """`https://a.example:8443` -> `a.example:8443`; `null` (a sandboxed page) -> ""."""
    return urllib.parse.urlsplit(origin).netloc.lower()
