"""Fixtures for integration tests that need jobgate's pieces on the session's cluster.

    crd               the Job CRD (crds/jobgate.io_jobs.yaml) installed and Established
    identities        kubeconfigs of the operator's and the API's ServiceAccounts, with the
                      RBAC of deploy/rbac applied and tokens from the TokenRequest API: the
                      operator and the API of every test run as those, never as admin, so
                      the suite proves that deploy/'s least-privilege roles suffice
    operator_processes  a function starting more operators (e.g. replicas electing a
                      leader), each with extra settings; all are stopped after the test
    jobgate_operator  `python -m jobgate.operator` running against the cluster, as a
                      subprocess whose log is shown when a test using it fails;
                      `.kill()` SIGKILLs it, `.start()` starts it again, `.restart()` both

Both are session-scoped: the operator keeps running across tests (each test works in its
own namespace), and a test that kills it starts it again before it ends.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client
from waiting import TIMEOUT, eventually

from jobgate.devcluster import LocalCluster, pools
from jobgate.devcluster import identities as identity

REPO_ROOT = Path(__file__).resolve().parents[2]
CRD_FILE = REPO_ROOT / "crds" / "jobgate.io_jobs.yaml"
# What the test operator is configured with, on top of the defaults (operator/README.md):
# file:// working dirs are enabled (the seed's example uses one; kwok never mounts it),
# uploaded packages come from the API's usual local address, and a retry waits 1 s, 2 s, ...
# (10 s, 20 s, ... by default).
OPERATOR_ENV = {
    # The tainted GPU and NPU pools' tolerations, for the jobs there (devcluster/pools.yaml).
    "JOBGATE_POD_PROFILES": json.dumps(pools.pod_profiles(pools.load_pools())),
    "JOBGATE_FILE_URI_ROOT": "/usr1/deploy",
    "JOBGATE_PACKAGE_BASE_URL": "http://127.0.0.1:8265",
    "JOBGATE_RETRY_BACKOFF_SECONDS": "1",
}
LOG_LINES_ON_FAILURE = 200


@pytest.fixture(scope="session")
def crd(kube: client.ApiClient) -> str:
    """The Job CRD, installed (or updated to the checked-in file) and Established; its name."""
    manifest = yaml.safe_load(CRD_FILE.read_text())
    name: str = manifest["metadata"]["name"]
    api = client.ApiextensionsV1Api(kube)
    try:
        api.create_custom_resource_definition(manifest)
    except client.ApiException as err:
        if err.status != 409:
            raise
        current = api.read_custom_resource_definition(name).metadata
        assert current is not None
        manifest["metadata"]["resourceVersion"] = current.resource_version
        api.replace_custom_resource_definition(name, manifest)

    def established() -> bool:
        status = api.read_custom_resource_definition(name).status
        conditions = (status.conditions if status else None) or []
        return any(c.type == "Established" and c.status == "True" for c in conditions)

    eventually(established, message=f"CRD {name} to be Established")
    return name


@pytest.fixture(scope="session")
def identities(
    cluster: LocalCluster, kube: client.ApiClient, tmp_path_factory: pytest.TempPathFactory
) -> identity.Identities:
    """Kubeconfigs of deploy/'s ServiceAccounts (its RBAC applied), as `make dev` uses them."""
    return identity.issue(cluster, tmp_path_factory.mktemp("identities"))


class OperatorProcess:
    """The operator as a subprocess: started, killed and restarted by tests that need to."""

    def __init__(self, *, kubeconfig: Path, log_path: Path, env: Mapping[str, str] = OPERATOR_ENV) -> None:
        self.log_path = log_path
        self._kubeconfig = kubeconfig
        self._env = dict(env)
        self._process: subprocess.Popen[bytes] | None = None
        self._port = 0

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self, *, timeout: float = TIMEOUT) -> None:
        """Start it and return once its liveness endpoint answers (kopf serves it once ready)."""
        self._port = _free_port()
        env = {
            **os.environ,
            **self._env,
            "KUBECONFIG": str(self._kubeconfig),
            "JOBGATE_OPERATOR_LIVENESS": f"http://127.0.0.1:{self._port}/healthz",
        }
        with self.log_path.open("ab") as log:
            log.write(f"\n===== operator starting at {time.strftime('%H:%M:%S')} =====\n".encode())
            log.flush()
            self._process = subprocess.Popen(
                [sys.executable, "-m", "jobgate.operator"],
                cwd=REPO_ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

        def alive() -> bool:
            if not self.running:
                raise RuntimeError(f"the operator exited at start; see {self.log_path}")
            return self._alive()

        eventually(
            alive,
            timeout=timeout,
            ignoring=(OSError,),
            message=f"the operator to be ready (its liveness endpoint to answer); see {self.log_path}",
        )

    def kill(self) -> None:
        """SIGKILL: no cleanup, no goodbye, as when its node dies."""
        if self._process is not None and self.running:
            self._process.send_signal(signal.SIGKILL)
            self._process.wait()

    def stop(self) -> None:
        """SIGTERM, and SIGKILL if it does not exit in time."""
        if self._process is not None and self.running:
            self._process.terminate()
            try:
                self._process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()

    def restart(self) -> None:
        self.kill()
        self.start()

    def log_tail(self, lines: int = LOG_LINES_ON_FAILURE) -> str:
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def _alive(self) -> bool:
        """Whether its liveness endpoint answers 200 (OSError: it does not answer at all)."""
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback only
        with opener.open(f"http://127.0.0.1:{self._port}/healthz", timeout=1) as response:
            return bool(response.status == 200)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture(scope="session")
def jobgate_operator(
    identities: identity.Identities, crd: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[OperatorProcess]:
    operator = OperatorProcess(
        kubeconfig=identities.operator, log_path=tmp_path_factory.mktemp("operator") / "operator.log"
    )
    operator.start()
    try:
        yield operator
    finally:
        operator.stop()


@pytest.fixture
def operator_processes(
    identities: identity.Identities, crd: str, tmp_path: Path
) -> Iterator[Callable[..., OperatorProcess]]:
    started: list[OperatorProcess] = []

    def start(name: str, **env: str) -> OperatorProcess:
        operator = OperatorProcess(
            kubeconfig=identities.operator, log_path=tmp_path / f"operator-{name}.log", env=OPERATOR_ENV | env
        )
        started.append(operator)
        operator.start()
        return operator

    try:
        yield start
    finally:
        for operator in started:
            operator.stop()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """A failed test that used the operator shows the operator's log with its report."""
    outcome: Any = yield
    report: pytest.TestReport = outcome.get_result()
    operator = getattr(item, "funcargs", {}).get("jobgate_operator")
    if report.failed and isinstance(operator, OperatorProcess):
        report.sections.append((f"operator log (last {LOG_LINES_ON_FAILURE} lines)", operator.log_tail()))
