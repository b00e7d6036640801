"""What Kueue says of a run's Job (a queue with ``spec.kueue``): its Workload's conditions,
read by the reconciler for ``decisions.kueue``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

Body = dict[str, Any]


@dataclass(frozen=True)
class WorkloadCondition:
    status: bool
    reason: str
    message: str


@dataclass(frozen=True)
class WorkloadState:
    """What Kueue says of a run's Job: whether its Workload API is served, and the
    conditions of the Job's newest Workload (empty: none made yet)."""

    installed: bool = True
    found: bool = False
    cluster_queue: str | None = None
    conditions: dict[str, WorkloadCondition] = field(default_factory=dict)

    def true(self, ctype: str) -> WorkloadCondition | None:
        cnd = self.conditions.get(ctype)
        return cnd if cnd is not None and cnd.status else None


def workload_state(workloads: list[Body]) -> WorkloadState:
    """The state of the newest of a Job's Workloads (Kueue makes a new one when a Job's
    pod template changes)."""
    if not workloads:
        return WorkloadState()
    newest = max(
        workloads,
        key=lambda w: (
            (w.get("metadata") or {}).get("creationTimestamp") or "",
            (w.get("metadata") or {}).get("name") or "",
        ),
    )
    status = newest.get("status") or {}
    conditions = {
        str(cnd.get("type")): WorkloadCondition(
            cnd.get("status") == "True", str(cnd.get("reason") or ""), str(cnd.get("message") or "")
        )
        for cnd in status.get("conditions") or []
        if cnd.get("type")
    }
    cluster_queue = (status.get("admission") or {}).get("clusterQueue")
    return WorkloadState(True, True, cluster_queue or None, conditions)
