"""A minimal JSON client for the local apiserver, enough to bootstrap and health-check it.

The cluster module uses this instead of the `kubernetes` client so that starting the
cluster needs nothing but the standard library (and so it stays typed). Only loopback
addresses are ever contacted.
"""

from __future__ import annotations

import contextlib
import json
import ssl
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any


class ApiError(Exception):
    """A non-2xx answer from the apiserver (status code and Status message)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"HTTP {status}: {message}")
        self.status = status
        self.message = message


def _opener(context: ssl.SSLContext | None) -> urllib.request.OpenerDirector:
    # No ProxyHandler from the environment: a proxy must never see loopback traffic.
    return urllib.request.build_opener(
        urllib.request.ProxyHandler({}), urllib.request.HTTPSHandler(context=context)
    )


def _check_loopback(url: str) -> None:
    host = urllib.parse.urlsplit(url).hostname
    if host not in ("127.0.0.1", "localhost"):
        raise ValueError(f"refusing to contact non-loopback address {url!r}")


class KubeApi:
    def __init__(self, *, server: str, token: str, ca_file: Path) -> None:
        _check_loopback(server)
        self.server = server.rstrip("/")
        self._token = token
        self._opener = _opener(ssl.create_default_context(cafile=str(ca_file)))

    def request(
        self, method: str, path: str, body: Any = None, *, timeout: float = 10.0, raw: bool = False
    ) -> Any:
        """Send one request; JSON-decode the answer unless `raw` (then return text)."""
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.server + path, data=data, method=method)
        req.add_header("Authorization", f"Bearer {self._token}")
        req.add_header("Accept", "application/json")
        if data is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with self._opener.open(req, timeout=timeout) as resp:
                text = resp.read().decode()
        except urllib.error.HTTPError as err:
            detail = err.read().decode(errors="replace")
            with contextlib.suppress(ValueError, AttributeError):
                detail = json.loads(detail).get("message", detail)
            raise ApiError(err.code, detail) from None
        return text if raw else json.loads(text)

    def get(self, path: str, **kwargs: Any) -> Any:
        return self.request("GET", path, **kwargs)

    def create(self, path: str, body: Any) -> Any:
        return self.request("POST", path, body)


def probe(url: str, *, ca_file: Path | None = None, token: str | None = None, timeout: float = 2.0) -> bool:
    """True if GET `url` answers 200 (used for /readyz, /healthz, etcd's /health)."""
    _check_loopback(url)
    req = urllib.request.Request(url)
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    context = ssl.create_default_context(cafile=str(ca_file)) if ca_file else None
    try:
        with _opener(context).open(req, timeout=timeout) as resp:
            return bool(resp.status == 200)
    except (OSError, urllib.error.URLError):
        return False
