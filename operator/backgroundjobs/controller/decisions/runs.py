"""Immediate, Delayed and Continuation jobs: one Job per run (run 1, and one more per
requeue), started when due, when the parent allows it and when the queue admits it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from backgroundjobs.api.constants import (
    FINISHED_PHASES,
    ConditionType,
    EventReason,
    JobType,
    Phase,
    Reason,
)
from backgroundjobs.api.models import BackgroundJobSpec, BatchRerun, BatchStatus
from backgroundjobs.api.requester import is_failed_only
from backgroundjobs.api.times import format_time, parse_time
from backgroundjobs.controller import builders
from backgroundjobs.controller.decisions import batch, kueue, rerun, retrypolicy
from backgroundjobs.controller.decisions.attempts import record_attempts
from backgroundjobs.controller.decisions.continuation import parent_env, wait_for_parent
from backgroundjobs.controller.decisions.observed import ObservedJob
from backgroundjobs.controller.decisions.plan import Admission, Metric, MetricName, Outcome, Plan
from backgroundjobs.controller.decisions.pods import check_pods
from backgroundjobs.controller.decisions.retryhold import attempt_lateness, hold_retry
from backgroundjobs.controller.decisions.runhistory import record_run, requeue_request
from backgroundjobs.controller.decisions.state import (
    Decision,
    error_text,
    failure_reason,
)
from backgroundjobs.controller.schedule import due_at

_CANCELLED_BY = "cancelled by the backgroundjobs.dev/cancel annotation"


def decide_run(d: Decision, spec: BackgroundJobSpec) -> Plan:
    """The next step of an Immediate, Delayed or Continuation job."""
    plan, st = d.plan, d.st
    run = st.runs
    current = retrypolicy.current_job_name(d.name, run, st.attempt) if run else None
    job = d.obs.jobs.get(current) if current else None
    finished = st.phase in FINISHED_PHASES
    if finished and run == 0 and d.is_invalid_for_older_generation():
        finished = False  # the spec was fixed after the API server refused the first Job
        st.finished_at = None
    actions = d.pending_actions()

    if "cancel" in actions:
        d.handle("cancel", actions["cancel"])
        if not finished:
            if job is not None and not job.finished:
                plan.delete_jobs.append(job.name)
            return d.finish(
                spec,
                Outcome.CANCELLED,
                Reason.CANCELLED,
                _CANCELLED_BY,
                _CANCELLED_BY + (f"; Job {job.name} deleted" if job else ""),
                stopped=(
                    ConditionType.RUNNING,
                    ConditionType.SCHEDULED,
                    ConditionType.WAITING,
                    ConditionType.QUEUED,
                    ConditionType.SUSPENDED,
                ),
            )
        d.note(EventReason.CANCEL_IGNORED, f"the job already finished ({st.phase})")

    if "requeue" in actions:
        # A requeue held by its queue waits Queued, its annotation not yet handled.
        held = st.phase == Phase.QUEUED and run > 0 and (job is None or job.finished)
        startable = (finished or held) and not d.is_invalid_for_generation()
        again: BatchRerun | None = None
        refused = False
        if startable and is_failed_only(actions["requeue"]):
            again = rerun.choose(d, spec.items, job)  # None: refused, with a Warning
            startable = again is not None
            refused = again is None
        if startable:
            plan.admission = Admission(spec.queue)
            if d.obs.admitted is False:
                return _queued(d, spec)
            d.handle("requeue", actions["requeue"])
            parent = parent_env(d, spec)
            return _start(d, spec, run + 1, Reason.REQUEUED, parent=parent, rerun=again)
        d.handle("requeue", actions["requeue"])
        # (an invalid spec fails again at once: the user must fix it first)
        if not finished and not refused:
            d.warn(
                EventReason.REQUEUE_IGNORED,
                f"only a finished job can be requeued; this one is {st.phase or Phase.PENDING}",
            )

    trigger_now = False
    if "trigger" in actions:
        d.handle("trigger", actions["trigger"])
        if run == 0 and spec.job_type == JobType.DELAYED and not finished:
            trigger_now = True
        else:
            d.note(
                EventReason.TRIGGER_IGNORED,
                "trigger starts a Delayed job that has not started",
            )

    if finished:
        return d.retention(spec)
    if run == 0:
        return _before_first_run(d, spec, trigger_now)
    if job is None:
        waiting = retrypolicy.recorded_next_attempt(d, spec)
        if waiting is not None:  # the failed attempt's Job is gone; its retry is not
            return _retry(d, spec, waiting, d.st.message or "")
        # The reconciler checked with the API server: the Job is really gone.
        msg = f"Job {current} was deleted before it finished"
        return d.finish(spec, Outcome.FAILED, Reason.JOB_DELETED, msg, msg)
    return _observe_job(d, spec, job)


def _before_first_run(d: Decision, spec: BackgroundJobSpec, trigger_now: bool) -> Plan:
    plan, st = d.plan, d.st
    if d.is_invalid_for_generation():
        return plan
    if spec.suspend:
        if d.old_phase != Phase.SUSPENDED:
            d.note(EventReason.SUSPENDED, "spec.suspend is true: not started")
        d.phase(Phase.SUSPENDED, "suspended: set spec.suspend to false to start it")
        d.set(ConditionType.SUSPENDED, True, Reason.SUSPENDED, "spec.suspend is true")
        return plan
    d.unset(ConditionType.SUSPENDED, Reason.RESUMED, "spec.suspend is false")

    scheduled = d.condition(ConditionType.SCHEDULED)
    triggered_before = (
        scheduled is not None
        and scheduled.reason == Reason.TRIGGERED
        and scheduled.status == "False"
    )
    trigger_now = trigger_now or triggered_before  # a trigger held by a full queue still holds
    due: datetime | None = None
    if spec.job_type == JobType.DELAYED:
        created = parse_time(d.meta.get("creationTimestamp")) or d.now
        due = due_at(spec, created)
        assert due is not None
        due_s = format_time(due)
        if trigger_now:
            if not triggered_before:
                d.note(EventReason.TRIGGERED, f"started now instead of at {due_s}")
            d.set(
                ConditionType.SCHEDULED,
                False,
                Reason.TRIGGERED,
                "started by backgroundjobs.dev/trigger",
            )
        elif d.now < due:
            if d.old_phase != Phase.SCHEDULED:
                d.note(EventReason.SCHEDULED, f"due at {due_s}")
            elif d.old.due_at != due_s:
                d.note(
                    EventReason.RESCHEDULED,
                    f"now due at {due_s} (was {d.old.due_at})",
                )
            st.due_at = due_s
            d.phase(Phase.SCHEDULED, f"due at {due_s}")
            d.set(ConditionType.SCHEDULED, True, Reason.DUE_IN_FUTURE, f"due at {due_s}")
            plan.requeue_at = due
            return plan
        st.due_at = due_s

    parent = None
    if spec.job_type == JobType.CONTINUATION:
        waiting = wait_for_parent(d, spec)
        if waiting is not None:
            return waiting
        parent = parent_env(d, spec)

    # Ready to start: the queue decides when (Observed.admitted, the reconciler's answer).
    plan.admission = Admission(spec.queue)
    if d.obs.admitted is False:
        return _queued(d, spec)
    reason = Reason.TRIGGERED if trigger_now else Reason.CREATED
    return _start(d, spec, 1, reason, parent=parent, due=due)


def _queued(d: Decision, spec: BackgroundJobSpec) -> Plan:
    """The run waits for its queue (``Observed.wait_reason`` says why)."""
    reason = d.obs.wait_reason or Reason.QUEUE_FULL
    msg = d.obs.wait_message or f"queue {spec.queue} is at its concurrency limit"
    if d.old_phase != Phase.QUEUED:
        d.note(EventReason.QUEUED, msg)
    d.phase(Phase.QUEUED, msg)
    d.set(ConditionType.QUEUED, True, reason, msg)
    return d.plan


def _retry(d: Decision, spec: BackgroundJobSpec, nxt: retrypolicy.NextAttempt, why: str) -> Plan:
    """Under a retryPolicy: wait for the next attempt's time, then start it as any run
    starts (its queue admits it)."""
    waiting = retrypolicy.wait(d, spec, nxt, why)
    if hold_retry(d, spec, nxt) or waiting:
        return d.plan
    d.plan.admission = Admission(spec.queue)
    if d.obs.admitted is False:
        return _queued(d, spec)
    parent = parent_env(d, spec)
    d.plan.metrics.append(attempt_lateness(d, spec, nxt))
    return _start(d, spec, d.st.runs, Reason.STARTED, parent=parent, attempt=nxt.attempt)


def _start(
    d: Decision,
    spec: BackgroundJobSpec,
    run: int,
    reason: Reason,
    parent: tuple[str, Any] | None = None,
    due: datetime | None = None,
    attempt: int = 1,
    rerun: BatchRerun | None = None,
) -> Plan:
    plan, st = d.plan, d.st
    if spec.items is not None:
        problem = batch.items_problem(spec, (d.bgj.get("spec") or {}).get("items"))
        if problem is not None:
            return d.invalid_spec(problem)
    job = builders.build_job(d.bgj, spec, d.settings, run, parent)
    if builders.operator_retries(spec):
        job["metadata"]["name"] = builders.attempt_job_name(d.name, run, attempt)
        st.attempt = attempt
    else:
        st.attempt = None
    st.next_attempt_at = None
    name = job["metadata"]["name"]
    if spec.items is not None:  # its items first: the Job's pods mount them
        plan.create.append(batch.items_configmap(d.bgj, spec, name, rerun))
        job = batch.make_indexed(job, spec, rerun)
        total = len(spec.items)
        done = total - rerun.items if rerun else 0  # a rerun's other items had succeeded
        st.batch = BatchStatus(
            total=total,
            succeeded=done,
            failed=0,
            running=0,
            progress=f"{done}/{total}",
            rerun=rerun,
        )
    if d.obs.kueue_local_queue is not None:
        job = kueue.hand_off(job, d.obs.kueue_local_queue)
    plan.create.append(job)
    st.runs = run
    if attempt == 1:  # a retry attempt is the same run
        record_run(d, run, name, reason, requeue_request(d, reason))
    st.job_name = name
    st.started_at = d.now_s
    st.failed_attempts = attempt - 1
    st.finished_at = None
    st.result = None
    # the last run's progress is not this one's; a batch's is its items'
    st.progress = batch.batch_progress(st.batch) if spec.items is not None and st.batch else None
    msg = f"Job {name} created (run {run})"
    if st.attempt is not None:
        msg = f"Job {name} created (run {run}, attempt {attempt} of {spec.retries + 1})"
    d.phase(Phase.RUNNING, msg)
    d.set(ConditionType.RUNNING, True, reason, msg)
    d.unset(ConditionType.SUCCEEDED, reason, msg)
    d.unset(ConditionType.FAILED, reason, msg)
    for ctype in (ConditionType.SCHEDULED, ConditionType.WAITING, ConditionType.QUEUED):
        d.unset(ctype, Reason.STARTED, msg)
    event = EventReason.REQUEUED if reason == Reason.REQUEUED else EventReason.STARTED
    d.note(event, msg)
    plan.metrics.append(Metric(MetricName.STARTED, spec.metric_labels()))
    if d.obs.kueue_local_queue is not None:
        kueue.created_held(d, d.obs.kueue_local_queue, name)
    if due is None and spec.job_type == JobType.IMMEDIATE and run == 1 and attempt == 1:
        due = parse_time(d.meta.get("creationTimestamp"))
    if due is not None and reason != Reason.TRIGGERED:
        lateness = max(0.0, (d.now - due).total_seconds())
        plan.metrics.append(Metric(MetricName.LATENESS, {"type": spec.job_type.value}, lateness))
    return plan


def _observe_job(d: Decision, spec: BackgroundJobSpec, job: ObservedJob) -> Plan:
    if d.obs.kueue_local_queue is not None and not job.finished:
        if job.suspended:
            return kueue.held(d, d.obs.kueue_local_queue, job)
        kueue.admitted(d, job)
    if spec.items is not None:
        return batch.observe_batch(d, spec, job)
    plan, st = d.plan, d.st
    old_failed = d.old.failed_attempts
    by_operator = builders.operator_retries(spec)
    # under a retryPolicy each attempt's Job fails at most once: earlier attempts count too
    st.failed_attempts = job.failed + ((st.attempt or 1) - 1 if by_operator else 0)
    if job.start_time is not None and not st.started_at:
        st.started_at = format_time(job.start_time)
    record_attempts(d, job)

    if job.finished and job.name not in d.obs.termination:
        recorded = retrypolicy.recorded_wait(d, spec, job)
        if recorded is not None:  # its error was read when its failure was first seen
            return _retry(d, spec, recorded, "")
        plan.need_termination = job.name  # the handler's result or error, from its pod
        return plan

    if job.complete:
        finished_at = job.completion_time or d.now
        started = parse_time(st.started_at) or job.start_time or finished_at
        took = max(0.0, (finished_at - started).total_seconds())
        d.keep_result(d.obs.termination[job.name])
        msg = f"succeeded in {took:.1f}s"
        return d.finish(
            spec,
            Outcome.SUCCEEDED,
            Reason.COMPLETED,
            msg,
            f"Job {job.name} {msg}",
            finished_at=finished_at,
            took=took,
            ran=True,
            stopped=(),
        )

    if job.failure_reason is not None:
        reason = failure_reason(job)
        error = error_text(d.obs.termination[job.name])
        detail = job.failure_message or reason
        msg = f"{detail}" + (f"; last error: {error}" if error else "")
        nxt = retrypolicy.next_attempt(d, spec, job)
        if nxt is not None:
            return _retry(d, spec, nxt, error or detail)
        finished_at = job.failure_time or d.now
        started = parse_time(st.started_at) or finished_at
        took = max(0.0, (finished_at - started).total_seconds())
        return d.finish(
            spec,
            Outcome.FAILED,
            reason,
            msg,
            f"Job {job.name} failed ({reason}): {msg}",
            phase_message=f"failed ({reason}): {msg}",
            finished_at=finished_at,
            took=took,
            ran=True,
            stopped=(),
        )

    if job.failed > old_failed and not by_operator:
        msg = f"pod failed (attempt {job.failed} of {spec.retries + 1}); retrying"
        d.warn(EventReason.RETRYING, msg)
        plan.metrics.append(
            Metric(
                MetricName.RETRIES,
                {"queue": spec.queue, "handler": spec.handler},
                job.failed - old_failed,
            )
        )
        d.set(ConditionType.RUNNING, True, Reason.POD_FAILED, msg)
        d.phase(Phase.RUNNING, msg)
    else:
        d.phase(Phase.RUNNING)
    return check_pods(d, spec, job) or plan
