"""status.runHistory: each run the operator starts or sees its CronJob start, with the spec
generation its Job was built from and, for a requeue, who asked (issue 17 item 5)."""

from __future__ import annotations

from backgroundjobs.api.constants import Reason
from backgroundjobs.api.models import MAX_REQUESTER_LENGTH, MAX_RUNS_KEPT, RunRecord
from backgroundjobs.api.requester import RequesterSource, requester_of
from backgroundjobs.api.times import format_time
from backgroundjobs.controller.decisions.observed import ObservedJob
from backgroundjobs.controller.decisions.state import Decision

# The reason of a run of a Recurring job that nobody asked for: its CronJob's scheduled run,
# or a missed time run late by the misfire policy All.
SCHEDULED_RUN = "Scheduled"
CATCH_UP_RUN = "MisfireCatchUp"


def record_run(d: Decision, run: int | None, job: str, reason: str, request: str | None) -> None:
    """Append the run that starts now; ``request`` is the requeue annotation's value that
    asked for it (None: nobody asked, a first run or a trigger)."""
    user = requester_of(request) if request else None
    if user is not None:
        user = user[:MAX_REQUESTER_LENGTH]  # any annotation value fits (up to 256 KiB)
    source = None
    if user is not None:
        checked = d.settings.requester_checked
        source = RequesterSource.ADMISSION_POLICY if checked else RequesterSource.CLIENT
    record = RunRecord(
        run=run,
        job=job,
        generation=d.generation,
        reason=str(reason),
        started_at=d.now_s,
        requested_by=user,
        requester_source=source,
    )
    history = [r for r in d.st.run_history if r.job != job]  # a retried decision: once
    d.st.run_history = [*history, record][-MAX_RUNS_KEPT:]


def record_recurring_run(d: Decision, run: int, job: ObservedJob) -> None:
    """A run of a Recurring job seen for the first time: its CronJob's (or a catch-up) Job.
    Runs the operator started itself (trigger, requeue) were recorded when it made them."""
    if any(r.job == job.name for r in d.st.run_history):
        return
    record = RunRecord(
        run=run,
        job=job.name,
        generation=job.generation,
        reason=CATCH_UP_RUN if job.catch_up else SCHEDULED_RUN,
        started_at=format_time(job.created) if job.created is not None else d.now_s,
    )
    d.st.run_history = [*d.st.run_history, record][-MAX_RUNS_KEPT:]


def requeue_request(d: Decision, reason: str) -> str | None:
    """The requeue annotation value a run started for: the one just handled."""
    if reason != Reason.REQUEUED or d.st.handled_actions is None:
        return None
    return d.st.handled_actions.requeue
