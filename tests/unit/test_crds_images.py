"""The image allow-list: references in full, prefixes, the default, and the error."""

from __future__ import annotations

import pytest

from jobgate.crds import errors, images, policy


@pytest.mark.parametrize(
    ("reference", "full"),
    [
        ("python:3.12", "docker.io/library/python:3.12"),
        ("acme/tool:1", "docker.io/acme/tool:1"),
        ("ghcr.io/acme/tool", "ghcr.io/acme/tool"),
        ("localhost/tool", "localhost/tool"),
        ("127.0.0.1:5000/tool@sha256:ab", "127.0.0.1:5000/tool@sha256:ab"),
    ],
)
def test_references_are_compared_in_full(reference: str, full: str) -> None:
    assert images.normalized(reference) == full


def test_by_default_only_the_job_images_registry_is_allowed() -> None:
    rules = policy.JobPolicy(image="registry.corp:5000/ml/base:1").images
    rules.check("registry.corp:5000/ml/torch:2")
    with pytest.raises(errors.SpecError) as refused:
        rules.check("python:3.12")
    assert str(refused.value) == (
        "spec.runtimeEnv.image_uri: image 'python:3.12' (docker.io/library/python:3.12) is not allowed "
        "here: images must start with 'registry.corp:5000/' (JOBGATE_ALLOWED_IMAGES)"
    )


def test_the_cluster_operator_lists_prefixes_or_allows_any(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JOBGATE_ALLOWED_IMAGES", "docker.io/library/python:, ghcr.io/acme/")
    rules = policy.JobPolicy().images
    rules.check("python:3.12-slim")
    rules.check("ghcr.io/acme/tool:1")
    for refused in ("pythonista:1", "ghcr.io/acmeevil/x", "docker.io/acme/tool"):
        with pytest.raises(errors.SpecError, match="is not allowed here"):
            rules.check(refused)
    monkeypatch.setenv("JOBGATE_ALLOWED_IMAGES", "*")
    policy.JobPolicy().images.check("anything.example/at/all:1")
