"""The machine-readable outputs: ``-o name``, ``-o json``, ``-o yaml``."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import yaml

from backgroundjobs.api.constants import GROUP, SINGULAR

RESOURCE = f"{SINGULAR}.{GROUP}"


def resource_name(name: str) -> str:
    """``backgroundjob.backgroundjobs.dev/NAME`` (``-o name``)."""
    return f"{RESOURCE}/{name}"


def as_list(objects: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Objects wrapped in a ``v1`` ``List``, as ``kubectl get -o json`` prints several."""
    return {"apiVersion": "v1", "kind": "List", "items": list(objects), "metadata": {}}


def to_json(obj: Any) -> str:
    """Indented JSON, as ``kubectl -o json``."""
    return json.dumps(obj, indent=2, ensure_ascii=False) + "\n"


def to_yaml(obj: Any) -> str:
    """Block-style YAML, as ``kubectl -o yaml``."""
    return yaml.safe_dump(obj, sort_keys=False, allow_unicode=True, width=1000)
