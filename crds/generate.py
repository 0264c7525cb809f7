"""Generate the Job CustomResourceDefinition from the pydantic models.

    python -m jobgate.crds.generate > crds/jobgate.io_jobs.yaml   (or `make crds`)

Pydantic writes JSON Schema; Kubernetes wants a *structural* OpenAPI v3 schema: no
`$ref`, no `anyOf` for optional fields, no `additionalProperties: false` beside
`properties`, and `x-kubernetes-preserve-unknown-fields` where unknown keys are kept.
This module does that translation and adds what JSON Schema cannot say: the status
subresource, printer columns, and the CEL rules that make the spec immutable.
"""

from __future__ import annotations

import sys
from typing import Any

import yaml
from pydantic import BaseModel

from jobgate.crds import models

_DROPPED_KEYS = frozenset({"title", "$defs"})


def _structural(node: Any, defs: dict[str, Any]) -> Any:
    """Resolve references and rewrite JSON Schema constructs Kubernetes does not accept."""
    if isinstance(node, list):
        return [_structural(item, defs) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        target = defs[node["$ref"].rsplit("/", 1)[-1]]
        merged = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
        return _structural(merged, defs)
    if "anyOf" in node:
        # `X | None`: Kubernetes expresses it as X, nullable.
        branches = [b for b in node["anyOf"] if b.get("type") != "null"]
        if len(branches) != 1:
            raise ValueError(f"cannot express a union in a structural schema: {node}")
        rest = {k: v for k, v in node.items() if k != "anyOf"}
        merged = {**_structural(branches[0], defs), **rest, "nullable": True}
        merged.pop("default", None)  # a null default means "absent"
        return _structural(merged, defs)

    node = _keys_as_rules(node)
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in _DROPPED_KEYS:
            continue
        if key == "additionalProperties" and isinstance(value, bool):
            # extra="allow" keeps unknown keys instead of pruning them. extra="forbid" needs
            # nothing: Kubernetes prunes unknown fields and kubectl's strict field validation
            # reports them by name.
            if value:
                out["x-kubernetes-preserve-unknown-fields"] = True
            continue
        if key == "properties":
            out[key] = {name: _structural(prop, defs) for name, prop in value.items()}
        else:
            out[key] = _structural(value, defs)
    return out


def _keys_as_rules(node: dict[str, Any]) -> dict[str, Any]:
    """A map's rules on its keys (`propertyNames`, or one `patternProperties` pattern),
    which structural schemas cannot state, as a CEL rule on the map."""
    names = dict(node.get("propertyNames") or {})
    patterns = node.get("patternProperties") or {}
    if len(patterns) > 1:
        raise ValueError(f"cannot express several key patterns in a structural schema: {node}")
    node = {k: v for k, v in node.items() if k not in ("propertyNames", "patternProperties")}
    for pattern, values in patterns.items():
        names["pattern"], node["additionalProperties"] = pattern, values
    checks, said = [], []
    if "pattern" in names:
        checks.append(f"k.matches('{names['pattern']}')")
        said.append(f"match {names.pop('pattern')}")
    if "minLength" in names or "maxLength" in names:
        least, most = names.pop("minLength", 0), names.pop("maxLength")
        checks.append(f"size(k) >= {least} && size(k) <= {most}")
        said.append(f"be {least} to {most} characters long")
    if names:
        raise ValueError(f"cannot express these rules on keys in a structural schema: {names}")
    if checks:
        rule = {"rule": f"self.all(k, {' && '.join(checks)})", "message": f"keys must {' and '.join(said)}"}
        node["x-kubernetes-validations"] = [*node.get("x-kubernetes-validations", []), rule]
    return node


def _schema_of(model: type[BaseModel]) -> dict[str, Any]:
    raw = model.model_json_schema(by_alias=True, mode="validation")
    schema: dict[str, Any] = _structural(raw, raw.get("$defs", {}))
    return schema


def _immutability_rules(spec_schema: dict[str, Any]) -> list[dict[str, str]]:
    """CEL rules: every spec field but `stop` keeps the value (and presence) it was created with.

    One rule per field, so the apiserver's message names the field that was changed.
    """
    rules = [
        {
            "rule": f"has(self.{name}) == has(oldSelf.{name})"
            f" && (!has(self.{name}) || self.{name} == oldSelf.{name})",
            "message": f"spec.{name} is immutable; only spec.stop may change after creation",
            "fieldPath": f".{name}",
        }
        for name in spec_schema["properties"]
        if name != "stop"
    ]
    rules.append(
        {
            "rule": "!has(oldSelf.stop) || !oldSelf.stop || (has(self.stop) && self.stop)",
            "message": "spec.stop cannot be withdrawn once set",
            "fieldPath": ".stop",
        }
    )
    return rules


def _printer_columns() -> list[dict[str, Any]]:
    return [
        {"name": "Status", "type": "string", "jsonPath": ".status.state"},
        {"name": "Tenant", "type": "string", "jsonPath": ".spec.tenant"},
        {"name": "Pool", "type": "string", "jsonPath": ".spec.poolLabels"},
        {"name": "Node", "type": "string", "jsonPath": ".status.nodeName"},
        {"name": "Exit", "type": "integer", "jsonPath": ".status.exitCode", "priority": 1},
        {"name": "Message", "type": "string", "jsonPath": ".status.message", "priority": 1},
        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
    ]


def _selectable_fields() -> list[dict[str, str]]:
    """Fields `kubectl get --field-selector` (and the API's lists) can filter on.

    A field selector on `status.state` needs no label kept in step with the status, which
    would cost a second write (a metadata patch) on every state change of every job.
    """
    return [{"jsonPath": path} for path in (".status.state", ".spec.tenant", ".spec.submissionId")]


def custom_resource_definition() -> dict[str, Any]:
    """The whole CustomResourceDefinition object for the Job resource."""
    spec_schema = _schema_of(models.JobSpec)
    spec_schema["x-kubernetes-validations"] = _immutability_rules(spec_schema)
    status_schema = _schema_of(models.JobStatus)
    conditions = status_schema["properties"]["conditions"]
    conditions["x-kubernetes-list-type"] = "map"
    conditions["x-kubernetes-list-map-keys"] = ["type"]
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{models.PLURAL}.{models.GROUP}"},
        "spec": {
            "group": models.GROUP,
            "names": {
                "kind": models.KIND,
                "listKind": f"{models.KIND}List",
                "plural": models.PLURAL,
                "singular": models.SINGULAR,
                "shortNames": list(models.SHORT_NAMES),
                "categories": ["jobgate"],
            },
            "scope": "Namespaced",
            "versions": [
                {
                    "name": models.VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": _printer_columns(),
                    "selectableFields": _selectable_fields(),
                    "schema": {
                        "openAPIV3Schema": {
                            "description": "A job: one command run as a pod with the resources, pool "
                            "and tenant it asks for.",
                            "type": "object",
                            "required": ["spec"],
                            "properties": {
                                "apiVersion": {"type": "string"},
                                "kind": {"type": "string"},
                                "metadata": {"type": "object"},
                                "spec": spec_schema,
                                "status": status_schema,
                            },
                        }
                    },
                }
            ],
        },
    }


def render() -> str:
    header = "# Generated by `python -m jobgate.crds.generate` from crds/models.py. Do not edit.\n"
    return header + yaml.safe_dump(custom_resource_definition(), sort_keys=False, width=100)


def main() -> None:
    sys.stdout.write(render())


if __name__ == "__main__":
    main()
