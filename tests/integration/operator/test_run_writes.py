"""The operator's apiserver writes per job stay what operator/README.md says: no spam."""

from __future__ import annotations

import collections
import re
import subprocess
from collections.abc import Callable

from jobclient import Jobs

JOBS = 10
Kubectl = Callable[..., subprocess.CompletedProcess[str]]


def writes(kubectl: Kubectl) -> collections.Counter[str]:
    """apiserver_request_total of the write verbs, by "VERB resource[/subresource]"."""
    counts: collections.Counter[str] = collections.Counter()
    for line in kubectl("get", "--raw", "/metrics").stdout.splitlines():
        if line.startswith("apiserver_request_total{"):
            labels = dict(re.findall(r'(\w+)="([^"]*)"', line))
            if labels["verb"] in ("POST", "PUT", "PATCH", "DELETE", "APPLY"):
                resource = "/".join(filter(None, (labels["resource"], labels.get("subresource"))))
                counts[f"{labels['verb']} {resource}"] += int(float(line.rsplit(" ", 1)[1]))
    return counts


def test_a_successful_job_costs_one_pod_two_status_patches_and_one_event(
    jobs: Jobs, kubectl: Kubectl
) -> None:
    before = writes(kubectl)
    names = [f"w-{i}" for i in range(JOBS)]
    for name in names:
        jobs.create(name, poolLabels=["pool-cpu-a", "pool-cpu-b"])
    for name in names:
        jobs.wait(name, "SUCCEEDED")
    after = writes(kubectl)
    delta = {key: after[key] - before[key] for key in after}
    assert delta["POST pods"] == JOBS
    # RUNNING (bound and running: one burst of pod events, handled as one) and SUCCEEDED.
    # Nothing is written while the pod only waits for the scheduler. On a loaded machine a
    # burst can straddle the batching window (queueing.POD_BATCH): a job or two then pays
    # one more patch, never more than that.
    assert 2 * JOBS <= delta["PATCH jobs/status"] <= 2 * JOBS + 2, delta
    # Ours (Succeeded) and the scheduler's (Scheduled) per job.
    assert delta["POST events"] == 2 * JOBS
    assert delta.get("PATCH jobs", 0) == delta.get("PUT jobs", 0) == 0  # no kopf annotations, no finalizers
