"""jobgate's own processes (the operator and one or more APIs) on a `LocalCluster`, and a
keep-alive HTTP client of those APIs.

The processes run as the cluster's spawned extras (logged in its state directory, stopped
with it), so a fault can SIGKILL one with `cluster.kill(name)` and `restart` it with the
same flags, ports and settings.
"""

from __future__ import annotations

import functools
import socket
import sys
import threading
import time
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

import httpx

from jobgate.bench import measure
from jobgate.devcluster import LocalCluster

REPO_ROOT: Final = Path(__file__).resolve().parents[1]
CRD_FILE: Final = REPO_ROOT / "crds" / "jobgate.io_jobs.yaml"
OPERATOR: Final = "jobgate-operator"
READY_BOUND: Final = 120.0  # seconds a (re)started process may take to answer its probe


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Stack:
    """The operator (`jobgate-operator`) and the APIs (`jobgate-api-<name>`, one per entry
    of `apis`, each with its own settings) of one benchmark or fault run."""

    def __init__(
        self,
        cluster: LocalCluster,
        *,
        operator_env: Mapping[str, str],
        apis: Mapping[str, Mapping[str, str]],
    ) -> None:
        self.cluster = cluster
        self._operator_env = dict(operator_env)
        self._api_env = {name: dict(env) for name, env in apis.items()}
        # Free ports, never fixed ones: another run's processes may still hold those.
        self.api_ports = {name: free_port() for name in apis}
        self._liveness = f"http://127.0.0.1:{free_port()}/healthz"

    def start(self) -> None:
        self.cluster.kubectl("apply", "--server-side", "-f", str(CRD_FILE))
        self.cluster.kubectl("wait", "--for=condition=Established", "crd/jobs.jobgate.io")
        self.start_operator()
        for name, port in self.api_ports.items():
            self.cluster.spawn(
                api_process(name),
                [sys.executable, "-m", "jobgate.api", "--port", str(port)],
                env=self._env(self._api_env[name]),
            )
        for name in self.api_ports:
            self.wait_ready(api_process(name))

    def start_operator(self) -> float:
        """Start the operator; the seconds until it answers its liveness probe."""
        started = time.monotonic()
        self.cluster.spawn(
            OPERATOR,
            [sys.executable, "-m", "jobgate.operator"],
            env=self._env({**self._operator_env, "JOBGATE_OPERATOR_LIVENESS": self._liveness}),
        )
        self.wait_ready(OPERATOR)
        return time.monotonic() - started

    def restart(self, name: str) -> float:
        """Start a killed process again (same flags and settings); seconds until it answers."""
        started = time.monotonic()
        self.cluster.restart(name, wait=False)
        self.wait_ready(name)
        return time.monotonic() - started

    def wait_ready(self, name: str) -> None:
        probe = self._liveness if name == OPERATOR else f"{self.url(_api_name(name))}/readyz"
        measure.wait(name, functools.partial(answers, probe), bound=READY_BOUND, poll=0.1)

    def url(self, api: str) -> str:
        """The base URL of the API called `api` (seed paths at /, Ray's at /ray)."""
        return f"http://127.0.0.1:{self.api_ports[api]}"

    def pid(self, name: str) -> int:
        pid = self.cluster.processes[name].pid
        assert pid is not None, f"{name} is not running"
        return pid

    def _env(self, settings: Mapping[str, str]) -> dict[str, str]:
        return {
            "KUBECONFIG": str(self.cluster.kubeconfig),
            "PYTHONSAFEPATH": "1",
            "PYTHONUNBUFFERED": "1",
            "JOBGATE_PACKAGE_DIR": str(self.cluster.state_dir / "packages"),
            **settings,
        }


def api_process(api: str) -> str:
    return f"jobgate-api-{api}"


def _api_name(process: str) -> str:
    return process.removeprefix("jobgate-api-")


def answers(url: str) -> bool:
    """Whether `url` answers 200 (loopback: no proxy)."""
    try:
        with urllib.request.build_opener(urllib.request.ProxyHandler({})).open(url, timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False


class _ThreadClients(threading.local):
    """One keep-alive HTTP client per thread (a fresh connection per request would be what is measured)."""

    def client(self) -> httpx.Client:
        if not hasattr(self, "http"):
            self.http = httpx.Client(timeout=120, trust_env=False)
        return self.http


HTTP: Final = _ThreadClients()


def submit(
    base_url: str,
    *,
    tenant: str,
    submission_id: str,
    metadata: Mapping[str, str],
    pool: str | None = None,
) -> httpx.Response:
    """`POST /api/jobs` (seed dialect) of a job whose pod does what `metadata` tells kwok."""
    body = {
        "entrypoint": "python main.py",
        "runtime_env": {"working_dir": "https://example.com/job.zip"},
        "submission_id": submission_id,
        "metadata": dict(metadata),
    }
    headers = {"X-Tenant-Id": tenant} | ({"X-Pool-Label": pool} if pool else {})
    return HTTP.client().post(f"{base_url}/api/jobs", json=body, headers=headers)


def get_json(url: str, *, tenant: str) -> Any:
    response = HTTP.client().get(url, headers={"X-Tenant-Id": tenant})
    response.raise_for_status()
    return response.json()
