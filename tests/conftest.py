"""Shared fixtures.

The control plane (jobgate.devcluster.LocalCluster: real etcd, kube-apiserver,
kube-scheduler, kube-controller-manager and kwok fake nodes) is started once per session,
and only if a collected test asks for `cluster`, `kube` or `namespace`; unit tests never
start it. Tests using it are marked `cluster` automatically (`-m "not cluster"` skips them).

Set JOBGATE_TEST_CLUSTER_STATE to the state directory (or the kubeconfig inside it) of a
cluster already running, e.g. from `python -m jobgate.devcluster up --state-dir DIR`, to
reuse it instead: nothing is started or stopped then.
"""

from __future__ import annotations

import contextlib
import os
import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client
from kubernetes import config as kube_config
from kubernetes.client.rest import ApiException
from waiting import eventually

from jobgate.devcluster import LocalCluster

CLUSTER_FIXTURES = frozenset({"cluster", "kube", "namespace"})


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if CLUSTER_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.cluster)


def _report(config: pytest.Config, line: str) -> None:
    """Show `line` on the terminal even while pytest captures output."""
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    capture = config.pluginmanager.get_plugin("capturemanager")
    if reporter is None:
        return
    with capture.global_and_fixture_disabled() if capture else contextlib.nullcontext():
        reporter.write_line(line)


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory, pytestconfig: pytest.Config) -> Iterator[LocalCluster]:
    """The session's local cluster (fresh, or the one named by JOBGATE_TEST_CLUSTER_STATE)."""
    reuse = os.environ.get("JOBGATE_TEST_CLUSTER_STATE")
    if reuse:
        existing = LocalCluster.attach(Path(reuse))
        if not existing.ready():
            pytest.fail(f"JOBGATE_TEST_CLUSTER_STATE={reuse}: the cluster there is not ready")
        _report(pytestconfig, f"reusing the cluster in {existing.state_dir}")
        yield existing
        return
    started = LocalCluster(tmp_path_factory.mktemp("cluster"))
    started.start()
    _report(
        pytestconfig,
        f"\nlocal cluster ready in {started.start_seconds:.1f}s (warm start), state in {started.state_dir}",
    )
    try:
        yield started
    finally:
        started.stop()


@pytest.fixture(scope="session")
def kube(cluster: LocalCluster) -> Iterator[client.ApiClient]:
    """An admin `kubernetes.client.ApiClient` for the session's cluster."""
    api = kube_config.new_client_from_config(config_file=str(cluster.kubeconfig))
    try:
        yield api
    finally:
        api.close()


@pytest.fixture
def namespace(kube: client.ApiClient, request: pytest.FixtureRequest) -> Iterator[str]:
    """A namespace of its own for one test (deleted afterwards, without waiting)."""
    core = client.CoreV1Api(kube)
    base = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")[:40].strip("-") or "t"
    name = f"{base}-{uuid.uuid4().hex[:6]}"
    core.create_namespace({"metadata": {"name": name, "labels": {"jobgate.io/test": "true"}}})
    # The ServiceAccount admission plugin rejects pods until the controller-manager has
    # created the namespace's `default` service account, as in any real cluster.
    eventually(lambda: has_default_account(core, name), message=f"the default service account of {name}")
    yield name
    try:
        core.delete_namespace(name)
    except ApiException as err:
        if err.status != 404:
            raise


def has_default_account(core: client.CoreV1Api, namespace: str) -> bool:
    """Whether `namespace`'s `default` ServiceAccount exists yet."""
    try:
        core.read_namespaced_service_account("default", namespace)
    except ApiException as err:
        if err.status != 404:
            raise
        return False
    return True
