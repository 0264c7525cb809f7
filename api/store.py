"""The API's one conversation with Kubernetes.

- Jobs are read from the index (`index.JobIndex`), which one thread here fills: a paged
  list of every Job, then one watch from there for the life of the process (re-listing
  when the watch expires). Nothing else lists or watches.
- Writes: create a Job, set its `spec.stop`, delete it; create a tenant's namespace.
- Logs: read, or follow, a pod's log.

Plain JSON over the client's connection pool (no model objects), blocking: the async
callers run these in threads (`asyncio.to_thread`). Transport failures and 5xx answers
become `errors.UnavailableError` (503), so a client can tell "try again" from "you asked wrong".
"""

from __future__ import annotations

import codecs
import contextlib
import json
import logging
import threading
import time
import urllib.parse
from collections.abc import Iterator
from typing import Any, Final, cast

import kubernetes.client
import kubernetes.config
import urllib3

from jobgate.api import errors, index, tenancy
from jobgate.crds import models as crd

log = logging.getLogger(__name__)

_JOBS: Final = f"/apis/{crd.GROUP}/{crd.VERSION}/{crd.PLURAL}"
_NAMESPACED_JOBS: Final = f"/apis/{crd.GROUP}/{crd.VERSION}/namespaces/{{namespace}}/{crd.PLURAL}"
_NAMESPACES: Final = "/api/v1/namespaces"
_SERVICE_ACCOUNT: Final = "/api/v1/namespaces/{namespace}/serviceaccounts/default"
_POD_LOG: Final = "/api/v1/namespaces/{namespace}/pods/{pod}/log"
JOB_CONTAINER: Final = "job"  # the job's container in its pod (operator/podspec.py)

_TIMEOUT: Final = 30.0  # seconds, a whole ordinary request
CONNECTIONS: Final = 32  # concurrent apiserver requests: the pool's size, and the threads calling
_PAGE: Final = 500  # Jobs per page of the initial list
_WATCH_SECONDS: Final = 290  # the apiserver ends each watch after this; it is then resumed
_WATCH_READ_TIMEOUT: Final = _WATCH_SECONDS + 30  # silence this long = a dead connection
_RETRY_FIRST, _RETRY_MAX = 0.2, 10.0  # seconds between attempts to (re)list after failures
_SERVICE_ACCOUNT_WAIT: Final = 30.0  # seconds a new namespace may take to get its service account


class KubeError(errors.ApiError):
    """The apiserver refused a request (4xx). Callers turn the refusals they expect into
    answers; any other reaches the client as a 502 with the apiserver's own explanation
    (e.g. RBAC: the API's service account may not create namespaces)."""

    status = 502

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(f"Kubernetes refused the request (HTTP {code}): {reason}")
        self.code = code
        self.reason = reason


class AlreadyExistsError(Exception):
    """A Job of that name exists in the namespace."""


class PodGoneError(Exception):
    """The pod does not exist (any more)."""


class LogNotReadyError(Exception):
    """The pod exists but its container has not started: no log yet."""


class _WatchExpiredError(Exception):
    """The resourceVersion is too old to watch from (410 Gone): list again."""


class Store:
    def __init__(
        self, client: kubernetes.client.ApiClient, *, jobs: index.JobIndex, namespace_prefix: str
    ) -> None:
        self._client = client
        self.jobs = jobs
        self._prefix = namespace_prefix
        self._ready_namespaces: set[str] = set()  # known to exist and to be the tenant's
        self._stopping = threading.Event()
        self._watching = threading.Event()  # a watch stream is open right now
        self._thread: threading.Thread | None = None
        self._stream: urllib3.BaseHTTPResponse | None = None
        self.restarts = 0  # lists after the first (the watch expired or failed)

    @classmethod
    def connect(cls, *, jobs: index.JobIndex, namespace_prefix: str) -> Store:
        """In-cluster credentials when running in a pod, else $KUBECONFIG (or ~/.kube/config)."""
        configuration = kubernetes.client.Configuration()
        # The config loaders are not annotated.
        try:
            kubernetes.config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
        except kubernetes.config.ConfigException:
            kubernetes.config.load_kube_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
        configuration.connection_pool_maxsize = CONNECTIONS
        return cls(kubernetes.client.ApiClient(configuration), jobs=jobs, namespace_prefix=namespace_prefix)

    # -- the watch --------------------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._follow, name="jobgate-api-watch", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        with contextlib.suppress(Exception):
            if self._stream is not None:
                self._stream.shutdown()  # unblocks the thread's read
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._client.close()  # type: ignore[no-untyped-call]  # not annotated

    @property
    def ready(self) -> bool:
        """The index is loaded and a watch keeps it current."""
        return self.jobs.synced and self._watching.is_set()

    def _follow(self) -> None:
        delay = _RETRY_FIRST
        while not self._stopping.is_set():
            try:
                version = self._list_all()
                delay = _RETRY_FIRST
                while not self._stopping.is_set():
                    version = self._watch_from(version)
            except _WatchExpiredError:
                log.info("the Jobs watch expired; listing again")
            except Exception as e:
                if self._stopping.is_set():
                    break
                log.warning("watching Jobs failed (%s); again in %.1fs", e, delay)
                self._stopping.wait(delay)
                delay = min(delay * 2, _RETRY_MAX)
            finally:
                self._watching.clear()
            self.restarts += 1

    def _list_all(self) -> int:
        """Load every Job into the index, a page at a time; the list's resourceVersion."""
        jobs: list[dict[str, Any]] = []
        query = {"limit": str(_PAGE)}
        while True:
            page = _json(self._request("GET", _JOBS, query=query))
            jobs.extend(page.get("items") or ())
            meta = page.get("metadata") or {}
            if not meta.get("continue"):
                break
            query["continue"] = meta["continue"]
        version = index.resource_version(page)
        self.jobs.replace(jobs, resource_version=version)
        return version

    def _watch_from(self, version: int) -> int:
        """Apply watch events until the apiserver ends the watch; the last resourceVersion seen."""
        query = {
            "watch": "true",
            "resourceVersion": str(version),
            "allowWatchBookmarks": "true",
            "timeoutSeconds": str(_WATCH_SECONDS),
        }
        response = self._request("GET", _JOBS, query=query, timeout=(_TIMEOUT, _WATCH_READ_TIMEOUT))
        self._stream = response
        self._watching.set()
        try:
            for line in _lines(response):
                event = json.loads(line)
                kind, job = event.get("type"), event.get("object") or {}
                if kind == "ERROR":
                    if job.get("code") == 410:
                        raise _WatchExpiredError
                    raise RuntimeError(f"watch error: {job.get('message')}")
                version = index.resource_version(job) or version
                if kind in ("ADDED", "MODIFIED"):
                    self.jobs.put(job)
                elif kind == "DELETED":
                    self.jobs.delete(job)
            return version
        finally:
            self._stream = None
            response.release_conn()

    # -- namespaces -------------------------------------------------------------------------

    def ensure_namespace(self, tenant: str) -> str:
        """The tenant's namespace, created (labelled as the tenant's) if it does not exist.

        `errors.ForbiddenError` if a namespace of that name exists but is not the tenant's.
        """
        manifest = tenancy.namespace_manifest(tenant, prefix=self._prefix)
        name: str = manifest["metadata"]["name"]
        if name in self._ready_namespaces:
            return name
        try:
            _json(self._request("POST", _NAMESPACES, body=manifest))
            self._await_service_account(name)
        except KubeError as e:
            if e.code != 409:
                raise
            owner = tenancy.owner_of(_json(self._request("GET", f"{_NAMESPACES}/{_quote(name)}")))
            if owner != tenant:
                raise errors.ForbiddenError(
                    f"namespace {name} exists and is not tenant {tenant!r}'s "
                    f"(its {crd.ANNOTATION_TENANT} annotation says {owner!r})"
                ) from e
        self._ready_namespaces.add(name)
        return name

    def _await_service_account(self, namespace: str) -> None:
        # The ServiceAccount admission plugin refuses pods until the controller-manager has
        # made the namespace's `default` service account: wait here (once per tenant), so
        # that the tenant's first job does not start with a refused pod.
        path = _SERVICE_ACCOUNT.format(namespace=_quote(namespace))
        deadline = time.monotonic() + _SERVICE_ACCOUNT_WAIT
        while time.monotonic() < deadline:
            with contextlib.suppress(KubeError):
                _json(self._request("GET", path))
                return
            time.sleep(0.05)
        log.warning("namespace %s has no default service account after %ss", namespace, _SERVICE_ACCOUNT_WAIT)

    # -- Jobs -------------------------------------------------------------------------------

    def create_job(self, manifest: dict[str, Any], *, tenant: str) -> dict[str, Any]:
        """Create the Job in the tenant's namespace, made first if need be.

        `AlreadyExistsError` if its name is taken. The index has the Job on return.
        """
        path = _NAMESPACED_JOBS.format(namespace=_quote(manifest["metadata"]["namespace"]))
        for first in (True, False):
            namespace = self.ensure_namespace(tenant)
            try:
                created = _json(self._request("POST", path, body=manifest))
                break
            except KubeError as e:
                if e.code == 409:
                    raise AlreadyExistsError from e
                if e.code == 404 and first:  # the namespace was deleted since: make it again
                    self._ready_namespaces.discard(namespace)
                    continue
                if e.code in (400, 404, 422):
                    raise errors.InvalidRequestError(f"Kubernetes refused the job: {e.reason}") from e
                raise
        self.jobs.put(created)
        return created

    def stop_job(self, entry: index.Entry) -> None:
        """Set `spec.stop`; the operator stops the pod. The index has the change on return."""
        merge = "application/merge-patch+json"
        patch = {"spec": {"stop": True}}
        self.jobs.put(_json(self._request("PATCH", _job_path(entry.key), body=patch, content_type=merge)))

    def delete_job(self, entry: index.Entry) -> None:
        """Delete exactly this Job (by uid); its pods go with it. Gone from the index on return."""
        body = {
            "apiVersion": "v1",
            "kind": "DeleteOptions",
            "propagationPolicy": "Background",
            "preconditions": {"uid": entry.job["metadata"]["uid"]},
        }
        try:
            _json(self._request("DELETE", _job_path(entry.key), body=body))
        except KubeError as e:
            if e.code not in (404, 409):  # gone already, or another Job of that name now
                raise
        self.jobs.forget(entry)

    # -- logs -------------------------------------------------------------------------------

    def read_log(self, namespace: str, pod: str, *, limit_bytes: int) -> str:
        """The job container's log so far (at most `limit_bytes`, from the start)."""
        query = {"container": JOB_CONTAINER, "limitBytes": str(limit_bytes)}
        with self._log_response(namespace, pod, query) as response:
            return response.read().decode(errors="replace")

    def follow_log(self, namespace: str, pod: str) -> LogStream:
        """The job container's log from the start, following it until the container ends."""
        query = {"container": JOB_CONTAINER, "follow": "true"}
        request = self._log_request(namespace, pod, query, timeout=(_TIMEOUT, None))
        return LogStream(request)

    @contextlib.contextmanager
    def _log_response(
        self, namespace: str, pod: str, query: dict[str, str]
    ) -> Iterator[urllib3.BaseHTTPResponse]:
        response = self._log_request(namespace, pod, query, timeout=(_TIMEOUT, _TIMEOUT))
        try:
            yield response
        finally:
            response.release_conn()

    def _log_request(
        self, namespace: str, pod: str, query: dict[str, str], *, timeout: tuple[float, float | None]
    ) -> urllib3.BaseHTTPResponse:
        path = _POD_LOG.format(namespace=_quote(namespace), pod=_quote(pod))
        try:
            return self._request("GET", path, query=query, timeout=timeout, accept="*/*")
        except KubeError as e:
            if e.code == 404:
                raise PodGoneError from e
            if e.code == 400:  # "container ... is waiting to start", "pod ... is pending"
                raise LogNotReadyError from e
            raise

    # -- plumbing ---------------------------------------------------------------------------

    def _request(
        self,
        method: str,
        path: str,
        *,
        query: dict[str, str] | None = None,
        body: Any = None,
        content_type: str = "application/json",
        accept: str = "application/json",
        timeout: float | tuple[float, float | None] = _TIMEOUT,
    ) -> urllib3.BaseHTTPResponse:
        """The response, its body not read yet; `KubeError` for a 4xx, `errors.UnavailableError` otherwise."""
        url = path + ("?" + urllib.parse.urlencode(query) if query else "")
        request = self._client.param_serialize(
            method=method,
            resource_path=url,
            header_params={"Accept": accept, "Content-Type": content_type},
            body=body,
            auth_settings=["BearerToken"],
        )
        try:
            wrapped = self._client.call_api(*request, _request_timeout=timeout)
        except (urllib3.exceptions.HTTPError, OSError) as e:
            raise errors.UnavailableError(f"cannot reach Kubernetes: {e}") from e
        response = cast(urllib3.BaseHTTPResponse, wrapped.response)
        if 200 <= response.status <= 299:
            return response
        message = _status_message(response.data.decode(errors="replace"))
        response.release_conn()
        if response.status >= 500 or response.status == 429:
            raise errors.UnavailableError(f"Kubernetes answered {response.status}: {message}")
        raise KubeError(response.status, message)


class LogStream:
    """A pod log being followed: iterate for text as it comes; `close` from any thread ends it."""

    def __init__(self, response: urllib3.BaseHTTPResponse) -> None:
        self._response = response

    def __iter__(self) -> Iterator[str]:
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        try:
            for chunk in self._response.stream(4096, decode_content=True):
                if text := decoder.decode(chunk):
                    yield text
        except (urllib3.exceptions.HTTPError, OSError, ValueError):
            return  # closed under us (by `close`), or the apiserver went away: the end either way

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._response.shutdown()
        with contextlib.suppress(Exception):
            self._response.release_conn()


def _json(response: urllib3.BaseHTTPResponse) -> dict[str, Any]:
    """The response's body, read as JSON; the connection goes back to the pool."""
    try:
        result: dict[str, Any] = json.loads(response.data)
    finally:
        response.release_conn()
    return result


def _lines(response: urllib3.BaseHTTPResponse) -> Iterator[bytes]:
    """The response body's lines (a watch sends one JSON event per line), as they arrive."""
    pending = b""
    for chunk in response.stream(65536, decode_content=True):
        pending += chunk
        *complete, pending = pending.split(b"\n")
        yield from (line for line in complete if line.strip())
    if pending.strip():
        yield pending


def _job_path(key: index.Key) -> str:
    return _NAMESPACED_JOBS.format(namespace=_quote(key.namespace)) + "/" + _quote(key.name)


def _quote(text: str) -> str:
    return urllib.parse.quote(text, safe="")


def _status_message(body: str) -> str:
    """The message of a Status body (the body itself if it is not one)."""
    with contextlib.suppress(ValueError, TypeError, KeyError):
        return str(json.loads(body)["message"])
    return body
