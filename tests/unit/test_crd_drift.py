"""The checked-in CRD is exactly what the models generate (`make crds` regenerates it)."""

from __future__ import annotations

from pathlib import Path

from jobgate.crds import generate

CHECKED_IN = Path(__file__).resolve().parents[2] / "crds" / "jobgate.io_jobs.yaml"


def test_the_checked_in_crd_matches_the_models() -> None:
    assert CHECKED_IN.read_text() == generate.render(), (
        "crds/jobgate.io_jobs.yaml is stale: run `make crds` and commit the result"
    )
