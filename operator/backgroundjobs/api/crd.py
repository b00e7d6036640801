"""Generate the BackgroundJob CustomResourceDefinition from the pydantic models.

``python -m backgroundjobs.api.crd`` prints the CRD YAML committed under ``crds/``; a unit
test regenerates it and fails on drift. The pydantic JSON schema is turned into a
structural OpenAPI v3 schema: references inlined, ``Optional`` unwrapped, free-form values
marked ``x-kubernetes-preserve-unknown-fields``, and the CEL rules carried over.
"""

from __future__ import annotations

import sys
from typing import Any

import yaml

from backgroundjobs.api import constants as c
from backgroundjobs.api.columns import PRINTER_COLUMNS
from backgroundjobs.api.models import ROOT_RULES, BackgroundJobSpec, BackgroundJobStatus

_KEEP = {
    "type",
    "description",
    "properties",
    "items",
    "required",
    "enum",
    "minimum",
    "maximum",
    "minLength",
    "maxLength",
    "minItems",
    "maxItems",
    "maxProperties",
    "format",
    "default",
}


def _structural(node: dict[str, Any], defs: dict[str, Any], with_defaults: bool) -> dict[str, Any]:
    """Turn one pydantic JSON-schema node into a structural OpenAPI v3 node."""
    node = dict(node)
    if "$ref" in node:
        target = defs[node.pop("$ref").split("/")[-1]]
        merged = {**target, **node}
        return _structural(merged, defs, with_defaults)
    if "allOf" in node and len(node["allOf"]) == 1:
        inner = node.pop("allOf")[0]
        return _structural({**inner, **node}, defs, with_defaults)
    if "anyOf" in node:
        options = [o for o in node.pop("anyOf") if o.get("type") != "null"]
        if len(options) == 1:
            return _structural({**options[0], **node}, defs, with_defaults)
        node["x-kubernetes-preserve-unknown-fields"] = True

    out: dict[str, Any] = {}
    for key, value in node.items():
        if key.startswith("x-kubernetes-") or key in _KEEP:
            out[key] = value
    if not with_defaults or out.get("default") is None:
        out.pop("default", None)
    if "maxItems" not in out and node.get("type") == "array" and "maxLength" in node:
        out["maxItems"] = out.pop("maxLength")
    if out.get("type") == "array" and "maxLength" in out:
        out["maxItems"] = out.pop("maxLength")

    additional = node.get("additionalProperties")
    if isinstance(additional, dict) and "type" in additional:
        # a map of typed values (labels: string to string)
        out["additionalProperties"] = _structural(additional, defs, with_defaults)
    elif additional not in (None, False) and out.get("type") == "object":
        out["x-kubernetes-preserve-unknown-fields"] = True
    if "properties" in out:
        out["properties"] = {
            name: _structural(prop, defs, with_defaults) for name, prop in out["properties"].items()
        }
    if "items" in out:
        out["items"] = _structural(out["items"], defs, with_defaults)
    if out.get("type") == "object" and not {"properties", "additionalProperties"} & out.keys():
        # dict[str, Any]: a free-form JSON object
        out["x-kubernetes-preserve-unknown-fields"] = True
    if "type" not in out and "x-kubernetes-preserve-unknown-fields" not in out:
        # Any: any JSON value
        out["x-kubernetes-preserve-unknown-fields"] = True
    return out


def _schema_of(model: type[Any], with_defaults: bool) -> dict[str, Any]:
    schema = model.model_json_schema(by_alias=True, mode="validation")
    defs = schema.pop("$defs", {})
    return _structural(schema, defs, with_defaults)


def openapi_schema() -> dict[str, Any]:
    """The structural OpenAPI v3 schema of the whole resource."""
    spec = _schema_of(BackgroundJobSpec, with_defaults=True)
    status = _schema_of(BackgroundJobStatus, with_defaults=False)
    return {
        "type": "object",
        "description": "A background job: fire-and-forget, delayed, recurring (cron) or a"
        " continuation of another job, run as batch/v1 Jobs by the backgroundjobs operator.",
        "required": ["spec"],
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": {"type": "object"},
            "spec": spec,
            "status": status,
        },
        "x-kubernetes-validations": ROOT_RULES,
    }


def build_crd() -> dict[str, Any]:
    """The CustomResourceDefinition object."""
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": c.CRD_NAME,
            "labels": {
                "app.kubernetes.io/name": "backgroundjobs",
                "app.kubernetes.io/part-of": "backgroundjobs",
            },
        },
        "spec": {
            "group": c.GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": c.KIND,
                "listKind": f"{c.KIND}List",
                "plural": c.PLURAL,
                "singular": c.SINGULAR,
                "shortNames": list(c.SHORT_NAMES),
                "categories": list(c.CATEGORIES),
            },
            "versions": [
                {
                    "name": c.VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": [col.crd() for col in PRINTER_COLUMNS],
                    "selectableFields": [
                        {"jsonPath": f".{path}"} for path in c.SELECTABLE_FIELDS.values()
                    ],
                    "schema": {"openAPIV3Schema": openapi_schema()},
                }
            ],
        },
    }


def render() -> str:
    """The CRD as the YAML document committed under crds/."""
    header = (
        "# Generated by `python -m backgroundjobs.api.crd` (make crd)"
        " from backgroundjobs.api.models. Do not edit.\n"
    )
    return header + yaml.safe_dump(build_crd(), sort_keys=False, width=1000)


def main() -> None:
    sys.stdout.write(render())


if __name__ == "__main__":
    main()
