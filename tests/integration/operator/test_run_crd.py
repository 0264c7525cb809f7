"""What the apiserver refuses (the CRD's schema and CEL rules), and what the operator refuses."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import yaml
from jobclient import Jobs

Kubectl = Callable[..., subprocess.CompletedProcess[str]]


def apply(kubectl: Kubectl, tmp_path: Path, namespace: str, spec: dict[str, object], name: str = "j") -> str:
    manifest = {
        "apiVersion": "jobgate.io/v1alpha1",
        "kind": "Job",
        "metadata": {"name": name, "namespace": namespace},
    }
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump({**manifest, "spec": spec}))
    result = kubectl("apply", "-f", str(path), check=False)
    return result.stderr if result.returncode else ""


def test_an_invalid_job_is_refused_naming_the_field(jobs: Jobs, kubectl: Kubectl, tmp_path: Path) -> None:
    error = apply(kubectl, tmp_path, jobs.namespace, {"entrypoint": "x", "resources": {"cpus": 0.1}})
    assert "spec.resources.cpus" in error
    error = apply(kubectl, tmp_path, jobs.namespace, {"entrypoint": "", "poolLabels": ["bad label!"]})
    assert "spec.entrypoint" in error
    assert "spec.poolLabels[0]" in error
    # The CEL rules are checked only on an object that has passed the schema: one at a time.
    matchers = {"onExitCodes": {"operator": "In", "values": [1]}}
    for rule, said in [
        (
            {"action": "Retry", **matchers, "onPodConditions": [{"type": "DisruptionTarget"}]},
            'spec.podFailurePolicy.rules[0]: Invalid value: "object": a rule has exactly one of '
            "onExitCodes and onPodConditions",
        ),
        (
            {"action": "Again", **matchers},
            'spec.podFailurePolicy.rules[0].action: Unsupported value: "Again"',
        ),
    ]:
        spec = {"entrypoint": "x", "podFailurePolicy": {"rules": [rule]}}
        error = apply(kubectl, tmp_path, jobs.namespace, spec)
        assert said in error, error
    assert not jobs.exists("j")


def test_the_spec_is_immutable_but_for_stop(jobs: Jobs, kubectl: Kubectl, tmp_path: Path) -> None:
    spec: dict[str, object] = {"entrypoint": "python main.py", "metadata": {"fake-duration": "600s"}}
    assert apply(kubectl, tmp_path, jobs.namespace, spec) == ""
    for change, field in [
        ({"entrypoint": "rm -rf /"}, "spec.entrypoint"),
        ({"maxAttempts": 5}, "spec.maxAttempts"),
    ]:
        error = apply(kubectl, tmp_path, jobs.namespace, {**spec, **change})
        assert f"{field} is immutable; only spec.stop may change after creation" in error
    assert apply(kubectl, tmp_path, jobs.namespace, {**spec, "stop": True}) == ""
    assert "spec.stop cannot be withdrawn" in apply(
        kubectl, tmp_path, jobs.namespace, {**spec, "stop": False}
    )
    jobs.wait("j", "STOPPED")


def test_jobs_can_be_listed_by_state(jobs: Jobs, kubectl: Kubectl) -> None:
    jobs.create("listed")
    jobs.wait("listed", "SUCCEEDED")
    found = kubectl(
        "get", "jgj", "-n", jobs.namespace, "--field-selector", "status.state=SUCCEEDED", "-o", "name"
    )
    assert found.stdout.split() == ["job.jobgate.io/listed"]
    none = kubectl(
        "get", "jgj", "-n", jobs.namespace, "--field-selector", "status.state=RUNNING", "-o", "name"
    )
    assert none.stdout.split() == []


def test_a_job_this_deployment_cannot_run_fails_without_a_pod(jobs: Jobs) -> None:
    jobs.create("tpu", resources={"custom": {"TPU": 1}})
    job = jobs.wait("tpu", "FAILED")
    assert job["status"]["errorType"] == "InvalidSpec"
    assert job["status"]["message"].startswith("spec.resources.custom.TPU: unknown custom resource 'TPU'")
    assert not jobs.pods("tpu")


def test_an_image_from_a_registry_not_allowed_fails_without_a_pod(jobs: Jobs) -> None:
    # The test operator's job image is python:3.11-slim: Docker Hub is the only registry.
    jobs.create("miner", runtimeEnv={"image_uri": "ghcr.io/evil/miner:1"})
    job = jobs.wait("miner", "FAILED")
    assert job["status"]["errorType"] == "InvalidSpec"
    assert job["status"]["message"].startswith(
        "spec.runtimeEnv.image_uri: image 'ghcr.io/evil/miner:1' (ghcr.io/evil/miner:1) is not allowed here"
    )
    assert not jobs.pods("miner")


def test_a_job_claiming_another_tenant_fails_without_a_pod(jobs: Jobs) -> None:
    """A kubectl user of one namespace cannot take another tenant's per-tenant rules (its
    file:// root, its pools) by writing its name into spec.tenant."""
    jobs.create("claims", tenant="acme", runtimeEnv={"working_dir": "file:///usr1/deploy/file.zip"})
    job = jobs.wait("claims", "FAILED")
    assert job["status"]["errorType"] == "InvalidSpec"
    assert job["status"]["message"] == (
        f"spec.tenant: tenant 'acme' has its jobs in namespace jobgate-t-acme, not {jobs.namespace}"
    )
    assert not jobs.pods("claims")
