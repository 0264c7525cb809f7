"""Fixtures of the operator's integration tests: `jobs` (a Job client for the test's
namespace, with the operator running) and `kubectl` (the built kubectl)."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from typing import Any

import pytest
from jobclient import Jobs
from kubernetes import client

from jobgate.devcluster import LocalCluster


@pytest.fixture
def jobs(kube: client.ApiClient, namespace: str, jobgate_operator: Any) -> Jobs:
    return Jobs(kube=kube, namespace=namespace)


@pytest.fixture
def kubectl(cluster: LocalCluster) -> Callable[..., subprocess.CompletedProcess[str]]:
    """The built kubectl against the test cluster (`check=False`: look at the result)."""
    return cluster.kubectl
