"""Jobs' pods on the apiserver: create (or adopt), read, delete, and read or follow a log."""

from __future__ import annotations

import codecs
import contextlib
from collections.abc import Iterator, Mapping
from typing import Any, Final

import urllib3

from jobgate.core import client as clients
from jobgate.core import events
from jobgate.crds import models

_ALL_PODS: Final = "/api/v1/pods"
_PODS: Final = "/api/v1/namespaces/{namespace}/pods"
_POD: Final = _PODS + "/{name}"
_LOG: Final = _POD + "/log"
_NODE: Final = "/api/v1/nodes/{name}"

Pod = Mapping[str, Any]


class RefusedPodError(Exception):
    """The apiserver refused to create the pod (e.g. 403 from a ResourceQuota, 422 invalid)."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(f"HTTP {code}: {message}")
        self.code = code
        self.message = message


class NameTakenError(Exception):
    """The pod's name belongs to a pod that is not this job's (e.g. a deleted namesake's)."""


class PodGoneError(Exception):
    """The pod does not exist (any more)."""


class LogNotReadyError(Exception):
    """The pod exists but its container has not started: no log yet."""


def owner(pod: Pod) -> tuple[str, str] | None:
    """(name, uid) of the Job that controls the pod, if a Job does."""
    for ref in pod["metadata"].get("ownerReferences", ()):
        if (
            ref.get("controller")
            and ref.get("kind") == models.KIND
            and ref.get("apiVersion") == models.API_VERSION
        ):
            return str(ref["name"]), str(ref["uid"])
    return None


def owned_by(pod: Pod, job_uid: str) -> bool:
    return (owner(pod) or ("", ""))[1] == job_uid


class Pods:
    def __init__(self, client: clients.Client) -> None:
        self._client = client

    def create(self, manifest: Mapping[str, Any], *, owner_uid: str) -> tuple[dict[str, Any], bool]:
        """Create the pod, or adopt it when this job's pod of that name exists already: the
        pod, and whether it was created (False: adopted).

        `RefusedPodError` when the apiserver refuses it; `NameTakenError` when the name is
        another pod's (a namesake job's that is still being deleted).
        """
        meta = manifest["metadata"]
        try:
            path = clients.path(_PODS, namespace=meta["namespace"])
            return self._client.call("POST", path, body=manifest), True
        except clients.RefusedError as e:
            if e.code != 409:
                raise RefusedPodError(e.code, e.message) from e
        existing = self.read(meta["namespace"], meta["name"], owner_uid=owner_uid)
        if existing is None:
            raise NameTakenError(f"pod {meta['namespace']}/{meta['name']} exists and is not this job's")
        return existing, False

    def read(self, namespace: str, name: str, *, owner_uid: str) -> dict[str, Any] | None:
        """The job's pod of that name; None if there is none (or only another's namesake)."""
        pod = self._client.get_or_none(clients.path(_POD, namespace=namespace, name=name))
        return pod if pod is not None and owned_by(pod, owner_uid) else None

    def ended(self, *, namespace: str | None = None) -> Iterator[Pod]:
        """The metadata of jobgate's pods that ended (Succeeded, Failed), in one namespace or all."""
        path = clients.path(_PODS, namespace=namespace) if namespace else _ALL_PODS
        for phase in ("Succeeded", "Failed"):
            query = {"labelSelector": models.LABEL_JOB_NAME, "fieldSelector": f"status.phase={phase}"}
            for page in self._client.pages(path, query=query, metadata_only=True):
                yield from page.get("items") or ()

    def node_exists(self, name: str) -> bool:
        """Whether the node is there: a pod that vanished from a deleted one was collected."""
        return self._client.get_or_none(clients.path(_NODE, name=name)) is not None

    def delete(self, namespace: str, name: str, *, uid: str | None, resource_version: str | None) -> None:
        """Delete gracefully (the pod's own grace period), if it still is the pod described.

        Gone already is fine; so is a pod that changed since (it is looked at again then).
        """
        preconditions = {"uid": uid, "resourceVersion": resource_version}
        self._client.delete(
            clients.path(_POD, namespace=namespace, name=name),
            preconditions={key: value for key, value in preconditions.items() if value},
        )

    def event_messages(self, namespace: str, *, pod_uid: str, reason: str) -> list[str]:
        """The messages of the pod's events of that reason (the kubelet's FailedMount, say),
        oldest first: what the pod's status does not say."""
        query = {"fieldSelector": f"involvedObject.uid={pod_uid},reason={reason}"}
        found = [
            event
            for page in self._client.pages(clients.path(events.EVENTS, namespace=namespace), query=query)
            for event in page.get("items", ())
        ]
        found.sort(key=lambda event: event.get("lastTimestamp") or event.get("eventTime") or "")
        return [str(event.get("message", "")) for event in found]

    # -- logs -------------------------------------------------------------------------------

    def read_log(self, namespace: str, name: str, *, container: str, limit_bytes: int) -> str:
        """The container's log so far (at most `limit_bytes`, from the start)."""
        query = {"container": container, "limitBytes": str(limit_bytes)}
        response = self._log(namespace, name, query, timeout=clients.TIMEOUT)
        try:
            return response.data.decode(errors="replace")
        finally:
            response.release_conn()

    def follow_log(self, namespace: str, name: str, *, container: str) -> LogStream:
        """The container's log from the start, following it until the container ends."""
        return self.open_log(namespace, name, container=container, follow=True)

    def open_log(
        self,
        namespace: str,
        name: str,
        *,
        container: str,
        follow: bool,
        limit_bytes: int | None = None,
        idle_timeout: float | None = None,
    ) -> LogStream:
        """The container's log from the start, as a stream: to its end so far, or (`follow`)
        until the container ends; at most `limit_bytes` when given. Followed, a quiet
        container may send nothing for long: the stream waits for it, or raises urllib3's
        `ReadTimeoutError` once it said nothing for `idle_timeout` seconds."""
        query = {"container": container}
        if follow:
            query["follow"] = "true"
        if limit_bytes is not None:
            query["limitBytes"] = str(limit_bytes)
        timeout = (clients.TIMEOUT, idle_timeout if follow else clients.TIMEOUT)
        return LogStream(self._log(namespace, name, query, timeout=timeout))

    def _log(
        self, namespace: str, name: str, query: dict[str, str], *, timeout: clients.Timeout
    ) -> urllib3.BaseHTTPResponse:
        path = clients.path(_LOG, namespace=namespace, name=name)
        try:
            return self._client.request("GET", path, query=query, timeout=timeout, accept="*/*")
        except clients.RefusedError as e:
            if e.code == 404:
                raise PodGoneError(name) from e
            if e.code == 400:  # "container ... is waiting to start", "pod ... is pending"
                raise LogNotReadyError(name) from e
            raise


class LogStream:
    """A pod log being followed: iterate for text as it comes; `close` from any thread ends it."""

    def __init__(self, response: urllib3.BaseHTTPResponse) -> None:
        self._response = response

    def __iter__(self) -> Iterator[str]:
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        try:
            for chunk in self.chunks(4096):
                if text := decoder.decode(chunk):
                    yield text
        except (urllib3.exceptions.HTTPError, OSError, ValueError):
            return  # closed under us (by `close`), or the apiserver went away: the end either way

    def chunks(self, size: int) -> Iterator[bytes]:
        """The log's bytes as they come, in chunks of at most `size`; a broken connection
        raises (urllib3's `HTTPError`, `OSError`), so that a copy never passes for whole."""
        yield from self._response.stream(size, decode_content=True)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._response.shutdown()
        with contextlib.suppress(Exception):
            self._response.release_conn()
