"""Fixtures of the real-node tests: a local cluster of their own, with one real node.

    real_cluster    LocalCluster(real_node=True): the control plane, kwok's fake nodes and
                    the node `real-0` (kubelet + containerd + runc, pool label real),
                    started once per session, apart from the default `cluster` fixture
    real_kube       an admin `kubernetes.client.ApiClient` for it
    real_namespace  a fresh namespace per test

The tests run wherever the machine can run a real node (root, cgroups, overlayfs, seccomp,
veth and bridges): on this project's machines they always run. Elsewhere they are skipped
with the missing feature in the reason (realnode.unsupported_reason()).

Set JOBGATE_TEST_REALNODE_STATE to the state directory of a cluster started with
`python -m jobgate.devcluster up --real-node --state-dir DIR` to reuse it instead.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client
from kubernetes import config as kube_config
from kubernetes.client.rest import ApiException
from waiting import eventually

from jobgate.devcluster import LocalCluster, realnode

REUSE_ENV = "JOBGATE_TEST_REALNODE_STATE"


def _report(config: pytest.Config, line: str) -> None:
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    capture = config.pluginmanager.get_plugin("capturemanager")
    if reporter is None:
        return
    with capture.global_and_fixture_disabled() if capture else contextlib.nullcontext():
        reporter.write_line(line)


@pytest.fixture(scope="session")
def real_cluster(
    tmp_path_factory: pytest.TempPathFactory, pytestconfig: pytest.Config
) -> Iterator[LocalCluster]:
    """The session's cluster with a real node (fresh, or the one named by $REUSE_ENV)."""
    if reuse := os.environ.get(REUSE_ENV):
        existing = LocalCluster.attach(Path(reuse))
        if existing.real_node is None or not existing.ready():
            pytest.fail(f"{REUSE_ENV}={reuse}: no ready cluster with a real node there")
        _report(pytestconfig, f"reusing the real-node cluster in {existing.state_dir}")
        yield existing
        return
    if reason := realnode.unsupported_reason():
        pytest.skip(f"this machine cannot run a real node: {reason}")
    started = LocalCluster(tmp_path_factory.mktemp("realnode"), real_node=True)
    t0 = time.monotonic()
    started.start()  # builds the node's binaries and images first if they are not cached
    _report(
        pytestconfig,
        f"\nreal-node cluster ready in {time.monotonic() - t0:.1f}s "
        f"(control plane and node {started.start_seconds:.1f}s), state in {started.state_dir}",
    )
    try:
        yield started
    finally:
        started.stop()
        leftovers = realnode.host_leftovers()
        # The node's containerd root holds unpacked images: keep the logs, not that.
        shutil.rmtree(started.state_dir / "node", ignore_errors=True)
        if leftovers:
            pytest.fail(f"stopping the real node left this on the host: {leftovers}")


@pytest.fixture(scope="session")
def real_kube(real_cluster: LocalCluster) -> Iterator[client.ApiClient]:
    api = kube_config.new_client_from_config(config_file=str(real_cluster.kubeconfig))
    try:
        yield api
    finally:
        api.close()


@pytest.fixture
def real_namespace(real_kube: client.ApiClient, request: pytest.FixtureRequest) -> Iterator[str]:
    """A namespace of its own for one test (deleted afterwards, without waiting)."""
    core = client.CoreV1Api(real_kube)
    base = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")[:40].strip("-") or "t"
    name = f"{base}-{uuid.uuid4().hex[:6]}"
    core.create_namespace({"metadata": {"name": name, "labels": {"jobgate.io/test": "true"}}})

    def has_default_account() -> bool:  # pods are refused until the namespace has it
        try:
            core.read_namespaced_service_account("default", name)
        except ApiException as err:
            if err.status != 404:
                raise
            return False
        return True

    eventually(has_default_account, message=f"the default service account of {name}")
    yield name
    with contextlib.suppress(ApiException):
        core.delete_namespace(name)
