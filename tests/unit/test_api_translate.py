"""The one translation from a submit request to a Job: ids, defaults, resources, refusals."""

from __future__ import annotations

import re
from typing import Any

import pytest

from jobgate.api import config, errors, models, translate
from jobgate.crds import models as crd
from jobgate.crds import names

SETTINGS = config.Settings(scheduling_timeout_ms=5000, job_ttl_seconds=600)
SEED = models.Dialect.SEED
RAY = models.Dialect.RAY


def seed_spec(pool_labels: tuple[str, ...] = (), **fields: Any) -> crd.JobSpec:
    body = {"entrypoint": "python x.py", "runtime_env": {"working_dir": "https://e.com/a.zip"}, **fields}
    request = models.SubmitRequest.model_validate(body)
    return translate.job_spec(
        request, dialect=SEED, tenant="acme", pool_labels=pool_labels, settings=SETTINGS
    )


def ray_spec(**fields: Any) -> crd.JobSpec:
    request = models.RaySubmitRequest.model_validate({"entrypoint": "python x.py", **fields})
    return translate.job_spec(request, dialect=RAY, tenant="acme", pool_labels=(), settings=SETTINGS)


@pytest.mark.parametrize(
    ("given", "expected"),
    [("app-1234", "app-1234"), ("1234", "app-1234"), ("x", "app-x"), ("a" * 60, "app-" + "a" * 60)],
)
def test_seed_ids_get_the_app_prefix(given: str, expected: str) -> None:
    assert translate.submission_id(given, dialect=SEED) == expected


@pytest.mark.parametrize("given", [None, ""])
def test_seed_ids_are_generated_when_absent(given: str | None) -> None:
    generated = translate.submission_id(given, dialect=SEED)
    assert re.fullmatch(r"app-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", generated)


@pytest.mark.parametrize("given", ["a" * 61, "App", "a_b", "a b", "app-driver", "driver-1", "x/y"])
def test_seed_ids_outside_the_rule_are_refused(given: str) -> None:
    with pytest.raises(errors.InvalidRequestError, match=r"submission_id must match \^\[a-z0-9-\]\{1,64\}\$"):
        translate.submission_id(given, dialect=SEED)


@pytest.mark.parametrize("given", ["raysubmit_AbC123", "My_Job-1", "app-1234", "a" * 64])
def test_ray_ids_are_kept_as_they_are(given: str) -> None:
    assert translate.submission_id(given, dialect=RAY) == given


def test_ray_ids_are_generated_like_rays() -> None:
    assert re.fullmatch(r"raysubmit_[A-Za-z0-9]{16}", translate.submission_id(None, dialect=RAY))


@pytest.mark.parametrize("given", ["a" * 65, "bad id", "x.y", "ü"])
def test_ray_ids_outside_the_crd_pattern_are_refused(given: str) -> None:
    with pytest.raises(errors.InvalidRequestError, match="submission_id must match"):
        translate.submission_id(given, dialect=RAY)


def test_the_seed_request_becomes_the_job_it_describes() -> None:
    spec = seed_spec(
        ("pool-cpu-a", "unUseAntiOtherLabels"),
        submission_id="app-1234",
        metadata={"ttl": "1250"},
        entrypoint_num_cpus=3,
        entrypoint_memory=134217728,
        entrypoint_resources={"NPU": 0},
        runtime_env={
            "working_dir": "https://e.com/a.zip",
            "env_vars": {"A": "b"},
            "pip": ["numpy==1.24"],
            "x": 1,
        },
    )
    assert spec.submission_id == "app-1234"
    assert spec.resources == crd.Resources(cpus=3, memory=134217728, gpus=0, custom={"NPU": 0})
    assert spec.runtime_env.env_vars == {"A": "b"}
    assert spec.runtime_env.pip == ["numpy==1.24"]
    assert spec.runtime_env.model_extra == {"x": 1}  # unknown runtime_env keys are kept
    assert spec.pool_labels == ["pool-cpu-a", "unUseAntiOtherLabels"]
    assert spec.metadata == {"ttl": "1250"}
    assert (spec.tenant, spec.scheduling_timeout_ms, spec.ttl_seconds_after_finished) == ("acme", 5000, 600)


def test_absent_resources_are_left_to_the_deployments_defaults() -> None:
    spec = seed_spec()
    assert (spec.resources.cpus, spec.resources.memory, spec.resources.gpus, spec.resources.custom) == (
        None,
        None,
        0,
        {},
    )


def test_ray_requests_map_onto_the_same_spec() -> None:
    spec = ray_spec(
        job_id="old_style",
        runtime_env={"pip": {"packages": ["requests"], "pip_check": False}, "_ray_commit": "abc"},
        entrypoint_num_cpus=0,
        entrypoint_memory=0,
        entrypoint_num_gpus=1,
    )
    assert spec.submission_id == "old_style"  # Ray's deprecated job_id
    assert spec.runtime_env.pip == ["requests"]
    assert spec.runtime_env.working_dir is None  # optional in Ray's dialect
    assert spec.runtime_env.model_extra == {"_ray_commit": "abc"}
    assert (spec.resources.cpus, spec.resources.memory, spec.resources.gpus) == (None, None, 1)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        (
            {"entrypoint_resources": {"TPU": 1}},
            "entrypoint_resources.TPU: unknown custom resource 'TPU' (allowed: NPU)",
        ),
        ({"entrypoint_resources": {"NPU": 1.5}}, "entrypoint_resources.NPU: 1.5 is not a whole number"),
        ({"entrypoint_num_gpus": 0.5}, "entrypoint_num_gpus: 0.5 is not a whole number"),
        (
            {"runtime_env": {"working_dir": "ftp://a/b.zip"}},
            "runtime_env.working_dir: cannot fetch 'ftp://a/b.zip'",
        ),
        (
            {"runtime_env": {"working_dir": "gcs://_ray_pkg_a.zip"}},
            "(allowed: http, https)",
        ),  # no package URL
    ],
)
def test_what_the_operator_could_not_run_is_refused_naming_the_field(
    fields: dict[str, Any], message: str
) -> None:
    with pytest.raises(errors.InvalidRequestError) as refused:
        seed_spec(**fields)
    assert message in refused.value.text


def test_a_label_selector_is_refused_in_rays_dialect() -> None:
    with pytest.raises(errors.InvalidRequestError, match="entrypoint_label_selector is not supported"):
        ray_spec(entrypoint_label_selector={"zone": "a"})
    assert ray_spec(entrypoint_label_selector={}).entrypoint == "python x.py"


def test_the_manifest_names_and_labels_the_job() -> None:
    spec = ray_spec(submission_id="raysubmit_AbC")
    manifest = translate.manifest(spec, namespace="jobgate-t-acme")
    meta = manifest["metadata"]
    assert (manifest["apiVersion"], manifest["kind"]) == ("jobgate.io/v1alpha1", "Job")
    assert meta["name"] == names.job_name("raysubmit_AbC")
    assert meta["namespace"] == "jobgate-t-acme"
    assert meta["labels"] == {"jobgate.io/submission-id": "raysubmit_AbC", "jobgate.io/tenant": "acme"}
    assert meta["annotations"] == {"jobgate.io/submission-id": "raysubmit_AbC", "jobgate.io/tenant": "acme"}
    assert manifest["spec"]["submissionId"] == "raysubmit_AbC"
    assert "workingDir" not in manifest["spec"]["runtimeEnv"]
    # Stored as the client gave it, with none of the defaults (Ray's details show it so).
    assert manifest["spec"]["runtimeEnv"] == spec.runtime_env.model_dump(exclude_unset=True)
    assert "pip" not in manifest["spec"]["runtimeEnv"]
    assert crd.JobSpec.model_validate(manifest["spec"]) == spec  # what is stored reads back the same


@pytest.mark.parametrize(
    ("loc", "field"),
    [
        (("resources", "gpus"), "entrypoint_num_gpus"),
        (("resources", "custom", "NPU"), "entrypoint_resources.NPU"),
        (("runtimeEnv", "working_dir"), "runtime_env.working_dir"),
        (("poolLabels", "0"), "X-Pool-Label.0"),  # the header's first label
    ],
)
def test_spec_fields_are_named_as_the_request_names_them(loc: tuple[str, ...], field: str) -> None:
    assert translate.request_field(loc) == field


FAIL_ON_42 = '{"rules": [{"action": "FailJob", "onExitCodes": {"operator": "In", "values": [42]}}]}'


def test_retries_come_from_the_metadata_in_both_dialects() -> None:
    metadata = {crd.METADATA_MAX_ATTEMPTS: "3", crd.METADATA_POD_FAILURE_POLICY: FAIL_ON_42}
    for spec in (seed_spec(metadata=metadata), ray_spec(metadata=metadata)):
        assert spec.max_attempts == 3
        assert spec.pod_failure_policy is not None
        assert spec.pod_failure_policy.rules[0].action == crd.RetryAction.FAIL_JOB
        assert spec.metadata == metadata  # kept, and echoed back, as any metadata
    assert (ray_spec().max_attempts, ray_spec().pod_failure_policy) == (1, None)


@pytest.mark.parametrize(
    ("metadata", "said"),
    [
        ({crd.METADATA_MAX_ATTEMPTS: "x"}, 'metadata.jobgate.io/max-attempts must be an integer, got "x"'),
        (
            {crd.METADATA_MAX_ATTEMPTS: "1000"},
            'metadata.jobgate.io/max-attempts must be less than or equal to 100, got "1000"',
        ),
        (
            {crd.METADATA_POD_FAILURE_POLICY: "{rules"},
            "metadata.jobgate.io/pod-failure-policy must be a JSON podFailurePolicy",
        ),
        (
            {crd.METADATA_POD_FAILURE_POLICY: '{"rules": [{"action": "Retry"}]}'},
            "metadata.jobgate.io/pod-failure-policy.rules.0 a rule has exactly one of onExitCodes and "
            "onPodConditions",
        ),
        (
            {crd.METADATA_POD_FAILURE_POLICY: '{"rules": [{"action": "Again", "onExitCodes": {}}]}'},
            "metadata.jobgate.io/pod-failure-policy.rules.0.action must be 'FailJob', 'Retry' or 'Ignore'",
        ),
    ],
    ids=["not-a-number", "too-many", "not-json", "no-matcher", "unknown-action"],
)
def test_a_bad_retry_policy_is_refused_naming_the_metadata_key(metadata: dict[str, str], said: str) -> None:
    with pytest.raises(errors.InvalidRequestError) as refused:
        ray_spec(metadata=metadata)
    assert str(refused.value).startswith(said), str(refused.value)
