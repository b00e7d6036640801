"""``spec.retryPolicy``: each attempt a Job of its own, created at the backoff's due time and
never earlier, decided from the objects alone (restart-safe); the last attempt's failure
fails the job as without a policy."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from tests.unit.test_decisions import (
    CANCEL,
    T0,
    UID,
    applied,
    bgj,
    child,
    cond_state,
    decide_at,
    env_of,
    parent,
    reasons,
    view,
)

from backgroundjobs.api.models import BackgroundJobSpec
from backgroundjobs.api.times import format_time
from backgroundjobs.controller import builders
from backgroundjobs.controller.decisions import ObservedJob, Plan
from backgroundjobs.controller.decisions.retry import Backoff

pytestmark = pytest.mark.unit

Body = dict[str, Any]
POLICY = {"backoff": {"initial": "10s", "factor": 2, "max": "10m", "jitter": 0.5}}
BACKOFF = Backoff.parse("10s", 2, "10m", 0.5)
TERMINATION = '{"error": "relay down", "type": "SMTPError"}'


def failed(name: str, at: Any, reason: str = "BackoffLimitExceeded") -> ObservedJob:
    return view(
        name,
        failed=1,
        failure_reason=reason,
        failure_message="Job has reached the specified backoff limit",
        failure_time=at,
    )


def with_termination(body: Body, now: Any, job: ObservedJob, **kw: Any) -> Plan:
    return decide_at(body, now, [job], termination={job.name: TERMINATION}, **kw)


def first_attempt(**spec: Any) -> Body:
    body = bgj(retryPolicy=POLICY, **spec)
    plan = decide_at(body, T0)
    (job,) = plan.create
    assert job["metadata"]["name"] == "job-1"
    assert job["spec"]["backoffLimit"] == 0  # the operator retries, not the Job controller
    assert plan.status["attempt"] == 1
    return applied(body, plan)


def test_without_a_policy_the_job_controller_retries() -> None:
    plan = decide_at(bgj(retries=5), T0)
    assert plan.create[0]["spec"]["backoffLimit"] == 5
    assert "attempt" not in plan.status


def test_a_failed_attempt_waits_retrying_until_its_due_time() -> None:
    body = first_attempt()
    failed_at = T0 + timedelta(seconds=30)
    job = failed("job-1", failed_at)
    assert decide_at(body, failed_at, [job]).need_termination == "job-1"

    plan = with_termination(body, failed_at + timedelta(seconds=1), job)
    due = failed_at + BACKOFF.delay(1, UID)
    assert failed_at + timedelta(seconds=5) <= due <= failed_at + timedelta(seconds=10)
    st = plan.status
    assert plan.create == []
    assert st["phase"] == "Running"
    assert cond_state(st, "Running") == ("True", "Retrying")
    assert st["nextAttemptAt"] == format_time(due)
    assert st["failedAttempts"] == 1
    assert f"attempt 2 of 4 due at {format_time(due)}" in st["message"]
    assert "SMTPError: relay down" in st["message"]
    assert plan.requeue_at == due  # the work queue's timer
    assert reasons(plan) == ["Retrying"]
    assert [m.name for m in plan.metrics] == ["retries"]

    # looked at again before it is due (a resync, a timer firing early): nothing new
    body = applied(body, plan)
    early = with_termination(body, due - timedelta(milliseconds=1), job)
    assert early.create == [] and early.events == [] and early.metrics == []
    assert early.requeue_at == due


def test_the_next_attempt_is_its_own_job_at_the_due_time() -> None:
    body = first_attempt()
    failed_at = T0 + timedelta(seconds=30)
    job = failed("job-1", failed_at)
    body = applied(body, with_termination(body, failed_at, job))
    due = failed_at + BACKOFF.delay(1, UID)

    plan = with_termination(body, due, job, admitted=True)
    (second,) = plan.create
    assert second["metadata"]["name"] == "job-1-a2"
    assert second["spec"]["backoffLimit"] == 0
    assert plan.admission is not None  # asks its queue like any run's start
    st = plan.status
    assert (st["runs"], st["attempt"], st["jobName"]) == (1, 2, "job-1-a2")
    assert "nextAttemptAt" not in st
    assert st["failedAttempts"] == 1
    assert cond_state(st, "Running") == ("True", "Started")
    assert "attempt 2 of 4" in st["message"]
    assert "lateness" not in [m.name for m in plan.metrics]  # a retry is not a late start


def test_a_full_queue_holds_the_due_attempt_queued() -> None:
    body = first_attempt()
    job = failed("job-1", T0)
    body = applied(body, with_termination(body, T0, job))
    plan = with_termination(body, T0 + timedelta(minutes=5), job, admitted=False)
    assert plan.create == []
    assert plan.status["phase"] == "Queued"
    body = applied(body, plan)
    again = with_termination(body, T0 + timedelta(minutes=6), job, admitted=True)
    assert [j["metadata"]["name"] for j in again.create] == ["job-1-a2"]


def run_attempts(retries: int) -> list[Plan]:
    """Every attempt fails at once; each next one starts at its due time."""
    body = first_attempt(retries=retries)
    plans = []
    now = T0
    for attempt in range(1, retries + 2):
        name = builders.attempt_job_name("job", 1, attempt)
        job = failed(name, now)
        plan = with_termination(body, now, job, admitted=True)
        plans.append(plan)
        body = applied(body, plan)
        if plan.status["phase"] != "Running":
            break
        due = now + BACKOFF.delay(attempt, UID)
        assert plan.requeue_at == due
        plan = with_termination(body, due, job, admitted=True)
        assert [j["metadata"]["name"] for j in plan.create] == [
            builders.attempt_job_name("job", 1, attempt + 1)
        ]
        body = applied(body, plan)
        now = due
    return plans


def test_after_the_last_allowed_attempt_fails_the_job_is_failed() -> None:
    plans = run_attempts(retries=2)
    assert len(plans) == 3  # retries + 1 attempts, the third one's failure is the end
    last = plans[-1]
    assert last.create == []
    st = last.status
    assert st["phase"] == "Failed"
    assert cond_state(st, "Failed") == ("True", "BackoffLimitExceeded")
    assert "nextAttemptAt" not in st
    assert (st["attempt"], st["jobName"]) == (3, "job-1-a3")
    assert "Failed" in reasons(last)


def test_retries_zero_means_one_attempt() -> None:
    plans = run_attempts(retries=0)
    assert len(plans) == 1 and plans[0].status["phase"] == "Failed"


@pytest.mark.parametrize(
    ("job_reason", "reason"),
    [("PodFailurePolicy", "NonRetryableExitCode"), ("DeadlineExceeded", "DeadlineExceeded")],
)
def test_a_failure_that_is_not_retried_ends_the_run_at_once(job_reason: str, reason: str) -> None:
    body = first_attempt()
    plan = with_termination(body, T0, failed("job-1", T0, job_reason))
    assert plan.create == [] and plan.status["phase"] == "Failed"
    assert cond_state(plan.status, "Failed") == ("True", reason)


def test_restart_after_the_next_attempt_was_created_but_not_recorded() -> None:
    """The operator made job-1-a2 and was killed before the status write: decided again from
    the same objects, it plans the same Job name (AlreadyExists adopts it): one attempt."""
    body = first_attempt()
    job = failed("job-1", T0)
    waiting = applied(body, with_termination(body, T0, job))
    due = T0 + BACKOFF.delay(1, UID)
    first = with_termination(waiting, due, job, admitted=True)
    again = with_termination(waiting, due + timedelta(seconds=3), job, admitted=True)
    assert [j["metadata"]["name"] for j in first.create] == ["job-1-a2"]
    assert [j["metadata"]["name"] for j in again.create] == ["job-1-a2"]


def test_the_due_time_comes_from_the_failed_job_not_from_the_clock() -> None:
    """A status write lost (or an operator that first sees the failure late): the due time is
    the same, derived from the Job's failure time and the uid."""
    body = first_attempt()
    job = failed("job-1", T0)
    seen_at_once = with_termination(body, T0, job)
    seen_late = with_termination(body, T0 + timedelta(seconds=4), job)
    assert seen_at_once.status["nextAttemptAt"] == seen_late.status["nextAttemptAt"]


def test_the_failed_attempt_s_job_gone_while_waiting_keeps_the_retry() -> None:
    body = first_attempt()
    job = failed("job-1", T0)
    waiting = applied(body, with_termination(body, T0, job))
    due = T0 + BACKOFF.delay(1, UID)
    plan = decide_at(waiting, due - timedelta(seconds=1), [])
    assert plan.status["phase"] == "Running" and plan.requeue_at == due
    plan = decide_at(waiting, due, [], admitted=True)
    assert [j["metadata"]["name"] for j in plan.create] == ["job-1-a2"]


def test_cancel_while_waiting_ends_it_without_another_attempt() -> None:
    body = first_attempt()
    job = failed("job-1", T0)
    waiting = applied(body, with_termination(body, T0, job), annotations={CANCEL: "now"})
    plan = with_termination(waiting, T0 + timedelta(hours=1), job, admitted=True)
    assert plan.create == [] and plan.delete_jobs == []
    assert plan.status["phase"] == "Cancelled"
    assert "nextAttemptAt" not in plan.status


def test_the_gather_finds_the_current_attempt_s_job() -> None:
    """Decided with the status of attempt 2, the job looked at is job-1-a2 (not job-1)."""
    body = first_attempt()
    job = failed("job-1", T0)
    waiting = applied(body, with_termination(body, T0, job))
    due = T0 + BACKOFF.delay(1, UID)
    running = applied(waiting, with_termination(waiting, due, job, admitted=True))
    second = view("job-1-a2", active_pods=1)
    plan = decide_at(running, due + timedelta(seconds=5), [job, second])
    assert plan.create == [] and plan.status["phase"] == "Running"
    assert plan.status["attempt"] == 2


@pytest.mark.parametrize(
    ("backoff", "needle"),
    [
        ({"initial": "1m", "max": "10s"}, "max must be at least"),
        ({"initial": "0s"}, "initial must be a positive"),
        ({"initial": "soon"}, "invalid duration"),
    ],
)
def test_a_policy_the_crd_would_refuse_is_an_invalid_spec(backoff: Body, needle: str) -> None:
    plan = decide_at(bgj(retryPolicy={"backoff": backoff}), T0)
    assert plan.create == []
    assert cond_state(plan.status, "Failed") == ("True", "InvalidSpec")
    assert needle in plan.status["message"]
    assert "spec.retryPolicy.backoff" in plan.status["message"]


def test_recurring_and_batch_jobs_keep_the_job_s_own_retries() -> None:
    recurring = BackgroundJobSpec.model_validate(
        {"handler": "h", "schedule": "@daily", "retryPolicy": {}}
    )
    assert not builders.operator_retries(recurring)
    assert builders.operator_retries(
        BackgroundJobSpec.model_validate({"handler": "h", "retryPolicy": {}})
    )


@given(
    failed_after=st.integers(min_value=0, max_value=10**6),
    look_at=st.integers(min_value=0, max_value=10**9),
)
def test_never_early(failed_after: int, look_at: int) -> None:
    """Whenever it is looked at, the second attempt exists only at or after its due time."""
    body = first_attempt()
    failed_at = T0 + timedelta(milliseconds=failed_after)
    job = failed("job-1", failed_at)
    due = failed_at + BACKOFF.delay(1, UID)
    now = failed_at + timedelta(milliseconds=look_at)
    plan = with_termination(body, now, job, admitted=True)
    assert bool(plan.create) == (now >= due)
    if now < due:
        assert plan.requeue_at == due


def test_default_backoff_is_the_job_controller_s() -> None:
    spec = BackgroundJobSpec.model_validate({"handler": "h", "retryPolicy": {}})
    assert spec.retry_policy is not None
    b = spec.retry_policy.backoff
    assert (b.initial, b.factor, b.max, b.jitter) == ("10s", 2.0, "6m", 0.0)


def test_once_the_wait_is_recorded_the_due_attempt_needs_no_pod_read() -> None:
    """The failed pod's error is read once, when the failure is first seen; at the due time
    the next attempt's Job is made at once (no termination read before it)."""
    body = first_attempt()
    job = failed("job-1", T0)
    assert decide_at(body, T0, [job]).need_termination == "job-1"  # first seen: read it
    waiting = applied(body, with_termination(body, T0, job))
    due = T0 + BACKOFF.delay(1, UID)
    early = decide_at(waiting, due - timedelta(seconds=1), [job])
    assert early.need_termination is None and early.create == [] and early.requeue_at == due
    assert early.status["message"] == waiting["status"]["message"]  # the error kept
    plan = decide_at(waiting, due, [job], admitted=True)
    assert plan.need_termination is None
    assert [j["metadata"]["name"] for j in plan.create] == ["job-1-a2"]
    # a recorded time that is not this failure's (another attempt's): read it again
    other = applied(body, plan)
    assert decide_at(other, due, [failed("job-1-a2", due)]).need_termination == "job-1-a2"


def test_a_continuation_s_later_attempt_gets_the_parent_s_result_again() -> None:
    done = parent("Succeeded", result={"rows": 7})
    body = child(retryPolicy=POLICY)
    first = decide_at(body, T0, parent=done)
    assert [o["metadata"]["name"] for o in first.create] == ["child-1"]
    body = applied(body, first)
    job = failed("child-1", T0)
    body = applied(
        body, decide_at(body, T0, [job], termination={"child-1": TERMINATION}, parent=done)
    )
    due = T0 + BACKOFF.delay(1, UID)
    plan = decide_at(body, due, [job], admitted=True, parent=done)
    (second,) = plan.create
    assert second["metadata"]["name"] == "child-1-a2"
    env = env_of(second)
    assert env["BACKGROUNDJOBS_PARENT"] == "parent"
    assert json.loads(env["BACKGROUNDJOBS_PARENT_RESULT"]) == {"rows": 7}
