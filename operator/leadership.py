"""Leader election: of the operator's replicas, only the holder of a Lease does the work.

With `JOBGATE_OPERATOR_LEASE=<namespace>/<name>` a replica waits, doing nothing but reading
that `coordination.k8s.io/v1` Lease, until it can take it; only then does it start kopf and
the workers. Without the variable it starts at once (one replica, as before).

Why a Lease and not kopf's peering: peering makes an operator pause for a peer of *higher*
priority (a developer's operator on a shared cluster); peers of equal priority both keep
running and only warn, so it is not mutual exclusion. It also needs kopf's own CRDs. A Lease
is what Kubernetes' own controllers use (client-go's leaderelection, whose timing this
follows), one small object and one write per renewal, and `kubectl get lease` shows who leads.

The rules, as client-go's:
- A replica may take the Lease when nobody holds it, or when the holder has not renewed it
  for `leaseDurationSeconds`, timed on the replica's own monotonic clock from the moment it
  saw the Lease last change, so that machines whose clocks disagree cannot both lead.
- Taking and renewing are writes carrying the resourceVersion that was read: of two replicas
  racing, one wins and the other gets a 409.
- The leader renews every `retry` seconds. If it has not renewed for `renew_deadline`
  (less than the lease duration), or sees another holder, it exits at once (`os._exit`), before
  any other replica may take the Lease; Kubernetes restarts it, as a standby. Exiting is the
  one way to be sure no worker thread goes on writing.
- On a clean stop (SIGTERM) the leader releases the Lease, so that a standby takes over at
  its next look instead of after the lease duration.

Losing work is impossible either way: every write of the operator is conditional (see
reconciler), and a new leader decides every unfinished job afresh, as after a restart.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import http.server
import logging
import os
import random
import socket
import threading
import time
import urllib.parse
import uuid
from collections.abc import Callable, Iterator
from typing import Any, Final

from jobgate.core import client as clients
from jobgate.core import leases as leasing
from jobgate.operator import config as configuration
from jobgate.operator import metrics

logger = logging.getLogger(__name__)

EXIT_LOST: Final = 3  # the exit status of a leader that lost its Lease (it is restarted)
_RENEW_DEADLINE: Final = 2 / 3  # of the lease duration (client-go: 10 s of 15 s)
_RETRY: Final = 2 / 15  # of the lease duration (client-go: 2 s of 15 s)
_JITTER: Final = 1.2  # a standby waits retry to retry * this between looks: replicas do not move in step


@dataclasses.dataclass(frozen=True)
class Timing:
    """The periods of the election, all from the lease duration (seconds)."""

    duration: float

    @property
    def renew_deadline(self) -> float:
        return self.duration * _RENEW_DEADLINE

    @property
    def retry(self) -> float:
        return self.duration * _RETRY


class Elector:
    """One replica's candidacy for the Lease `namespace/name`."""

    def __init__(
        self,
        *,
        leases: leasing.Leases,
        lease: tuple[str, str],
        identity: str,
        duration: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.identity = identity
        self.timing = Timing(float(duration))
        self.holder: str | None = None  # as last seen ("" = released)
        self._leases = leases
        self._namespace, self._name = lease
        self._ref = f"{self._namespace}/{self._name}"  # for the log lines
        self._duration = duration
        self._clock = clock
        self._seen: tuple[str, str, str] | None = None  # holder, renewTime, resourceVersion
        self._seen_at = 0.0  # when `_seen` last changed (monotonic)
        self._renewed_at: float | None = None  # when this replica last wrote itself in (monotonic)
        self._stopping = threading.Event()

    # -- one look ---------------------------------------------------------------------------

    def attempt(self) -> bool:
        """Read the Lease and take (or renew) it if it is free, expired or ours: whether we hold it."""
        now = self._clock()
        lease = self._leases.read(self._namespace, self._name)
        if lease is None:
            body = self._fresh()
        else:
            spec = lease.get("spec") or {}
            self.holder = spec.get("holderIdentity") or ""
            seen = (self.holder, spec.get("renewTime") or "", lease["metadata"].get("resourceVersion", ""))
            if seen != self._seen:
                self._seen, self._seen_at = seen, now
            duration = spec.get("leaseDurationSeconds") or self._duration
            if self.holder not in ("", self.identity) and now < self._seen_at + duration:
                return False  # another replica holds it and has renewed it lately
            body = self._taken(lease)
        try:
            written = self._leases.write(body)
        except clients.RefusedError as e:
            if e.code == 409:  # another replica wrote first: look again next time
                return False
            raise
        spec = written["spec"]
        self.holder = self.identity
        self._seen = (self.identity, spec["renewTime"], written["metadata"]["resourceVersion"])
        self._seen_at = self._renewed_at = now
        return True

    def _fresh(self) -> dict[str, Any]:
        now = _micro_time()
        return {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {"namespace": self._namespace, "name": self._name},
            "spec": {
                "holderIdentity": self.identity,
                "leaseDurationSeconds": self._duration,
                "acquireTime": now,
                "renewTime": now,
                "leaseTransitions": 0,
            },
        }

    def _taken(self, lease: dict[str, Any]) -> dict[str, Any]:
        """`lease` (its metadata, resourceVersion included, as read) with this replica holding it."""
        spec = dict(lease.get("spec") or {})
        now = _micro_time()
        if spec.get("holderIdentity") != self.identity:
            spec["acquireTime"] = now
            spec["leaseTransitions"] = int(spec.get("leaseTransitions") or 0) + 1
        spec |= {"holderIdentity": self.identity, "leaseDurationSeconds": self._duration, "renewTime": now}
        return {**lease, "spec": spec}

    # -- the candidacy ----------------------------------------------------------------------

    def acquire(self) -> None:
        """Block until this replica holds the Lease."""
        waiting_for: str | None = None
        while True:
            try:
                if self.attempt():
                    logger.info("leading: holding lease %s as %s", self._ref, self.identity)
                    metrics.LEADER.set(1)
                    return
            except Exception as e:
                logger.warning("reading lease %s failed (%s); trying again", self._ref, e)
            if self.holder and self.holder != waiting_for:
                waiting_for = self.holder
                logger.info("standing by: lease %s is held by %s", self._ref, self.holder)
            time.sleep(self.timing.retry * random.uniform(1, _JITTER))

    def hold(self, *, on_lost: Callable[[str], None]) -> None:
        """Keep renewing the Lease from a daemon thread; `on_lost(why)` once it cannot be kept.

        A second thread only watches the time since the last renewal, so that a renewal
        stuck in a slow request cannot delay the verdict past the deadline.
        """
        assert self._renewed_at is not None, "hold() follows a successful acquire()"
        threading.Thread(target=self._renew, args=(on_lost,), name="jobgate-lease-renew", daemon=True).start()
        threading.Thread(target=self._watch, args=(on_lost,), name="jobgate-lease-watch", daemon=True).start()

    def _renew(self, on_lost: Callable[[str], None]) -> None:
        while not self._stopping.wait(self.timing.retry):
            try:
                if self.attempt():
                    continue
            except Exception as e:
                logger.warning("renewing lease %s failed: %s", self._ref, e)
            if self.holder not in (None, "", self.identity):
                on_lost(f"lease {self._ref} is now held by {self.holder}")
                return

    def _watch(self, on_lost: Callable[[str], None]) -> None:
        while not self._stopping.wait(self.timing.retry / 2):
            assert self._renewed_at is not None
            if self._clock() - self._renewed_at > self.timing.renew_deadline:
                on_lost(
                    f"lease {self._ref} not renewed for "
                    f"{self.timing.renew_deadline:.1f} s (the renew deadline)"
                )
                return

    def release(self) -> None:
        """Stop renewing and hand the Lease back (best effort), so that a standby takes over now."""
        self._stopping.set()
        metrics.LEADER.set(0)
        try:
            lease = self._leases.read(self._namespace, self._name)
            if lease is None or (lease.get("spec") or {}).get("holderIdentity") != self.identity:
                return
            now = _micro_time()
            spec = lease["spec"] | {"holderIdentity": "", "leaseDurationSeconds": 1, "renewTime": now}
            self._leases.write({**lease, "spec": spec})
            logger.info("released lease %s", self._ref)
        except Exception as e:
            logger.warning("releasing lease %s failed (%s); it expires by itself", self._ref, e)


def lead(settings: configuration.Config) -> Elector | None:
    """Return once this replica may do the work: at once without a Lease configured, else once
    it holds the Lease (then it is renewed until the process ends, or the process exits).

    Meanwhile a standby answers its liveness probe itself (kopf, which would, is not started),
    so that Kubernetes does not restart a replica that is only waiting.
    """
    if settings.lease is None:
        metrics.LEADER.set(1)
        return None
    identity = f"{socket.gethostname()}_{uuid.uuid4().hex[:8]}"
    elector = Elector(
        # A client of its own: renewals never wait for a connection the workers hold.
        leases=leasing.Leases(clients.Client.connect(connections=1)),
        lease=settings.lease,
        identity=identity,
        duration=settings.lease_seconds,
    )
    with standby_liveness(settings.liveness_endpoint):
        elector.acquire()
    elector.hold(on_lost=exit_now)
    return elector


def exit_now(why: str) -> None:
    """Stop doing the work at once: the process exits (and is restarted as a standby)."""
    logger.critical("leadership lost: %s; exiting", why)
    logging.shutdown()  # flush the lines above
    os._exit(EXIT_LOST)


@contextlib.contextmanager
def standby_liveness(endpoint: str | None) -> Iterator[None]:
    """Answer 200 at `endpoint` (kopf's liveness URL, e.g. http://0.0.0.0:8080/healthz) meanwhile.

    A waiting replica is alive as long as it runs, so there is nothing to check. The port
    is freed on exit, for kopf to serve the same URL.
    """
    if endpoint is None:
        yield
        return
    url = urllib.parse.urlsplit(endpoint)
    path = url.path or "/"

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            ok = self.path.split("?")[0] == path
            body = b"standby\n" if ok else b"not found\n"
            self.send_response(200 if ok else 404)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # a probe every few seconds is not worth a line

    server = http.server.ThreadingHTTPServer((url.hostname or "0.0.0.0", url.port or 80), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name="jobgate-standby-liveness", daemon=True)
    thread.start()
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()


def _micro_time() -> str:
    """A Kubernetes MicroTime: RFC 3339 in UTC with exactly six decimals."""
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
