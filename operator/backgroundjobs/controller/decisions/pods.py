"""A run whose pod cannot start: shown while it may still start, ended when it never will.

A Job that has had no ready pod for ``PROBE_AFTER`` is looked into (the plan asks with
``need_pods``; the reconciler reads the Job's pods, and its FailedCreate Events when it has
none) and again every ``PROBE_EVERY`` while it stays so: a ready or finished Job costs no
read, and a read serves the reconciles that follow it for a while (``reconciler``). What is
found (``podstate.Problem``) becomes the reason of the Running condition and a Warning Event
while the job waits, or ends it as Failed, its Job deleted so that nothing keeps retrying:

- refused by admission (Pod Security, a webhook), an image name that can never be pulled:
  Failed at once (PodCreateRefused, ImagePullFailed);
- an image that cannot be pulled, a missing Secret or ConfigMap (key): shown, then Failed
  once the pod has not started for ``Settings.pod_start_grace`` (ImagePullFailed,
  ConfigError), since the image may be pushed or the Secret created meanwhile;
- unschedulable: shown, and waits (for ``Settings.unschedulable_timeout`` when set, then
  Unschedulable);
- a quota with no room, another refused create: shown, waits (the Job controller retries).

A Recurring job's run that gives up is deleted and reported as its last run's failure; the
job goes on with its next run.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from backgroundjobs.api.constants import ConditionType, EventReason, Phase, Reason
from backgroundjobs.api.models import BackgroundJobSpec
from backgroundjobs.api.times import format_time
from backgroundjobs.controller import conditions as cond
from backgroundjobs.controller.decisions.observed import ObservedJob
from backgroundjobs.controller.decisions.plan import Outcome, Plan
from backgroundjobs.controller.decisions.podstate import PodProblem, Problem
from backgroundjobs.controller.decisions.state import Decision
from backgroundjobs.controller.settings import Settings

# A Job without a ready pod this long after its creation is looked into...
PROBE_AFTER = timedelta(seconds=10)
# ...and again this often while it stays so: a cause is shown within this (plus a reconcile).
PROBE_EVERY = timedelta(seconds=15)

# While the job waits: the Running condition's reason and the Warning's.
_WAITING = {
    Problem.IMAGE_PULL: (Reason.IMAGE_PULL_BACK_OFF, EventReason.IMAGE_PULL_BACK_OFF),
    Problem.CONFIG: (
        Reason.CREATE_CONTAINER_CONFIG_ERROR,
        EventReason.CREATE_CONTAINER_CONFIG_ERROR,
    ),
    Problem.UNSCHEDULABLE: (Reason.UNSCHEDULABLE, EventReason.UNSCHEDULABLE),
    Problem.QUOTA: (Reason.QUOTA_EXCEEDED, EventReason.QUOTA_EXCEEDED),
    Problem.CREATE_FAILED: (Reason.POD_CREATE_FAILED, EventReason.POD_CREATE_FAILED),
}
WAITING_REASONS = frozenset(reason for reason, _ in _WAITING.values())
# When the job gives up: the Failed condition's reason.
_FAILED = {
    Problem.CREATE_REFUSED: Reason.POD_CREATE_REFUSED,
    Problem.IMAGE_INVALID: Reason.IMAGE_PULL_FAILED,
    Problem.IMAGE_PULL: Reason.IMAGE_PULL_FAILED,
    Problem.CONFIG: Reason.CONFIG_ERROR,
    Problem.UNSCHEDULABLE: Reason.UNSCHEDULABLE,
}


def deadline(problem: PodProblem, settings: Settings, now: datetime) -> datetime | None:
    """When ``problem`` fails the job (None: never, it waits)."""
    since = problem.since or now
    if problem.problem in (Problem.CREATE_REFUSED, Problem.IMAGE_INVALID):
        return since
    if problem.problem in (Problem.IMAGE_PULL, Problem.CONFIG):
        return since + settings.pod_start_grace
    if problem.problem is Problem.UNSCHEDULABLE and settings.unschedulable_timeout is not None:
        return since + settings.unschedulable_timeout
    return None


def check_pods(d: Decision, spec: BackgroundJobSpec, job: ObservedJob) -> Plan | None:
    """Look into a run (Immediate, Delayed, Continuation) whose Job has no ready pod: the
    plan that ends the job, or None (it runs, or waits and the Running condition says why)."""
    found = _look(d, job)
    if found is None:
        return None
    problem, ends = found
    if ends is not None and d.now >= ends:
        reason = _FAILED[problem.problem]
        d.plan.delete_jobs.append(job.name)  # nothing keeps retrying what cannot succeed
        return d.finish(
            spec,
            Outcome.FAILED,
            reason,
            problem.message,
            f"Job {job.name} failed ({reason}): {problem.message}; the Job is deleted",
            phase_message=f"failed ({reason}): {problem.message}",
            ran=True,
        )
    message = _show_waiting(d, problem, ends)
    d.phase(Phase.RUNNING, f"waiting ({_WAITING[problem.problem][0]}): {message}")
    return None


def check_recurring_run(d: Decision, spec: BackgroundJobSpec, job: ObservedJob) -> None:
    """Look into a Recurring job's run whose Job has no ready pod. A run that can never start
    is deleted and reported as the last run's failure, so that the CronJob (which forbids
    overlapping runs by default) goes on with the next one; the job itself goes on."""
    found = _look(d, job)
    if found is None:
        return
    problem, ends = found
    if ends is not None and d.now >= ends:
        reason = _FAILED[problem.problem]
        d.plan.delete_jobs.append(job.name)
        message = f"run {job.name} failed ({reason}): {problem.message}; the Job is deleted"
        d.set(ConditionType.FAILED, True, reason, message)
        d.unset(ConditionType.SUCCEEDED, reason, message)
        d.set(ConditionType.RUNNING, False, reason, message)
        d.st.message = message
        d.st.finished_at = d.now_s
        d.warn(EventReason.FAILED, message)
        d.finished_metrics(spec, Outcome.FAILED)
        return
    _show_waiting(d, problem, ends)


def _look(d: Decision, job: ObservedJob) -> tuple[PodProblem, datetime | None] | None:
    """The problem that keeps ``job``'s pod from starting and when it fails the job, once the
    pods are read; None while there is none or they must be read first (``need_pods``)."""
    plan = d.plan
    if job.finished or job.ready_pods > 0:
        _unblocked(d, "its pod is ready")
        return None
    first_look = (job.created or d.now) + PROBE_AFTER
    if d.now < first_look:
        plan.look_again(first_look)
        return None
    pods = d.obs.pods.get(job.name)
    if pods is None:
        plan.need_pods = job.name
        return None
    plan.look_again(d.now + PROBE_EVERY)
    problem = pods.worst
    if problem is None:
        _unblocked(d, "its pod is starting")
        return None
    return problem, deadline(problem, d.settings, d.now)


def _show_waiting(d: Decision, problem: PodProblem, ends: datetime | None) -> str:
    """The Running condition says what the run waits for; a Warning when that is new."""
    reason, event = _WAITING[problem.problem]
    message = problem.message
    if ends is not None:
        message += f"; the job fails at {format_time(ends)} unless this is resolved"
        d.plan.look_again(ends)
    shown = cond.get(d.old.conditions, ConditionType.RUNNING)
    if shown is None or shown.reason != reason:
        d.warn(event, message)
    d.set(ConditionType.RUNNING, True, reason, message)
    return message


def _unblocked(d: Decision, why: str) -> None:
    """A job that was shown as blocked is no longer: say so once."""
    running = d.condition(ConditionType.RUNNING)
    if running is None or running.reason not in WAITING_REASONS:
        return
    message = f"{why} (was {running.reason})"
    d.note(EventReason.POD_STARTING, message)
    d.set(ConditionType.RUNNING, True, Reason.POD_STARTING, message)
    d.phase(Phase.RUNNING, message)
