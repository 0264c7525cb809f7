"""Whether this deployment can run a Job spec: the one check the API and the operator share.

The API calls `check_spec` before it creates a Job (a `SpecError` becomes a 400 naming the
field); the operator's pod rendering starts with the same call and builds the pod from
what it returns, so the two can never disagree (given the same `JOBGATE_*` variables).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from jobgate.crds import errors, models, names, policy, resources, workdir


@dataclasses.dataclass(frozen=True, kw_only=True)
class Checked:
    """What a runnable spec comes to here."""

    quantities: Mapping[str, str]  # Kubernetes resource name -> quantity (requests = limits)
    source: workdir.Source | None  # where the working_dir comes from, if the job has one
    modules: tuple[workdir.Source, ...] = ()  # where each py_module comes from, in order


def check_spec(spec: models.JobSpec, *, rules: policy.JobPolicy, namespace: str | None = None) -> Checked:
    """Raise `errors.SpecError` (naming the field) if this deployment could not run `spec`
    (in `namespace`, when given: a Job's spec.tenant must be the tenant of its namespace,
    or one tenant's kubectl user could claim another's file:// root and pools).

    The working_dir and py_modules are checked last, and a URI no way here can fetch is
    raised after them all: an `UnfetchableError` means every other field passed."""
    if namespace is not None and spec.tenant is not None:
        own = names.tenant_namespace(spec.tenant, prefix=rules.namespace_prefix)
        if own != namespace:
            raise errors.SpecError(
                ("tenant",), f"tenant {spec.tenant!r} has its jobs in namespace {own}, not {namespace}"
            )
    elif namespace is not None and namespace.startswith(rules.namespace_prefix):
        # Without it, the job would get the rules of no tenant (the shared root, any pool).
        raise errors.SpecError(("tenant",), f"a job in tenant namespace {namespace} names its tenant")
    env = spec.runtime_env
    if env.image_uri:
        rules.images.check(env.image_uri)
    rules.placement.check(spec.pool_labels, tenant=spec.tenant)
    quantities = resources.quantities(spec.resources, policy=rules.resources)
    uris: list[tuple[tuple[str, ...], str]] = [(workdir.LOC, env.working_dir)] if env.working_dir else []
    uris += [(("runtimeEnv", "py_modules", str(index)), uri) for index, uri in enumerate(env.py_modules)]
    sources: list[workdir.Source] = []
    unfetchable: errors.UnfetchableError | None = None
    for loc, uri in uris:
        try:
            sources.append(workdir.source_for(uri, policy=rules.working_dir, tenant=spec.tenant, loc=loc))
        except errors.UnfetchableError as e:
            unfetchable = unfetchable or e
    if unfetchable:
        raise unfetchable
    source = sources.pop(0) if env.working_dir else None
    return Checked(quantities=quantities, source=source, modules=tuple(sources))
