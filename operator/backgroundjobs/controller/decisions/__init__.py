"""What to do with a BackgroundJob: a pure function of (object, observed children, parent, now).

``decide`` returns a :class:`Plan` (children to create or delete, the new status, Events,
when to look again, what it still needs to know); the reconciler gathers the inputs and
applies the plan. Nothing here does I/O, so every transition is unit-tested without a
cluster. By kind of job: ``runs`` (Immediate, Delayed, Continuation: one Job per run, with
``continuation`` for the wait on the parent) and ``recurring`` (a CronJob); ``state`` holds
the status being built and the steps they share.
"""

from __future__ import annotations

import contextlib
import json
import logging
from dataclasses import replace
from datetime import datetime

from pydantic import ValidationError

from backgroundjobs import _json
from backgroundjobs.api import constants as c
from backgroundjobs.api import podpolicy
from backgroundjobs.api.constants import JobType
from backgroundjobs.api.times import parse_time
from backgroundjobs.controller.decisions import retrypolicy
from backgroundjobs.controller.decisions.continuation import parent_outcome
from backgroundjobs.controller.decisions.observed import Body, Observed, ObservedJob, parse_spec
from backgroundjobs.controller.decisions.plan import (
    Admission,
    Event,
    Metric,
    MetricName,
    Outcome,
    Plan,
)
from backgroundjobs.controller.decisions.podstate import JobPods
from backgroundjobs.controller.decisions.recurring import decide_recurring
from backgroundjobs.controller.decisions.runs import decide_run
from backgroundjobs.controller.decisions.state import Decision, parse_result
from backgroundjobs.controller.decisions.suspension import effective_spec, say_until
from backgroundjobs.controller.settings import Settings

log = logging.getLogger("backgroundjobs.operator")


def decide(obs: Observed, settings: Settings) -> Plan:
    """Decide the next step for one BackgroundJob. Total: whatever the object holds, the
    answer is a plan (an object that cannot be decided on ends Failed/InvalidSpec)."""
    try:
        d = Decision(obs, settings)
        _decide(d)
        plan = d.result()
        if settings.pod_policy_check and (plan.create or plan.replace_cronjob is not None):
            return police(obs, settings, plan)
        return plan
    except Exception as exc:  # one object's data never stops the others (a bug shows in the log)
        log.exception("cannot decide on %s", (obs.bgj.get("metadata") or {}).get("name"))
        return _undecidable(obs, settings, exc)


def police(obs: Observed, settings: Settings, plan: Plan) -> Plan:
    """``plan``, which creates or changes children, if the pod policy lets the job have them;
    else Failed/PolicyDenied with nothing created (docs/SECURITY.md). Rules the admission
    policy checked for this job (it was in force when the job was created) are not asked
    again; what is forbidden to everyone always is."""
    spec = parse_spec(obs.bgj)
    meta = obs.bgj.get("metadata") or {}
    namespace = meta.get("namespace", "")
    queue_class = settings.queue(spec.queue).priority_class_name
    found = podpolicy.violations(spec, namespace, settings.pod_policy, queue_class)
    if any(not v.forbidden for v in found) and settings.pod_policy.admission is not None:
        if obs.pod_policy_admission is None:
            return Plan(need_pod_policy_admission=True)
        if obs.pod_policy_admission.vouches_for(
            namespace, parse_time(meta.get("creationTimestamp"))
        ):
            found = [v for v in found if v.forbidden]
    if not found:
        return plan
    d = Decision(obs, settings)
    d.st.type = spec.job_type
    d.policy_denied(podpolicy.denial_message(found))
    return d.result()


def _decide(d: Decision) -> None:
    raw_spec = d.bgj.get("spec")
    if not isinstance(raw_spec, dict):
        d.invalid_spec("spec is not an object")
        return
    for field in ("args", "kwargs", "podTemplate"):
        problem = _json.unstorable(raw_spec.get(field), c.MAX_VALUE_DEPTH)
        if problem is not None:  # before anything recursive (json, ==) touches it
            d.invalid_spec(f"spec.{field} is {problem}")
            return
    try:
        spec = parse_spec(d.bgj)
    except ValidationError as exc:
        d.invalid_spec(_validation_message(exc))
        return
    d.st.type = spec.job_type
    size = len(json.dumps(spec.args)) + len(json.dumps(spec.handler_kwargs))
    if size > c.MAX_ARGS_BYTES:
        d.invalid_spec(
            f"spec.args and spec.kwargs take {size} bytes as JSON; the limit is"
            f" {c.MAX_ARGS_BYTES} (pass a reference to the data instead)"
        )
    elif (retry_problem := retrypolicy.problem(spec)) is not None:
        d.invalid_spec(retry_problem)
    elif spec.job_type == JobType.RECURRING:
        decide_recurring(d, effective_spec(d, spec))
        say_until(d, spec)
    else:
        decide_run(d, effective_spec(d, spec))
        say_until(d, spec)


def invalid_spec_plan(bgj: Body, now: datetime, settings: Settings, message: str) -> Plan:
    """The plan for a job whose children the API server refused, or that the operator failed
    on: Failed/InvalidSpec, no retry."""
    obs = Observed(bgj=bgj, now=now)
    try:
        d = Decision(obs, settings)
        with contextlib.suppress(ValidationError):
            d.st.type = parse_spec(bgj).job_type
        if not d.is_invalid_for_generation():
            d.invalid_spec(message)
        return d.result()
    except Exception as exc:
        return _undecidable(obs, settings, exc)


def _undecidable(obs: Observed, settings: Settings, exc: Exception) -> Plan:
    """InvalidSpec for an object ``decide`` failed on; its status too is started afresh when
    it is what could not be read."""
    message = f"cannot be acted on: {type(exc).__name__}: {exc}"[:1024]
    try:
        d = Decision(obs, settings)
    except Exception:
        d = Decision(replace(obs, bgj={**obs.bgj, "status": {}}), settings)
    d.st.result = None if _json.unstorable(d.st.result, c.MAX_VALUE_DEPTH) else d.st.result
    d.plan = Plan()
    d.invalid_spec(message)
    return d.result()


def _validation_message(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        loc = ".".join(str(x) for x in err.get("loc", ()))
        parts.append(f"spec.{loc}: {err.get('msg')}")
    return "; ".join(parts)


__all__ = [
    "Admission",
    "Event",
    "JobPods",
    "Metric",
    "MetricName",
    "Observed",
    "ObservedJob",
    "Outcome",
    "Plan",
    "decide",
    "invalid_spec_plan",
    "parent_outcome",
    "parse_result",
    "parse_spec",
]
