"""Job spec -> pod manifest, without a cluster."""

from __future__ import annotations

import urllib.parse
from typing import Any

import pytest

from jobgate.core import jobs
from jobgate.crds import errors, fetch_working_dir, models, names, profiles, validation, workdir
from jobgate.operator import config, podspec

JOB = jobs.JobRef(namespace="jobgate-t-tenant-a", name="app-1234", uid="0f0e-uid")  # tenant-a's
SEED = {  # the seed's request body, as a Job spec
    "submissionId": "app-1234",
    "entrypoint": "python script.py",
    "metadata": {"autoscenes_ids": "auto_1-test", "task_type": "task_1", "ttl": "1250"},
    "runtimeEnv": {
        "working_dir": "file:///usr1/deploy/file.zip",
        "env_vars": {"SOURCE_REGION": "suzhou_std", "DEPLOY_REGION": "suzhou_std"},
        "pip": ["numpy==1.24", "scipy==1.11.0"],
    },
    "resources": {"cpus": 3, "memory": 134217728, "custom": {"NPU": 0}},
    "poolLabels": ["pool-cpu-a"],
    "tenant": "tenant-a",
}
CONFIG = config.Config(file_uri_root="/usr1")


def render(
    attempt: int = 1, configuration: config.Config = CONFIG, job: jobs.JobRef = JOB, **changes: Any
) -> dict[str, Any]:
    spec = models.JobSpec.model_validate({**SEED, **changes})
    return podspec.render_pod(
        job=job, spec=spec, attempt=attempt, config=configuration, created_at="2025-01-02T03:04:05.678Z"
    )


def main_container(pod: dict[str, Any]) -> dict[str, Any]:
    (container,) = pod["spec"]["containers"]
    assert isinstance(container, dict)
    assert container["name"] == podspec.MAIN_CONTAINER
    return container


def test_the_seed_job_runs_its_entrypoint_with_its_resources_and_env() -> None:
    container = main_container(render())
    quantities = {"cpu": "3", "memory": "134217728"}
    assert container["resources"] == {"requests": quantities, "limits": quantities}
    assert container["env"] == [
        {"name": "SOURCE_REGION", "value": "suzhou_std"},
        {"name": "DEPLOY_REGION", "value": "suzhou_std"},
        {"name": "HOME", "value": podspec.JOB_HOME},  # the job's user has no home in the image
        {"name": "PYTHONPATH", "value": podspec.SITE_PACKAGES},  # where pip installed
    ]
    assert container["image"] == "python:3.11-slim"
    assert container["workingDir"] == podspec.WORKING_DIR
    assert container["command"] == ["/bin/sh", "-c", podspec.RUN_SCRIPT, "jobgate", "python script.py"]
    fetch, install = pod_init(render())
    assert fetch["name"] == podspec.FETCH_CONTAINER  # the working_dir first: requirements may be in it
    shell, flag, script, _, requirements = install["command"]
    assert (install["name"], install["image"]) == (podspec.INSTALL_CONTAINER, "python:3.11-slim")
    assert (shell, flag, script) == ("/bin/sh", "-c", podspec.INSTALL_SCRIPT)
    assert requirements == "numpy==1.24\nscipy==1.11.0"
    assert "pip install --no-cache-dir" in script
    assert f"--target {podspec.SITE_PACKAGES}" in script
    job_env = container["env"][:3]
    assert install["env"] == job_env  # the job's own (a proxy, say); pip's own index
    mirror = config.Config(file_uri_root="/usr1", pip_index_url="http://pypi.mirror.local/simple")
    (_, install) = pod_init(render(configuration=mirror))
    assert install["env"] == [
        *job_env,
        {"name": "PIP_INDEX_URL", "value": "http://pypi.mirror.local/simple"},
        {"name": "PIP_TRUSTED_HOST", "value": "pypi.mirror.local"},  # plain http: pip needs it trusted
    ]


def pod_init(pod: dict[str, Any]) -> list[dict[str, Any]]:
    init: list[dict[str, Any]] = pod["spec"]["initContainers"]
    return init


def test_a_users_pythonpath_comes_after_the_jobs_packages() -> None:
    env = main_container(render(runtimeEnv={"pip": ["six"], "env_vars": {"PYTHONPATH": "/opt/lib"}}))["env"]
    assert {"name": "PYTHONPATH", "value": f"{podspec.SITE_PACKAGES}:/opt/lib"} in env


def test_the_pod_is_owned_never_restarts_and_has_no_token() -> None:
    pod = render()
    assert pod["metadata"]["ownerReferences"] == [
        {
            "apiVersion": "jobgate.io/v1alpha1",
            "kind": "Job",
            "name": "app-1234",
            "uid": "0f0e-uid",
            "controller": True,
            "blockOwnerDeletion": True,
        }
    ]
    assert pod["spec"]["restartPolicy"] == "Never"
    assert pod["spec"]["automountServiceAccountToken"] is False
    assert (pod["metadata"]["name"], pod["metadata"]["namespace"]) == ("app-1234-1", "jobgate-t-tenant-a")


def test_labels_and_annotations_carry_the_ids_and_the_metadata() -> None:
    meta = render(attempt=2, metadata={"fake-duration": "2s", "not a key!": "x"})["metadata"]
    assert meta["labels"] == {
        "jobgate.io/job-name": "app-1234",
        "jobgate.io/submission-id": "app-1234",
        "jobgate.io/tenant": "tenant-a",
        "jobgate.io/attempt": "2",
    }
    assert meta["annotations"] == {
        "jobgate.io/submission-id": "app-1234",
        "jobgate.io/tenant": "tenant-a",
        "jobgate.io/created-at": "2025-01-02T03:04:05.678Z",  # the attempt's clock starts here
        "metadata.jobgate.io/fake-duration": "2s",
    }


def test_values_a_label_cannot_hold_are_shortened_and_kept_whole_in_annotations() -> None:
    tenant = "Tenant With Spaces/" + "x" * 80
    job = jobs.JobRef(
        namespace=names.tenant_namespace(tenant, prefix=names.DEFAULT_NAMESPACE_PREFIX), name="j", uid="u"
    )
    meta = render(job=job, tenant=tenant, submissionId="raysubmit_AbC")["metadata"]
    assert meta["annotations"]["jobgate.io/tenant"] == tenant
    label = meta["labels"]["jobgate.io/tenant"]
    assert len(label) <= 63
    assert label.startswith("Tenant-With-Spaces-")
    assert meta["labels"]["jobgate.io/submission-id"] == "raysubmit_AbC"
    assert names.label_value("a" * 64) != names.label_value("a" * 65)


def test_pod_names_are_fixed_per_attempt_and_never_too_long() -> None:
    assert names.pod_name("app-1", 1) == names.pod_name("app-1", 1) == "app-1-1"
    assert names.pod_name("app-1", 12) == "app-1-12"
    long = names.pod_name("a" * 253, 3)
    assert len(long) <= 253
    assert long.endswith("-3")
    assert names.pod_name("a" * 253, 3) != names.pod_name("a" * 252 + "b", 3)


def test_one_pool_label_is_a_required_exists() -> None:
    assert podspec.node_affinity(["pool-cpu-a"]) == {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [{"matchExpressions": [{"key": "pool-cpu-a", "operator": "Exists"}]}]
            }
        }
    }
    assert render()["spec"]["affinity"] == podspec.node_affinity(["pool-cpu-a"])


def test_several_pool_labels_are_any_of_with_earlier_ones_preferred() -> None:
    labels = [" pool-gpu ", "zone=east", "unUseAntiOtherLabels", *(f"l{i}" for i in range(10)), "pool-gpu"]
    affinity = podspec.node_affinity(labels)
    assert affinity is not None
    terms = affinity["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
    assert terms[:2] == [
        {"matchExpressions": [{"key": "pool-gpu", "operator": "Exists"}]},
        {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["east"]}]},
    ]
    assert len(terms) == 12  # the flag is not a label, the repeated label counts once
    preferred = affinity["nodeAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]
    assert [p["weight"] for p in preferred] == [100, 90, 80, 70, 60, 50, 40, 30, 20, 10, 10, 10]
    assert [p["preference"] for p in preferred] == terms


def test_no_pool_labels_no_affinity() -> None:
    assert podspec.node_affinity([]) is None
    assert podspec.node_affinity(["unUseAntiOtherLabels"]) is None
    assert "affinity" not in render(poolLabels=[])["spec"]


def test_gpu_and_npu_jobs_ask_for_their_extended_resources() -> None:
    limits = main_container(render(resources={"gpus": 2, "custom": {"NPU": 1}}))["resources"]["limits"]
    assert limits == {
        "cpu": "300m",
        "memory": "134217728",
        "huawei.com/Ascend910": "1",
        "nvidia.com/gpu": "2",
    }


def test_the_working_dir_is_fetched_by_an_init_container() -> None:
    pod = render(runtimeEnv={"working_dir": "https://example.com/src.zip"})
    (init,) = pod["spec"]["initContainers"]
    assert init["name"] == podspec.FETCH_CONTAINER
    assert init["command"] == [
        "python3",
        "-c",
        podspec.FETCH_SCRIPT,
        "https://example.com/src.zip",
        podspec.WORKING_DIR,
        "--strip-top-dir",
        "--max-bytes",
        str(fetch_working_dir.DEFAULT_MAX_BYTES),
        "--max-entries",
        str(fetch_working_dir.DEFAULT_MAX_ENTRIES),
    ]
    assert init["resources"] == main_container(pod)["resources"]
    assert all(v.get("hostPath") is None for v in pod["spec"]["volumes"])


def test_a_file_uri_mounts_its_root_read_only_and_is_resolved_inside_it() -> None:
    pod = render()
    init, _ = pod["spec"]["initContainers"]  # and pip's
    assert init["command"][3] == workdir.MOUNTED_SOURCE + "/deploy/file.zip"
    assert init["command"][5:8] == ["--strip-top-dir", "--within", workdir.MOUNTED_SOURCE]
    assert {"name": "working-dir-source", "mountPath": workdir.MOUNTED_SOURCE, "readOnly": True} in init[
        "volumeMounts"
    ]
    # The root, not the path: a symbolic link under it resolves in the container, never on the node.
    assert {"name": "working-dir-source", "hostPath": {"path": "/usr1", "type": "Directory"}} in pod["spec"][
        "volumes"
    ]


def test_without_working_dir_or_pip_the_image_defaults_hold() -> None:
    allowing = config.Config(allowed_images="registry.local/")
    pod = render(configuration=allowing, runtimeEnv={"image_uri": "registry.local/ml:2"})
    container = main_container(pod)
    assert "initContainers" not in pod["spec"]
    assert "workingDir" not in container
    assert container["image"] == "registry.local/ml:2"
    assert "PYTHONPATH" not in str(container["env"])  # no requirements: no pip


def test_a_spec_this_deployment_cannot_run_is_a_spec_error() -> None:
    with pytest.raises(errors.SpecError, match=r"spec\.runtimeEnv\.working_dir"):
        render(configuration=config.Config())  # file:// not enabled
    with pytest.raises(errors.SpecError, match=r"spec\.resources\.custom\.TPU"):
        render(resources={"custom": {"TPU": 1}})


def test_a_job_claiming_a_tenant_outside_its_namespace_is_refused() -> None:
    """spec.tenant picks per-tenant rules (file:// roots, pools): a kubectl user of one
    tenant's namespace cannot claim another's."""
    elsewhere = jobs.JobRef(namespace="jobgate-t-tenant-b", name="app-1234", uid="u")
    with pytest.raises(errors.SpecError) as caught:
        render(job=elsewhere)
    assert caught.value.field == "spec.tenant"
    assert "has its jobs in namespace jobgate-t-tenant-a, not jobgate-t-tenant-b" in str(caught.value)
    # Nor by leaving it out, which would give it the rules of no tenant (the shared root, any pool).
    with pytest.raises(
        errors.SpecError, match="a job in tenant namespace jobgate-t-tenant-b names its tenant"
    ):
        render(job=elsewhere, tenant=None, runtimeEnv={})
    outside = jobs.JobRef(namespace="team-ml", name="app-1234", uid="u")  # no tenant's: the defaults
    assert render(job=outside, tenant=None, runtimeEnv={})["metadata"]["namespace"] == "team-ml"


def test_the_apis_check_refuses_exactly_what_rendering_refuses() -> None:
    validation.check_spec(models.JobSpec.model_validate(SEED), rules=CONFIG)
    with pytest.raises(errors.SpecError) as caught:
        validation.check_spec(
            models.JobSpec.model_validate({**SEED, "resources": {"gpus": 0.5}}), rules=CONFIG
        )
    assert caught.value.field == "spec.resources.gpus"


def test_every_container_is_stripped_of_privileges_and_runs_as_an_ordinary_user() -> None:
    pod = render(runtimeEnv={"working_dir": "https://example.com/job.zip"})
    assert pod["spec"]["securityContext"] == {
        "seccompProfile": {"type": "RuntimeDefault"},
        "runAsNonRoot": True,
        "runAsUser": 1000,
        "runAsGroup": 1000,
        "fsGroup": 1000,
        "fsGroupChangePolicy": "OnRootMismatch",
    }
    containers = [*pod["spec"]["initContainers"], *pod["spec"]["containers"]]
    assert [c["name"] for c in containers] == [podspec.FETCH_CONTAINER, podspec.MAIN_CONTAINER]
    for container in containers:
        assert container["securityContext"] == {
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
            "privileged": False,
        }


def test_an_uploaded_package_is_fetched_with_the_jobs_identity() -> None:
    serving = config.Config(package_base_url="http://jobgate-api:8265")
    pod = render(configuration=serving, runtimeEnv={"working_dir": "gcs://_ray_pkg_0123456789abcdef.zip"})
    (fetch,) = pod["spec"]["initContainers"]
    url = urllib.parse.urlsplit(fetch["command"][3])
    assert (
        url._replace(query="").geturl()
        == "http://jobgate-api:8265/api/packages/gcs/_ray_pkg_0123456789abcdef.zip"
    )
    query = urllib.parse.parse_qs(url.query)
    assert query == {"namespace": [JOB.namespace], "job": [JOB.name], "uid": [JOB.uid]}


def test_py_modules_are_fetched_each_by_its_init_container_and_put_on_the_pythonpath() -> None:
    serving = config.Config(file_uri_root="/usr1", package_base_url="http://jobgate-api:8265")
    modules = [
        "gcs://_ray_pkg_0123456789abcdef.zip",  # a directory Ray's client uploaded
        "https://example.com/tools-1.0-py3-none-any.whl",  # a wheel: pip installs it
        "file:///usr1/libs/shared",  # a directory on the node, under the tenant's root
    ]
    pod = render(configuration=serving, runtimeEnv={"py_modules": modules, "pip": ["six"]})
    fetched, install = pod_init(pod)[:3], pod_init(pod)[3]
    assert [c["name"] for c in fetched] == [podspec.py_module_container(i) for i in range(3)]
    package, wheel, node_dir = (c["command"] for c in fetched)
    assert package[4:5] == [f"{podspec.PY_MODULES}/0"]
    assert "--strip-top-dir" not in package
    assert package[-2:] == ["--field", "py_modules[0]"]
    assert wheel[3:5] == ["https://example.com/tools-1.0-py3-none-any.whl", podspec.WHEELS]
    assert wheel[-2:] == ["--keep-file", "tools-1.0-py3-none-any.whl"]
    assert "--strip-top-dir" not in wheel
    assert node_dir[3:5] == [workdir.MOUNTED_SOURCE + "/libs/shared", f"{podspec.PY_MODULES}/2"]
    assert install["command"][-1] == f"six\n{podspec.WHEELS}/tools-1.0-py3-none-any.whl"
    env = main_container(pod)["env"]
    # Ray's order: the modules, then what pip installed; the wheel is not a directory to add.
    python_path = f"{podspec.PY_MODULES}/0:{podspec.PY_MODULES}/2:{podspec.SITE_PACKAGES}"
    assert {"name": "PYTHONPATH", "value": python_path} in env
    host_paths = [v for v in pod["spec"]["volumes"] if v.get("hostPath")]
    assert host_paths == [{"name": podspec.SOURCE_VOLUME, "hostPath": {"path": "/usr1", "type": "Directory"}}]


def test_an_uploaded_wheel_is_kept_as_a_file_for_pip() -> None:
    serving = config.Config(package_base_url="http://jobgate-api:8265")
    wheel = "torch-2.0+cpu-cp311-none-any.whl"  # as Ray's client names an uploaded wheel: its own name
    pod = render(configuration=serving, runtimeEnv={"py_modules": [f"gcs://{wheel}"]})
    fetch, install = pod_init(pod)
    assert fetch["command"][4] == podspec.WHEELS
    assert fetch["command"][-2:] == ["--keep-file", wheel]
    assert install["command"][-1] == f"{podspec.WHEELS}/{wheel}"


def test_a_wheel_alone_gets_pip_and_the_pythonpath_of_its_install() -> None:
    pod = render(runtimeEnv={"py_modules": ["https://example.com/w/six-1.16.0-py2.py3-none-any.whl"]})
    _, install = pod_init(pod)
    assert install["name"] == podspec.INSTALL_CONTAINER
    assert install["command"][-1] == f"{podspec.WHEELS}/six-1.16.0-py2.py3-none-any.whl"
    assert {"name": "PYTHONPATH", "value": podspec.SITE_PACKAGES} in main_container(pod)["env"]


@pytest.mark.parametrize(
    ("modules", "kind", "field"),
    [
        (["https://example.com/not-a-wheel.whl"], errors.SpecError, "spec.runtimeEnv.py_modules.0"),
        (["https://example.com/m.zip", "file:///etc/m"], errors.SpecError, "spec.runtimeEnv.py_modules.1"),
        # Checked after every other field, so that Ray's dialect can take it and fail the start.
        (["s3://bucket/m.zip", "file:///etc/m"], errors.SpecError, "spec.runtimeEnv.py_modules.1"),
        (["s3://bucket/m.zip"], errors.UnfetchableError, "spec.runtimeEnv.py_modules.0"),
    ],
    ids=["wheel-name", "outside-root", "bad-before-unfetchable", "unfetchable"],
)
def test_a_py_module_this_deployment_cannot_fetch_names_its_index(
    modules: list[str], kind: type[errors.SpecError], field: str
) -> None:
    with pytest.raises(kind) as caught:
        render(runtimeEnv={"py_modules": modules})
    assert caught.type is kind
    assert caught.value.field == field


GPU_PROFILE = {
    "pools": ["pool-gpu"],
    "resources": ["gpu"],
    "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
    "nodeSelector": {"accelerator": "a100"},
    "priorityClassName": "gpu-jobs",
    "runtimeClassName": "nvidia",
    "imagePullSecrets": ["registry-gpu"],
    "image": "registry.local/cuda:12",
    "shmSize": "8Gi",
    "volumes": [{"name": "datasets", "claimName": "datasets", "mountPath": "/data"}],
}
NPU_PROFILE = {
    "resources": ["NPU"],
    "tolerations": [{"key": "huawei.com/Ascend910", "operator": "Exists", "effect": "NoSchedule"}],
    "imagePullSecrets": ["registry-gpu", "registry-npu"],
    "image": "registry.local/cann:8",
    "volumes": [{"name": "datasets", "claimName": "other", "mountPath": "/other"}],
}
PROFILED = config.Config(pod_profiles=[GPU_PROFILE, NPU_PROFILE])


def test_a_job_asking_for_a_gpu_gets_the_gpu_profile_without_naming_the_pool() -> None:
    pod = render(configuration=PROFILED, runtimeEnv={}, poolLabels=[], resources={"gpus": 1})
    spec, container = pod["spec"], main_container(pod)
    assert spec["tolerations"] == [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
    assert spec["nodeSelector"] == {"accelerator": "a100"}
    assert (spec["priorityClassName"], spec["runtimeClassName"]) == ("gpu-jobs", "nvidia")
    assert spec["imagePullSecrets"] == [{"name": "registry-gpu"}]
    assert container["image"] == "registry.local/cuda:12"  # the pool's default image
    assert {"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": "8Gi"}} in spec["volumes"]
    assert {"name": "dshm", "mountPath": "/dev/shm"} in container["volumeMounts"]
    claim = {"name": "datasets", "persistentVolumeClaim": {"claimName": "datasets", "readOnly": True}}
    assert claim in spec["volumes"]
    assert {"name": "datasets", "mountPath": "/data", "readOnly": True} in container["volumeMounts"]
    assert spec["automountServiceAccountToken"] is False


def test_a_job_in_the_gpu_pool_gets_it_and_its_own_image_wins() -> None:
    allowing = config.Config(pod_profiles=[GPU_PROFILE], allowed_images="*")
    pod = render(configuration=allowing, runtimeEnv={"image_uri": "mine:1"}, poolLabels=["pool-gpu"])
    assert pod["spec"]["tolerations"][0]["key"] == "nvidia.com/gpu"
    assert main_container(pod)["image"] == "mine:1"


def test_a_profile_may_name_the_extended_resource_and_every_alias_of_it_gets_it() -> None:
    aliased = config.Config(
        custom_resources="NPU=huawei.com/Ascend910,ASCEND=huawei.com/Ascend910",
        pod_profiles=[
            {"resources": ["huawei.com/Ascend910"], "tolerations": [{"key": "npu", "operator": "Exists"}]}
        ],
    )
    for name in ("NPU", "ASCEND"):
        pod = render(configuration=aliased, runtimeEnv={}, resources={"custom": {name: 1}})
        assert pod["spec"]["tolerations"] == [{"key": "npu", "operator": "Exists"}]


def test_a_cpu_job_gets_no_profile() -> None:
    pod = render(configuration=PROFILED, runtimeEnv={}, poolLabels=["pool-cpu-a"])
    for key in ("tolerations", "nodeSelector", "priorityClassName", "runtimeClassName", "imagePullSecrets"):
        assert key not in pod["spec"]
    assert [v["name"] for v in pod["spec"]["volumes"]] == ["jobgate"]
    assert main_container(pod)["image"] == "python:3.11-slim"


def test_profiles_that_apply_together_add_up_the_first_winning_single_values() -> None:
    pod = render(configuration=PROFILED, runtimeEnv={}, resources={"gpus": 1, "custom": {"NPU": 1}})
    spec = pod["spec"]
    assert [t["key"] for t in spec["tolerations"]] == ["nvidia.com/gpu", "huawei.com/Ascend910"]
    assert spec["imagePullSecrets"] == [{"name": "registry-gpu"}, {"name": "registry-npu"}]
    assert main_container(pod)["image"] == "registry.local/cuda:12"
    claims = [v for v in spec["volumes"] if "persistentVolumeClaim" in v]
    assert [c["persistentVolumeClaim"]["claimName"] for c in claims] == ["datasets"]  # one per name


@pytest.mark.parametrize(
    ("profile", "message"),
    [
        (
            {"volumes": [{"name": "jobgate", "claimName": "c", "mountPath": "/d"}]},
            "a volume of jobgate's own",
        ),
        ({"volumes": [{"name": "v", "claimName": "c", "mountPath": "/jobgate/x"}]}, "where jobgate mounts"),
        ({"volumes": [{"name": "v", "claimName": "c", "mountPath": "/"}]}, "is / or where"),
        ({"shmSize": "lots"}, "String should match pattern"),
        ({"tolerations": [{"key": "k", "effect": "Sometimes"}]}, "NoSchedule"),
        ({"hostPath": "/"}, "Extra inputs are not permitted"),
        ({"volumes": [{"name": "v", "claimName": "c", "mountPath": "//jobgate"}]}, "where jobgate mounts"),
        ({"tolerations": [{"key": "k", "operator": "Exists", "value": "v"}]}, "Exists has no value"),
        ({"tolerations": [{"effect": "NoSchedule"}]}, "without a key has operator Exists"),
    ],
)
def test_a_profile_jobgate_cannot_apply_is_refused_naming_its_place(
    profile: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        config.Config(pod_profiles=[profile])


def test_a_profile_can_never_take_a_volume_name_of_the_pods_own() -> None:
    pod = render(
        configuration=config.Config(pod_profiles=[GPU_PROFILE], file_uri_root="/usr1"),
        runtimeEnv={"working_dir": "file:///usr1/deploy/file.zip"},
        resources={"gpus": 1},
    )
    own = {v["name"] for v in pod["spec"]["volumes"] if "persistentVolumeClaim" not in v}
    assert own == {"jobgate", podspec.SOURCE_VOLUME, "dshm"}
    assert own <= profiles.RESERVED_VOLUMES


def test_a_pool_whose_profile_says_so_runs_as_its_images_user() -> None:
    """runAsImageUser (root, maybe, for images that need it): no user is set, nor HOME; the
    job's own HOME always stays."""
    as_image = config.Config(
        file_uri_root="/usr1",
        pod_profiles=[{"pools": ["pool-legacy"], "runAsImageUser": True}],
        job_user=2000,
    )
    pod = render(configuration=as_image, poolLabels=["pool-legacy"])
    assert pod["spec"]["securityContext"] == {"seccompProfile": {"type": "RuntimeDefault"}}
    assert "HOME" not in {item["name"] for item in main_container(pod)["env"]}
    elsewhere = render(configuration=as_image, poolLabels=["pool-cpu"])
    assert elsewhere["spec"]["securityContext"]["runAsUser"] == 2000
    own_home = render(runtimeEnv={"env_vars": {"HOME": "/work"}})
    assert {"name": "HOME", "value": "/work"} in main_container(own_home)["env"]
