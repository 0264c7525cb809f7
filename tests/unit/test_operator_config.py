"""The operator's configuration from environment variables."""

from __future__ import annotations

import pytest

from jobgate.operator import config, fetch_working_dir


def test_defaults() -> None:
    settings = config.Config.from_env({})
    assert settings.image == settings.fetch_image == "python:3.11-slim"
    assert dict(settings.resources.custom) == {"NPU": "huawei.com/Ascend910"}
    assert settings.resources.gpu == "nvidia.com/gpu"
    assert (settings.resources.default_cpus, settings.resources.default_memory) == (0.3, 134217728)
    assert settings.working_dir.schemes() == ("http", "https")
    assert settings.namespaces == ()
    assert settings.liveness_endpoint is None


def test_every_variable() -> None:
    settings = config.Config.from_env(
        {
            "JOBGATE_IMAGE": "registry.local/job:1",
            "JOBGATE_CUSTOM_RESOURCES": "NPU=huawei.com/Ascend910, TPU=google.com/tpu",
            "JOBGATE_GPU_RESOURCE": "amd.com/gpu",
            "JOBGATE_DEFAULT_CPUS": "1",
            "JOBGATE_DEFAULT_MEMORY": "268435456",
            "JOBGATE_PACKAGE_BASE_URL": "http://jobgate-api:8265",
            "JOBGATE_FILE_URI_ROOT": "/usr1",
            "JOBGATE_NAMESPACES": "tenant-a, tenant-b",
            "JOBGATE_OPERATOR_WORKERS": "4",
            "JOBGATE_OPERATOR_LIVENESS": "http://0.0.0.0:8080/healthz",
            "JOBGATE_MAX_UNPACKED_BYTES": "1048576",
            "JOBGATE_MAX_UNPACKED_ENTRIES": "10",
        }
    )
    assert settings.fetch_image == "registry.local/job:1"  # follows the job image
    assert dict(settings.resources.custom) == {"NPU": "huawei.com/Ascend910", "TPU": "google.com/tpu"}
    assert settings.resources.gpu == "amd.com/gpu"
    assert (settings.resources.default_cpus, settings.resources.default_memory) == (1.0, 268435456)
    assert settings.working_dir.schemes() == ("http", "https", "gcs", "file")
    assert settings.namespaces == ("tenant-a", "tenant-b")
    assert settings.workers == 4
    assert settings.liveness_endpoint == "http://0.0.0.0:8080/healthz"
    assert settings.working_dir.unpack_limits == fetch_working_dir.Limits(max_bytes=1048576, max_entries=10)


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
        ("JOBGATE_PACKAGE_BASE_URL", "jobgate-api:8265"),
        ("JOBGATE_FILE_URI_ROOT", "usr1"),
        ("JOBGATE_MAX_UNPACKED_BYTES", "0"),
        ("JOBGATE_MAX_UNPACKED_ENTRIES", "many"),
    ],
)
def test_a_bad_value_is_an_error_naming_the_variable(name: str, value: str) -> None:
    with pytest.raises(config.ConfigError) as caught:
        config.Config.from_env({name: value})
    assert str(caught.value).startswith(f"{name}={value!r}: ")
