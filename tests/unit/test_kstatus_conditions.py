"""Reconciling and Stalled, the conditions kstatus reads (Flux, kpt, Config Sync): derived from
the phase the way docs/gitops.md's Argo CD health is, with hand-built observations."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import pytest
from tests.unit.test_decisions import (
    SETTINGS,
    T0,
    applied,
    bgj,
    child,
    complete,
    cond_state,
    condition,
    decide_at,
    parent,
    started,
    view,
)

pytestmark = pytest.mark.unit


def failed_immediate() -> dict:
    body, _ = started(bgj())
    job = view("job-1", failed=1, failure_reason="BackoffLimitExceeded", failure_time=T0)
    plan = decide_at(body, T0 + timedelta(minutes=1), [job], termination={"job-1": ""})
    assert plan.status["phase"] == "Failed"
    return plan.status


def test_a_running_job_is_reconciling_and_not_stalled() -> None:
    body, _ = started(bgj())
    st = body["status"]
    assert cond_state(st, "Reconciling") == ("True", st["phase"])
    assert cond_state(st, "Stalled") == ("False", st["phase"])


def test_a_failed_job_is_stalled_with_the_failure_reason_and_message() -> None:
    st = failed_immediate()
    assert cond_state(st, "Stalled") == ("True", "BackoffLimitExceeded")
    assert cond_state(st, "Reconciling") == ("False", "Failed")
    stalled, failed = condition(st, "Stalled"), condition(st, "Failed")
    assert stalled is not None and failed is not None
    assert stalled["message"] == failed["message"]


def test_a_succeeded_or_delayed_job_is_neither() -> None:
    body, _ = started(bgj())
    done = decide_at(
        body, T0 + timedelta(minutes=1), [complete(at=T0)], termination={"job-1": ""}
    ).status
    assert done["phase"] == "Succeeded"
    later = decide_at(bgj(delay="1h")).status
    assert later["phase"] == "Scheduled"
    for st in (done, later):
        assert cond_state(st, "Reconciling")[0] == "False"  # type: ignore[index]
        assert cond_state(st, "Stalled")[0] == "False"  # type: ignore[index]


def test_a_continuation_of_a_failed_parent_is_stalled_and_of_a_running_one_reconciling() -> None:
    st = decide_at(child(), parent=parent("Failed")).status
    assert st["phase"] == "Waiting"
    assert cond_state(st, "Stalled") == ("True", "ParentFailed")
    st = decide_at(child(), parent=parent("Running")).status
    assert st["phase"] == "Waiting"
    assert cond_state(st, "Reconciling") == ("True", "Waiting")
    assert cond_state(st, "Stalled") == ("False", "Waiting")


def test_the_transition_time_moves_only_when_the_status_does() -> None:
    body, job = started(bgj())
    again = decide_at(applied(body, decide_at(body, T0, [job])), T0 + timedelta(minutes=3), [job])
    before, after = condition(body["status"], "Reconciling"), condition(again.status, "Reconciling")
    assert before is not None and after is not None
    assert after["lastTransitionTime"] == before["lastTransitionTime"]


def test_an_older_crd_gets_neither() -> None:
    """An installed CRD that predates the two types would refuse every status write."""
    settings = dataclasses.replace(SETTINGS, kstatus_conditions=False)
    st = failed_immediate()
    plan = decide_at(bgj(status={"phase": "Pending"}), settings=settings)
    types = {c["type"] for c in plan.status.get("conditions") or []}
    assert not types & {"Reconciling", "Stalled"}
    assert {c["type"] for c in st["conditions"]} >= {"Reconciling", "Stalled"}
