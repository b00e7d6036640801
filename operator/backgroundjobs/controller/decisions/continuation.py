"""Continuations: a child waits for its parent (same namespace) to reach ``after.when``."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import ValidationError

from backgroundjobs.api.constants import (
    ConditionType,
    JobType,
    Phase,
    Reason,
)
from backgroundjobs.api.models import BackgroundJobSpec
from backgroundjobs.controller.decisions.groupwait import keep_waiting, wait_for_group
from backgroundjobs.controller.decisions.observed import Body, parse_spec
from backgroundjobs.controller.decisions.plan import Outcome, Plan
from backgroundjobs.controller.decisions.state import Decision


def parent_env(d: Decision, spec: BackgroundJobSpec) -> tuple[str, Any] | None:
    """The parent's name and result, for the child's BACKGROUNDJOBS_PARENT(_RESULT)."""
    if spec.after is None or spec.after.name is None:
        return None
    result = ((d.obs.parent or {}).get("status") or {}).get("result")
    return spec.after.name, result


def parent_outcome(parent: Body) -> Literal["Succeeded", "Failed"] | None:
    """Succeeded, Failed (failed or cancelled), or None while it has not finished."""
    phase = (parent.get("status") or {}).get("phase")
    if phase == Phase.SUCCEEDED:
        return "Succeeded"
    if phase in (Phase.FAILED, Phase.CANCELLED):
        return "Failed"
    return None


def wait_for_parent(d: Decision, spec: BackgroundJobSpec) -> Plan | None:
    """None when the child may start now; else the plan that keeps it waiting (or fails it)."""
    assert spec.after is not None
    if spec.after.name is None:
        return wait_for_group(d, spec)
    st = d.st
    parent_name = spec.after.name
    parent = d.obs.parent
    seen_uid = st.parent_uid

    def fail(msg: str) -> Plan:
        return d.finish(
            spec, Outcome.FAILED, Reason.PARENT_DELETED, msg, msg, stopped=(ConditionType.WAITING,)
        )

    if d.obs.cycle:
        return d.invalid_spec(
            "spec.after.name: a cycle of continuations, which can never start: "
            + " -> ".join(d.obs.cycle)
        )
    if parent is None:
        if seen_uid:
            return fail(f"parent {parent_name} was deleted before it let this job start")
        return keep_waiting(
            d,
            Reason.PARENT_NOT_FOUND,
            f"waiting for parent {parent_name}, which does not exist yet",
        )
    parent_uid = (parent.get("metadata") or {}).get("uid")
    if seen_uid and parent_uid != seen_uid:
        return fail(f"parent {parent_name} was deleted and created again")
    st.parent_uid = parent_uid
    try:
        parent_spec = parse_spec(parent)
    except ValidationError:
        parent_spec = None
    if parent_spec is not None and parent_spec.job_type == JobType.RECURRING:
        return d.invalid_spec(
            f"spec.after.name: parent {parent_name} is Recurring;"
            " a continuation needs a one-off parent"
        )

    outcome = parent_outcome(parent)
    when = spec.after.when
    if outcome is not None and (when == "Finished" or when == outcome):
        return None
    if outcome == "Failed":
        return keep_waiting(
            d, Reason.PARENT_FAILED, f"parent {parent_name} failed; waiting in case it is requeued"
        )
    if outcome == "Succeeded":
        return keep_waiting(
            d,
            Reason.PARENT_SUCCEEDED,
            f"parent {parent_name} succeeded; this job runs only if it fails",
        )
    parent_phase = (parent.get("status") or {}).get("phase") or Phase.PENDING
    if parent_phase == Phase.RUNNING:
        return keep_waiting(d, Reason.PARENT_RUNNING, f"waiting for parent {parent_name} (Running)")
    return keep_waiting(
        d, Reason.PARENT_PENDING, f"waiting for parent {parent_name} ({parent_phase})"
    )
