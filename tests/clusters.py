"""What the cluster fixtures of both suites (kwok's, and the real node's) share."""

from __future__ import annotations

import contextlib
import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client
from kubernetes import config as kube_config
from kubernetes.client.rest import ApiException
from waiting import eventually

from jobgate.devcluster import LocalCluster, objectstore


def report(config: pytest.Config, line: str) -> None:
    """Show `line` on the terminal even while pytest captures output."""
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    capture = config.pluginmanager.get_plugin("capturemanager")
    if reporter is None:
        return
    with capture.global_and_fixture_disabled() if capture else contextlib.nullcontext():
        reporter.write_line(line)


@contextlib.contextmanager
def admin_client(kubeconfig: Path) -> Iterator[client.ApiClient]:
    api = kube_config.new_client_from_config(config_file=str(kubeconfig))
    try:
        yield api
    finally:
        api.close()


@contextlib.contextmanager
def own_namespace(kube: client.ApiClient, request: pytest.FixtureRequest) -> Iterator[str]:
    """A namespace named after the test, ready for pods; deleted afterwards, without waiting."""
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


@contextlib.contextmanager
def running_store(cluster: LocalCluster) -> Iterator[objectstore.Store]:
    """The cluster's object store (SeaweedFS with its S3 gateway), a process of its own
    named apart from any other, stopped afterwards."""
    store = objectstore.start(cluster, name=f"objectstore-{uuid.uuid4().hex[:6]}")
    try:
        yield store
    finally:
        cluster.processes[store.name].stop()
