"""What to do with a BackgroundJob: a pure function of (object, observed children, parent, now).

``decide`` returns a :class:`Plan` (children to create or delete, the new status, Events,
when to look again); the reconciler gathers the inputs and applies the plan. Nothing here
does I/O, so every transition is unit-tested without a cluster.
"""

from __future__ import annotations

import contextlib
import copy
import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from pydantic import ValidationError

from backgroundjobs.api import constants as c
from backgroundjobs.api.durations import parse_duration
from backgroundjobs.api.models import BackgroundJobSpec
from backgroundjobs.api.times import format_time, parse_time
from backgroundjobs.controller import builders
from backgroundjobs.controller import conditions as cond
from backgroundjobs.controller.schedule import InvalidSchedule, check_schedule, due_at, next_run
from backgroundjobs.controller.settings import Settings

Body = dict[str, Any]

NORMAL = "Normal"
WARNING = "Warning"

_JOB_FAILURE_REASONS = {
    "BackoffLimitExceeded": "BackoffLimitExceeded",
    "DeadlineExceeded": "DeadlineExceeded",
    "PodFailurePolicy": "NonRetryableExitCode",
}


@dataclass(frozen=True)
class JobView:
    """The parts of an observed batch/v1 Job that decisions need."""

    name: str
    uid: str
    owner_uid: str | None
    created: datetime | None
    start_time: datetime | None = None
    completion_time: datetime | None = None
    active: int = 0
    succeeded: int = 0
    failed: int = 0
    complete: bool = False
    failure_reason: str | None = None
    failure_message: str = ""
    failure_time: datetime | None = None
    scheduled_time: datetime | None = None

    @property
    def finished(self) -> bool:
        return self.complete or self.failure_reason is not None

    @property
    def finish_time(self) -> datetime | None:
        return self.completion_time if self.complete else self.failure_time

    @classmethod
    def from_body(cls, job: Body) -> JobView:
        meta = job.get("metadata") or {}
        status = job.get("status") or {}
        owner = next(
            (o.get("uid") for o in meta.get("ownerReferences") or [] if o.get("controller")), None
        )
        complete = False
        failure_reason = None
        failure_message = ""
        failure_time = None
        for cnd in status.get("conditions") or []:
            if cnd.get("status") != "True":
                continue
            if cnd.get("type") == "Complete":
                complete = True
            elif cnd.get("type") == "Failed":
                failure_reason = cnd.get("reason") or "Failed"
                failure_message = cnd.get("message") or ""
                failure_time = parse_time(cnd.get("lastTransitionTime"))
        annotations = meta.get("annotations") or {}
        return cls(
            name=meta.get("name", ""),
            uid=meta.get("uid", ""),
            owner_uid=owner,
            created=parse_time(meta.get("creationTimestamp")),
            start_time=parse_time(status.get("startTime")),
            completion_time=parse_time(status.get("completionTime")),
            active=int(status.get("active") or 0),
            succeeded=int(status.get("succeeded") or 0),
            failed=int(status.get("failed") or 0),
            complete=complete,
            failure_reason=failure_reason,
            failure_message=failure_message,
            failure_time=failure_time,
            scheduled_time=parse_time(annotations.get(c.ANNOTATION_CRONJOB_SCHEDULED)),
        )


@dataclass
class Observed:
    """Everything ``decide`` looks at, gathered by the reconciler."""

    bgj: Body
    now: datetime
    jobs: dict[str, JobView] = field(default_factory=dict)
    cronjob: Body | None = None
    parent: Body | None = None
    termination: dict[str, str | None] = field(default_factory=dict)
    queue_full: bool = False


@dataclass
class Metric:
    name: str
    labels: dict[str, str]
    value: float = 1.0


@dataclass
class Plan:
    """What the reconciler must do, in order: delete, create, update, status, events."""

    status: Body
    create: list[Body] = field(default_factory=list)
    replace_cronjob: Body | None = None
    delete_jobs: list[str] = field(default_factory=list)
    events: list[tuple[str, str, str]] = field(default_factory=list)
    requeue_at: datetime | None = None
    delete_self: bool = False
    need_termination: str | None = None
    needs_queue_slot: bool = False
    metrics: list[Metric] = field(default_factory=list)

    def event(self, etype: str, reason: str, message: str) -> None:
        self.events.append((etype, reason, message))


def parse_spec(bgj: Body) -> BackgroundJobSpec:
    return BackgroundJobSpec.model_validate(bgj.get("spec") or {})


def parse_result(message: str | None) -> Any:
    """The handler's result from a termination message: JSON, else the raw text."""
    if message is None or message == "":
        return None
    try:
        return json.loads(message)
    except ValueError:
        return message


def _error_text(message: str | None) -> str:
    value = parse_result(message)
    if isinstance(value, dict) and "error" in value:
        kind = value.get("type")
        return f"{kind}: {value['error']}" if kind else str(value["error"])
    return "" if value is None else str(value)


class _Ctx:
    """The state being decided: old and new status, plan, and shorthands."""

    def __init__(self, obs: Observed, settings: Settings) -> None:
        self.obs = obs
        self.settings = settings
        self.bgj = obs.bgj
        self.meta: Body = obs.bgj.get("metadata") or {}
        self.name: str = self.meta.get("name", "")
        self.generation: int | None = self.meta.get("generation")
        self.old: Body = obs.bgj.get("status") or {}
        self.st: Body = copy.deepcopy(self.old)
        self.now = obs.now
        self.now_s = format_time(obs.now)
        self.plan = Plan(status=self.st)
        self.st["observedGeneration"] = self.generation

    @property
    def conditions(self) -> list[Body]:
        return list(self.st.get("conditions") or [])

    def set(self, ctype: str, status: bool, reason: str, message: str = "") -> None:
        self.st["conditions"] = cond.set_condition(
            self.conditions, ctype, status, reason, message, self.now_s, self.generation
        )

    def unset(self, ctype: str, reason: str, message: str = "") -> None:
        """Set ``ctype`` False only if it is present (absent stays absent)."""
        if cond.get(self.conditions, ctype) is not None:
            self.set(ctype, False, reason, message)

    def phase(self, phase: str, message: str | None = None) -> None:
        self.st["phase"] = phase
        if message is not None:
            self.st["message"] = message

    @property
    def old_phase(self) -> str | None:
        return self.old.get("phase")

    def handled(self) -> Body:
        handled: Body = dict(self.st.get("handledActions") or {})
        self.st["handledActions"] = handled
        return handled

    def pending_actions(self) -> dict[str, str]:
        annotations = self.meta.get("annotations") or {}
        done = self.st.get("handledActions") or {}
        out = {}
        for action, key in c.ACTION_ANNOTATIONS.items():
            value = annotations.get(key)
            if value and value != done.get(action):
                out[action] = value
        return out

    def invalid_spec(self, message: str) -> Plan:
        already = cond.get(self.conditions, "Failed")
        self.phase("Failed", f"invalid spec: {message}")
        self.set("Failed", True, "InvalidSpec", message)
        self.unset("Running", "InvalidSpec", message)
        if not (
            already and already.get("reason") == "InvalidSpec" and already.get("message") == message
        ):
            self.plan.event(WARNING, "InvalidSpec", message)
            self.plan.metrics.append(Metric("reconcile_errors", {"reason": "InvalidSpec"}))
        if self.st.get("type") != c.TYPE_RECURRING:
            # a failed one-off job: finished now, so retention deletes it in time
            self.st.setdefault("finishedAt", self.now_s)
            ttl_text = (self.bgj.get("spec") or {}).get("ttlAfterFinished")
            try:
                ttl = parse_duration(ttl_text) if ttl_text else self.settings.retention
            except ValueError:
                ttl = self.settings.retention
            _expire(self, ttl)
        return self.plan


def decide(obs: Observed, settings: Settings) -> Plan:
    """Decide the next step for one BackgroundJob."""
    ctx = _Ctx(obs, settings)
    try:
        spec = parse_spec(obs.bgj)
    except ValidationError as exc:
        return ctx.invalid_spec(_validation_message(exc))
    ctx.st["type"] = spec.job_type
    size = len(json.dumps(spec.args)) + len(json.dumps(spec.handler_kwargs))
    if size > c.MAX_ARGS_BYTES:
        return ctx.invalid_spec(
            f"spec.args and spec.kwargs take {size} bytes as JSON; the limit is"
            f" {c.MAX_ARGS_BYTES} (pass a reference to the data instead)"
        )
    if spec.job_type == c.TYPE_RECURRING:
        return _decide_recurring(ctx, spec)
    return _decide_run(ctx, spec)


def invalid_spec_plan(bgj: Body, now: datetime, settings: Settings, message: str) -> Plan:
    """The plan for a job whose children the API server refused: Failed/InvalidSpec, no retry."""
    ctx = _Ctx(Observed(bgj=bgj, now=now), settings)
    with contextlib.suppress(ValidationError):
        ctx.st["type"] = parse_spec(bgj).job_type
    if is_invalid_for_generation(ctx.old, ctx.generation):
        return ctx.plan
    return ctx.invalid_spec(message)


def _validation_message(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        loc = ".".join(str(x) for x in err.get("loc", ()))
        parts.append(f"spec.{loc}: {err.get('msg')}")
    return "; ".join(parts)


def is_invalid_for_generation(status: Body, generation: int | None) -> bool:
    failed = cond.get(list(status.get("conditions") or []), "Failed")
    return bool(
        failed
        and failed.get("status") == "True"
        and failed.get("reason") == "InvalidSpec"
        and failed.get("observedGeneration") == generation
    )


def _invalid_for_older_generation(status: Body, generation: int | None) -> bool:
    failed = cond.get(list(status.get("conditions") or []), "Failed")
    return bool(
        failed
        and failed.get("status") == "True"
        and failed.get("reason") == "InvalidSpec"
        and failed.get("observedGeneration") != generation
    )


# --------------------------------------------------------------------------------------------
# Immediate, Delayed, Continuation: one Job per run
# --------------------------------------------------------------------------------------------


def _decide_run(ctx: _Ctx, spec: BackgroundJobSpec) -> Plan:
    plan, st = ctx.plan, ctx.st
    run = int(st.get("runs") or 0)
    current = builders.job_name(ctx.name, run) if run else None
    job = ctx.obs.jobs.get(current) if current else None
    finished = st.get("phase") in c.FINISHED_PHASES
    if finished and run == 0 and _invalid_for_older_generation(ctx.old, ctx.generation):
        finished = False  # the spec was fixed after the API server refused the first Job
        st.pop("finishedAt", None)
    actions = ctx.pending_actions()

    if "cancel" in actions:
        ctx.handled()["cancel"] = actions["cancel"]
        if not finished:
            if job is not None and not job.finished:
                plan.delete_jobs.append(job.name)
            msg = "cancelled by the backgroundjobs.dev/cancel annotation"
            ctx.phase("Cancelled", msg)
            ctx.set("Failed", True, "Cancelled", msg)
            ctx.unset("Running", "Cancelled", msg)
            for ctype in ("Scheduled", "Waiting", "Queued", "Suspended"):
                ctx.unset(ctype, "Cancelled", msg)
            st["finishedAt"] = ctx.now_s
            plan.event(NORMAL, "Cancelled", msg + (f"; Job {job.name} deleted" if job else ""))
            _finish_metrics(ctx, spec, "cancelled")
            return _retention(ctx, spec)
        plan.event(NORMAL, "CancelIgnored", f"the job already finished ({st.get('phase')})")

    if "requeue" in actions:
        ctx.handled()["requeue"] = actions["requeue"]
        if finished and not is_invalid_for_generation(ctx.old, ctx.generation):
            return _start(ctx, spec, run + 1, "Requeued", parent=_parent_env(ctx, spec))
        if finished:
            pass  # an invalid spec fails again at once; the user must fix the spec first
        else:
            plan.event(
                WARNING,
                "RequeueIgnored",
                f"only a finished job can be requeued; this one is {st.get('phase') or 'Pending'}",
            )

    trigger_now = False
    if "trigger" in actions:
        ctx.handled()["trigger"] = actions["trigger"]
        if run == 0 and spec.job_type == c.TYPE_DELAYED and not finished:
            trigger_now = True
        else:
            plan.event(
                NORMAL, "TriggerIgnored", "trigger starts a Delayed job that has not started"
            )

    if finished:
        return _retention(ctx, spec)

    if run == 0:
        return _before_first_run(ctx, spec, trigger_now)

    if job is None:
        # The reconciler checked with the API server: the Job is really gone.
        msg = f"Job {current} was deleted before it finished"
        ctx.phase("Failed", msg)
        ctx.set("Failed", True, "JobDeleted", msg)
        ctx.unset("Running", "JobDeleted", msg)
        st["finishedAt"] = ctx.now_s
        plan.event(WARNING, "Failed", msg)
        _finish_metrics(ctx, spec, "failed")
        return _retention(ctx, spec)

    return _observe_job(ctx, spec, job)


def _before_first_run(ctx: _Ctx, spec: BackgroundJobSpec, trigger_now: bool) -> Plan:
    plan, st = ctx.plan, ctx.st
    if is_invalid_for_generation(ctx.old, ctx.generation):
        return plan
    if spec.suspend:
        if ctx.old_phase != "Suspended":
            plan.event(NORMAL, "Suspended", "spec.suspend is true: not started")
        ctx.phase("Suspended", "suspended: set spec.suspend to false to start it")
        ctx.set("Suspended", True, "Suspended", "spec.suspend is true")
        return plan
    ctx.unset("Suspended", "Resumed", "spec.suspend is false")

    scheduled = cond.get(ctx.conditions, "Scheduled") or {}
    triggered_before = scheduled.get("reason") == "Triggered" and scheduled.get("status") == "False"
    trigger_now = trigger_now or triggered_before  # a trigger held by a full queue still holds
    due: datetime | None = None
    if spec.job_type == c.TYPE_DELAYED:
        created = parse_time(ctx.meta.get("creationTimestamp")) or ctx.now
        due = due_at(spec, created)
        assert due is not None
        due_s = format_time(due)
        if trigger_now:
            if not triggered_before:
                plan.event(NORMAL, "Triggered", f"started now instead of at {due_s}")
            ctx.set("Scheduled", False, "Triggered", "started by backgroundjobs.dev/trigger")
        elif ctx.now < due:
            if ctx.old_phase != "Scheduled":
                plan.event(NORMAL, "Scheduled", f"due at {due_s}")
            elif ctx.old.get("dueAt") != due_s:
                plan.event(
                    NORMAL, "Rescheduled", f"now due at {due_s} (was {ctx.old.get('dueAt')})"
                )
            st["dueAt"] = due_s
            ctx.phase("Scheduled", f"due at {due_s}")
            ctx.set("Scheduled", True, "DueInFuture", f"due at {due_s}")
            plan.requeue_at = due
            return plan
        st["dueAt"] = due_s

    parent_env = None
    if spec.job_type == c.TYPE_CONTINUATION:
        waiting = _wait_for_parent(ctx, spec)
        if waiting is not None:
            return waiting
        parent_env = _parent_env(ctx, spec)

    if ctx.obs.queue_full:
        msg = f"queue {spec.queue} is at its concurrency limit"
        if ctx.old_phase != "Queued":
            plan.event(NORMAL, "Queued", msg)
        ctx.phase("Queued", msg)
        ctx.set("Queued", True, "QueueFull", msg)
        plan.needs_queue_slot = True
        return plan

    plan.needs_queue_slot = True
    reason = "Triggered" if trigger_now else "Created"
    return _start(ctx, spec, 1, reason, parent=parent_env, due=due)


def _start(
    ctx: _Ctx,
    spec: BackgroundJobSpec,
    run: int,
    reason: str,
    parent: tuple[str, Any] | None = None,
    due: datetime | None = None,
) -> Plan:
    plan, st = ctx.plan, ctx.st
    job = builders.build_job(ctx.bgj, spec, ctx.settings, run, parent)
    name = job["metadata"]["name"]
    plan.create.append(job)
    plan.needs_queue_slot = True
    st["runs"] = run
    st["jobName"] = name
    st["startedAt"] = ctx.now_s
    st["failedAttempts"] = 0
    for key in ("finishedAt", "result"):
        st.pop(key, None)
    msg = f"Job {name} created (run {run})"
    ctx.phase("Running", msg)
    ctx.set("Running", True, reason, msg)
    ctx.unset("Succeeded", reason, msg)
    ctx.unset("Failed", reason, msg)
    for ctype in ("Scheduled", "Waiting", "Queued"):
        ctx.unset(ctype, "Started", msg)
    plan.event(NORMAL, "Requeued" if reason == "Requeued" else "Started", msg)
    labels = {"type": spec.job_type, "queue": spec.queue}
    plan.metrics.append(Metric("started", labels))
    if due is None and spec.job_type == c.TYPE_IMMEDIATE and run == 1:
        due = parse_time(ctx.meta.get("creationTimestamp"))
    if due is not None and reason != "Triggered":
        lateness = max(0.0, (ctx.now - due).total_seconds())
        plan.metrics.append(Metric("lateness", {"type": spec.job_type}, lateness))
    return plan


def _observe_job(ctx: _Ctx, spec: BackgroundJobSpec, job: JobView) -> Plan:
    plan, st = ctx.plan, ctx.st
    old_failed = int(ctx.old.get("failedAttempts") or 0)
    st["failedAttempts"] = job.failed
    if job.start_time is not None and not st.get("startedAt"):
        st["startedAt"] = format_time(job.start_time)

    if job.complete:
        if job.name not in ctx.obs.termination:
            plan.need_termination = job.name
            return plan
        result = parse_result(ctx.obs.termination[job.name])
        finished_at = job.completion_time or ctx.now
        started = parse_time(st.get("startedAt")) or job.start_time or finished_at
        took = max(0.0, (finished_at - started).total_seconds())
        msg = f"succeeded in {took:.1f}s"
        st["finishedAt"] = format_time(finished_at)
        if result is not None:
            st["result"] = result
        ctx.phase("Succeeded", msg)
        ctx.set("Succeeded", True, "Completed", msg)
        ctx.set("Running", False, "Completed", msg)
        plan.event(NORMAL, "Succeeded", f"Job {job.name} {msg}")
        _finish_metrics(ctx, spec, "succeeded", took)
        return _retention(ctx, spec)

    if job.failure_reason is not None:
        if job.name not in ctx.obs.termination:
            plan.need_termination = job.name
            return plan
        reason = _JOB_FAILURE_REASONS.get(job.failure_reason, job.failure_reason)
        error = _error_text(ctx.obs.termination[job.name])
        detail = job.failure_message or reason
        msg = f"{detail}" + (f"; last error: {error}" if error else "")
        finished_at = job.failure_time or ctx.now
        started = parse_time(st.get("startedAt")) or finished_at
        took = max(0.0, (finished_at - started).total_seconds())
        st["finishedAt"] = format_time(finished_at)
        ctx.phase("Failed", f"failed ({reason}): {msg}")
        ctx.set("Failed", True, reason, msg)
        ctx.set("Running", False, reason, msg)
        plan.event(WARNING, "Failed", f"Job {job.name} failed ({reason}): {msg}")
        _finish_metrics(ctx, spec, "failed", took)
        return _retention(ctx, spec)

    if job.failed > old_failed:
        attempts = spec.retries + 1
        msg = f"pod failed (attempt {job.failed} of {attempts}); retrying"
        plan.event(WARNING, "Retrying", msg)
        plan.metrics.append(Metric("retries", {"queue": spec.queue}, job.failed - old_failed))
        ctx.set("Running", True, "PodFailed", msg)
        ctx.phase("Running", msg)
    else:
        ctx.phase("Running")
    return plan


def _finish_metrics(
    ctx: _Ctx, spec: BackgroundJobSpec, outcome: str, took: float | None = None
) -> None:
    labels = {"type": spec.job_type, "queue": spec.queue, "outcome": outcome}
    ctx.plan.metrics.append(Metric("finished", labels))
    if took is not None:
        ctx.plan.metrics.append(Metric("duration", labels, took))


def _retention(ctx: _Ctx, spec: BackgroundJobSpec) -> Plan:
    ttl = (
        parse_duration(spec.ttl_after_finished)
        if spec.ttl_after_finished
        else ctx.settings.retention
    )
    return _expire(ctx, ttl)


def _expire(ctx: _Ctx, ttl: timedelta) -> Plan:
    """Delete the finished job once ``ttl`` has passed since it finished; else look again then."""
    finished_at = parse_time(ctx.st.get("finishedAt")) or ctx.now
    expires = finished_at + ttl
    if ctx.now >= expires:
        ctx.plan.delete_self = True
    else:
        ctx.plan.requeue_at = expires
    return ctx.plan


# --------------------------------------------------------------------------------------------
# Continuations
# --------------------------------------------------------------------------------------------


def _parent_env(ctx: _Ctx, spec: BackgroundJobSpec) -> tuple[str, Any] | None:
    if spec.after is None:
        return None
    parent = ctx.obs.parent
    result = ((parent or {}).get("status") or {}).get("result")
    return spec.after.name, result


def parent_outcome(parent: Body) -> str | None:
    """Succeeded, Failed (failed or cancelled), or None while it has not finished."""
    phase = (parent.get("status") or {}).get("phase")
    if phase == "Succeeded":
        return "Succeeded"
    if phase in ("Failed", "Cancelled"):
        return "Failed"
    return None


def _wait_for_parent(ctx: _Ctx, spec: BackgroundJobSpec) -> Plan | None:
    """None when the child may start now; else the plan that keeps it waiting (or fails it)."""
    assert spec.after is not None
    plan, st = ctx.plan, ctx.st
    parent_name = spec.after.name
    parent = ctx.obs.parent
    seen_uid = st.get("parentUid")

    def wait(reason: str, msg: str) -> Plan:
        if (
            ctx.old_phase != "Waiting"
            or (cond.get(ctx.conditions, "Waiting") or {}).get("reason") != reason
        ):
            plan.event(NORMAL, "Waiting", msg)
        ctx.phase("Waiting", msg)
        ctx.set("Waiting", True, reason, msg)
        return plan

    def fail(reason: str, msg: str) -> Plan:
        ctx.phase("Failed", msg)
        ctx.set("Failed", True, reason, msg)
        ctx.unset("Waiting", reason, msg)
        st["finishedAt"] = ctx.now_s
        plan.event(WARNING, "Failed", msg)
        _finish_metrics(ctx, spec, "failed")
        return _retention(ctx, spec)

    if parent is None:
        if seen_uid:
            return fail(
                "ParentDeleted", f"parent {parent_name} was deleted before it let this job start"
            )
        return wait("ParentNotFound", f"waiting for parent {parent_name}, which does not exist yet")
    parent_uid = (parent.get("metadata") or {}).get("uid")
    if seen_uid and parent_uid != seen_uid:
        return fail("ParentDeleted", f"parent {parent_name} was deleted and created again")
    st["parentUid"] = parent_uid
    try:
        parent_spec = parse_spec(parent)
    except ValidationError:
        parent_spec = None
    if parent_spec is not None and parent_spec.job_type == c.TYPE_RECURRING:
        return ctx.invalid_spec(
            f"spec.after.name: parent {parent_name} is Recurring;"
            " a continuation needs a one-off parent"
        )

    outcome = parent_outcome(parent)
    when = spec.after.when
    if outcome is not None and (when == "Finished" or when == outcome):
        return None
    if outcome == "Failed":
        return wait("ParentFailed", f"parent {parent_name} failed; waiting in case it is requeued")
    if outcome == "Succeeded":
        return wait(
            "ParentSucceeded", f"parent {parent_name} succeeded; this job runs only if it fails"
        )
    parent_phase = (parent.get("status") or {}).get("phase") or "Pending"
    if parent_phase == "Running":
        return wait("ParentRunning", f"waiting for parent {parent_name} (Running)")
    return wait("ParentPending", f"waiting for parent {parent_name} ({parent_phase})")


# --------------------------------------------------------------------------------------------
# Recurring: a CronJob
# --------------------------------------------------------------------------------------------


def _decide_recurring(ctx: _Ctx, spec: BackgroundJobSpec) -> Plan:
    plan, st = ctx.plan, ctx.st
    assert spec.schedule is not None
    try:
        check_schedule(spec.schedule, spec.time_zone)
    except InvalidSchedule as exc:
        return ctx.invalid_spec(str(exc))
    if is_invalid_for_generation(ctx.old, ctx.generation):
        return plan
    failed = cond.get(ctx.conditions, "Failed")
    if failed and failed.get("reason") == "InvalidSpec" and failed.get("status") == "True":
        ctx.set("Failed", False, "SpecFixed", "the spec is valid again")

    desired = builders.build_cronjob(ctx.bgj, spec, ctx.settings)
    observed = ctx.obs.cronjob
    if observed is None:
        plan.create.append(desired)
        if ctx.old.get("phase") is None:
            plan.event(
                NORMAL,
                "Created",
                f"CronJob {desired['metadata']['name']} created ({spec.schedule})",
            )
    else:
        want = desired["metadata"]["annotations"][builders.SPEC_HASH_ANNOTATION]
        have = ((observed.get("metadata") or {}).get("annotations") or {}).get(
            builders.SPEC_HASH_ANNOTATION
        )
        if want != have:
            plan.replace_cronjob = desired
            plan.event(
                NORMAL,
                "Updated",
                f"CronJob {desired['metadata']['name']} updated ({spec.schedule})",
            )

    actions = ctx.pending_actions()
    if "trigger" in actions:
        ctx.handled()["trigger"] = actions["trigger"]
        job = builders.build_triggered_job(ctx.bgj, spec, ctx.settings, actions["trigger"])
        plan.create.append(job)
        plan.event(NORMAL, "Triggered", f"extra run {job['metadata']['name']} started now")
    if "requeue" in actions:
        ctx.handled()["requeue"] = actions["requeue"]
        plan.event(
            NORMAL,
            "RequeueIgnored",
            "a Recurring job runs by schedule; use trigger for an extra run",
        )
    if "cancel" in actions:
        ctx.handled()["cancel"] = actions["cancel"]
        running = [j.name for j in ctx.obs.jobs.values() if not j.finished]
        plan.delete_jobs.extend(running)
        plan.event(NORMAL, "Cancelled", f"running Jobs deleted: {', '.join(running) or 'none'}")

    _observe_runs(ctx, spec)

    if spec.suspend:
        st.pop("dueAt", None)
        if ctx.old_phase != "Suspended":
            plan.event(NORMAL, "Suspended", "spec.suspend is true: no new runs")
        ctx.phase("Suspended", "suspended: no new runs")
        ctx.set("Suspended", True, "Suspended", "spec.suspend is true")
        ctx.unset("Scheduled", "Suspended", "spec.suspend is true")
    else:
        nxt = next_run(spec.schedule, spec.time_zone, ctx.now)
        st["dueAt"] = format_time(nxt)
        msg = f"next run at {st['dueAt']} ({spec.schedule}, {spec.time_zone or 'UTC'})"
        ctx.unset("Suspended", "Resumed", "spec.suspend is false")
        ctx.set("Scheduled", True, "Scheduled", msg)
        if ctx.old_phase != "Scheduled":
            ctx.st["message"] = msg
        ctx.phase("Scheduled")
        plan.requeue_at = nxt + timedelta(seconds=1)
    return plan


def _observe_runs(ctx: _Ctx, spec: BackgroundJobSpec) -> None:
    plan, st = ctx.plan, ctx.st
    jobs = sorted(ctx.obs.jobs.values(), key=lambda j: (j.created or ctx.now, j.name))
    last_key = (parse_time(st.get("lastRunAt")), st.get("jobName") or "")
    new_runs = [
        j
        for j in jobs
        if last_key[0] is None or (j.created or ctx.now, j.name) > (last_key[0], last_key[1])
    ]
    if new_runs:
        newest = new_runs[-1]
        st["runs"] = int(st.get("runs") or 0) + len(new_runs)
        st["lastRunAt"] = format_time(newest.created or ctx.now)
        st["jobName"] = newest.name
        for j in new_runs:
            plan.event(NORMAL, "Started", f"run {j.name} started")
            plan.metrics.append(Metric("started", {"type": spec.job_type, "queue": spec.queue}))
            if j.scheduled_time is not None and j.created is not None:
                lateness = max(0.0, (j.created - j.scheduled_time).total_seconds())
                plan.metrics.append(Metric("lateness", {"type": spec.job_type}, lateness))

    active = [j for j in jobs if not j.finished]
    if active:
        ctx.set("Running", True, "RunActive", f"running: {', '.join(j.name for j in active)}")
    else:
        ctx.unset("Running", "NoRunActive", "no run is active")

    finished = [j for j in jobs if j.finished and j.finish_time is not None]
    if not finished:
        return
    last = max(finished, key=lambda j: (j.finish_time, j.name))
    assert last.finish_time is not None
    old_finished = parse_time(ctx.old.get("finishedAt"))
    if old_finished is not None and last.finish_time <= old_finished:
        return  # already reported
    if last.name not in ctx.obs.termination:
        plan.need_termination = last.name
        return
    st["finishedAt"] = format_time(last.finish_time)
    started = last.start_time or last.created or last.finish_time
    took = max(0.0, (last.finish_time - started).total_seconds())
    if last.complete:
        st["lastSuccessAt"] = format_time(last.finish_time)
        result = parse_result(ctx.obs.termination[last.name])
        if result is not None:
            st["result"] = result
        msg = f"last run {last.name} succeeded in {took:.1f}s"
        ctx.set("Succeeded", True, "Completed", msg)
        ctx.unset("Failed", "Completed", msg)
        st["message"] = msg
        plan.event(NORMAL, "Succeeded", msg)
        _finish_metrics(ctx, spec, "succeeded", took)
    else:
        reason = _JOB_FAILURE_REASONS.get(
            last.failure_reason or "", last.failure_reason or "Failed"
        )
        error = _error_text(ctx.obs.termination[last.name])
        msg = f"last run {last.name} failed ({reason})" + (f": {error}" if error else "")
        ctx.set("Failed", True, reason, msg)
        ctx.unset("Succeeded", reason, msg)
        st["message"] = msg
        plan.event(WARNING, "Failed", msg)
        _finish_metrics(ctx, spec, "failed", took)
