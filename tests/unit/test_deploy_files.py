"""deploy/ and the Dockerfile agree with the code: settings that exist, one version."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

import yaml

from jobgate.devcluster import pools
from jobgate.operator import config

REPO_ROOT = Path(__file__).resolve().parents[2]
DOCUMENTED = (REPO_ROOT / "operator" / "README.md").read_text() + (
    REPO_ROOT / "api" / "README.md"
).read_text()


def test_every_setting_deploy_gives_is_a_documented_one() -> None:
    given = {
        name
        for path in (REPO_ROOT / "deploy").rglob("*.yaml")
        for name in re.findall(r"\b(JOBGATE_[A-Z_]+)\b", path.read_text())
    }
    assert given, "deploy/ sets no JOBGATE_ variable?"
    assert sorted(name for name in given if f"`{name}`" not in DOCUMENTED) == []


def test_the_dockerfile_installs_the_version_of_pyproject() -> None:
    version = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert f"ARG JOBGATE_VERSION={version}\n" in (REPO_ROOT / "Dockerfile").read_text()
    assert f"newTag: {version}\n" in (REPO_ROOT / "deploy" / "default" / "kustomization.yaml").read_text()


def test_the_dev_overlay_gives_the_operator_the_dev_pools_profiles() -> None:
    overlay = yaml.safe_load((REPO_ROOT / "deploy" / "overlays" / "dev" / "kustomization.yaml").read_text())
    operations = [op for patch in overlay["patches"] for op in yaml.safe_load(patch["patch"])]
    (given,) = [op["value"] for op in operations if op["path"] == "/data/JOBGATE_POD_PROFILES"]
    assert json.loads(given) == pools.pod_profiles(pools.load_pools())
    # And the operator takes them: the GPU pool's tolerations, for a job asking for a GPU.
    (gpu, _) = config.Config(pod_profiles=json.loads(given)).pod_profiles
    assert gpu.resources == ("gpu",)
    assert gpu.tolerations[0].key == "nvidia.com/gpu"
