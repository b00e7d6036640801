"""Pause until: ``spec.suspend`` with ``spec.suspendUntil`` resumes the job at that instant.

Nothing is written to resume it: from ``suspendUntil`` on the job is decided as if
``suspend`` were false (so a restart, or a timer that fires a little early, can neither skip
nor double the resumption, nor resume early), and until then the job is looked at again at
that instant (the work queue's timer, restored from the spec after a restart).
"""

from __future__ import annotations

from datetime import UTC, datetime

from backgroundjobs.api.constants import ConditionType, Phase, Reason
from backgroundjobs.api.models import BackgroundJobSpec
from backgroundjobs.api.times import format_time
from backgroundjobs.controller.decisions.state import Decision


def resume_at(spec: BackgroundJobSpec) -> datetime | None:
    """When a suspended job resumes by itself (None: it does not)."""
    if not spec.suspend or spec.suspend_until is None:
        return None
    until = spec.suspend_until
    return until if until.tzinfo is not None else until.replace(tzinfo=UTC)


def suspended(spec: BackgroundJobSpec, now: datetime) -> bool:
    """Whether the job is suspended at ``now``: ``suspend`` and not yet ``suspendUntil``."""
    until = resume_at(spec)
    return spec.suspend and (until is None or now < until)


def effective_spec(d: Decision, spec: BackgroundJobSpec) -> BackgroundJobSpec:
    """The spec the job is decided on now: ``suspend`` false once ``suspendUntil`` passed;
    while it has not, the decision looks again at that instant."""
    until = resume_at(spec)
    if until is None:
        return spec
    if d.now < until:
        d.plan.look_again(until)
        return spec
    return spec.model_copy(update={"suspend": False})


def say_until(d: Decision, spec: BackgroundJobSpec) -> None:
    """A suspended job's message names the instant it resumes; a resumed one's Suspended
    condition says it resumed then."""
    until = resume_at(spec)
    if until is None:
        return
    if d.now < until:
        if d.st.phase == Phase.SUSPENDED:
            d.st.message = f"suspended until {format_time(until)} (spec.suspendUntil)"
        return
    resumed = d.condition(ConditionType.SUSPENDED)
    if resumed is not None and resumed.status == "False" and resumed.reason == Reason.RESUMED:
        message = f"resumed at {format_time(until)} (spec.suspendUntil)"
        if resumed.message != message:
            d.set(ConditionType.SUSPENDED, False, Reason.RESUMED, message)
