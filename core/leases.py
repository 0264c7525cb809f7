"""coordination.k8s.io Leases: read one, and write it only over the version that was read."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from jobgate.core import client as clients

_LEASES: Final = "/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases"
_LEASE: Final = _LEASES + "/{name}"


class Leases:
    def __init__(self, client: clients.Client) -> None:
        self._client = client

    def read(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self._client.get_or_none(clients.path(_LEASE, namespace=namespace, name=name))

    def write(self, lease: Mapping[str, Any]) -> dict[str, Any]:
        """Create the Lease, or replace it if `lease` carries the resourceVersion it was read at.

        `RefusedError` 409 when someone else wrote it first.
        """
        meta = lease["metadata"]
        if meta.get("resourceVersion"):
            path = clients.path(_LEASE, namespace=meta["namespace"], name=meta["name"])
            return self._client.call("PUT", path, body=lease)
        return self._client.call("POST", clients.path(_LEASES, namespace=meta["namespace"]), body=lease)
