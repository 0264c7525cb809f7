"""`python -m jobgate.api` as a subprocess of the tests, and HTTP clients for it (loopback only)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx
from kubernetes import client
from waiting import TIMEOUT, eventually

from jobgate.crds import names

REPO_ROOT = Path(__file__).resolve().parents[1]
# The operator's deployment settings that decide which working_dir sources a job may use
# (tests/integration/conftest.py starts the operator with the same): the API must refuse
# exactly what the operator could not run, so it is configured alike.
OPERATOR_ALIKE = {
    "JOBGATE_FILE_URI_ROOT": "/usr1/deploy",
    "JOBGATE_PACKAGE_BASE_URL": "http://127.0.0.1:8265",
}
SCHEDULING_TIMEOUT_MS = 4000  # the `api` fixture's (the default is 18000)
STORED_PACKAGE_LIMIT = 64 * 1024  # the `stored_api` fixture's package size limit
UNPACKED_BYTES, UNPACKED_ENTRIES = 1 << 20, 10  # the `limited_api` fixture's unpacked package limits
LOG_LINES = 150


class ApiServer:
    def __init__(self, *, name: str, kubeconfig: Path, workdir: Path, env: Mapping[str, str]) -> None:
        self.name = name
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = workdir / f"api-{name}.log"
        self.package_dir = workdir / f"packages-{name}"
        self.env = {
            **{key: value for key, value in os.environ.items() if not key.startswith(("KUBE", "JOBGATE_"))},
            **OPERATOR_ALIKE,
            "KUBECONFIG": str(kubeconfig),
            "PYTHONSAFEPATH": "1",
            "PYTHONUNBUFFERED": "1",
            "JOBGATE_API_PORT": str(self.port),
            "JOBGATE_PACKAGE_DIR": str(self.package_dir),
            "JOBGATE_SUBMIT_GRACE_MS": "10000",
            **env,
        }
        self._process: subprocess.Popen[bytes] | None = None

    def start(self, *, timeout: float = TIMEOUT) -> None:
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(
                [sys.executable, "-m", "jobgate.api"],
                cwd=REPO_ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        process = self._process

        def ready() -> bool:
            if process.poll() is not None:
                raise RuntimeError(f"the API exited at start:\n{self.log_tail()}")
            return self.ready()

        eventually(ready, timeout=timeout, message=lambda: f"the API to be ready:\n{self.log_tail()}")

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()

    def kill(self) -> None:
        """SIGKILL: requests under way are cut, as when its node dies."""
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
            self._process.wait()

    def ready(self) -> bool:
        try:
            return httpx.get(f"{self.url}/readyz", timeout=1, trust_env=False).status_code == 200
        except httpx.HTTPError:
            return False

    def client(self, tenant: str | None = None, **headers: str) -> httpx.Client:
        """A client of the API (seed paths at /, Ray's at /ray) acting for `tenant`."""
        if tenant is not None:
            headers["X-Tenant-Id"] = tenant
        return httpx.Client(base_url=self.url, headers=headers, timeout=60, trust_env=False)

    def log_tail(self, lines: int = LOG_LINES) -> str:
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


class ApiServers:
    """One API process per configuration, started on first use and stopped at the end."""

    def __init__(self, *, kubeconfig: Path, workdir: Path) -> None:
        self._kubeconfig = kubeconfig
        self._workdir = workdir
        self._servers: dict[str, ApiServer] = {}

    def start(self, name: str, **env: str) -> ApiServer:
        if name not in self._servers:
            server = ApiServer(name=name, kubeconfig=self._kubeconfig, workdir=self._workdir, env=env)
            server.start()
            self._servers[name] = server
        return self._servers[name]

    def stop_all(self) -> None:
        for server in self._servers.values():
            server.stop()


def delete_tenant_namespace(kube: client.ApiClient, tenant: str) -> None:
    """Delete the namespace the API made for `tenant` (if any), without waiting."""
    namespace = names.tenant_namespace(tenant, prefix=names.DEFAULT_NAMESPACE_PREFIX)
    try:
        client.CoreV1Api(kube).delete_namespace(namespace)
    except client.ApiException as err:
        if err.status != 404:
            raise


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_status(http: httpx.Client, path: str, *states: str, bound: float = TIMEOUT) -> dict[str, Any]:
    """The job at `path` (GET) once its status is one of `states`."""

    def in_state() -> dict[str, Any] | None:
        response = http.get(path)
        assert response.status_code == 200, response.text
        job: dict[str, Any] = response.json()
        return job if job["status"] in states else None

    return eventually(in_state, timeout=bound, message=f"{path} to be {'/'.join(states)}")
