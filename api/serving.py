"""How uvicorn serves the app: a request's head (request line and headers) is bounded.

uvicorn's httptools protocol keeps any head it is sent: one 400 MiB header took the API
from 163 MB to 972 MB. Here a head longer than `MAX_HEAD_BYTES`, or with more than
`MAX_HEADERS` fields, is answered 431 and the connection closed, before the app sees it.
The head is counted as it arrives, so at most one read (uvicorn reads 64 KiB at a time)
more than the bound is ever held. Connections (and requests under way) are bounded per
process by uvicorn's own `limit_concurrency` (503 past it), see `__main__`.
"""

from __future__ import annotations

import json
from typing import Any, Final

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from jobgate.api import models

MAX_HEAD_BYTES: Final = 64 << 10  # what a request's line and headers may take
MAX_HEADERS: Final = 100
_STATUS: Final = b"HTTP/1.1 431 Request Header Fields Too Large\r\n"


class _TooManyHeadersError(Exception):
    """Raised in the parser's callback: the parser stops, and the request is refused."""


class BoundedHead(HttpToolsProtocol):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._in_head, self._head_bytes, self._refused = True, 0, False

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return
        super().data_received(data)
        if self._in_head and not self._refused:
            self._head_bytes += len(data)
            if self._head_bytes > MAX_HEAD_BYTES:
                self._refuse()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_head, self._head_bytes = True, 0

    def on_header(self, name: bytes, value: bytes) -> None:
        if len(self.headers) >= MAX_HEADERS:
            self._refused = True
            raise _TooManyHeadersError
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._in_head = False
        super().on_headers_complete()

    def send_400_response(self, msg: str) -> None:
        # uvicorn answers a parser's error with this; the parser stopped for too many headers.
        if self._refused:
            self._refused = False
            self._refuse()
        else:
            super().send_400_response(msg)

    def _refuse(self) -> None:
        self._refused = True
        message = f"request headers too large: at most {MAX_HEAD_BYTES} bytes and {MAX_HEADERS} fields"
        # Errors are a JSON string in the seed's dialect and text in Ray's (see errors).
        ray = getattr(self, "url", b"").startswith(models.RAY_PREFIX.encode())  # set once a request begins
        body = (message if ray else json.dumps(message)).encode()
        kind = b"text/plain; charset=utf-8" if ray else b"application/json"
        self.transport.write(
            _STATUS
            + b"content-type: "
            + kind
            + b"\r\n"
            + b"content-length: "
            + str(len(body)).encode()
            + b"\r\n"
            + b"connection: close\r\n\r\n"
            + body
        )
        self.transport.close()
