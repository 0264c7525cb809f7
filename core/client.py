"""The one connection to the apiserver that both processes use: requests as plain JSON.

Plain JSON dicts over the `kubernetes` client's connection pool and authentication (no
model objects: kopf's bodies have the same shape, and parsing is cheaper). Blocking: the
operator calls it from its worker threads, the API from threads (`asyncio.to_thread`).

Two errors tell a caller what to do: `RefusedError` (a 4xx: the apiserver said no, with its
own message and code) and `UnreachableError` (no connection, a 5xx or 429: try again).
"""

from __future__ import annotations

import contextlib
import json
import urllib.parse
from collections.abc import Iterator, Mapping
from typing import Any, Final, cast

import kubernetes.client
import kubernetes.config
import urllib3

TIMEOUT: Final = 30.0  # seconds, a whole ordinary request
PAGE: Final = 500  # objects per page of a list
WATCH_SECONDS: Final = 290  # the apiserver ends each watch after this; the caller resumes it
_WATCH_READ_TIMEOUT: Final = WATCH_SECONDS + 30  # silence this long = a dead connection

Timeout = float | tuple[float, float | None]
# A list whose items carry only their metadata (the apiserver's PartialObjectMetadataList).
_METADATA_LIST: Final = "application/json;as=PartialObjectMetadataList;v=v1;g=meta.k8s.io,application/json"


class RefusedError(Exception):
    """The apiserver refused the request (4xx), saying why."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(f"Kubernetes refused the request (HTTP {code}): {message}")
        self.code = code
        self.message = message


class UnreachableError(Exception):
    """The apiserver could not be reached, or failed (5xx, 429): the same request may work later."""


class Client:
    def __init__(self, api: kubernetes.client.ApiClient) -> None:
        self._api = api

    @classmethod
    def connect(cls, *, connections: int) -> Client:
        """In-cluster credentials when running in a pod, else $KUBECONFIG (or ~/.kube/config).

        `connections`: the pool's size, i.e. how many requests may be under way at once.
        """
        configuration = kubernetes.client.Configuration()
        # The config loaders are not annotated.
        try:
            kubernetes.config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
        except kubernetes.config.ConfigException:
            kubernetes.config.load_kube_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
        configuration.connection_pool_maxsize = connections
        return cls(kubernetes.client.ApiClient(configuration))

    def close(self) -> None:
        self._api.close()  # type: ignore[no-untyped-call]  # not annotated

    # -- JSON requests ----------------------------------------------------------------------

    def call(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, str] | None = None,
        body: Any = None,
        content_type: str = "application/json",
        accept: str = "application/json",
    ) -> dict[str, Any]:
        """The answer's JSON body; `RefusedError` / `UnreachableError` otherwise."""
        response = self.request(
            method, path, query=query, body=body, content_type=content_type, accept=accept
        )
        try:
            result: dict[str, Any] = json.loads(response.data)
        finally:
            response.release_conn()
        return result

    def get_or_none(self, path: str) -> dict[str, Any] | None:
        """The object at `path`, or None if there is none (404)."""
        try:
            return self.call("GET", path)
        except RefusedError as e:
            if e.code == 404:
                return None
            raise

    def delete(self, path: str, *, preconditions: Mapping[str, str]) -> bool:
        """Delete the object if it still meets `preconditions` (uid, resourceVersion).

        Background propagation: its dependents (owner references) go with it. False if it
        was gone already (404) or is no longer the object described (409).
        """
        body = {
            "apiVersion": "v1",
            "kind": "DeleteOptions",
            "propagationPolicy": "Background",
            "preconditions": dict(preconditions),
        }
        try:
            self.call("DELETE", path, body=body)
        except RefusedError as e:
            if e.code in (404, 409):
                return False
            raise
        return True

    def pages(
        self, path: str, *, query: Mapping[str, str] | None = None, metadata_only: bool = False
    ) -> Iterator[dict[str, Any]]:
        """A list, one page (a List object) at a time, following `continue` to the end;
        `metadata_only`: the items' metadata alone (a tenth of the bytes, or less)."""
        params = {**(query or {}), "limit": str(PAGE)}
        accept = _METADATA_LIST if metadata_only else "application/json"
        while True:
            page = self.call("GET", path, query=params, accept=accept)
            yield page
            token = (page.get("metadata") or {}).get("continue")
            if not token:
                return
            params["continue"] = token

    def watch(self, path: str, *, resource_version: str) -> Watch:
        """Watch events from `resource_version` (opaque: passed back as it came) until the
        apiserver ends the watch; bookmarks included, as events of type BOOKMARK. The
        request is made here: on return the watch is open."""
        query = {
            "watch": "true",
            "resourceVersion": resource_version,
            "allowWatchBookmarks": "true",
            "timeoutSeconds": str(WATCH_SECONDS),
        }
        return Watch(self.request("GET", path, query=query, timeout=(TIMEOUT, _WATCH_READ_TIMEOUT)))

    # -- the raw request ----------------------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, str] | None = None,
        body: Any = None,
        content_type: str = "application/json",
        accept: str = "application/json",
        timeout: Timeout = TIMEOUT,
    ) -> urllib3.BaseHTTPResponse:
        """The response with its body not read yet (the caller releases it); errors raised."""
        url = path + ("?" + urllib.parse.urlencode(query) if query else "")
        request = self._api.param_serialize(
            method=method,
            resource_path=url,
            header_params={"Accept": accept, "Content-Type": content_type},
            body=body,
            auth_settings=["BearerToken"],
        )
        try:
            wrapped = self._api.call_api(*request, _request_timeout=timeout)
        except (urllib3.exceptions.HTTPError, OSError) as e:
            raise UnreachableError(f"cannot reach Kubernetes: {e}") from e
        response = cast(urllib3.BaseHTTPResponse, wrapped.response)
        if 200 <= response.status <= 299:
            return response
        message = status_message(response.data.decode(errors="replace"))
        response.release_conn()
        if response.status >= 500 or response.status == 429:
            raise UnreachableError(f"Kubernetes answered {response.status}: {message}")
        raise RefusedError(response.status, message)


class Watch:
    """An open watch: iterate for its events; `close` ends it (and frees its connection)."""

    def __init__(self, response: urllib3.BaseHTTPResponse) -> None:
        self._response = response

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for line in _lines(self._response):
            yield json.loads(line)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._response.shutdown()  # a watch left early must not keep its connection busy
        self._response.release_conn()


def path(template: str, **parts: str) -> str:
    """`template` with each part URL-quoted, e.g. path("/api/v1/namespaces/{ns}", ns=name)."""
    return template.format(**{key: urllib.parse.quote(value, safe="") for key, value in parts.items()})


def status_message(body: str) -> str:
    """The message of a Status body (the body itself if it is not one)."""
    with contextlib.suppress(ValueError, TypeError, KeyError):
        return str(json.loads(body)["message"])
    return body


def _lines(response: urllib3.BaseHTTPResponse) -> Iterator[bytes]:
    """The response body's lines (a watch sends one JSON event per line), as they arrive."""
    pending = b""
    for chunk in response.stream(65536, decode_content=True):
        pending += chunk
        *complete, pending = pending.split(b"\n")
        yield from (line for line in complete if line.strip())
    if pending.strip():
        yield pending
