"""The seed's request body, as a Job, runs as the seed says; exit codes are reported."""

from __future__ import annotations

from jobclient import Jobs

from jobgate.operator import podspec

SEED_SPEC = {
    "submissionId": "app-1234",
    "entrypoint": "python script.py",
    "runtimeEnv": {
        "working_dir": "file:///usr1/deploy/file.zip",
        "env_vars": {"SOURCE_REGION": "suzhou_std", "DEPLOY_REGION": "suzhou_std"},
        "pip": ["numpy==1.24", "scipy==1.11.0"],
    },
    "resources": {"cpus": 3, "memory": 134217728, "custom": {"NPU": 0}},
    "poolLabels": ["pool-cpu-a"],
}
SEED_METADATA = {"autoscenes_ids": "auto_1-test", "task_type": "task_1", "ttl": "1250"}


def test_the_seed_job_gets_its_pod_and_succeeds(jobs: Jobs) -> None:
    jobs.create("app-1234", metadata=SEED_METADATA, **SEED_SPEC)
    job = jobs.wait("app-1234", "SUCCEEDED")

    (pod,) = jobs.pods("app-1234")
    (container,) = pod.spec.containers
    assert container.resources.requests == container.resources.limits == {"cpu": "3", "memory": "134217728"}
    assert {(e.name, e.value) for e in container.env} == {
        ("SOURCE_REGION", "suzhou_std"),
        ("DEPLOY_REGION", "suzhou_std"),
        ("HOME", podspec.JOB_HOME),  # the job's user has no home in the image
        ("PYTHONPATH", podspec.SITE_PACKAGES),  # where pip installed the requirements
    }
    assert container.command[-1] == "python script.py"
    (install,) = [c for c in pod.spec.init_containers if c.name == podspec.INSTALL_CONTAINER]
    assert install.command[-1] == "numpy==1.24\nscipy==1.11.0"  # handed to pip before the entrypoint
    assert "pip install" in install.command[2]
    (term,) = (
        pod.spec.affinity.node_affinity.required_during_scheduling_ignored_during_execution.node_selector_terms
    )
    assert [(e.key, e.operator) for e in term.match_expressions] == [("pool-cpu-a", "Exists")]
    assert pod.spec.node_name.startswith("cpu-a-")
    assert pod.spec.restart_policy == "Never"
    assert pod.spec.automount_service_account_token is False
    assert pod.metadata.annotations["metadata.jobgate.io/task_type"] == "task_1"
    assert pod.metadata.labels["jobgate.io/submission-id"] == "app-1234"

    status = job["status"]
    assert (status["exitCode"], status["podName"], status["nodeName"]) == (
        0,
        pod.metadata.name,
        pod.spec.node_name,
    )
    assert status["attempts"] == 1
    assert status["startTime"] <= status["endTime"]
    assert jobs.condition(job, "Scheduled")["status"] == "True"
    assert jobs.condition(job, "Finished")["reason"] == "Succeeded"
    assert [e.reason for e in jobs.events("app-1234")] == ["Succeeded"]


def test_a_non_zero_exit_code_fails_the_job_and_says_so(jobs: Jobs) -> None:
    jobs.create("exit-3", metadata={"fake-exit-code": "3"})
    job = jobs.wait("exit-3", "FAILED")
    assert job["status"]["exitCode"] == 3
    assert "exit code 3" in job["status"]["message"]
    assert job["status"]["errorType"] == "Failed"
    assert jobs.condition(job, "Finished")["reason"] == "Failed"
