"""Fixtures of the API's integration tests: the API as its own process on the session's cluster.

    api_servers   starts `python -m jobgate.api` subprocesses on free loopback ports, one per
                  distinct configuration, each with the operator (and the CRD) running
    api           the usual one: submit waits until scheduled; scheduling timeout 4 s
    stored_api    submit answers once the Job is stored; small package limit
    unbounded_api scheduling timeout 0: jobs wait for a node as long as it takes
    limited_api   as stored_api, with small limits of what an uploaded package may unpack to
    tenant        a fresh tenant id for one test (its namespace is deleted afterwards)

A failed test that used an API shows the API's log with its report.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from apiprocess import (
    SCHEDULING_TIMEOUT_MS,
    STORED_PACKAGE_LIMIT,
    UNPACKED_BYTES,
    UNPACKED_ENTRIES,
    ApiServer,
    ApiServers,
    delete_tenant_namespace,
)
from kubernetes import client


@pytest.fixture(scope="session")
def api_servers(
    identities: Any, crd: str, jobgate_operator: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ApiServers]:
    servers = ApiServers(kubeconfig=identities.api, workdir=tmp_path_factory.mktemp("api"))
    try:
        yield servers
    finally:
        servers.stop_all()


@pytest.fixture(scope="session")
def api(api_servers: ApiServers) -> ApiServer:
    return api_servers.start("scheduled", JOBGATE_SCHEDULING_TIMEOUT_MS=str(SCHEDULING_TIMEOUT_MS))


@pytest.fixture(scope="session")
def stored_api(api_servers: ApiServers) -> ApiServer:
    return api_servers.start(
        "stored",
        JOBGATE_SUBMIT_WAIT="stored",
        JOBGATE_SCHEDULING_TIMEOUT_MS=str(SCHEDULING_TIMEOUT_MS),
        JOBGATE_MAX_PACKAGE_BYTES=str(STORED_PACKAGE_LIMIT),
    )


@pytest.fixture(scope="session")
def limited_api(api_servers: ApiServers) -> ApiServer:
    return api_servers.start(
        "limited",
        JOBGATE_SUBMIT_WAIT="stored",
        JOBGATE_MAX_UNPACKED_BYTES=str(UNPACKED_BYTES),
        JOBGATE_MAX_UNPACKED_ENTRIES=str(UNPACKED_ENTRIES),
    )


@pytest.fixture(scope="session")
def unbounded_api(api_servers: ApiServers) -> ApiServer:
    return api_servers.start("unbounded", JOBGATE_SCHEDULING_TIMEOUT_MS="0")


@pytest.fixture
def tenant(kube: client.ApiClient) -> Iterator[str]:
    """A tenant no other test uses; its namespace (if the API made one) is deleted afterwards."""
    name = f"t-{uuid.uuid4().hex[:8]}"
    yield name
    delete_tenant_namespace(kube, name)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome: Any = yield
    report: pytest.TestReport = outcome.get_result()
    if not report.failed:
        return
    for value in getattr(item, "funcargs", {}).values():
        if isinstance(value, ApiServer):
            report.sections.append((f"API log ({value.name}, last lines)", value.log_tail()))
