"""The misfire policy of a Recurring job (spec.misfire): missed scheduled times recorded as
skipped, or (policy All) run late as catch-up Jobs named like the CronJob controller's own.

The CronJob controller runs only the most recent missed time (within startingDeadline); the
operator accounts for the others. Its state lives in status.misfire, so a restarted operator
continues where it stopped: ``checkedUntil`` (every time up to it is accounted for) and
``pending`` (catch-ups decided on whose Job is not seen yet). A catch-up Job has the name the
CronJob controller would give the run (``<cronjob>-<unix minutes>``), so the two can never
both create it, and a create repeated after a restart meets AlreadyExists.
"""

from __future__ import annotations

from datetime import datetime

from backgroundjobs.api import constants as c
from backgroundjobs.api.constants import EventReason
from backgroundjobs.api.misfire import MAX_TIMES_KEPT, Misfire, MisfireStatus
from backgroundjobs.api.models import BackgroundJobSpec
from backgroundjobs.api.times import format_time, parse_time
from backgroundjobs.controller import builders
from backgroundjobs.controller import misfire as arithmetic
from backgroundjobs.controller.decisions.observed import Body, ObservedJob
from backgroundjobs.controller.decisions.plan import Metric, MetricName
from backgroundjobs.controller.decisions.state import Decision
from backgroundjobs.controller.schedule import previous_run

_SHOWN = 5  # times named in one Event


def scheduled_minute(job: ObservedJob, cronjob_name: str) -> int | None:
    """The unix minute a scheduled or catch-up Job is named after (None for other Jobs)."""
    prefix = cronjob_name + "-"
    if job.name.startswith(prefix) and job.name[len(prefix) :].isdigit():
        return int(job.name[len(prefix) :])
    if job.scheduled_time is not None:
        return arithmetic.minute_of(job.scheduled_time)
    return None


def build_catch_up_job(d: Decision, spec: BackgroundJobSpec, at: datetime) -> Body:
    """The Job that runs scheduled time ``at`` late, owned by the BackgroundJob."""
    job = builders.build_triggered_job(d.bgj, spec, d.settings, format_time(at))
    cronjob_name = builders.cronjob_name(d.name)
    job["metadata"]["name"] = f"{cronjob_name}-{arithmetic.minute_of(at)}"
    job["metadata"]["labels"][c.LABEL_RUN] = "catch-up"
    job["metadata"]["annotations"] = {
        c.ANNOTATION_CRONJOB_SCHEDULED: format_time(at),
        c.ANNOTATION_GENERATION: str(d.generation),
    }
    return job


def account(d: Decision, spec: BackgroundJobSpec, fresh: bool) -> None:
    """Account for the scheduled times missed since status.misfire.checkedUntil.

    ``fresh``: the CronJob is new, changed or suspended: the times up to now are nobody's
    misfire (a suspended job, or one whose schedule just changed, missed nothing)."""
    assert spec.schedule is not None
    policy = spec.misfire or Misfire()
    old = d.old.misfire
    ms = old.model_copy(deep=True) if old is not None else MisfireStatus()
    cronjob = d.obs.cronjob or {}
    cronjob_name = builders.cronjob_name(d.name)
    cron_suspended = bool((cronjob.get("spec") or {}).get("suspend"))
    if fresh or spec.suspend or cron_suspended or not cronjob:
        if spec.suspend or cron_suspended or (fresh and cronjob):
            mark = format_time(previous_run(spec.schedule, spec.time_zone, d.now))
            if ms.checked_until != mark:
                ms.checked_until = mark
                _store(d, ms)
        return

    ran: dict[int, ObservedJob] = {}
    for job in d.obs.jobs.values():
        minute = scheduled_minute(job, cronjob_name)
        if minute is not None:
            ran[minute] = job
    labels = {"queue": spec.queue}

    # pending catch-ups whose Job is seen: caught up
    still_pending: list[str] = []
    done: list[str] = []
    for at_s in ms.pending:
        at = parse_time(at_s)
        if at is None:
            continue
        if arithmetic.minute_of(at) in ran:
            done.append(at_s)
        else:
            still_pending.append(at_s)
    if done:
        ms.caught_up += len(done)
        ms.last_caught_up = (ms.last_caught_up + done)[-MAX_TIMES_KEPT:]
        d.plan.metrics.append(
            Metric(MetricName.MISFIRES, {**labels, "action": "caught_up"}, len(done))
        )
    ms.pending = still_pending

    status = cronjob.get("status") or {}
    starts = [
        parse_time(ms.checked_until),
        parse_time(status.get("lastScheduleTime")),
        parse_time((cronjob.get("metadata") or {}).get("creationTimestamp")),
    ]
    known = [s for s in starts if s is not None]
    if known:
        grace = arithmetic.grace(
            spec.starting_deadline,
            arithmetic.skip_deadline_seconds(policy.policy, spec.starting_deadline),
        )
        found = arithmetic.scan(spec.schedule, spec.time_zone, max(known), d.now, set(ran), grace)
        if found.checked_until is not None and (found.missed or found.more):
            ms.checked_until = format_time(found.checked_until)  # else lastScheduleTime says it
        outstanding = len(ms.pending) + sum(
            1
            for j in ran.values()
            if not j.finished and j.owner_uid is not None and j.owner_uid == d.meta.get("uid")
        )
        parts = arithmetic.split(policy.policy, found.missed, outstanding, policy.max_catch_up)
        if parts.catch_up:
            times = [format_time(t) for t in parts.catch_up]
            ms.pending = ms.pending + times
            d.note(
                EventReason.MISFIRE_CATCH_UP,
                f"{len(times)} missed scheduled time(s) run late (misfire policy All):"
                f" {_names(times)}",
            )
        if parts.skipped:
            times = [format_time(t) for t in parts.skipped]
            ms.skipped += len(times)
            ms.last_skipped = (ms.last_skipped + times)[-MAX_TIMES_KEPT:]
            d.warn(
                EventReason.MISFIRE_SKIPPED,
                f"{len(times)} missed scheduled time(s) skipped (misfire policy"
                f" {policy.policy}): {_names(times)}",
            )
            d.plan.metrics.append(
                Metric(MetricName.MISFIRES, {**labels, "action": "skipped"}, len(times))
            )
        if found.more:
            d.plan.look_again(d.now)
        else:  # judge the next time once its last chance has passed
            judged = found.checked_until or max(known)
            d.plan.look_again(
                arithmetic.judgement_time(spec.schedule, spec.time_zone, judged, grace)
            )

    if policy.policy != "All" and ms.pending:  # the policy changed: decided catch-ups are dropped
        ms.skipped += len(ms.pending)
        ms.last_skipped = (ms.last_skipped + ms.pending)[-MAX_TIMES_KEPT:]
        d.plan.metrics.append(
            Metric(MetricName.MISFIRES, {**labels, "action": "skipped"}, len(ms.pending))
        )
        ms.pending = []
    _create_pending(d, spec, ms)
    if ms != (old or MisfireStatus()):
        _store(d, ms)


def _create_pending(d: Decision, spec: BackgroundJobSpec, ms: MisfireStatus) -> None:
    """Create the pending catch-up Jobs: all of them under concurrencyPolicy Allow, else the
    oldest one when none of the job's runs is active."""
    if not ms.pending:
        return
    if (spec.concurrency_policy or "Forbid") == "Allow":
        due = ms.pending
    elif any(not j.finished for j in d.obs.jobs.values()):
        return
    else:
        due = ms.pending[:1]
    for at_s in due:
        at = parse_time(at_s)
        if at is not None and at <= d.now:
            d.plan.create.append(build_catch_up_job(d, spec, at))


def _store(d: Decision, ms: MisfireStatus) -> None:
    d.st.misfire = ms


def _names(times: list[str]) -> str:
    shown = ", ".join(times[:_SHOWN])
    return shown + (f" and {len(times) - _SHOWN} more" if len(times) > _SHOWN else "")
