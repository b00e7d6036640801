"""Recurring jobs: a CronJob kept to the spec, its runs observed, triggers as extra Jobs."""

from __future__ import annotations

from datetime import timedelta

from backgroundjobs.api.constants import ConditionType, EventReason, Phase, Reason
from backgroundjobs.api.models import BackgroundJobSpec
from backgroundjobs.api.requester import is_failed_only
from backgroundjobs.api.times import format_time, later, parse_time
from backgroundjobs.controller import builders
from backgroundjobs.controller.decisions import misfire
from backgroundjobs.controller.decisions.attempts import record_attempts
from backgroundjobs.controller.decisions.heldruns import show_held_runs
from backgroundjobs.controller.decisions.plan import Metric, MetricName, Outcome, Plan
from backgroundjobs.controller.decisions.pods import check_recurring_run
from backgroundjobs.controller.decisions.runhistory import record_recurring_run, record_run
from backgroundjobs.controller.decisions.state import (
    REFUSALS,
    Decision,
    error_text,
    failure_reason,
)
from backgroundjobs.controller.schedule import InvalidSchedule, check_schedule, next_run


def decide_recurring(d: Decision, spec: BackgroundJobSpec) -> Plan:
    """The next step of a Recurring job."""
    plan, st = d.plan, d.st
    assert spec.schedule is not None
    try:
        check_schedule(spec.schedule, spec.time_zone)
    except InvalidSchedule as exc:
        return d.invalid_spec(str(exc))
    if d.is_invalid_for_generation():
        d.hold_cronjob()  # refused by the API server after the status said so, too
        return plan
    failed = d.condition(ConditionType.FAILED)
    if failed and failed.reason in REFUSALS and failed.status == "True":
        d.set(ConditionType.FAILED, False, Reason.SPEC_FIXED, "the spec is valid again")

    desired = builders.build_cronjob(d.bgj, spec, d.settings)
    observed = d.obs.cronjob
    cronjob_name = desired["metadata"]["name"]
    if observed is None:
        plan.create.append(desired)
        if d.old.phase is None:
            d.note(
                EventReason.CREATED,
                f"CronJob {cronjob_name} created ({spec.schedule})",
            )
    else:
        want = desired["metadata"]["annotations"][builders.SPEC_HASH_ANNOTATION]
        have = ((observed.get("metadata") or {}).get("annotations") or {}).get(
            builders.SPEC_HASH_ANNOTATION
        )
        if want != have:
            plan.replace_cronjob = desired
            d.note(
                EventReason.UPDATED,
                f"CronJob {cronjob_name} updated ({spec.schedule})",
            )

    actions = d.pending_actions()
    if "trigger" in actions:
        d.handle("trigger", actions["trigger"])
        job = builders.build_triggered_job(d.bgj, spec, d.settings, actions["trigger"])
        plan.create.append(job)
        record_run(d, None, job["metadata"]["name"], Reason.TRIGGERED, None)
        d.note(
            EventReason.TRIGGERED,
            f"extra run {job['metadata']['name']} started now",
        )
    if "requeue" in actions:
        # One run now, like a trigger (the schedule unchanged), recorded as a requeue; its
        # Job's name comes from the annotation's value, so a restart never doubles it.
        value = actions["requeue"]
        d.handle("requeue", value)
        if is_failed_only(value):
            d.warn(
                EventReason.REQUEUE_IGNORED,
                "failed-only requeue: a Recurring job's runs are not batches: requeue it"
                " without failed-only for an extra run",
            )
        else:
            job = builders.build_triggered_job(d.bgj, spec, d.settings, "requeue " + value)
            plan.create.append(job)
            record_run(d, None, job["metadata"]["name"], Reason.REQUEUED, value)
            d.note(EventReason.REQUEUED, f"extra run {job['metadata']['name']} started now")
    if "cancel" in actions:
        d.handle("cancel", actions["cancel"])
        running = [j.name for j in d.obs.jobs.values() if not j.finished]
        plan.delete_jobs.extend(running)
        d.note(
            EventReason.CANCELLED,
            f"running Jobs deleted: {', '.join(running) or 'none'}",
        )

    _observe_runs(d, spec)
    show_held_runs(d)
    misfire.account(d, spec, fresh=observed is None or plan.replace_cronjob is not None)

    if spec.suspend:
        st.due_at = None
        if d.old_phase != Phase.SUSPENDED:
            d.note(EventReason.SUSPENDED, "spec.suspend is true: no new runs")
        d.phase(Phase.SUSPENDED, "suspended: no new runs")
        d.set(ConditionType.SUSPENDED, True, Reason.SUSPENDED, "spec.suspend is true")
        d.unset(ConditionType.SCHEDULED, Reason.SUSPENDED, "spec.suspend is true")
    else:
        nxt = next_run(spec.schedule, spec.time_zone, d.now)
        st.due_at = format_time(nxt)
        msg = f"next run at {st.due_at} ({spec.schedule}, {spec.time_zone or 'UTC'})"
        d.unset(ConditionType.SUSPENDED, Reason.RESUMED, "spec.suspend is false")
        d.set(ConditionType.SCHEDULED, True, Reason.SCHEDULED, msg)
        if d.old_phase != Phase.SCHEDULED:
            st.message = msg
        d.phase(Phase.SCHEDULED)
        plan.look_again(later(nxt, timedelta(seconds=1)))  # or sooner, to look into a stuck run
    return plan


def _observe_runs(d: Decision, spec: BackgroundJobSpec) -> None:
    """Count the CronJob's new runs, say which run now, report the last finished one."""
    plan, st = d.plan, d.st
    jobs = sorted(d.obs.jobs.values(), key=lambda j: (j.created or d.now, j.name))
    last_run_at, last_job = parse_time(st.last_run_at), st.job_name or ""
    new_runs = [
        j
        for j in jobs
        if last_run_at is None or (j.created or d.now, j.name) > (last_run_at, last_job)
    ]
    if new_runs:
        newest = new_runs[-1]
        st.last_run_at = format_time(newest.created or d.now)
        st.job_name = newest.name
        for j in new_runs:
            st.runs += 1
            record_recurring_run(d, st.runs, j)
            d.note(EventReason.STARTED, f"run {j.name} started")
            plan.metrics.append(Metric(MetricName.STARTED, spec.metric_labels()))
            if j.scheduled_time is not None and j.created is not None:
                lateness = max(0.0, (j.created - j.scheduled_time).total_seconds())
                plan.metrics.append(
                    Metric(MetricName.LATENESS, {"type": spec.job_type.value}, lateness)
                )

    newest_run = d.obs.jobs.get(st.job_name or "")
    if newest_run is not None:  # the attempts of the newest run (decisions.attempts)
        record_attempts(d, newest_run)

    running = [j for j in jobs if not j.finished and not j.suspended]  # held: heldruns
    if running:
        names = ", ".join(j.name for j in running)
        d.set(ConditionType.RUNNING, True, Reason.RUN_ACTIVE, f"running: {names}")
        for job in running:
            check_recurring_run(d, spec, job)
    else:
        d.unset(ConditionType.RUNNING, Reason.NO_RUN_ACTIVE, "no run is active")

    finished = [j for j in jobs if j.finished and j.finish_time is not None]
    if not finished:
        return
    last = max(finished, key=lambda j: (j.finish_time, j.name))
    assert last.finish_time is not None
    old_finished = parse_time(d.old.finished_at)
    if old_finished is not None and last.finish_time <= old_finished:
        return  # already reported
    if last.name not in d.obs.termination:
        plan.need_termination = last.name
        return
    st.finished_at = format_time(last.finish_time)
    started = last.start_time or last.created or last.finish_time
    took = max(0.0, (last.finish_time - started).total_seconds())
    if last.complete:
        st.last_success_at = format_time(last.finish_time)
        d.keep_result(d.obs.termination[last.name])
        msg = f"last run {last.name} succeeded in {took:.1f}s"
        d.set(ConditionType.SUCCEEDED, True, Reason.COMPLETED, msg)
        d.unset(ConditionType.FAILED, Reason.COMPLETED, msg)
        st.message = msg
        d.note(EventReason.SUCCEEDED, msg)
        d.finished_metrics(spec, Outcome.SUCCEEDED, took)
    else:
        reason = failure_reason(last)
        error = error_text(d.obs.termination[last.name])
        msg = f"last run {last.name} failed ({reason})" + (f": {error}" if error else "")
        d.set(ConditionType.FAILED, True, reason, msg)
        d.unset(ConditionType.SUCCEEDED, reason, msg)
        st.message = msg
        d.warn(EventReason.FAILED, msg)
        d.finished_metrics(spec, Outcome.FAILED, took)
