"""The operator's settings from environment variables (pydantic-settings)."""

from __future__ import annotations

import pytest

from jobgate.crds import fetch_working_dir, policy
from jobgate.operator import config


def load(monkeypatch: pytest.MonkeyPatch, **variables: str) -> config.Config:
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    return policy.load(config.Config)


def test_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = load(monkeypatch)
    assert settings.image == settings.fetch_image == "python:3.11-slim"
    assert dict(settings.resources.custom) == {"NPU": "huawei.com/Ascend910"}
    assert settings.resources.gpu == "nvidia.com/gpu"
    assert (settings.resources.default_cpus, settings.resources.default_memory) == (0.3, 134217728)
    assert settings.working_dir.schemes() == ("http", "https")
    assert settings.namespaces == ()
    assert settings.liveness_endpoint is None
    assert (settings.lease, settings.metrics_port, settings.debug) == (None, None, False)


def test_every_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = load(
        monkeypatch,
        JOBGATE_IMAGE="registry.local/job:1",
        JOBGATE_CUSTOM_RESOURCES="NPU=huawei.com/Ascend910, TPU=google.com/tpu",
        JOBGATE_GPU_RESOURCE="amd.com/gpu",
        JOBGATE_DEFAULT_CPUS="1",
        JOBGATE_DEFAULT_MEMORY="268435456",
        JOBGATE_PACKAGE_BASE_URL="http://jobgate-api:8265",
        JOBGATE_FILE_URI_ROOT="/usr1",
        JOBGATE_FILE_URI_ROOTS="acme=/srv/acme, beta=/srv/beta/",
        JOBGATE_NAMESPACES="tenant-a, tenant-b",
        JOBGATE_OPERATOR_WORKERS="4",
        JOBGATE_OPERATOR_RESYNC_SECONDS="30",
        JOBGATE_OPERATOR_LIVENESS="http://0.0.0.0:8080/healthz",
        JOBGATE_OPERATOR_LEASE="jobgate-system/jobgate-operator",
        JOBGATE_OPERATOR_LEASE_SECONDS="20",
        JOBGATE_OPERATOR_METRICS_PORT="9090",
        JOBGATE_OPERATOR_DEBUG="1",
        JOBGATE_MAX_UNPACKED_BYTES="1048576",
        JOBGATE_MAX_UNPACKED_ENTRIES="10",
    )
    assert settings.fetch_image == "registry.local/job:1"  # follows the job image
    assert dict(settings.resources.custom) == {"NPU": "huawei.com/Ascend910", "TPU": "google.com/tpu"}
    assert settings.resources.gpu == "amd.com/gpu"
    assert (settings.resources.default_cpus, settings.resources.default_memory) == (1.0, 268435456)
    assert settings.working_dir.schemes() == ("http", "https", "gcs", "file")
    assert dict(settings.working_dir.file_roots) == {"acme": "/srv/acme", "beta": "/srv/beta"}
    assert settings.namespaces == ("tenant-a", "tenant-b")
    assert (settings.workers, settings.resync_seconds) == (4, 30)
    assert settings.liveness_endpoint == "http://0.0.0.0:8080/healthz"
    assert (settings.lease, settings.lease_seconds) == (("jobgate-system", "jobgate-operator"), 20)
    assert (settings.metrics_port, settings.debug) == (9090, True)
    assert settings.working_dir.unpack_limits == fetch_working_dir.Limits(max_bytes=1048576, max_entries=10)


def test_an_empty_variable_is_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    assert load(monkeypatch, JOBGATE_OPERATOR_WORKERS="").workers == config.DEFAULT_WORKERS


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("JOBGATE_CUSTOM_RESOURCES", "NPU"),
        ("JOBGATE_CUSTOM_RESOURCES", "NPU=Ascend910"),
        ("JOBGATE_DEFAULT_CPUS", "lots"),
        ("JOBGATE_DEFAULT_MEMORY", "1"),
        ("JOBGATE_DEFAULT_CPUS", "32"),
        ("JOBGATE_GPU_RESOURCE", "gpu"),
        ("JOBGATE_OPERATOR_WORKERS", "0"),
        ("JOBGATE_OPERATOR_LEASE", "no-slash"),
        ("JOBGATE_OPERATOR_LEASE_SECONDS", "1"),
        ("JOBGATE_OPERATOR_METRICS_PORT", "70000"),
        ("JOBGATE_PACKAGE_BASE_URL", "jobgate-api:8265"),
        ("JOBGATE_FILE_URI_ROOT", "usr1"),
        ("JOBGATE_FILE_URI_ROOT", "/"),
        ("JOBGATE_FILE_URI_ROOTS", "acme=/"),
        ("JOBGATE_FILE_URI_ROOTS", "/srv/acme"),
        ("JOBGATE_MAX_UNPACKED_BYTES", "0"),
        ("JOBGATE_MAX_UNPACKED_ENTRIES", "many"),
    ],
)
def test_a_bad_value_is_an_error_naming_the_variable(
    name: str, value: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(policy.SettingsError) as caught:
        load(monkeypatch, **{name: value})
    assert str(caught.value).startswith(f"{name}={value!r}: ")


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ('[{"pool": ["x"]}]', "JOBGATE_POD_PROFILES[0].pool: Extra inputs are not permitted"),
        (
            '[{"tolerations": [{"operator": "Near"}]}]',
            "JOBGATE_POD_PROFILES[0].tolerations[0].operator='Near': ",
        ),
        ("[{", "JOBGATE_POD_PROFILES: expected JSON (Expecting property name"),
    ],
)
def test_a_bad_pod_profile_is_an_error_naming_its_place(
    value: str, message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(policy.SettingsError) as caught:
        load(monkeypatch, JOBGATE_POD_PROFILES=value)
    assert str(caught.value).startswith(message)


def test_the_entry_point_stops_at_a_bad_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    from jobgate.operator import __main__ as entry

    monkeypatch.setenv("JOBGATE_OPERATOR_WORKERS", "none")
    with pytest.raises(SystemExit, match="jobgate-operator: JOBGATE_OPERATOR_WORKERS='none': "):
        entry.main()
