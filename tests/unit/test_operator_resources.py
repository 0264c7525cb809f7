"""Job resources -> pod quantities (requests = limits), and the errors the API relies on."""

from __future__ import annotations

import pytest

from jobgate.crds import errors, models, resources

POLICY = resources.ResourcePolicy()


def quantities(**fields: object) -> dict[str, str]:
    return resources.quantities(models.Resources.model_validate(fields), policy=POLICY)


@pytest.mark.parametrize(
    ("cores", "quantity"),
    [(0.3, "300m"), (3, "3"), (16, "16"), (0.35, "350m"), (1.5, "1500m"), (0.3333, "334m")],
)
def test_cpus_become_cores_or_millicores(cores: float, quantity: str) -> None:
    assert quantities(cpus=cores)["cpu"] == quantity


def test_defaults_apply_when_cpus_and_memory_are_absent() -> None:
    assert quantities() == {"cpu": "300m", "memory": "134217728"}
    policy = resources.ResourcePolicy(default_cpus=2, default_memory=2**30)
    assert resources.quantities(models.Resources(), policy=policy) == {"cpu": "2", "memory": "1073741824"}


def test_gpus_and_mapped_custom_resources_are_extended_resources() -> None:
    assert quantities(cpus=1, memory=2**30, gpus=2, custom={"NPU": 4}) == {
        "cpu": "1",
        "memory": "1073741824",
        "huawei.com/Ascend910": "4",
        "nvidia.com/gpu": "2",
    }


def test_zero_means_not_requested_even_for_an_unknown_name() -> None:
    assert quantities(gpus=0, custom={"NPU": 0, "TPU": 0}) == {"cpu": "300m", "memory": "134217728"}


@pytest.mark.parametrize(
    ("fields", "loc"),
    [({"gpus": 0.5}, ("resources", "gpus")), ({"custom": {"NPU": 1.5}}, ("resources", "custom", "NPU"))],
)
def test_a_fractional_extended_resource_is_an_error_naming_the_field(
    fields: dict[str, object], loc: tuple[str, ...]
) -> None:
    with pytest.raises(errors.SpecError) as caught:
        quantities(**fields)
    assert caught.value.loc == loc
    assert "whole" in caught.value.message
    assert str(caught.value).startswith("spec." + ".".join(loc) + ": ")


def test_an_unknown_custom_resource_is_an_error_listing_the_known_ones() -> None:
    with pytest.raises(errors.SpecError) as caught:
        quantities(custom={"TPU": 1})
    assert caught.value.loc == ("resources", "custom", "TPU")
    assert caught.value.allowed == ("NPU",)
    assert caught.value.field == "spec.resources.custom.TPU"
    assert "allowed: NPU" in str(caught.value)


def test_the_mapping_decides_which_custom_names_are_allowed() -> None:
    policy = resources.ResourcePolicy(custom={"TPU": "google.com/tpu"}, gpu="amd.com/gpu")
    result = resources.quantities(models.Resources(gpus=1, custom={"TPU": 2}), policy=policy)
    assert result["google.com/tpu"] == "2"
    assert result["amd.com/gpu"] == "1"
    with pytest.raises(errors.SpecError):
        resources.quantities(models.Resources(custom={"NPU": 1}), policy=policy)


def test_a_policy_refuses_names_that_are_not_extended_resources() -> None:
    with pytest.raises(ValueError, match="extended resource"):
        resources.ResourcePolicy(custom={"NPU": "Ascend910"})
    with pytest.raises(ValueError, match="outside"):
        resources.ResourcePolicy(default_cpus=0.1)
