"""The API's side of Kubernetes, on the shared layer (`jobgate.core`).

- Jobs are read from the index (`index.JobIndex`), which one informer fills: a paged list of
  every Job, then one watch from there for the life of the process. Nothing else lists or
  watches.
- Writes: create a Job, set its `spec.stop`, delete it; create a tenant's namespace. Each
  write's answer goes into the index before the call returns (read your writes).
- Logs: read, or follow, a pod's log.

Blocking: the async callers run these in threads (`asyncio.to_thread`). The shared layer's
`RefusedError` and `UnreachableError` that nobody here expects reach the client as a 502 or
a 503 (see `errors.install`), so a client can tell "try again" from "you asked wrong".
"""

from __future__ import annotations

import logging
import time
from typing import Any, Final

from jobgate.api import errors, index, tenancy
from jobgate.core import client as clients
from jobgate.core import informer, jobs, pods
from jobgate.crds import models as crd

log = logging.getLogger(__name__)

_NAMESPACES: Final = "/api/v1/namespaces"
_NAMESPACE: Final = _NAMESPACES + "/{name}"
_SERVICE_ACCOUNT: Final = "/api/v1/namespaces/{namespace}/serviceaccounts/default"
JOB_CONTAINER: Final = "job"  # the job's container in its pod (operator/podspec.py)
CONNECTIONS: Final = 32  # concurrent apiserver requests: the pool's size, and the threads calling
_SERVICE_ACCOUNT_WAIT: Final = 30.0  # seconds a new namespace may take to get its service account
_SERVICE_ACCOUNT_POLL: Final = 0.05


class Store:
    def __init__(self, client: clients.Client, *, job_index: index.JobIndex, namespace_prefix: str) -> None:
        self._client = client
        self._job_api = jobs.Jobs(client)
        self._pod_api = pods.Pods(client)
        self.jobs = job_index
        self._prefix = namespace_prefix
        self._ready_namespaces: set[str] = set()  # known to exist and to be the tenant's
        self._informer = informer.Informer(
            client, path=jobs.Jobs.collection(), sink=job_index, name="jobgate-api-watch"
        )

    @classmethod
    def connect(cls, *, job_index: index.JobIndex, namespace_prefix: str) -> Store:
        """In-cluster credentials when running in a pod, else $KUBECONFIG (or ~/.kube/config)."""
        client = clients.Client.connect(connections=CONNECTIONS)
        return cls(client, job_index=job_index, namespace_prefix=namespace_prefix)

    @property
    def restarts(self) -> int:
        """Lists after the first (the watch expired or failed)."""
        return self._informer.restarts

    def start(self) -> None:
        self._informer.start()

    def stop(self) -> None:
        self._informer.stop()
        self._client.close()

    @property
    def ready(self) -> bool:
        """The index is loaded and a watch keeps it current."""
        return self.jobs.synced and self._informer.watching

    # -- namespaces -------------------------------------------------------------------------

    def ensure_namespace(self, tenant: str, *, pod_security: str) -> str:
        """The tenant's namespace, created (labelled as the tenant's, with that Pod Security
        level) if it does not exist; one that exists is used as it is.

        `errors.ForbiddenError` if a namespace of that name exists but is not the tenant's.
        """
        manifest = tenancy.namespace_manifest(tenant, prefix=self._prefix, pod_security=pod_security)
        name: str = manifest["metadata"]["name"]
        if name in self._ready_namespaces:
            return name
        try:
            self._client.call("POST", _NAMESPACES, body=manifest)
            self._await_service_account(name)
        except clients.RefusedError as e:
            if e.code != 409:
                raise
            owner = tenancy.owner_of(self._client.call("GET", clients.path(_NAMESPACE, name=name)))
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
        path = clients.path(_SERVICE_ACCOUNT, namespace=namespace)
        deadline = time.monotonic() + _SERVICE_ACCOUNT_WAIT
        while time.monotonic() < deadline:
            if self._client.get_or_none(path) is not None:
                return
            time.sleep(_SERVICE_ACCOUNT_POLL)
        log.warning("namespace %s has no default service account after %ss", namespace, _SERVICE_ACCOUNT_WAIT)

    # -- Jobs -------------------------------------------------------------------------------

    def create_job(self, manifest: dict[str, Any], *, tenant: str, pod_security: str) -> jobs.Job:
        """Create the Job in the tenant's namespace, made first if need be.

        `jobs.AlreadyExistsError` if its name is taken. The index has the Job on return.
        """
        key = index.Key(manifest["metadata"]["namespace"], manifest["metadata"]["name"])
        for first in (True, False):
            namespace = self.ensure_namespace(tenant, pod_security=pod_security)
            try:
                with self.jobs.writing(key) as answer:
                    created = self._job_api.create(manifest)
                    answer.wrote(created)
                break
            except clients.RefusedError as e:
                if e.code == 404 and first:  # the namespace was deleted since: make it again
                    self._ready_namespaces.discard(namespace)
                    continue
                if e.code in (400, 404, 422):
                    raise errors.InvalidRequestError(f"Kubernetes refused the job: {e.message}") from e
                raise
        return created

    def stop_job(self, entry: index.Entry) -> None:
        """Set `spec.stop`; the operator stops the pod. The index has the change on return."""
        with self.jobs.writing(entry.key) as answer:
            answer.wrote(self._job_api.stop(entry.job.ref))

    def delete_job(self, entry: index.Entry) -> None:
        """Delete exactly this Job (by uid); its pods go with it. Gone from the index on return."""
        self._job_api.delete(entry.job.ref)
        self.jobs.forget(entry)

    # -- logs -------------------------------------------------------------------------------

    def read_log(self, namespace: str, pod: str, *, limit_bytes: int) -> str:
        """The job container's log so far (at most `limit_bytes`, from the start)."""
        return self._pod_api.read_log(namespace, pod, container=JOB_CONTAINER, limit_bytes=limit_bytes)

    def follow_log(self, namespace: str, pod: str) -> pods.LogStream:
        """The job container's log from the start, following it until the container ends."""
        return self._pod_api.follow_log(namespace, pod, container=JOB_CONTAINER)
