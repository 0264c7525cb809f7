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

import os
from collections.abc import Iterator
from pathlib import Path

import clusters
import pytest
from kubernetes import client

from jobgate.devcluster import LocalCluster, objectstore

CLUSTER_FIXTURES = frozenset({"cluster", "kube", "namespace", "store"})


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if CLUSTER_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.cluster)


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory, pytestconfig: pytest.Config) -> Iterator[LocalCluster]:
    """The session's local cluster (fresh, or the one named by JOBGATE_TEST_CLUSTER_STATE)."""
    reuse = os.environ.get("JOBGATE_TEST_CLUSTER_STATE")
    if reuse:
        existing = LocalCluster.attach(Path(reuse))
        if not existing.ready():
            pytest.fail(f"JOBGATE_TEST_CLUSTER_STATE={reuse}: the cluster there is not ready")
        clusters.report(pytestconfig, f"reusing the cluster in {existing.state_dir}")
        yield existing
        return
    started = LocalCluster(tmp_path_factory.mktemp("cluster"))
    started.start()
    clusters.report(
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
    with clusters.admin_client(cluster.kubeconfig) as api:
        yield api


@pytest.fixture
def namespace(kube: client.ApiClient, request: pytest.FixtureRequest) -> Iterator[str]:
    """A namespace of its own for one test (deleted afterwards, without waiting)."""
    with clusters.own_namespace(kube, request) as name:
        yield name


@pytest.fixture(scope="session")
def store(cluster: LocalCluster) -> Iterator[objectstore.Store]:
    """The session cluster's object store (SeaweedFS, S3), started at the first test asking."""
    with clusters.running_store(cluster) as started:
        yield started
