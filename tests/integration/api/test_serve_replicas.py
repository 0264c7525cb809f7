"""Two operators electing a leader and two APIs, as deploy/ runs them; one of each killed mid-flight.

The operators run as deploy/'s ServiceAccount (so its leader-election Role is proven too),
with JSON logs and metrics on, and a short lease so that the standby takes over quickly.
The session's own operator is stopped meanwhile: only the pair does the work.
"""

from __future__ import annotations

import concurrent.futures
import json
import urllib.request
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from apiprocess import ApiServer, ApiServers, free_port
from kubernetes import client
from prometheus_client.parser import text_string_to_metric_families
from waiting import eventually

from jobgate.crds import models, names

LEASE_SECONDS = 4
JOB = {"entrypoint": "true", "runtime_env": {"working_dir": "https://example.com/job.zip"}}
DURATION = {"fake-duration": "3s"}
BATCH = 8  # jobs per API before the kills, and jobs sent to the doomed API during them


def test_a_killed_leader_and_a_killed_api_lose_and_double_nothing(
    api_servers: ApiServers,
    operator_processes: Callable[..., Any],
    jobgate_operator: Any,
    kube: client.ApiClient,
    tenant: str,
) -> None:
    lease = f"jobgate-system/ha-{uuid.uuid4().hex[:8]}"
    namespace = names.tenant_namespace(tenant, prefix=names.DEFAULT_NAMESPACE_PREFIX)
    jobgate_operator.stop()
    try:
        ports = {name: free_port() for name in ("a", "b")}
        operators = {
            name: operator_processes(
                name,
                JOBGATE_OPERATOR_LEASE=lease,
                JOBGATE_OPERATOR_LEASE_SECONDS=str(LEASE_SECONDS),
                JOBGATE_OPERATOR_METRICS_PORT=str(port),
                JOBGATE_LOG_FORMAT="json",
            )
            for name, port in ports.items()
        }

        def leading() -> str | None:
            return next(
                (name for name in ports if _metric(ports[name], "jobgate_operator_leader") == 1), None
            )

        leader = eventually(leading, message="a leader")
        standby = "b" if leader == "a" else "a"
        doomed, survivor = (
            api_servers.start(f"replica-{name}", JOBGATE_LOG_FORMAT="json") for name in ("doomed", "survivor")
        )

        # Before the kills: both APIs take jobs; either one sees the other's at once.
        ids = [_submit(doomed, tenant, f"pre-a{i}") for i in range(BATCH)]
        ids += [_submit(survivor, tenant, f"pre-b{i}") for i in range(BATCH)]
        with survivor.client(tenant) as http:
            assert http.get(f"/api/jobs/{ids[0]}").status_code == 200

        # The leader dies; submits to the doomed API wait for a pod nobody makes until the
        # standby takes the lease, and the doomed API dies while they wait: once it has
        # stored every one of their Jobs (it waits for the pod only after that).
        operators[leader].kill()
        cut = {f"app-cut{i}" for i in range(BATCH)}
        with concurrent.futures.ThreadPoolExecutor(BATCH) as pool:
            waiting = [pool.submit(_try_submit, doomed, tenant, f"cut{i}") for i in range(BATCH)]
            eventually(
                lambda: cut <= _submission_ids(kube, namespace),
                message=lambda: f"the doomed API to store {sorted(cut - _submission_ids(kube, namespace))}",
            )
            doomed.kill()
            answers = [future.result() for future in waiting]
        assert all(status is None for status, _ in answers), answers  # every one was cut

        # Each cut client retries on the other replica with the same id: its job, or the duplicate error.
        for i in range(BATCH):
            with survivor.client(tenant) as http:
                response = http.post(
                    "/api/jobs", json={**JOB, "submission_id": f"cut{i}", "metadata": DURATION}
                )
            assert response.status_code in (200, 400), response.text
            if response.status_code == 400:
                assert response.json() == f"submit job has already exist, submissionId: app-cut{i}"
            ids.append(f"app-cut{i}")

        with survivor.client(tenant) as http:
            for submission_id in ids:
                eventually(
                    lambda path=f"/api/jobs/{submission_id}": http.get(path).json()["status"] == "SUCCEEDED",
                    timeout=90,
                    message=f"{submission_id} to succeed",
                )

        jobs = client.CustomObjectsApi(kube).list_namespaced_custom_object(
            models.GROUP, models.VERSION, namespace, models.PLURAL
        )["items"]
        assert sorted(job["spec"]["submissionId"] for job in jobs) == sorted(ids)  # none lost, none doubled
        pods = client.CoreV1Api(kube).list_namespaced_pod(namespace).items
        pods_per_job: dict[str, int] = {}
        for pod in pods:
            name = pod.metadata.labels[models.LABEL_JOB_NAME]
            pods_per_job[name] = pods_per_job.get(name, 0) + 1
        assert pods_per_job == {job["metadata"]["name"]: 1 for job in jobs}
        assert all(job["status"]["attempts"] == 1 for job in jobs)

        # The standby leads now, and says so; its metrics and logs tell what it did.
        assert _metric(ports[standby], "jobgate_operator_leader") == 1
        assert _metric(ports[standby], "jobgate_operator_pods_created_total") >= BATCH
        assert _metric(ports[standby], "jobgate_operator_job_transitions_total", state="SUCCEEDED") >= BATCH
        assert _metric(ports[standby], "jobgate_operator_reconcile_duration_seconds_count") > 0
        lines = _json_lines(operators[standby].log_path)
        assert any(line.get("job") == f"{namespace}/{names.job_name('app-cut0')}" for line in lines)
        api_lines = _json_lines(survivor.log_path)
        assert any(
            line.get("submission_id") == "app-cut0" and line["logger"] == "uvicorn.access"
            for line in api_lines
        )
    finally:
        jobgate_operator.start()


def _submit(api: ApiServer, tenant: str, submission_id: str) -> str:
    with api.client(tenant) as http:
        response = http.post("/api/jobs", json={**JOB, "submission_id": submission_id, "metadata": DURATION})
    assert response.status_code == 200, response.text
    created: str = response.json()["submission_id"]
    return created


def _try_submit(api: ApiServer, tenant: str, submission_id: str) -> tuple[int | None, str]:
    """(status, body), or (None, why) when the connection was cut."""
    try:
        with api.client(tenant) as http:
            response = http.post(
                "/api/jobs", json={**JOB, "submission_id": submission_id, "metadata": DURATION}
            )
    except httpx.TransportError as e:
        return None, repr(e)
    return response.status_code, response.text


def _submission_ids(kube: client.ApiClient, namespace: str) -> set[str]:
    """The submission ids of the Jobs stored in `namespace`."""
    jobs = client.CustomObjectsApi(kube).list_namespaced_custom_object(
        models.GROUP, models.VERSION, namespace, models.PLURAL
    )["items"]
    return {job["spec"]["submissionId"] for job in jobs}


def _metric(port: int, name: str, **labels: str) -> float:
    """The value of one sample of the operator's /metrics (0 when absent)."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return float(sample.value)
    return 0.0


def _json_lines(path: Path) -> list[dict[str, Any]]:
    """Every log line, each of which must be one JSON object (the fixtures' own markers aside)."""
    lines = [line for line in path.read_text().splitlines() if line and not line.startswith("=====")]
    return [json.loads(line) for line in lines]
