"""A small client for Job custom resources in one namespace, for the operator's tests."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kubernetes import client
from waiting import TIMEOUT, eventually

from jobgate.crds import models


class Jobs:
    def __init__(self, *, kube: client.ApiClient, namespace: str) -> None:
        self.namespace = namespace
        self.custom = client.CustomObjectsApi(kube)
        self.core = client.CoreV1Api(kube)

    def create(self, name: str, *, metadata: dict[str, str] | None = None, **spec: Any) -> dict[str, Any]:
        body = {
            "apiVersion": models.API_VERSION,
            "kind": models.KIND,
            "metadata": {"name": name},
            "spec": {"entrypoint": "python main.py", "metadata": metadata or {}, **spec},
        }
        created: dict[str, Any] = self.custom.create_namespaced_custom_object(
            models.GROUP, models.VERSION, self.namespace, models.PLURAL, body
        )
        return created

    def get(self, name: str) -> dict[str, Any]:
        job: dict[str, Any] = self.custom.get_namespaced_custom_object(
            models.GROUP, models.VERSION, self.namespace, models.PLURAL, name
        )
        return job

    def stop(self, name: str) -> None:
        self.custom.patch_namespaced_custom_object(
            models.GROUP, models.VERSION, self.namespace, models.PLURAL, name, {"spec": {"stop": True}}
        )

    def exists(self, name: str) -> bool:
        try:
            self.get(name)
        except client.ApiException as err:
            if err.status == 404:
                return False
            raise
        return True

    def wait(self, name: str, *states: str, bound: float = TIMEOUT) -> dict[str, Any]:
        """The Job once its status.state is one of `states`."""
        return self.until(
            lambda: (job := self.get(name)).get("status", {}).get("state") in states and job,
            f"job {name} to be {'/'.join(states)}",
            bound=bound,
        )

    def finished(self, name: str, *, bound: float = TIMEOUT) -> dict[str, Any]:
        return self.wait(name, "SUCCEEDED", "FAILED", "STOPPED", bound=bound)

    def pods(self, name: str) -> list[client.V1Pod]:
        selector = f"{models.LABEL_JOB_NAME}={name}"
        pods: list[client.V1Pod] = self.core.list_namespaced_pod(
            self.namespace, label_selector=selector
        ).items
        return sorted(pods, key=lambda pod: pod.metadata.name)

    @staticmethod
    def until(check: Callable[[], Any], what: str, *, bound: float = TIMEOUT) -> Any:
        """The first truthy value of `check()` (waiting.eventually, waiting for `what`)."""
        return eventually(check, message=what, timeout=bound)

    @staticmethod
    def condition(job: dict[str, Any], kind: str) -> dict[str, Any]:
        found = [c for c in job["status"].get("conditions", []) if c["type"] == kind]
        assert found, f"no {kind} condition in {job['status']}"
        result: dict[str, Any] = found[0]
        return result

    def events(self, name: str) -> list[client.CoreV1Event]:
        selector = f"involvedObject.kind={models.KIND},involvedObject.name={name}"
        events: list[client.CoreV1Event] = self.core.list_namespaced_event(
            self.namespace, field_selector=selector
        ).items
        return events
