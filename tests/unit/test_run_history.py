"""status.runHistory (issue 17 item 5): the generation each run ran with and who asked."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest
from tests.unit.test_decisions import (
    REQUEUE,
    SETTINGS,
    T0,
    Body,
    applied,
    bgj,
    cronjob_of,
    decide_at,
    env_of,
    recurring,
    scheduled_job,
    view,
)

from backgroundjobs.api.models import MAX_RUNS_KEPT
from backgroundjobs.api.requester import requester_of, requeue_value
from backgroundjobs.controller.decisions import ObservedJob

pytestmark = pytest.mark.unit


def test_requeue_value_carries_the_requester() -> None:
    value = requeue_value("2030-01-01T12:00:00.000001Z", "alice@example.com")
    assert value == "2030-01-01T12:00:00.000001Z by alice@example.com"
    assert requester_of(value) == "alice@example.com"
    assert requeue_value("t", None) == "t"
    assert requester_of("now") is None  # kubectl annotate ... requeue=now
    assert requester_of("t by ") is None
    assert requester_of("t by system:serviceaccount:shop:ci") == "system:serviceaccount:shop:ci"


def _failed_once(**spec: Any) -> tuple[Body, ObservedJob]:
    body = bgj(**spec)
    body = applied(body, decide_at(body, T0))
    job = view("job-1", failure_reason="BackoffLimitExceeded", failure_time=T0)
    body = applied(body, decide_at(body, T0, [job], termination={"job-1": ""}))
    assert body["status"]["phase"] == "Failed"
    return body, job


def test_first_run_records_its_generation_and_nobody_asked() -> None:
    plan = decide_at(bgj(generation=3), T0)
    assert plan.status["runHistory"] == [
        {
            "run": 1,
            "job": "job-1",
            "generation": 3,
            "reason": "Created",
            "startedAt": "2030-01-01T12:00:00Z",
        }
    ]


def test_requeue_with_changes_runs_the_new_generation_and_names_the_requester() -> None:
    body, job = _failed_once(kwargs={"to": "old@example.com"})
    # the client's one write: the new kwargs, the generation it bumps, the annotation
    body["spec"]["kwargs"] = {"to": "new@example.com"}
    body["metadata"]["generation"] = 2
    body["metadata"]["annotations"] = {REQUEUE: requeue_value("t1", "alice")}
    plan = decide_at(body, T0 + timedelta(minutes=1), [job])
    assert [j["metadata"]["name"] for j in plan.create] == ["job-2"]
    assert '"new@example.com"' in env_of(plan.create[0])["BACKGROUNDJOBS_KWARGS"]
    first, second = plan.status["runHistory"]
    assert (first["run"], first["generation"], first["reason"]) == (1, 1, "Created")
    assert second == {
        "run": 2,
        "job": "job-2",
        "generation": 2,
        "reason": "Requeued",
        "startedAt": "2030-01-01T12:01:00Z",
        "requestedBy": "alice",
        "requesterSource": "Client",
    }


def test_requester_source_says_admission_policy_when_the_chart_checks_it() -> None:
    body, job = _failed_once()
    body["metadata"]["annotations"] = {REQUEUE: requeue_value("t1", "bob")}
    settings = replace(SETTINGS, requester_checked=True)
    plan = decide_at(body, T0, [job], settings=settings)
    assert plan.status["runHistory"][-1]["requesterSource"] == "AdmissionPolicy"


def test_a_requeue_without_a_requester_records_none() -> None:
    body, job = _failed_once()
    body["metadata"]["annotations"] = {REQUEUE: "now"}
    record = decide_at(body, T0, [job]).status["runHistory"][-1]
    assert record["reason"] == "Requeued"
    assert "requestedBy" not in record and "requesterSource" not in record


def test_run_history_keeps_the_last_ten() -> None:
    body, job = _failed_once()
    for run in range(2, 16):
        body["metadata"]["annotations"] = {REQUEUE: f"r{run}"}
        plan = decide_at(body, T0, [job])
        assert [j["metadata"]["name"] for j in plan.create] == [f"job-{run}"]
        body = applied(body, plan)
        job = view(f"job-{run}", failure_reason="BackoffLimitExceeded", failure_time=T0)
        body = applied(body, decide_at(body, T0, [job], termination={f"job-{run}": ""}))
    history = body["status"]["runHistory"]
    assert len(history) == MAX_RUNS_KEPT
    assert [r["run"] for r in history] == list(range(6, 16))


def test_a_decision_made_twice_records_the_run_once() -> None:
    """The operator killed after the Job's create, before its status write: the next
    reconcile decides the same run again (the create answers AlreadyExists)."""
    body, job = _failed_once()
    body["metadata"]["annotations"] = {REQUEUE: "r"}
    plan = decide_at(body, T0, [job])
    again = decide_at(body, T0, [job])  # the status write was lost
    assert again.create[0]["metadata"]["name"] == plan.create[0]["metadata"]["name"]
    assert [r["job"] for r in again.status["runHistory"]] == ["job-1", "job-2"]


def test_recurring_requeue_and_trigger_are_recorded() -> None:
    body = recurring()
    first = decide_at(body, T0)
    body = applied(body, first, annotations={REQUEUE: requeue_value("t", "carol")})
    plan = decide_at(body, T0, cronjob=cronjob_of(first))
    (record,) = plan.status["runHistory"]
    assert record["reason"] == "Requeued"
    assert record["requestedBy"] == "carol"
    assert "run" not in record
    assert record["job"] == plan.create[0]["metadata"]["name"]
    # the same annotation once more: no second run
    again = decide_at(applied(body, plan), T0, cronjob=cronjob_of(first))
    assert again.create == []


def test_a_hostile_requeue_value_is_recorded_cut_and_decides_normally() -> None:
    body, job = _failed_once()
    value = "t by " + "x" * 200_000 + " by \u202e\x00"
    body["metadata"]["annotations"] = {REQUEUE: value}
    plan = decide_at(body, T0, [job])  # checked: the status is a valid BackgroundJobStatus
    assert [j["metadata"]["name"] for j in plan.create] == ["job-2"]
    assert plan.status["runHistory"][-1]["requestedBy"] == "x" * 512


def test_the_cronjob_stamps_its_jobs_with_the_spec_generation() -> None:
    cj = cronjob_of(decide_at(bgj(name="cleanup", generation=4, schedule="0 2 * * *"), T0))
    template = cj["spec"]["jobTemplate"]["metadata"]
    assert template["annotations"] == {"backgroundjobs.dev/generation": "4"}


def test_scheduled_runs_are_recorded_once_each_with_their_generation() -> None:
    body = recurring()
    first = decide_at(body, T0)
    body = applied(body, first)
    cronjob = cronjob_of(first)
    # the operator was down across two scheduled times: both runs are seen at once
    two = [
        scheduled_job(1, T0 + timedelta(minutes=1), generation=1, complete=True),
        scheduled_job(2, T0 + timedelta(minutes=2), generation=1),
    ]
    plan = decide_at(body, T0 + timedelta(minutes=2), two, cronjob=cronjob)
    assert plan.status["runHistory"] == [
        {
            "run": 1,
            "job": "cleanup-1",
            "generation": 1,
            "reason": "Scheduled",
            "startedAt": "2030-01-01T12:01:00Z",
        },
        {
            "run": 2,
            "job": "cleanup-2",
            "generation": 1,
            "reason": "Scheduled",
            "startedAt": "2030-01-01T12:02:00Z",
        },
    ]
    body = applied(body, plan)
    again = decide_at(body, T0 + timedelta(minutes=3), two, cronjob=cronjob)
    assert [r["job"] for r in again.status["runHistory"]] == ["cleanup-1", "cleanup-2"]


def test_a_triggered_run_seen_later_keeps_its_one_record() -> None:
    body = recurring()
    first = decide_at(body, T0)
    body = applied(body, first, annotations={"backgroundjobs.dev/trigger": "t1"})
    plan = decide_at(body, T0, cronjob=cronjob_of(first))
    (job,) = plan.create
    body = applied(body, plan)
    seen = view(job["metadata"]["name"], created=T0)
    later = decide_at(body, T0 + timedelta(seconds=5), [seen], cronjob=cronjob_of(first))
    (record,) = later.status["runHistory"]
    assert record["reason"] == "Triggered"
    assert "run" not in record


def test_a_catch_up_run_is_recorded_as_one_and_a_bad_stamp_as_no_generation() -> None:
    body = recurring()
    first = decide_at(body, T0)
    body = applied(body, first)
    job = ObservedJob.from_body(
        {
            "metadata": {
                "name": "cleanup-29000000",
                "uid": "u1",
                "creationTimestamp": "2030-01-01T12:01:00Z",
                "labels": {"backgroundjobs.dev/run": "catch-up"},
                "annotations": {"backgroundjobs.dev/generation": "\u202e" * 3},
                "ownerReferences": [{"uid": "x", "controller": True}],
            }
        }
    )
    assert job.catch_up and job.generation is None
    plan = decide_at(body, T0 + timedelta(minutes=1), [job], cronjob=cronjob_of(first))
    (record,) = plan.status["runHistory"]
    assert (record["reason"], record["run"], record["job"]) == (
        "MisfireCatchUp",
        1,
        "cleanup-29000000",
    )
    assert "generation" not in record
