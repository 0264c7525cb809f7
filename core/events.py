"""Events on Job objects, for `kubectl describe jgj <name>`: reasons as typed constants."""

from __future__ import annotations

import datetime
import enum
from typing import Final

from jobgate.core import client as clients
from jobgate.core import jobs
from jobgate.crds import models

EVENTS: Final = "/api/v1/namespaces/{namespace}/events"
_MAX_MESSAGE: Final = 1024  # the apiserver refuses longer event messages


class Type(enum.StrEnum):
    NORMAL = "Normal"
    WARNING = "Warning"


class Recorder:
    """Posts core/v1 Events as one component (`source.component`) and process (instance)."""

    def __init__(self, client: clients.Client, *, component: str, instance: str) -> None:
        self._client = client
        self._component = component
        self._instance = instance

    def post(self, job: jobs.JobRef, *, type: Type, reason: str, message: str) -> None:
        now = datetime.datetime.now(datetime.UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")
        event = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"generateName": f"{job.name}.", "namespace": job.namespace},
            "involvedObject": {
                "apiVersion": models.API_VERSION,
                "kind": models.KIND,
                "name": job.name,
                "namespace": job.namespace,
                "uid": job.uid,
            },
            "type": type,
            "reason": reason,
            "message": message[:_MAX_MESSAGE],
            "source": {"component": self._component},
            "reportingComponent": self._component,
            "reportingInstance": self._instance,
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
        }
        self._client.call("POST", clients.path(EVENTS, namespace=job.namespace), body=event)
