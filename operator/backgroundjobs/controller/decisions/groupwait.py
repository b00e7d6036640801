"""Continuations after a group (``spec.after.selector``): the child waits until ``count``
members exist and every one has reached ``after.when``."""

from __future__ import annotations

from backgroundjobs.api.constants import ConditionType, EventReason, Phase, Reason
from backgroundjobs.api.models import BackgroundJobSpec
from backgroundjobs.controller.decisions.plan import Plan
from backgroundjobs.controller.decisions.state import Decision

_FAILED_PHASES = (Phase.FAILED, Phase.CANCELLED)


def selector_text(labels: dict[str, str]) -> str:
    """matchLabels as kubectl writes a selector: ``a=b,c=d``."""
    return ",".join(f"{name}={value}" for name, value in sorted(labels.items()))


def keep_waiting(d: Decision, reason: Reason, msg: str) -> Plan:
    """A continuation's plan while it waits: phase and condition Waiting with ``reason``,
    an Event when the reason is new."""
    waiting = d.condition(ConditionType.WAITING)
    if d.old_phase != Phase.WAITING or waiting is None or waiting.reason != reason:
        d.note(EventReason.WAITING, msg)
    d.phase(Phase.WAITING, msg)
    d.set(ConditionType.WAITING, True, reason, msg)
    return d.plan


def wait_for_group(d: Decision, spec: BackgroundJobSpec) -> Plan | None:
    """None when the child may start now; else the plan that keeps it waiting.

    The group is fixed by ``after.count``: fewer matching members than that is a group still
    being created, never judged. Then Succeeded means every member succeeded, Failed that
    every member finished and one or more failed (or were cancelled), Finished either."""
    after = spec.after
    assert after is not None and after.selector is not None and after.count is not None
    group = selector_text(after.selector.match_labels)
    members = d.obs.group or {}

    if len(members) < after.count:
        return keep_waiting(
            d,
            Reason.GROUP_INCOMPLETE,
            f"waiting for group {group}: {len(members)} of {after.count} members exist",
        )
    succeeded = sum(1 for phase in members.values() if phase == Phase.SUCCEEDED)
    failed = sum(1 for phase in members.values() if phase in _FAILED_PHASES)
    if succeeded + failed < len(members):
        return keep_waiting(
            d,
            Reason.GROUP_RUNNING,
            f"waiting for group {group}: {succeeded + failed} of {len(members)} members"
            f" finished ({failed} failed)",
        )
    outcome = "Failed" if failed else "Succeeded"
    if after.when in ("Finished", outcome):
        return None
    if outcome == "Failed":
        return keep_waiting(
            d,
            Reason.GROUP_FAILED,
            f"group {group}: {failed} of {len(members)} members failed; waiting in case"
            " they are requeued",
        )
    return keep_waiting(
        d,
        Reason.GROUP_SUCCEEDED,
        f"group {group}: every member succeeded; this job runs only if one fails",
    )
