"""A run whose pod cannot start (decisions/pods.py, decisions/podstate.py): what the pods and
the Job's FailedCreate Events show, and what the job does about it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from tests.unit.test_decisions import (
    SETTINGS,
    T0,
    Body,
    applied,
    bgj,
    cond_state,
    cronjob_of,
    decide_at,
    reasons,
    recurring,
    scheduled_job,
    started,
)

from backgroundjobs.api.times import format_time
from backgroundjobs.controller.decisions import JobPods, ObservedJob, Plan
from backgroundjobs.controller.decisions.pods import PROBE_AFTER, PROBE_EVERY
from backgroundjobs.controller.decisions.podstate import Problem
from backgroundjobs.controller.settings import Settings

pytestmark = pytest.mark.unit

S = timedelta(seconds=1)


# ------------------------------------------------------------------ what the API shows


def pod(
    *,
    waiting: str | None = None,
    message: str = "",
    unschedulable: str | None = None,
    phase: str = "Pending",
    started_at: Any = T0,
    deleting: bool = False,
) -> Body:
    """A pod of run 1 as the API server returns it."""
    meta: Body = {"name": "job-1-abcde", "creationTimestamp": format_time(T0)}
    if deleting:
        meta["deletionTimestamp"] = format_time(T0)
    status: Body = {"phase": phase, "conditions": []}
    if unschedulable is not None:
        status["conditions"].append(
            {
                "type": "PodScheduled",
                "status": "False",
                "reason": "Unschedulable",
                "message": unschedulable,
                "lastTransitionTime": format_time(T0 + S),
            }
        )
    else:
        status["startTime"] = format_time(started_at)
    if waiting is not None:
        status["containerStatuses"] = [
            {"name": "handler", "state": {"waiting": {"reason": waiting, "message": message}}}
        ]
    return {"metadata": meta, "status": status}


def failed_create(message: str, last: Any = T0 + 2 * S, **extra: Any) -> Body:
    """A FailedCreate Event of the Job, as the Job controller records it."""
    return {
        "reason": "FailedCreate",
        "type": "Warning",
        "message": f"Error creating: {message}",
        "firstTimestamp": format_time(T0 + S),
        "lastTimestamp": format_time(last) if last is not None else None,
        **extra,
    }


PSA = (
    'pods "job-1-abcde" is forbidden: violates PodSecurity "restricted:latest":'
    " allowPrivilegeEscalation != false"
)
QUOTA = (
    'pods "job-1-abcde" is forbidden: exceeded quota: no-pods, requested: pods=1,'
    " used: pods=0, limited: pods=0"
)
WEBHOOK = 'admission webhook "policy.example.com" denied the request: no latest tags'
WEBHOOK_DOWN = 'Internal error occurred: failed calling webhook "policy.example.com": timeout'
NOT_FOUND = 'failed to pull and unpack image "nope:1": not found'


@pytest.mark.parametrize(
    ("pods", "events", "problem"),
    [
        ([pod(waiting="ErrImagePull", message=NOT_FOUND)], [], Problem.IMAGE_PULL),
        (
            [pod(waiting="ImagePullBackOff", message='Back-off pulling "nope:1"')],
            [],
            Problem.IMAGE_PULL,
        ),
        ([pod(waiting="InvalidImageName", message="bad")], [], Problem.IMAGE_INVALID),
        ([pod(waiting="ErrImageNeverPull")], [], Problem.IMAGE_INVALID),
        (
            [pod(waiting="CreateContainerConfigError", message='secret "smtp" not found')],
            [],
            Problem.CONFIG,
        ),
        ([pod(unschedulable="0/3 nodes are available")], [], Problem.UNSCHEDULABLE),
        ([], [failed_create(PSA)], Problem.CREATE_REFUSED),
        ([], [failed_create(WEBHOOK)], Problem.CREATE_REFUSED),
        ([], [failed_create(QUOTA)], Problem.QUOTA),
        ([], [failed_create(WEBHOOK_DOWN)], Problem.CREATE_FAILED),
        # the latest Event tells: the quota was raised, then Pod Security refused
        ([], [failed_create(PSA, last=T0 + 9 * S), failed_create(QUOTA)], Problem.CREATE_REFUSED),
        # an aggregated Event of the events.k8s.io API counts its time in series
        (
            [],
            [
                failed_create(
                    QUOTA, last=None, series={"lastObservedTime": format_time(T0 + 9 * S)}
                ),
                failed_create(PSA),
            ],
            Problem.QUOTA,
        ),
        # a pod that shows a problem and the unschedulable one: the permanent one first
        ([pod(waiting="InvalidImageName"), pod(unschedulable="x")], [], Problem.IMAGE_INVALID),
    ],
)
def test_what_the_pods_and_events_show(
    pods: list[Body], events: list[Body], problem: Problem
) -> None:
    worst = JobPods.from_bodies(pods, events).worst
    assert worst is not None and worst.problem is problem


def test_the_messages_are_the_kubelets_and_the_api_servers() -> None:
    image = JobPods.from_bodies([pod(waiting="ErrImagePull", message=NOT_FOUND)], []).worst
    assert image is not None
    assert image.message == f"container handler of pod job-1-abcde: ErrImagePull: {NOT_FOUND}"
    assert image.since == T0
    refused = JobPods.from_bodies([], [failed_create(PSA)]).worst
    assert refused is not None
    assert refused.message == f"the pod's create was refused: {PSA}"
    assert refused.since == T0 + S
    unschedulable = JobPods.from_bodies([pod(unschedulable="0/3 nodes are available")], []).worst
    assert unschedulable is not None and unschedulable.since == T0 + S


@pytest.mark.parametrize(
    ("pods", "events"),
    [
        ([], []),  # not created yet, nothing refused
        ([pod()], []),  # scheduled, containers being created
        ([pod(waiting="ContainerCreating")], []),
        ([pod(phase="Running")], []),
        # a finished or deleted pod's problem is over; Events only count with no pod at all
        ([pod(waiting="ErrImagePull", phase="Failed")], []),
        ([pod(waiting="ErrImagePull", deleting=True)], []),
        ([pod(phase="Running")], [failed_create(QUOTA)]),
    ],
)
def test_nothing_keeps_the_pod_from_starting(pods: list[Body], events: list[Body]) -> None:
    assert JobPods.from_bodies(pods, events).worst is None


# ------------------------------------------------------------------ what the job does


def running(**job: Any) -> tuple[Body, ObservedJob]:
    """Run 1, created at T0, whose pod is not ready."""
    body, view = started(bgj())
    fields = {**view.__dict__, "ready_pods": 0, **job}
    return body, ObservedJob(**fields)


def look(
    body: Body,
    job: ObservedJob,
    now: Any,
    pods: list[Body] | None = None,
    events: list[Body] | None = None,
    settings: Settings = SETTINGS,
) -> Plan:
    """Decide at ``now`` with the pods read (as the reconciler does when asked)."""
    seen = {job.name: JobPods.from_bodies(pods or [], events or [])}
    return decide_at(body, now, [job], settings=settings, pods=seen)


def test_a_young_job_is_looked_into_only_after_a_while() -> None:
    body, job = running()
    plan = decide_at(body, T0 + S, [job])
    assert plan.need_pods is None
    assert plan.requeue_at == T0 + PROBE_AFTER
    later = decide_at(body, T0 + PROBE_AFTER, [job])
    assert later.need_pods == "job-1"


def test_a_job_with_a_ready_pod_costs_no_read() -> None:
    body, job = running(ready_pods=1)
    plan = decide_at(body, T0 + timedelta(minutes=5), [job])
    assert plan.need_pods is None and plan.requeue_at is None


def test_a_starting_pod_is_looked_at_again() -> None:
    body, job = running()
    now = T0 + 10 * S
    plan = look(body, job, now, [pod(waiting="ContainerCreating")])
    assert plan.need_pods is None
    assert plan.requeue_at == now + PROBE_EVERY
    assert plan.events == [] and plan.status == body["status"]


def test_an_image_pull_error_is_shown_then_fails_the_job_after_the_grace() -> None:
    body, job = running()
    pulling = [pod(waiting="ErrImagePull", message=NOT_FOUND)]
    now = T0 + 10 * S
    plan = look(body, job, now, pulling)
    assert plan.status["phase"] == "Running"
    assert cond_state(plan.status, "Running") == ("True", "ImagePullBackOff")
    ends = T0 + SETTINGS.pod_start_grace
    running_cnd = next(c for c in plan.status["conditions"] if c["type"] == "Running")
    assert NOT_FOUND in running_cnd["message"]
    assert f"fails at {format_time(ends)}" in running_cnd["message"]
    assert [(e.type, e.reason) for e in plan.events] == [("Warning", "ImagePullBackOff")]
    assert plan.requeue_at == now + PROBE_EVERY
    assert plan.delete_jobs == []

    # the kubelet backs off: the same problem, no second Warning
    waiting = applied(body, plan)
    backoff = [pod(waiting="ImagePullBackOff", message='Back-off pulling image "nope:1"')]
    again = look(waiting, job, ends - 5 * S, backoff)
    assert again.events == []
    assert again.requeue_at == ends  # the deadline comes before the next look

    failed = look(applied(waiting, again), job, ends, backoff)
    assert failed.status["phase"] == "Failed"
    assert cond_state(failed.status, "Failed") == ("True", "ImagePullFailed")
    assert cond_state(failed.status, "Running") == ("False", "ImagePullFailed")
    assert failed.delete_jobs == ["job-1"]
    assert [(e.type, e.reason) for e in failed.events] == [("Warning", "Failed")]
    assert "finished" in [m.name for m in failed.metrics]


@pytest.mark.parametrize(
    ("pods", "events", "reason"),
    [
        ([pod(waiting="InvalidImageName", message='invalid "Nope::"')], [], "ImagePullFailed"),
        ([], [failed_create(PSA)], "PodCreateRefused"),
        ([], [failed_create(WEBHOOK)], "PodCreateRefused"),
    ],
)
def test_what_can_never_start_fails_at_the_first_look(
    pods: list[Body], events: list[Body], reason: str
) -> None:
    body, job = running()
    plan = look(body, job, T0 + PROBE_AFTER, pods, events)
    assert plan.status["phase"] == "Failed"
    assert cond_state(plan.status, "Failed") == ("True", reason)
    assert plan.delete_jobs == ["job-1"]
    assert ("Warning", "Failed") in [(e.type, e.reason) for e in plan.events]


def test_a_missing_secret_waits_for_the_grace_then_is_a_config_error() -> None:
    body, job = running()
    missing = [pod(waiting="CreateContainerConfigError", message='secret "smtp" not found')]
    plan = look(body, job, T0 + 10 * S, missing)
    assert cond_state(plan.status, "Running") == ("True", "CreateContainerConfigError")
    assert reasons(plan) == ["CreateContainerConfigError"]
    failed = look(applied(body, plan), job, T0 + SETTINGS.pod_start_grace, missing)
    assert cond_state(failed.status, "Failed") == ("True", "ConfigError")
    assert 'secret "smtp" not found' in failed.status["message"]


@pytest.mark.parametrize(
    ("pods", "events", "reason"),
    [
        (
            [pod(unschedulable="0/3 nodes are available: node(s) didn't match selector")],
            [],
            "Unschedulable",
        ),
        ([], [failed_create(QUOTA)], "QuotaExceeded"),
        ([], [failed_create(WEBHOOK_DOWN)], "PodCreateFailed"),
    ],
)
def test_what_may_start_later_waits_for_ever(
    pods: list[Body], events: list[Body], reason: str
) -> None:
    body, job = running()
    plan = look(body, job, T0 + 10 * S, pods, events)
    assert plan.status["phase"] == "Running"
    assert cond_state(plan.status, "Running") == ("True", reason)
    assert [(e.type, e.reason) for e in plan.events] == [("Warning", reason)]
    much_later = look(applied(body, plan), job, T0 + timedelta(days=3), pods, events)
    assert much_later.status["phase"] == "Running"
    assert much_later.events == [] and much_later.delete_jobs == []
    assert much_later.requeue_at == T0 + timedelta(days=3) + PROBE_EVERY


def test_unschedulable_fails_after_the_configured_timeout() -> None:
    settings = Settings(default_image="x:1", unschedulable_timeout=timedelta(minutes=10))
    body, job = running()
    stuck = [pod(unschedulable="0/3 nodes are available")]
    plan = look(body, job, T0 + 10 * S, stuck, settings=settings)
    assert cond_state(plan.status, "Running") == ("True", "Unschedulable")
    ends = T0 + S + timedelta(minutes=10)  # since the pod turned unschedulable
    assert plan.requeue_at == T0 + 10 * S + PROBE_EVERY
    failed = look(applied(body, plan), job, ends, stuck, settings=settings)
    assert cond_state(failed.status, "Failed") == ("True", "Unschedulable")
    assert failed.delete_jobs == ["job-1"]


def test_a_job_no_longer_blocked_says_so_once() -> None:
    body, job = running()
    plan = look(body, job, T0 + 10 * S, [], [failed_create(QUOTA)])
    waiting = applied(body, plan)
    # the quota was raised: the pod is made and starts
    created = look(waiting, job, T0 + 25 * S, [pod(waiting="ContainerCreating")])
    assert cond_state(created.status, "Running") == ("True", "PodStarting")
    assert [(e.type, e.reason) for e in created.events] == [("Normal", "PodStarting")]
    assert "was QuotaExceeded" in created.status["message"]
    # then it is ready: nothing more to say, nothing more to read
    ready = ObservedJob(**{**job.__dict__, "ready_pods": 1})
    calm = decide_at(applied(waiting, created), T0 + 30 * S, [ready])
    assert calm.events == [] and calm.need_pods is None


def test_a_retried_pod_that_cannot_start_is_shown_too() -> None:
    body, job = running(failed=1)
    plan = look(body, job, T0 + 10 * S, [pod(waiting="ErrImagePull", message=NOT_FOUND)])
    assert cond_state(plan.status, "Running") == ("True", "ImagePullBackOff")
    assert reasons(plan) == ["Retrying", "ImagePullBackOff"]


# ------------------------------------------------------------------ a Recurring job's run


def test_a_recurring_run_that_cannot_start_is_deleted_and_the_job_goes_on() -> None:
    body = recurring()
    first = decide_at(body, T0)
    cj = cronjob_of(first)
    body = applied(body, first)
    t1 = datetime(2030, 1, 2, 2, 0, 1, tzinfo=UTC)
    run = scheduled_job(1, t1, active_pods=1)
    body = applied(body, decide_at(body, t1, [run], cronjob=cj))
    missing = [
        pod(
            waiting="CreateContainerConfigError",
            message='secret "db" not found',
            started_at=t1 + 2 * S,
        )
    ]
    seen = {run.name: JobPods.from_bodies(missing, [])}

    waiting = decide_at(body, t1 + 10 * S, [run], cronjob=cj, pods=seen)
    assert cond_state(waiting.status, "Running") == ("True", "CreateContainerConfigError")
    assert reasons(waiting) == ["CreateContainerConfigError"]
    assert waiting.status["phase"] == "Scheduled"  # the job's own state is its schedule
    body = applied(body, waiting)
    again = decide_at(body, t1 + 25 * S, [run], cronjob=cj, pods=seen)
    assert again.events == [] and again.status == body["status"]

    ends = t1 + 2 * S + SETTINGS.pod_start_grace  # from the pod's start on its node
    assert again.requeue_at == t1 + 25 * S + PROBE_EVERY
    given_up = decide_at(body, ends, [run], cronjob=cj, pods=seen)
    assert given_up.delete_jobs == [run.name]
    assert cond_state(given_up.status, "Failed") == ("True", "ConfigError")
    assert cond_state(given_up.status, "Running") == ("False", "ConfigError")
    assert given_up.status["phase"] == "Scheduled"
    assert reasons(given_up) == ["Failed"]
    # the Job is gone: nothing runs, the next run comes as scheduled
    after = decide_at(applied(body, given_up), ends + S, [], cronjob=cj)
    assert cond_state(after.status, "Running") == ("False", "NoRunActive")
    assert cond_state(after.status, "Failed") == ("True", "ConfigError")
