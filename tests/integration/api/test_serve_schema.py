"""schemathesis against the API's own OpenAPI document, both dialects: every operation, with
generated valid and invalid requests, answers a documented status code, with a documented
content type and a body matching the documented schema, and never a 5xx but the documented
scheduling-timeout 500 (`create app failed, ...`).

Bounded (a few examples per operation, no deadline): a run takes a minute or two. Jobs it
submits land in tenants' namespaces that it deletes afterwards.
"""

from __future__ import annotations

from collections.abc import Iterator

import hypothesis
import pytest
import requests
import schemathesis
from apiprocess import ApiServer
from kubernetes import client
from schemathesis import checks

EXAMPLES = 12  # per operation and generation mode
TENANT_LABEL = "jobgate.io/tenant"


@pytest.fixture(scope="module")
def tenant_namespaces_made_here(kube: client.ApiClient) -> Iterator[None]:
    """Deletes, after the module, the tenant namespaces that fuzzed submissions made."""
    core = client.CoreV1Api(kube)
    before = {ns.metadata.name for ns in core.list_namespace(label_selector=TENANT_LABEL).items}
    yield
    for namespace in core.list_namespace(label_selector=TENANT_LABEL).items:
        if namespace.metadata.name not in before:
            core.delete_namespace(namespace.metadata.name)


def no_undocumented_server_error(
    ctx: schemathesis.CheckContext, response: schemathesis.Response, case: schemathesis.Case
) -> bool | None:
    """A 5xx only as the seed's documented scheduling failure."""
    if response.status_code >= 500 and not response.text.lstrip('"').startswith("create app failed"):
        raise AssertionError(f"{response.status_code} from {case.method} {case.path}: {response.text[:300]}")
    return None


CHECKS = [
    no_undocumented_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_headers_conformance,
    checks.response_schema_conformance,
    checks.negative_data_rejection,
]


def test_every_operation_keeps_to_its_document(
    stored_api: ApiServer, tenant_namespaces_made_here: None
) -> None:
    # The stored API: submit answers once the Job is stored, so a fuzzed job that fits no
    # node does not hold the run up for the scheduling timeout.
    schema = schemathesis.openapi.from_url(f"{stored_api.url}/openapi.json")
    failures: dict[str, str] = {}
    with requests.Session() as session:
        session.trust_env = False  # loopback only: never through a proxy

        for result in schema.get_all_operations():
            operation = result.ok()

            @hypothesis.settings(
                max_examples=EXAMPLES,
                deadline=None,
                suppress_health_check=list(hypothesis.HealthCheck),
                database=None,
                phases=[
                    hypothesis.Phase.explicit,
                    hypothesis.Phase.generate,
                ],  # no shrinking: report as found
            )
            @hypothesis.given(case=operation.as_strategy())
            def conforms(case: schemathesis.Case) -> None:
                case.call_and_validate(session=session, checks=CHECKS)

            try:
                conforms()
            except Exception as e:  # every operation is tried; each one's first failure is reported
                failures[operation.label] = str(e)[:2000]
    assert failures == {}
