"""The state of one decision: the observed object, the status being built (the
``BackgroundJobStatus`` model), the plan, and the steps every kind of job shares."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from backgroundjobs import _json
from backgroundjobs.api import constants as c
from backgroundjobs.api.constants import (
    ConditionType,
    EventReason,
    EventType,
    JobType,
    Phase,
    Reason,
)
from backgroundjobs.api.models import (
    BackgroundJobSpec,
    BackgroundJobStatus,
    Condition,
    HandledActions,
)
from backgroundjobs.api.times import format_time, later, parse_time
from backgroundjobs.controller import conditions as cond
from backgroundjobs.controller.builders import SPEC_HASH_ANNOTATION
from backgroundjobs.controller.decisions.observed import Body, Observed, ObservedJob
from backgroundjobs.controller.decisions.plan import Metric, MetricName, Outcome, Plan
from backgroundjobs.controller.decisions.retention import keep_for
from backgroundjobs.controller.settings import Settings


def parse_result(message: str | None) -> Any:
    """The handler's result from a termination message: JSON (of any depth), else the raw
    text."""
    if message is None or message == "":
        return None
    try:
        return _json.loads(message)
    except ValueError:
        return message


def error_text(message: str | None) -> str:
    """The error a failed handler reported in its termination message, for people."""
    value = parse_result(message)
    if _json.unstorable(value, c.MAX_VALUE_DEPTH) is not None:
        return message or ""
    if isinstance(value, dict) and "error" in value:
        kind = value.get("type")
        return f"{kind}: {value['error']}" if kind else str(value["error"])
    return "" if value is None else str(value)


# The reasons of a Failed condition that refuse a generation of the spec: it does not run
# until the spec changes.
REFUSALS = frozenset({Reason.INVALID_SPEC, Reason.POLICY_DENIED})

# The spec hash of a CronJob held while its BackgroundJob's spec is refused (hold_cronjob).
REFUSED_SPEC_HASH = "refused"

# How a Job's Failed condition reason reads in ours (others are passed on as they are).
_JOB_FAILURE_REASONS = {"PodFailurePolicy": Reason.NON_RETRYABLE_EXIT_CODE}


def _true(condition: Condition | None) -> bool:
    return condition is not None and condition.status == "True"


def failure_reason(job: ObservedJob) -> str:
    """Why a failed Job failed, as our conditions say it."""
    reason = job.failure_reason or "Failed"
    return _JOB_FAILURE_REASONS.get(reason, reason)


class Decision:
    """One decision in the making: ``old`` is the observed status, ``st`` the new one."""

    def __init__(self, obs: Observed, settings: Settings) -> None:
        self.obs = obs
        self.settings = settings
        self.bgj = obs.bgj
        self.meta: Body = obs.bgj.get("metadata") or {}
        self.name: str = self.meta.get("name", "")
        self.generation: int | None = self.meta.get("generation")
        self.old = BackgroundJobStatus.model_validate(obs.bgj.get("status") or {})
        # A shallow copy: fields are only ever replaced in ``st``, never changed in place.
        self.st = self.old.model_copy()
        self.st.observed_generation = self.generation
        self.now = obs.now
        self.now_s = format_time(obs.now)
        self.plan = Plan()

    def result(self) -> Plan:
        """The plan, with the new status as the API takes it (only the fields that are set)."""
        if self.settings.kstatus_conditions:
            self.kstatus_conditions()
        if self.st.result is not None:
            problem = _json.unstorable(self.st.result, c.MAX_VALUE_DEPTH)
            if problem is not None:  # e.g. a status written by hand
                self.st.result = f"(a result {problem} was not kept)"
                self.warn(EventReason.RESULT_AS_TEXT, f"status.result was {problem}: dropped")
        status = self.st.model_dump(
            mode="json", by_alias=True, exclude_unset=True, exclude_none=True, exclude={"result"}
        )
        if self.st.result is not None:
            status["result"] = self.st.result  # the handler's value as it is, unconverted
        self.plan.status = status
        return self.plan

    def kstatus_conditions(self) -> None:
        """Reconciling and Stalled, so kstatus (Flux, kpt, Config Sync) sees what Argo CD's
        health check in docs/gitops.md sees: a run on its way is InProgress, a job stuck until
        someone acts is Failed (its last run failed, or its parent did), the rest Current."""
        phase = self.st.phase or Phase.PENDING
        failed = self.condition(ConditionType.FAILED)
        waiting = self.condition(ConditionType.WAITING)
        waiting_reason = waiting.reason if waiting is not None and waiting.status == "True" else ""
        if phase == Phase.FAILED or (phase == Phase.SCHEDULED and _true(failed)):
            stuck: Condition | None = failed
            stalled = True
        else:
            stuck = waiting
            stalled = phase == Phase.WAITING and waiting_reason == Reason.PARENT_FAILED
        reconciling = phase in c.RECONCILING_PHASES or (
            phase == Phase.WAITING
            and waiting_reason not in (Reason.PARENT_FAILED, Reason.PARENT_SUCCEEDED)
        )
        self.set(ConditionType.RECONCILING, reconciling, phase)
        if stalled:
            reason = stuck.reason if stuck is not None else phase
            message = (stuck.message if stuck is not None else "") or self.st.message or ""
            self.set(ConditionType.STALLED, True, reason, message)
        else:
            self.set(ConditionType.STALLED, False, phase)

    def keep_result(self, message: str | None) -> None:
        """Keep the handler's result from its termination message; a value the status cannot
        hold as JSON (NaN, nested too deep) is kept as its text, with a Warning."""
        result = parse_result(message)
        if result is None:
            return
        problem = _json.unstorable(result, c.MAX_VALUE_DEPTH)
        if problem is not None:
            result = message
            self.warn(EventReason.RESULT_AS_TEXT, f"the result is {problem}: kept as text")
        self.st.result = result

    # ---------------------------------------------------------------- conditions and phase

    def condition(self, ctype: ConditionType) -> Condition | None:
        """The new status's condition of type ``ctype``, if present."""
        return cond.get(self.st.conditions, ctype)

    def set(self, ctype: ConditionType, status: bool, reason: str, message: str = "") -> None:
        self.st.conditions = cond.set_condition(
            self.st.conditions, ctype, status, reason, message, self.now_s, self.generation
        )

    def unset(self, ctype: ConditionType, reason: str, message: str = "") -> None:
        """Set ``ctype`` False only if it is present (absent stays absent)."""
        if self.condition(ctype) is not None:
            self.set(ctype, False, reason, message)

    def phase(self, phase: Phase, message: str | None = None) -> None:
        self.st.phase = phase
        if message is not None:
            self.st.message = message

    @property
    def old_phase(self) -> Phase | None:
        return self.old.phase

    def note(self, reason: EventReason, message: str) -> None:
        """A Normal Event."""
        self.plan.event(EventType.NORMAL, reason, message)

    def warn(self, reason: EventReason, message: str) -> None:
        """A Warning Event."""
        self.plan.event(EventType.WARNING, reason, message)

    # ---------------------------------------------------------------- actions

    def pending_actions(self) -> dict[str, str]:
        """Action annotations with a value not handled yet: action -> value."""
        annotations = self.meta.get("annotations") or {}
        done = self.st.handled_actions or HandledActions()
        out = {}
        for action, key in c.ACTION_ANNOTATIONS.items():
            value = annotations.get(key)
            if value and value != getattr(done, action):
                out[action] = value
        return out

    def handle(self, action: str, value: str) -> None:
        """Record ``value`` of the action annotation as handled, so it is acted on once."""
        handled = self.st.handled_actions
        handled = handled.model_copy() if handled is not None else HandledActions()
        setattr(handled, action, value)
        self.st.handled_actions = handled

    # ---------------------------------------------------------------- refused specs

    def is_invalid_for_generation(self) -> bool:
        """The observed status refused this very generation (InvalidSpec or PolicyDenied)."""
        failed = self._refusal()
        return failed is not None and failed.observed_generation == self.generation

    def is_invalid_for_older_generation(self) -> bool:
        """The observed status refused an older generation (since fixed?)."""
        failed = self._refusal()
        return failed is not None and failed.observed_generation != self.generation

    def _refusal(self) -> Condition | None:
        failed = cond.get(self.old.conditions, ConditionType.FAILED)
        if failed and failed.status == "True" and failed.reason in REFUSALS:
            return failed
        return None

    def invalid_spec(self, message: str) -> Plan:
        """Failed with reason InvalidSpec (one Warning per message); never retried."""
        return self.refuse(Reason.INVALID_SPEC, message, f"invalid spec: {message}")

    def policy_denied(self, message: str) -> Plan:
        """Failed with reason PolicyDenied: the spec asks for pod fields the pod policy does
        not allow here (one Warning per message); nothing is created, never retried."""
        return self.refuse(Reason.POLICY_DENIED, message, f"refused by the pod policy: {message}")

    def refuse(self, reason: Reason, message: str, phase_message: str) -> Plan:
        """Failed with ``reason`` for this generation: a spec the operator will not run."""
        already = self.condition(ConditionType.FAILED)
        self.phase(Phase.FAILED, phase_message)
        self.set(ConditionType.FAILED, True, reason, message)
        self.unset(ConditionType.RUNNING, reason, message)
        if not (already and already.reason == reason and already.message == message):
            self.warn(EventReason(reason.value), message)
            self.plan.metrics.append(Metric(MetricName.RECONCILE_ERRORS, {"reason": reason}))
        if self.st.type == JobType.RECURRING:
            self.hold_cronjob()
        else:
            # a failed one-off job: finished now, so retention deletes it in time
            if self.st.finished_at is None:
                self.st.finished_at = self.now_s
            spec = self.bgj.get("spec")
            raw = spec if isinstance(spec, dict) else {}
            self.expire(keep_for(raw, Phase.FAILED, self.settings.retention))
        return self.plan

    def hold_cronjob(self) -> None:
        """Suspend the CronJob of a Recurring job whose current spec is refused: it would
        otherwise go on running the earlier spec while the status says the job failed. Its
        spec hash is marked refused, so the next accepted spec (the earlier one again, too)
        replaces it and resumes the schedule."""
        cronjob = self.obs.cronjob
        if cronjob is None:
            return
        meta = cronjob.get("metadata") or {}
        annotations = meta.get("annotations") or {}
        held = (cronjob.get("spec") or {}).get("suspend") is True
        if held and annotations.get(SPEC_HASH_ANNOTATION) == REFUSED_SPEC_HASH:
            return
        self.plan.replace_cronjob = {
            **cronjob,
            "metadata": {
                **meta,
                "annotations": {**annotations, SPEC_HASH_ANNOTATION: REFUSED_SPEC_HASH},
            },
            "spec": {**(cronjob.get("spec") or {}), "suspend": True},
        }

    # ---------------------------------------------------------------- the end of a run

    def finish(
        self,
        spec: BackgroundJobSpec,
        outcome: Outcome,
        reason: str,
        message: str,
        event: str,
        *,
        phase_message: str | None = None,
        finished_at: datetime | None = None,
        took: float | None = None,
        ran: bool = False,
        stopped: tuple[ConditionType, ...] = (ConditionType.RUNNING,),
    ) -> Plan:
        """End the job's run: the phase and its condition (Succeeded, or Failed also for a
        cancel), ``finishedAt``, one Event, the finished metrics, then retention.

        ``ran``: a Job ran, so Running turns False whether or not it was set; the conditions
        in ``stopped`` turn False only where present."""
        succeeded = outcome is Outcome.SUCCEEDED
        phases = {Outcome.SUCCEEDED: Phase.SUCCEEDED, Outcome.CANCELLED: Phase.CANCELLED}
        self.phase(phases.get(outcome, Phase.FAILED), phase_message or message)
        self.set(
            ConditionType.SUCCEEDED if succeeded else ConditionType.FAILED, True, reason, message
        )
        if ran:
            self.set(ConditionType.RUNNING, False, reason, message)
        for ctype in stopped:
            self.unset(ctype, reason, message)
        self.st.finished_at = format_time(finished_at) if finished_at else self.now_s
        self.st.next_attempt_at = None  # (a retryPolicy's) no attempt follows
        etype = EventType.NORMAL if outcome is not Outcome.FAILED else EventType.WARNING
        reasons = {
            Outcome.SUCCEEDED: EventReason.SUCCEEDED,
            Outcome.FAILED: EventReason.FAILED,
            Outcome.CANCELLED: EventReason.CANCELLED,
        }
        self.plan.event(etype, reasons[outcome], event)
        self.finished_metrics(spec, outcome, took)
        return self.retention(spec)

    def finished_metrics(
        self, spec: BackgroundJobSpec, outcome: Outcome, took: float | None = None
    ) -> None:
        labels = {**spec.metric_labels(), "outcome": outcome.value}
        self.plan.metrics.append(Metric(MetricName.FINISHED, labels))
        if took is not None:
            self.plan.metrics.append(Metric(MetricName.DURATION, labels, took))

    def retention(self, spec: BackgroundJobSpec) -> Plan:
        """A finished job is deleted after its retention (decisions.retention: per outcome,
        ``ttlAfterFinished``, or the operator's) since it finished."""
        raw = spec.model_dump(by_alias=True, exclude_none=True)
        return self.expire(keep_for(raw, self.st.phase, self.settings.retention))

    def expire(self, ttl: timedelta) -> Plan:
        """Delete the job once ``ttl`` has passed since it finished; else look again then."""
        finished_at = parse_time(self.st.finished_at) or self.now
        expires = later(finished_at, ttl)
        if self.now >= expires:
            self.plan.delete_self = True
        else:
            self.plan.requeue_at = expires
        return self.plan
