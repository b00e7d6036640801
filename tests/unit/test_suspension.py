"""Pause until: ``spec.suspend`` with ``spec.suspendUntil`` resumes at that instant, never
earlier, for every job type; decided from the spec alone (restart-safe)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from tests.unit.test_decisions import (
    T0,
    applied,
    bgj,
    cond_state,
    cronjob_of,
    decide_at,
    recurring,
)

from backgroundjobs.api.models import BackgroundJobSpec
from backgroundjobs.api.times import format_time
from backgroundjobs.client._suspend import RESUME_PATCH, resume_time, suspend_patch
from backgroundjobs.controller.decisions.suspension import resume_at, suspended

pytestmark = pytest.mark.unit

UNTIL = T0 + timedelta(hours=2)


def test_an_immediate_job_waits_until_then_starts_once() -> None:
    body = bgj(suspend=True, suspendUntil=format_time(UNTIL))
    plan = decide_at(body, T0)
    assert plan.create == []
    assert plan.status["phase"] == "Suspended"
    assert plan.status["message"] == f"suspended until {format_time(UNTIL)} (spec.suspendUntil)"
    assert plan.requeue_at == UNTIL  # the timer that resumes it
    body = applied(body, plan)

    # a timer that fires a moment early: still suspended, looks again at the instant
    early = decide_at(body, UNTIL - timedelta(milliseconds=1))
    assert early.create == [] and early.requeue_at == UNTIL

    resumed = decide_at(body, UNTIL)
    assert len(resumed.create) == 1
    assert cond_state(resumed.status, "Suspended") == ("False", "Resumed")
    body = applied(body, resumed)
    # decided again (a restart, a resync): the run it created is the one run (run 1)
    assert resumed.create[0]["metadata"]["name"] == "job-1"
    assert body["status"]["runs"] == 1


def test_a_delayed_job_due_during_the_pause_starts_at_the_resume_time() -> None:
    body = bgj(delay="1m", suspend=True, suspendUntil=format_time(UNTIL))
    assert decide_at(body, T0 + timedelta(hours=1)).create == []
    assert len(decide_at(body, UNTIL + timedelta(seconds=1)).create) == 1


def test_a_recurring_job_s_cronjob_is_unsuspended_at_the_resume_time() -> None:
    body = recurring(suspend=True, suspendUntil=format_time(UNTIL))
    plan = decide_at(body, T0)
    cronjob = cronjob_of(plan)
    assert cronjob["spec"]["suspend"] is True
    assert plan.status["phase"] == "Suspended" and plan.requeue_at == UNTIL
    body = applied(body, plan)
    resumed = decide_at(body, UNTIL, cronjob=cronjob)
    assert resumed.replace_cronjob is not None
    assert resumed.replace_cronjob["spec"]["suspend"] is False
    assert resumed.status["phase"] == "Scheduled"
    suspended_cond = next(c for c in resumed.status["conditions"] if c["type"] == "Suspended")
    assert suspended_cond["message"] == f"resumed at {format_time(UNTIL)} (spec.suspendUntil)"


def test_without_suspend_until_it_stays_suspended() -> None:
    plan = decide_at(bgj(suspend=True), T0 + timedelta(days=3650))
    assert plan.create == [] and plan.requeue_at is None


@given(
    until_offset=st.integers(min_value=-(10**9), max_value=10**9),
    now_offset=st.integers(min_value=-(10**9), max_value=10**9),
)
def test_never_resumed_before_the_instant(until_offset: int, now_offset: int) -> None:
    until = T0 + timedelta(microseconds=until_offset)
    now = T0 + timedelta(microseconds=now_offset)
    spec = BackgroundJobSpec(handler="h", suspend=True, suspend_until=until)
    assert resume_at(spec) == until
    assert suspended(spec, now) == (now < until)


# ------------------------------------------------------------------ the client's patches


def test_until_is_an_instant_or_a_duration_from_now() -> None:
    assert suspend_patch("2030-01-01T14:00:00Z", T0) == {
        "spec": {"suspend": True, "suspendUntil": "2030-01-01T14:00:00Z"}
    }
    assert resume_time("90m", T0) == T0 + timedelta(minutes=90)
    assert resume_time(timedelta(hours=1), T0) == T0 + timedelta(hours=1)
    assert resume_time(UNTIL.replace(tzinfo=None), T0) == UNTIL  # naive: UTC
    assert suspend_patch(None, T0) == {"spec": {"suspend": True, "suspendUntil": None}}
    assert RESUME_PATCH == {"spec": {"suspend": False, "suspendUntil": None}}


@pytest.mark.parametrize("bad", ["yesterday", "2029-12-31T00:00:00Z", "0s", "-5m"])
def test_until_not_in_the_future_is_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="until"):
        resume_time(bad, T0)
