"""What a Recurring job shows of its runs held by their queue (controller.heldruns): the
``Queued`` condition, True with the queue's reason while a run's Job waits suspended."""

from __future__ import annotations

from backgroundjobs.api.constants import ConditionType, Reason
from backgroundjobs.controller.decisions.state import Decision


def show_held_runs(d: Decision) -> None:
    """``Queued`` True naming the held runs and why the first waits; False once none is."""
    held = sorted(
        (j for j in d.obs.jobs.values() if j.suspended and not j.finished),
        key=lambda j: (j.created is None, j.created, j.name),
    )
    if not held:
        d.unset(ConditionType.QUEUED, Reason.STARTED, "no run waits for its queue")
        return
    reason = d.obs.wait_reason or Reason.QUEUE_FULL
    why = d.obs.wait_message or "waiting for its queue"
    names = ", ".join(j.name for j in held)
    d.set(ConditionType.QUEUED, True, reason, f"held: {names} ({why})")
