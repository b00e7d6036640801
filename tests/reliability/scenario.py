"""Helpers the reliability scenarios share: objects made from raw JSON text (deeper than the
Python client can serialise), the operator's gauges, and what the cluster holds."""

from __future__ import annotations

import re
import subprocess
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kubernetes import client

from backgroundjobs.api import constants as c
from backgroundjobs.controller.metrics import label_value

Body = dict[str, Any]
KUBECTL = Path.home() / ".cache" / "backgroundjobs" / "venv" / "bin" / "kubectl"
TERMINAL = {"Succeeded", "Failed", "Cancelled"}


def kubectl() -> str:
    """The kubectl the project installs (the venv's, else the shared cache's)."""
    import shutil

    return shutil.which("kubectl") or str(KUBECTL)


def create_raw(kubeconfig: str, namespace: str, text: str) -> tuple[bool, str]:
    """``kubectl create`` of a JSON text: whether the API server stored it, and its message."""
    out = subprocess.run(
        [kubectl(), "--kubeconfig", kubeconfig, "-n", namespace, "create", "-f", "-"],
        input=text,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return out.returncode == 0, (out.stdout + out.stderr).strip()


def nested_json(depth: int) -> str:
    """A JSON value nested ``depth`` levels deep (objects and arrays alternating)."""
    opens = "".join('{"a":' if i % 2 == 0 else "[" for i in range(depth))
    closes = "".join("}" if i % 2 == 0 else "]" for i in reversed(range(depth)))
    return opens + "1" + closes


def bgj_text(name: str, spec_fields: str) -> str:
    """A BackgroundJob as JSON text; ``spec_fields``: the spec's members after the handler."""
    return (
        f'{{"apiVersion":"{c.API_VERSION}","kind":"{c.KIND}","metadata":{{"name":"{name}"}},'
        f'"spec":{{"handler":"test.echo"{"," + spec_fields if spec_fields else ""}}}}}'
    )


def list_bgjs(custom: client.CustomObjectsApi, namespace: str | None = None) -> list[Body]:
    if namespace is None:
        items = custom.list_cluster_custom_object(c.GROUP, c.VERSION, c.PLURAL)["items"]
    else:
        items = custom.list_namespaced_custom_object(c.GROUP, c.VERSION, namespace, c.PLURAL)[
            "items"
        ]
    return list(items)


def phase_counts(items: list[Body]) -> Counter[str]:
    """What `kubectl get bgj` shows, counted by phase (no phase yet: Pending), the phase
    spelled as the metrics label it becomes (``Succeeded`` -> ``succeeded``)."""
    return Counter(label_value((o.get("status") or {}).get("phase") or "Pending") for o in items)


_GAUGE = re.compile(r"^backgroundjobs_jobs\{(?P<labels>[^}]*)\} (?P<value>\S+)$", re.M)


def gauge_counts(metrics_text: str) -> Counter[str]:
    """The operator's ``backgroundjobs_jobs{phase,queue}`` gauge summed by phase."""
    out: Counter[str] = Counter()
    for m in _GAUGE.finditer(metrics_text):
        phase = re.search(r'phase="([^"]*)"', m.group("labels"))
        value = float(m.group("value"))
        if phase and value:
            out[phase.group(1)] += int(value)
    return out


def pending_statuses(metrics_text: str) -> float:
    """``backgroundjobs_operator_pending{stage="status"}``: Jobs created whose status write
    waits (the status hold)."""
    m = re.search(r'^backgroundjobs_operator_pending\{stage="status"\} (\S+)$', metrics_text, re.M)
    return float(m.group(1)) if m else 0.0


def now() -> datetime:
    return datetime.now(UTC)
