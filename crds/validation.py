"""Whether this deployment can run a Job spec: the one check the API and the operator share.

The API calls `check_spec` before it creates a Job (a `SpecError` becomes a 400 naming the
field); the operator's pod rendering starts with the same call and builds the pod from
what it returns, so the two can never disagree (given the same `JOBGATE_*` variables).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from jobgate.crds import models, policy, resources, workdir


@dataclasses.dataclass(frozen=True, kw_only=True)
class Checked:
    """What a runnable spec comes to here."""

    quantities: Mapping[str, str]  # Kubernetes resource name -> quantity (requests = limits)
    source: workdir.Source | None  # where the working_dir comes from, if the job has one


def check_spec(spec: models.JobSpec, *, rules: policy.JobPolicy) -> Checked:
    """Raise `errors.SpecError` (naming the field) if this deployment could not run `spec`.

    The working_dir is checked last: an `UnfetchableError` means every other field passed."""
    working_dir = spec.runtime_env.working_dir
    if spec.runtime_env.image_uri:
        rules.images.check(spec.runtime_env.image_uri)
    rules.placement.check(spec.pool_labels, tenant=spec.tenant)
    return Checked(
        quantities=resources.quantities(spec.resources, policy=rules.resources),
        source=workdir.source_for(working_dir, policy=rules.working_dir, tenant=spec.tenant)
        if working_dir
        else None,
    )
