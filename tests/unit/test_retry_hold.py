"""``suspend`` holds a pending retry (issue 17 leftover F): no next attempt while suspended,
the attempt on resume (at once when it fell due meanwhile), ``suspendUntil`` resumes it."""

from __future__ import annotations

from datetime import timedelta

import pytest
from tests.unit.test_decisions import T0, UID, applied, cond_state, reasons
from tests.unit.test_retry_policy import BACKOFF, failed, first_attempt, with_termination

from backgroundjobs.api.times import format_time

pytestmark = pytest.mark.unit


def test_a_suspended_retry_gets_no_attempt_until_resumed() -> None:
    body = first_attempt()
    fail_time = T0 + timedelta(seconds=30)
    job = failed("job-1", fail_time)
    body = applied(body, with_termination(body, fail_time, job))
    due = fail_time + BACKOFF.delay(1, UID)
    assert body["status"]["phase"] == "Running"

    # suspended while it waits: phase Suspended at once, and nothing at or after the due time
    body["spec"]["suspend"] = True
    plan = with_termination(body, fail_time + timedelta(seconds=1), job)
    assert plan.create == []
    assert plan.status["phase"] == "Suspended"
    assert (
        f"attempt 2 of 4 (due at {format_time(due)}) waits until resumed"
        in (plan.status["message"])
    )
    assert cond_state(plan.status, "Suspended") == ("True", "Suspended")
    assert reasons(plan) == ["Suspended"]
    body = applied(body, plan)
    for later in (due, due + timedelta(hours=1)):
        held = with_termination(body, later, job, admitted=True)
        assert held.create == [] and held.events == []
        assert held.status["phase"] == "Suspended"

    # resumed long after the due time: the attempt at once, as its own Job
    body["spec"]["suspend"] = False
    plan = with_termination(body, due + timedelta(hours=2), job, admitted=True)
    assert [j["metadata"]["name"] for j in plan.create] == ["job-1-a2"]
    assert plan.status["phase"] == "Running"
    assert cond_state(plan.status, "Suspended") == ("False", "Resumed")
    # its lateness counts from the resume, not from the due time two hours ago
    (lateness,) = [m for m in plan.metrics if m.name == "attempt_lateness"]
    assert lateness.value == 0.0


def test_resumed_before_the_due_time_waits_for_it_running() -> None:
    body = first_attempt()
    fail_time = T0 + timedelta(seconds=30)
    job = failed("job-1", fail_time)
    body = applied(body, with_termination(body, fail_time, job))
    due = fail_time + BACKOFF.delay(1, UID)
    body["spec"]["suspend"] = True
    body = applied(body, with_termination(body, fail_time, job))
    body["spec"]["suspend"] = False
    plan = with_termination(body, due - timedelta(milliseconds=1), job)
    assert plan.create == []
    assert plan.status["phase"] == "Running"
    assert cond_state(plan.status, "Running") == ("True", "Retrying")
    assert cond_state(plan.status, "Suspended") == ("False", "Resumed")
    assert plan.requeue_at == due
    plan = with_termination(applied(body, plan), due + timedelta(seconds=0.25), job, admitted=True)
    assert [j["metadata"]["name"] for j in plan.create] == ["job-1-a2"]
    (lateness,) = [m for m in plan.metrics if m.name == "attempt_lateness"]
    assert lateness.value == pytest.approx(0.25)  # from the due time: resumed before it
    assert lateness.labels == {"queue": "default"}


def test_suspend_until_resumes_the_held_retry_at_that_instant() -> None:
    body = first_attempt()
    fail_time = T0 + timedelta(seconds=30)
    job = failed("job-1", fail_time)
    body = applied(body, with_termination(body, fail_time, job))
    until = fail_time + timedelta(minutes=5)
    body["spec"]["suspend"] = True
    body["spec"]["suspendUntil"] = format_time(until)
    plan = with_termination(body, fail_time + timedelta(minutes=1), job, admitted=True)
    assert plan.create == [] and plan.status["phase"] == "Suspended"
    assert plan.requeue_at is not None and plan.requeue_at <= until
    body = applied(body, plan)
    early = with_termination(body, until - timedelta(milliseconds=1), job, admitted=True)
    assert early.create == []
    plan = with_termination(body, until, job, admitted=True)
    assert [j["metadata"]["name"] for j in plan.create] == ["job-1-a2"]
