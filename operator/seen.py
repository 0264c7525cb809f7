"""The newest version seen of each object, so that handling a job need not begin with reads.

Fed by the watch events and by the answers to the operator's own writes; read by the worker
threads (hence the lock). Objects are compared by resourceVersion, as numbers (etcd makes
them so), so that a watch event arriving after the answer to the write that made a newer
version does not replace it; one that is not a number replaces what was kept.

A version seen may be stale by the time it is used. That is safe: a status write carries
the resourceVersion it was decided on (a stale Job makes it fail, and the job is decided
again on a Job read afresh), and a pod's copy is used only when that pod's own watch event
brought the job here. A pod only looked up (after a relist, at an alarm) is read afresh:
a pod that finished while a watch was broken sends no event, so its copy would stay at its
last phase for good (see `reconciler` and the resync in `config`).
"""

from __future__ import annotations

import threading
from collections.abc import Hashable, Mapping
from typing import Any, Generic, TypeVar

K = TypeVar("K", bound=Hashable)


class Newest(Generic[K]):
    def __init__(self) -> None:
        self._objects: dict[K, dict[str, Any]] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._objects)

    def get(self, key: K) -> dict[str, Any] | None:
        with self._lock:
            return self._objects.get(key)

    def put(self, key: K, body: Mapping[str, Any]) -> None:
        with self._lock:
            kept = self._objects.get(key)
            if kept is None or not _older(body, than=kept):
                self._objects[key] = dict(body)

    def drop(self, key: K) -> None:
        with self._lock:
            self._objects.pop(key, None)


def _older(body: Mapping[str, Any], *, than: Mapping[str, Any]) -> bool:
    try:
        return int(body["metadata"]["resourceVersion"]) < int(than["metadata"]["resourceVersion"])
    except (KeyError, TypeError, ValueError):
        return False
