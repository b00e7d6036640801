"""``spec.retryPolicy``: the operator retries a failed run itself, one Job per attempt, at the
times of the run's backoff (``retry.Backoff``). Pure.

Restart-safe by construction: the next attempt's due time is computed from what the objects
record, the failed attempt Job's Failed condition time (else the status's ``nextAttemptAt``),
and the job's uid (the jitter); its Job has a deterministic name, so a create repeated after
a restart meets AlreadyExists and adopts it. Never early: the attempt starts only once the
decision's clock has reached the due time; a timer that fires early just looks again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from backgroundjobs.api.constants import ConditionType, EventReason, Phase, Reason
from backgroundjobs.api.models import BackgroundJobSpec
from backgroundjobs.api.times import format_time, later, parse_time
from backgroundjobs.controller import builders
from backgroundjobs.controller.decisions.observed import ObservedJob
from backgroundjobs.controller.decisions.plan import Metric, MetricName
from backgroundjobs.controller.decisions.retry import Backoff
from backgroundjobs.controller.decisions.state import Decision

# The Job's Failed reason when its one pod failed with a retryable exit code (backoffLimit 0):
# the only failure a retry policy retries. A non-retryable exit code (PodFailurePolicy) or a
# timeout (DeadlineExceeded) ends the run, as without a policy.
RETRYABLE_JOB_FAILURE = "BackoffLimitExceeded"

_WHY_MAX = 1024  # of the failure's text in a message


@dataclass(frozen=True)
class NextAttempt:
    """Attempt ``attempt`` (2, 3, ...) of the current run, due at ``due``."""

    attempt: int
    due: datetime


def backoff_of(spec: BackgroundJobSpec) -> Backoff:
    """The spec's backoff as the arithmetic takes it (ValueError for values it refuses)."""
    assert spec.retry_policy is not None
    b = spec.retry_policy.backoff
    return Backoff.parse(b.initial, b.factor, b.max, b.jitter)


def problem(spec: BackgroundJobSpec) -> str | None:
    """Why the spec's retryPolicy cannot be used (the CRD's rules refuse it; an object stored
    under an older CRD may still hold it), or None."""
    if spec.retry_policy is None:
        return None
    try:
        backoff_of(spec)
    except ValueError as exc:
        text = str(exc)  # "backoff.max must be ..." or a duration's own message
        return (
            f"spec.retryPolicy.{text}"
            if text.startswith("backoff.")
            else f"spec.retryPolicy.backoff: {text}"
        )
    return None


def current_job_name(name: str, run: int, attempt: int | None) -> str:
    """The Job of the status's current run and attempt (no attempt: the run's one Job)."""
    return builders.attempt_job_name(name, run, attempt or 1)


def next_attempt(d: Decision, spec: BackgroundJobSpec, job: ObservedJob) -> NextAttempt | None:
    """The attempt after the failed attempt ``job``; None when the run ends with it (no
    policy, a failure that is not retried, or the last attempt ``retries + 1``)."""
    if not builders.operator_retries(spec) or job.failure_reason != RETRYABLE_JOB_FAILURE:
        return None
    attempt = d.st.attempt or 1
    if attempt > spec.retries:
        return None
    recorded = parse_time(d.old.next_attempt_at) if d.old.attempt == attempt else None
    if job.failure_time is None and recorded is not None:
        return NextAttempt(attempt + 1, recorded)
    failed_at = job.failure_time or d.now
    uid = str(d.meta.get("uid") or d.name)
    # (Backoff.next_due, saturated: a failure time near year 9999 must not overflow)
    return NextAttempt(attempt + 1, later(failed_at, backoff_of(spec).delay(attempt, uid)))


def recorded_next_attempt(d: Decision, spec: BackgroundJobSpec) -> NextAttempt | None:
    """The attempt the status says is waiting, for when the failed attempt's Job is gone."""
    due = parse_time(d.st.next_attempt_at)
    if not builders.operator_retries(spec) or due is None:
        return None
    return NextAttempt((d.st.attempt or 1) + 1, due)


def wait(d: Decision, spec: BackgroundJobSpec, nxt: NextAttempt, why: str) -> bool:
    """Record the failed attempt and the next one's due time; True while it is not due yet
    (the job shows Running with its condition's reason Retrying, and looks again then)."""
    st = d.st
    total = spec.retries + 1
    failed = nxt.attempt - 1
    due_s = format_time(nxt.due)
    why = why[:_WHY_MAX]
    st.failed_attempts = failed
    first_seen = d.old.next_attempt_at != due_s
    if first_seen:  # one Event, counted once
        d.warn(
            EventReason.RETRYING,
            f"attempt {failed} of {total} failed: {why}; attempt {nxt.attempt} due at {due_s}",
        )
        d.plan.metrics.append(
            Metric(MetricName.RETRIES, {"queue": spec.queue, "handler": spec.handler})
        )
    st.next_attempt_at = due_s
    if d.now >= nxt.due:
        return False
    if first_seen:  # (later looks keep the message: ``why`` is known only the first time)
        msg = f"retrying: attempt {nxt.attempt} of {total} due at {due_s} (attempt {failed}: {why})"
        d.phase(Phase.RUNNING, msg)
        d.set(ConditionType.RUNNING, True, Reason.RETRYING, msg)
    d.plan.look_again(nxt.due)
    return True


def recorded_wait(d: Decision, spec: BackgroundJobSpec, job: ObservedJob) -> NextAttempt | None:
    """The next attempt after ``job`` when the status already recorded its wait: decided
    without the failed pod's termination message (read once, when the failure was first
    seen), so the due attempt's Job is made without that read first."""
    if d.old.next_attempt_at is None or job.failure_reason is None:
        return None
    nxt = next_attempt(d, spec, job)
    if nxt is None or format_time(nxt.due) != d.old.next_attempt_at:
        return None
    return nxt
