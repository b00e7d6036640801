"""``suspend`` holds a pending retry: a job whose next attempt waits (``spec.retryPolicy``)
gets no new attempt while it is suspended, and gets it when resumed (at once if it fell due
meanwhile, else at its due time). Nothing is written to hold it: the decision reads
``spec.suspend`` (with ``suspendUntil`` already applied) each time, so a restart neither
loses the hold nor starts the attempt early."""

from __future__ import annotations

from backgroundjobs.api.constants import ConditionType, EventReason, Phase, Reason
from backgroundjobs.api.models import BackgroundJobSpec
from backgroundjobs.api.times import format_time, parse_time
from backgroundjobs.controller.decisions.plan import Metric, MetricName
from backgroundjobs.controller.decisions.retrypolicy import NextAttempt
from backgroundjobs.controller.decisions.state import Decision


def attempt_lateness(d: Decision, spec: BackgroundJobSpec, nxt: NextAttempt) -> Metric:
    """How late the attempt starts now: from its due time, or from its resume when suspend
    held it past that time (the wait a user asked for is not lateness)."""
    ready = nxt.due
    resumed = d.condition(ConditionType.SUSPENDED)
    if resumed is not None and resumed.status == "False" and resumed.reason == Reason.RESUMED:
        at = parse_time(resumed.last_transition_time)
        if at is not None and at > ready:
            ready = at
    late = max(0.0, (d.now - ready).total_seconds())
    return Metric(MetricName.ATTEMPT_LATENESS, {"queue": spec.queue}, late)


def hold_retry(d: Decision, spec: BackgroundJobSpec, nxt: NextAttempt) -> bool:
    """True while the suspended job's next attempt is held (phase Suspended); on resume,
    the Suspended condition is cleared and the phase is Running again."""
    held = d.condition(ConditionType.SUSPENDED)
    if not spec.suspend:
        if held is not None and held.status == "True":
            d.unset(ConditionType.SUSPENDED, Reason.RESUMED, "spec.suspend is false")
            running = d.condition(ConditionType.RUNNING)
            d.phase(Phase.RUNNING, running.message if running else None)
        return False
    msg = (
        f"suspended: attempt {nxt.attempt} of {spec.retries + 1} (due at"
        f" {format_time(nxt.due)}) waits until resumed"
    )
    if d.old_phase != Phase.SUSPENDED:
        d.note(EventReason.SUSPENDED, msg)
    d.phase(Phase.SUSPENDED, msg)
    d.set(ConditionType.SUSPENDED, True, Reason.SUSPENDED, "spec.suspend is true")
    return True
