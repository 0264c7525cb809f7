"""The operator's one conversation with the apiserver, besides kopf's watching and events.

A few calls, all on plain JSON dicts (the same shape as kopf's bodies, and cheaper than
the client's model objects): list the finished Jobs, read, patch the status of, and
delete a Job, post an event on it; create, read and delete a pod; read and write the
leader-election Lease. Blocking: the callers are the operator's worker threads (and the
leadership thread, on a client of its own).
"""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import Iterator, Sequence
from typing import Any, Final, cast

import kubernetes.client
import kubernetes.config

from jobgate.crds import models
from jobgate.operator import jobs, metrics, pods

_JOB_LIST: Final = f"/apis/{models.GROUP}/{models.VERSION}/{models.PLURAL}"
_NAMESPACED_JOB_LIST: Final = (
    f"/apis/{models.GROUP}/{models.VERSION}/namespaces/{{namespace}}/{models.PLURAL}"
)
_JOBS: Final = _NAMESPACED_JOB_LIST + "/{name}"
_PODS: Final = "/api/v1/namespaces/{namespace}/pods"
_EVENTS: Final = "/api/v1/namespaces/{namespace}/events"
_LEASES: Final = "/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases"
COMPONENT: Final = "jobgate-operator"  # the events' source, as `kubectl describe` shows it
_TIMEOUT: Final = 30.0  # seconds, a whole request
_PAGE: Final = 200  # objects per page of a list


class StaleJobError(Exception):
    """The Job changed since it was read: read it again and decide again."""


class PodRefusedError(Exception):
    """The apiserver refused to create a pod (e.g. 403 from a ResourceQuota, 422 invalid)."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(f"HTTP {code}: {message}")
        self.code = code
        self.message = message


class PodNameTakenError(Exception):
    """The pod's name belongs to a pod that is not this job's (e.g. a deleted namesake's)."""


class Kube:
    def __init__(self, client: kubernetes.client.ApiClient, *, instance: str) -> None:
        self._client = client
        self._instance = instance  # which operator process posts the events

    @classmethod
    def connect(cls, *, connections: int, instance: str) -> Kube:
        """In-cluster credentials when running in a pod, else $KUBECONFIG (or ~/.kube/config)."""
        configuration = kubernetes.client.Configuration()
        # The config loaders are not annotated.
        try:
            kubernetes.config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
        except kubernetes.config.ConfigException:
            kubernetes.config.load_kube_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
        configuration.connection_pool_maxsize = connections  # one per worker thread
        return cls(kubernetes.client.ApiClient(configuration), instance=instance)

    # -- Jobs ----------------------------------------------------------------------------

    def read_job(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self._call_or_none("GET", _path(_JOBS, namespace=namespace, name=name))

    def list_finished_jobs(self, *, namespaces: Sequence[str] = ()) -> Iterator[dict[str, Any]]:
        """The finished Jobs in these namespaces (or all), read a page at a time."""
        for namespace in namespaces or (None,):
            path = (
                _JOB_LIST if namespace is None else _NAMESPACED_JOB_LIST.format(namespace=_quote(namespace))
            )
            for state in sorted(models.TERMINAL_STATES):
                query = {"fieldSelector": f"status.state={state}", "limit": str(_PAGE)}
                while True:
                    page = self._call("GET", path + "?" + urllib.parse.urlencode(query))
                    yield from page.get("items", ())
                    if not page.get("metadata", {}).get("continue"):
                        break
                    query["continue"] = page["metadata"]["continue"]

    def patch_job_status(self, job: jobs.JobView, status: dict[str, Any]) -> dict[str, Any]:
        """Merge-patch the status; `StaleJobError` if the Job changed since `job` was read.

        The resourceVersion in the patch makes the apiserver check it: a decision taken on a
        stale Job is never written.
        """
        body = {"metadata": {"resourceVersion": job.resource_version}, "status": status}
        path = _path(_JOBS, namespace=job.ref.namespace, name=job.ref.name) + "/status"
        try:
            return self._call("PATCH", path, body=body, content_type="application/merge-patch+json")
        except kubernetes.client.ApiException as e:
            if e.status in (404, 409):
                raise StaleJobError(str(job.ref)) from e
            raise

    def delete_job(self, ref: jobs.JobRef) -> None:
        self._delete(_path(_JOBS, namespace=ref.namespace, name=ref.name), {"uid": ref.uid})

    def post_event(self, job: jobs.JobView, *, type: str, reason: str, message: str, now: str) -> None:
        """A core/v1 Event on the Job, for `kubectl describe` (the time is RFC 3339)."""
        meta = job.body["metadata"]
        event = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"generateName": f"{meta['name']}.", "namespace": meta["namespace"]},
            "involvedObject": {
                "apiVersion": models.API_VERSION,
                "kind": models.KIND,
                "name": meta["name"],
                "namespace": meta["namespace"],
                "uid": meta["uid"],
            },
            "type": type,
            "reason": reason,
            "message": message[:1024],
            "source": {"component": COMPONENT},
            "reportingComponent": COMPONENT,
            "reportingInstance": self._instance,
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
        }
        self._call("POST", _path(_EVENTS, namespace=meta["namespace"]), body=event)

    # -- pods ----------------------------------------------------------------------------

    def create_pod(self, manifest: dict[str, Any], *, owner_uid: str) -> dict[str, Any]:
        """Create the pod, or adopt it when this job's pod of that name exists already.

        Raises `PodRefusedError` when the apiserver refuses it, `PodNameTakenError` when the
        name is another pod's.
        """
        meta = manifest["metadata"]
        try:
            created = self._call("POST", _path(_PODS, namespace=meta["namespace"]), body=manifest)
        except kubernetes.client.ApiException as e:
            if e.status != 409:
                if e.status in (400, 403, 422):
                    raise PodRefusedError(e.status, _message(e)) from e
                raise
        else:
            metrics.PODS_CREATED.inc()
            return created
        existing = self.read_pod(meta["namespace"], meta["name"], owner_uid=owner_uid)
        if existing is None:
            raise PodNameTakenError(f"pod {meta['namespace']}/{meta['name']} exists and is not this job's")
        return existing

    def read_pod(self, namespace: str, name: str, *, owner_uid: str) -> dict[str, Any] | None:
        """The job's pod of that name; None if there is none (or only another's namesake)."""
        pod = self._call_or_none("GET", _path(_PODS, namespace=namespace) + f"/{_quote(name)}")
        if pod is None or (pods.owner(pod) or ("", ""))[1] != owner_uid:
            return None
        return pod

    def delete_pod(self, namespace: str, name: str, *, uid: str | None, resource_version: str | None) -> None:
        """Delete gracefully (the pod's own grace period), if it still is the pod described.

        Gone already is fine; so is a pod that changed since (it is looked at again then).
        """
        preconditions = {"uid": uid, "resourceVersion": resource_version}
        self._delete(
            _path(_PODS, namespace=namespace) + f"/{_quote(name)}",
            {key: value for key, value in preconditions.items() if value},
        )

    # -- the leader-election Lease (see leadership) -------------------------------------------

    def read_lease(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self._call_or_none("GET", _path(_LEASES, namespace=namespace) + f"/{_quote(name)}")

    def write_lease(self, lease: dict[str, Any]) -> dict[str, Any]:
        """Create the Lease, or replace it if `lease` carries the resourceVersion it was read at.

        Raises `kubernetes.client.ApiException` 409 when someone else wrote it first.
        """
        meta = lease["metadata"]
        path = _path(_LEASES, namespace=meta["namespace"])
        if meta.get("resourceVersion"):
            return self._call("PUT", path + f"/{_quote(meta['name'])}", body=lease)
        return self._call("POST", path, body=lease)

    # -- plumbing ------------------------------------------------------------------------

    def _delete(self, path: str, preconditions: dict[str, str]) -> None:
        body = {
            "apiVersion": "v1",
            "kind": "DeleteOptions",
            "propagationPolicy": "Background",
            "preconditions": preconditions,
        }
        try:
            self._call("DELETE", path, body=body)
        except kubernetes.client.ApiException as e:
            if e.status not in (404, 409):  # 409: a precondition failed, it is not that object
                raise

    def _call_or_none(self, method: str, path: str) -> dict[str, Any] | None:
        try:
            return self._call(method, path)
        except kubernetes.client.ApiException as e:
            if e.status == 404:
                return None
            raise

    def _call(
        self, method: str, path: str, *, body: Any = None, content_type: str = "application/json"
    ) -> dict[str, Any]:
        request = self._client.param_serialize(
            method=method,
            resource_path=path,
            header_params={"Accept": "application/json", "Content-Type": content_type},
            body=body,
            auth_settings=["BearerToken"],
        )
        response = self._client.call_api(*request, _request_timeout=_TIMEOUT)
        data = cast(bytes, response.read())  # type: ignore[no-untyped-call]  # not annotated
        if not 200 <= response.status <= 299:
            raise kubernetes.client.ApiException.from_response(
                http_resp=response, body=data.decode(errors="replace"), data=None
            )
        result: dict[str, Any] = json.loads(data)
        return result


def _path(template: str, **parts: str) -> str:
    return template.format(**{key: _quote(value) for key, value in parts.items()})


def _quote(text: str) -> str:
    return urllib.parse.quote(text, safe="")


def _message(error: kubernetes.client.ApiException) -> str:
    """The apiserver's own message from a Status body (the whole body if it is not one)."""
    try:
        return str(json.loads(error.body or "")["message"])
    except (TypeError, ValueError, KeyError):
        return str(error.body or error.reason)
