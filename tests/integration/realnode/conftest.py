"""Fixtures of the real-node tests: a local cluster of their own, with one real node.

    real_cluster    LocalCluster(real_node=True): the control plane, kwok's fake nodes and
                    the node `real-0` (kubelet + containerd + runc, pool label real),
                    started once per session, apart from the default `cluster` fixture
    real_kube       an admin `kubernetes.client.ApiClient` for it
    real_namespace  a fresh namespace per test
    real_store      the cluster's object store (SeaweedFS with its S3 gateway, started for
                    the session): where the operator archives the pods' logs

The tests run wherever the machine can run a real node (root, cgroups, overlayfs, seccomp,
veth and bridges): on this project's machines they always run. Elsewhere they are skipped
with the missing feature in the reason (realnode.unsupported_reason()).

Set JOBGATE_TEST_REALNODE_STATE to the state directory of a cluster started with
`python -m jobgate.devcluster up --real-node --state-dir DIR` to reuse it instead.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import clusters
import pytest
from kubernetes import client

from jobgate.devcluster import LocalCluster, objectstore, realnode

REUSE_ENV = "JOBGATE_TEST_REALNODE_STATE"


@pytest.fixture(scope="session")
def real_cluster(
    tmp_path_factory: pytest.TempPathFactory, pytestconfig: pytest.Config
) -> Iterator[LocalCluster]:
    """The session's cluster with a real node (fresh, or the one named by $REUSE_ENV)."""
    if reuse := os.environ.get(REUSE_ENV):
        existing = LocalCluster.attach(Path(reuse))
        if existing.real_node is None or not existing.ready():
            pytest.fail(f"{REUSE_ENV}={reuse}: no ready cluster with a real node there")
        clusters.report(pytestconfig, f"reusing the real-node cluster in {existing.state_dir}")
        yield existing
        return
    if reason := realnode.unsupported_reason():
        pytest.skip(f"this machine cannot run a real node: {reason}")
    started = LocalCluster(tmp_path_factory.mktemp("realnode"), real_node=True)
    t0 = time.monotonic()
    started.start()  # builds the node's binaries and images first if they are not cached
    clusters.report(
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
    with clusters.admin_client(real_cluster.kubeconfig) as api:
        yield api


@pytest.fixture
def real_namespace(real_kube: client.ApiClient, request: pytest.FixtureRequest) -> Iterator[str]:
    """A namespace of its own for one test (deleted afterwards, without waiting)."""
    with clusters.own_namespace(real_kube, request) as name:
        yield name


@pytest.fixture(scope="session")
def real_store(real_cluster: LocalCluster) -> Iterator[objectstore.Store]:
    with clusters.running_store(real_cluster) as store:
        yield store
