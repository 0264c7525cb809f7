"""The API's check, before it creates a Job: would this deployment's operator run it?

    from jobgate.operator import config, errors, validation
    settings = config.Config.from_env(os.environ)      # once, at start
    try:
        validation.check_spec(spec, config=settings)   # spec: models.JobSpec
    except errors.SpecError as e:
        ...  # 400: e.field ("spec.resources.custom.TPU"), e.loc, e.message, e.allowed

A spec that passes is one the operator will not fail as InvalidSpec (given the same
JOBGATE_* variables): the check is the pod rendering itself, so the two cannot disagree.
"""

from __future__ import annotations

from jobgate.crds import models
from jobgate.operator import config as configuration
from jobgate.operator import jobs, podspec

_NOBODY = jobs.JobRef(namespace="default", name="check", uid="00000000-0000-0000-0000-000000000000")


def check_spec(spec: models.JobSpec, *, config: configuration.Config) -> None:
    """Raise `errors.SpecError` (naming the field) if the operator could not run `spec`."""
    podspec.render_pod(job=_NOBODY, spec=spec, attempt=1, config=config)
