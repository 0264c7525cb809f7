"""A stored Job as the API shows it."""

from __future__ import annotations

from typing import Any

from pydantic import TypeAdapter

from jobgate.api import views
from jobgate.core import jobs

JOB: dict[str, Any] = {
    "metadata": {"name": "app-1", "namespace": "ns", "uid": "u", "creationTimestamp": "2025-01-02T03:04:05Z"},
    "spec": {
        "submissionId": "app-1",
        "entrypoint": "python x.py",
        "metadata": {"a": "b"},
        "runtimeEnv": {"working_dir": "https://e.com/a.zip"},
    },
}


def with_status(**status: Any) -> dict[str, Any]:
    return {**JOB, "status": status}


def show(body: dict[str, Any]) -> views.models.RayJobDetails:
    return views.details(jobs.parse(body))


def scheduled(body: dict[str, Any]) -> bool:
    return views.is_scheduled(jobs.parse(body))


def test_a_new_job_is_pending_since_its_submission() -> None:
    details = show(JOB)
    assert details.status == "PENDING"
    assert details.message == "Job has not started yet."
    assert details.start_time == 1735787045000  # the creation time, in ms
    assert (details.end_time, details.driver_info, details.error_type, details.driver_exit_code) == (
        None,
        None,
        None,
        None,
    )
    assert (details.submission_id, details.job_id, details.type) == ("app-1", "app-1", "SUBMISSION")
    assert details.metadata == {"a": "b"}
    assert details.runtime_env == {"working_dir": "https://e.com/a.zip"}


def test_a_finished_job_shows_its_pod_node_times_and_exit_code() -> None:
    details = show(
        with_status(
            state="FAILED",
            message="Job entrypoint command failed with exit code 3",
            errorType="Failed",
            startTime="2025-01-02T03:04:05.678Z",
            endTime="2025-01-02T03:04:07.001Z",
            exitCode=3,
            podName="app-1-1",
            nodeName="cpu-a-0",
            hostIp="127.0.0.1",
        )
    )
    assert (details.start_time, details.end_time) == (1735787045678, 1735787047001)
    assert details.driver_info is not None
    assert (details.driver_info.id, details.driver_info.node_ip_address) == ("app-1-1", "127.0.0.1")
    assert (details.driver_node_id, details.driver_exit_code, details.error_type) == ("cpu-a-0", 3, "Failed")
    assert details.message == "Job entrypoint command failed with exit code 3"


def test_error_type_and_end_time_only_once_terminal() -> None:
    running = show(with_status(state="RUNNING", errorType="x", endTime="2025-01-02T03:04:07Z"))
    assert (running.error_type, running.end_time, running.message) == (
        None,
        None,
        "Job is currently running.",
    )
    assert show(with_status(state="SUCCEEDED", errorType=None)).error_type is None
    assert show(with_status(state="STOPPED", errorType="Stopped")).error_type == "Stopped"


def test_a_job_applied_by_hand_is_shown_too() -> None:
    bare = {"metadata": {"name": "by-hand", "namespace": "ns", "uid": "u"}, "spec": {"entrypoint": "true"}}
    details = show(bare)
    assert (details.submission_id, details.start_time, details.metadata, details.runtime_env) == (
        "by-hand",
        None,
        {},
        {},
    )
    assert show({**bare, "status": {"state": "NONSENSE"}}).status == "PENDING"


def test_scheduled_is_the_scheduled_condition() -> None:
    condition = {"type": "Scheduled", "status": "True", "reason": "Scheduled", "lastTransitionTime": "x"}
    assert scheduled(with_status(conditions=[condition]))
    assert not scheduled(with_status(conditions=[{**condition, "status": "False"}]))
    assert not scheduled(JOB)


def test_milliseconds_are_exact() -> None:
    assert views.milliseconds("1970-01-01T00:00:00.001Z") == 1
    assert views.milliseconds("2025-01-02T03:04:05.999999Z") == 1735787045999
    assert views.milliseconds("2025-01-02T04:04:05+01:00") == 1735787045000
    assert views.milliseconds(None) is None


def test_rays_dialect_names_a_failure_as_rays_server_does() -> None:
    def as_sent(details: type[views.models.JobDetails], **status: Any) -> Any:
        return TypeAdapter(details).dump_python(show(with_status(**status)), mode="json")["error_type"]

    ray, seed = views.models.RayJobDetails, views.models.JobDetails
    assert as_sent(ray, state="FAILED", errorType="StartFailed") == "RUNTIME_ENV_SETUP_FAILURE"
    assert as_sent(ray, state="FAILED", errorType="Failed") == "JOB_ENTRYPOINT_COMMAND_ERROR"
    assert as_sent(ray, state="FAILED", errorType="SomethingNew") == "JOB_SUPERVISOR_ACTOR_UNKNOWN_FAILURE"
    assert as_sent(ray, state="STOPPED", errorType="Stopped") is None  # Ray gives a stop no error type
    assert as_sent(seed, state="FAILED", errorType="StartFailed") == "StartFailed"


def test_rays_details_show_the_resources_asked_for_as_ray_does() -> None:
    asked = {**JOB, "spec": {**JOB["spec"], "resources": {"cpus": 2, "memory": 268435456, "gpus": 1}}}
    details = show(asked)
    assert (details.entrypoint_num_cpus, details.entrypoint_memory, details.entrypoint_num_gpus) == (
        2,
        268435456,
        1,
    )
    assert details.entrypoint_resources is None  # none asked for
    custom = {**JOB, "spec": {**JOB["spec"], "resources": {"custom": {"NPU": 2}}}}
    details = show(custom)
    assert details.entrypoint_resources == {"NPU": 2}
    assert (details.entrypoint_num_cpus, details.entrypoint_memory) == (0, 0)  # Ray's "none": the default
