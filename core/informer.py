"""A collection kept in memory by one list and one watch: the informer pattern, for any sink.

One thread lists the collection (in pages), hands the items to `Sink.replace`, then follows
one watch from the list's resourceVersion, handing each event to `put` or `delete`, for the
life of the process; when the watch expires (410) or breaks, it lists again. resourceVersion
is passed back to the apiserver as it came (opaque).
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol

from jobgate.core import client as clients

log = logging.getLogger(__name__)

_RETRY_FIRST, _RETRY_MAX = 0.2, 10.0  # seconds between attempts to (re)list after failures


class Sink(Protocol):
    def replace(self, items: Sequence[dict[str, Any]]) -> None: ...

    def put(self, item: dict[str, Any]) -> None: ...

    def delete(self, item: Mapping[str, Any]) -> None: ...


class _ExpiredError(Exception):
    """The resourceVersion is too old to watch from (410 Gone): list again."""


class Informer:
    def __init__(self, client: clients.Client, *, path: str, sink: Sink, name: str) -> None:
        self._client = client
        self._path = path
        self._sink = sink
        self._stopping = threading.Event()
        self._watching = threading.Event()  # a watch stream is open right now
        self._thread = threading.Thread(target=self._follow, name=name, daemon=True)
        self.restarts = 0  # lists after the first (the watch expired or failed)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Stop following (the thread ends when its watch next returns, or with the process)."""
        self._stopping.set()

    @property
    def watching(self) -> bool:
        return self._watching.is_set()

    def _follow(self) -> None:
        delay = _RETRY_FIRST
        while not self._stopping.is_set():
            try:
                version = self._list()
                delay = _RETRY_FIRST
                while not self._stopping.is_set():
                    version = self._watch(version)
            except _ExpiredError:
                log.info("the watch of %s expired; listing again", self._path)
            except Exception as e:
                if self._stopping.is_set():
                    break
                log.warning("watching %s failed (%s); again in %.1fs", self._path, e, delay)
                self._stopping.wait(delay)
                delay = min(delay * 2, _RETRY_MAX)
            finally:
                self._watching.clear()
            self.restarts += 1

    def _list(self) -> str:
        items: list[dict[str, Any]] = []
        version = ""
        for page in self._client.pages(self._path):
            items.extend(page.get("items") or ())
            version = str((page.get("metadata") or {}).get("resourceVersion") or "")
        self._sink.replace(items)
        return version

    def _watch(self, version: str) -> str:
        """Apply watch events until the apiserver ends the watch; the last resourceVersion seen."""
        with contextlib.closing(self._client.watch(self._path, resource_version=version)) as events:
            self._watching.set()
            return self._apply(events, version)

    def _apply(self, events: Iterable[dict[str, Any]], version: str) -> str:
        for event in events:
            if self._stopping.is_set():
                break
            kind, item = event.get("type"), event.get("object") or {}
            if kind == "ERROR":
                if item.get("code") == 410:
                    raise _ExpiredError
                raise RuntimeError(f"watch error: {item.get('message')}")
            version = str((item.get("metadata") or {}).get("resourceVersion") or version)
            if kind in ("ADDED", "MODIFIED"):
                self._sink.put(item)
            elif kind == "DELETED":
                self._sink.delete(item)
        return version
