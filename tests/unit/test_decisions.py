"""The state machine: ``decide(Observed, Settings) -> Plan`` with hand-built observations."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from backgroundjobs.api.models import BackgroundJobStatus
from backgroundjobs.api.times import format_time
from backgroundjobs.controller import builders
from backgroundjobs.controller.decisions import (
    Admission,
    Observed,
    ObservedJob,
    Plan,
    decide,
    invalid_spec_plan,
)
from backgroundjobs.controller.schedule import next_run
from backgroundjobs.controller.settings import Settings

pytestmark = pytest.mark.unit

Body = dict[str, Any]

T0 = datetime(2030, 1, 1, 12, 0, 0, tzinfo=UTC)
UID = "11111111-0000-4000-8000-000000000001"
PARENT_UID = "22222222-0000-4000-8000-000000000002"
SETTINGS = Settings(default_image="example.com/handlers:1", retention=timedelta(hours=168))

REQUEUE = "backgroundjobs.dev/requeue"
TRIGGER = "backgroundjobs.dev/trigger"
CANCEL = "backgroundjobs.dev/cancel"


# ------------------------------------------------------------------ helpers


def bgj(
    name: str = "job",
    status: Body | None = None,
    annotations: dict[str, str] | None = None,
    generation: int = 1,
    created: datetime = T0,
    uid: str = UID,
    **spec: Any,
) -> Body:
    meta: Body = {
        "name": name,
        "namespace": "shop",
        "uid": uid,
        "generation": generation,
        "creationTimestamp": format_time(created),
    }
    if annotations:
        meta["annotations"] = dict(annotations)
    body: Body = {
        "apiVersion": "backgroundjobs.dev/v1alpha1",
        "kind": "BackgroundJob",
        "metadata": meta,
        "spec": {"handler": "mail.send", **spec},
    }
    if status is not None:
        body["status"] = status
    return body


def view(name: str, created: datetime = T0, owner: str = UID, **kw: Any) -> ObservedJob:
    return ObservedJob(name=name, uid=f"uid-{name}", owner_uid=owner, created=created, **kw)


def decide_at(
    body: Body,
    now: datetime = T0,
    jobs: list[ObservedJob] | None = None,
    settings: Settings = SETTINGS,
    **kw: Any,
) -> Plan:
    obs = Observed(bgj=copy.deepcopy(body), now=now, jobs={j.name: j for j in jobs or []}, **kw)
    return checked(decide(obs, settings))


def checked(plan: Plan) -> Plan:
    """The plan, once its status is shown to be exactly a BackgroundJobStatus: a key the
    model does not know (which the API server would prune without a word) fails here."""
    model = BackgroundJobStatus.model_validate(plan.status)
    dumped = model.model_dump(mode="json", by_alias=True, exclude_unset=True, exclude_none=True)
    if "result" in plan.status:
        dumped["result"] = plan.status["result"]
    assert dumped == plan.status
    assert json.loads(json.dumps(plan.status)) == plan.status  # plain JSON, as it is sent
    return plan


def applied(body: Body, plan: Plan, **meta: Any) -> Body:
    """The object after the reconciler wrote the plan's status (and maybe changed metadata)."""
    out = copy.deepcopy(body)
    out["status"] = copy.deepcopy(plan.status)
    for key, value in meta.items():
        if key == "annotations":
            out["metadata"].setdefault("annotations", {}).update(value)
        else:
            out["metadata"][key] = value
    return out


def reasons(plan: Plan) -> list[str]:
    return [reason for _, reason, _ in plan.events]


def condition(status: Body, ctype: str) -> Body | None:
    return next((c for c in status.get("conditions") or [] if c["type"] == ctype), None)


def cond_state(status: Body, ctype: str) -> tuple[str, str] | None:
    cnd = condition(status, ctype)
    return None if cnd is None else (cnd["status"], cnd["reason"])


def metric_names(plan: Plan) -> list[str]:
    return [m.name for m in plan.metrics]


def env_of(job: Body) -> dict[str, str]:
    container = job["spec"]["template"]["spec"]["containers"][0]
    assert container["name"] == "handler"
    return {e["name"]: e["value"] for e in container["env"] if "value" in e}


def assert_quiet(plan: Plan) -> None:
    """Nothing to do: no children created/replaced/deleted, no Events."""
    assert plan.create == []
    assert plan.replace_cronjob is None
    assert plan.delete_jobs == []
    assert plan.events == []
    assert not plan.delete_self


def started(body: Body, now: datetime = T0) -> tuple[Body, ObservedJob]:
    """An Immediate job whose first run was created at ``now`` and is running."""
    plan = decide_at(body, now)
    assert len(plan.create) == 1
    return applied(body, plan), view(plan.create[0]["metadata"]["name"], created=now, active_pods=1)


# ------------------------------------------------------------------ Immediate


def test_immediate_first_reconcile_creates_run_1() -> None:
    plan = decide_at(bgj(), T0 + timedelta(seconds=2))
    assert [o["kind"] for o in plan.create] == ["Job"]
    job = plan.create[0]
    assert job["metadata"]["name"] == "job-1"
    assert job["metadata"]["ownerReferences"][0]["uid"] == UID
    st = plan.status
    assert st["type"] == "Immediate"
    assert st["phase"] == "Running"
    assert st["runs"] == 1
    assert st["jobName"] == "job-1"
    assert st["startedAt"] == format_time(T0 + timedelta(seconds=2))
    assert st["observedGeneration"] == 1
    assert st["failedAttempts"] == 0
    assert cond_state(st, "Running") == ("True", "Created")
    assert plan.events == [("Normal", "Started", "Job job-1 created (run 1)")]
    assert "started" in metric_names(plan)
    lateness = [m for m in plan.metrics if m.name == "lateness"]
    assert lateness and lateness[0].value == pytest.approx(2.0)
    assert plan.admission == Admission("default")  # a first run asks its queue for a slot


def test_immediate_running_is_idempotent() -> None:
    body, job = started(bgj())
    later = T0 + timedelta(minutes=1)
    plan = decide_at(body, later, [job])
    assert_quiet(plan)
    assert plan.status == body["status"]
    # and once more, at yet another time
    assert_quiet(decide_at(applied(body, plan), later + timedelta(minutes=1), [job]))


def test_observed_generation_follows_metadata() -> None:
    body, job = started(bgj())
    body["metadata"]["generation"] = 4
    assert decide_at(body, T0, [job]).status["observedGeneration"] == 4


def test_job_start_time_fills_started_at_when_missing() -> None:
    body, _ = started(bgj())
    del body["status"]["startedAt"]
    job_started = T0 + timedelta(seconds=3)
    plan = decide_at(
        body, T0 + timedelta(seconds=5), [view("job-1", active_pods=1, start_time=job_started)]
    )
    assert plan.status["startedAt"] == format_time(job_started)


# ------------------------------------------------------------------ success and failure


def complete(name: str = "job-1", at: datetime = T0 + timedelta(seconds=30)) -> ObservedJob:
    return view(name, start_time=T0, completion_time=at, succeeded=1, complete=True)


def test_complete_job_asks_for_the_termination_message_first() -> None:
    body, _ = started(bgj())
    plan = decide_at(body, T0 + timedelta(minutes=1), [complete()])
    assert plan.need_termination == "job-1"
    assert plan.status["phase"] == "Running"
    assert "finishedAt" not in plan.status
    assert plan.events == []
    assert plan.create == []


def test_complete_job_with_termination_succeeds() -> None:
    body, _ = started(bgj())
    done = T0 + timedelta(seconds=30)
    plan = decide_at(
        body,
        T0 + timedelta(minutes=1),
        [complete(at=done)],
        termination={"job-1": '{"sent": 3, "ids": ["a"]}'},
    )
    assert plan.need_termination is None
    st = plan.status
    assert st["phase"] == "Succeeded"
    assert st["result"] == {"sent": 3, "ids": ["a"]}
    assert st["finishedAt"] == format_time(done)
    assert cond_state(st, "Succeeded") == ("True", "Completed")
    assert cond_state(st, "Running") == ("False", "Completed")
    assert reasons(plan) == ["Succeeded"]
    assert plan.events[0][0] == "Normal"
    finished = [m for m in plan.metrics if m.name == "finished"]
    assert finished and finished[0].labels == {
        "type": "Immediate",
        "queue": "default",
        "handler": "mail.send",
        "outcome": "succeeded",
    }
    duration = [m for m in plan.metrics if m.name == "duration"]
    assert duration and duration[0].value == pytest.approx(30.0)
    # retention: looked at again when it expires
    assert plan.requeue_at == done + SETTINGS.retention
    assert not plan.delete_self
    # idempotent: the same observation again changes nothing
    again = decide_at(applied(body, plan), T0 + timedelta(minutes=2), [complete(at=done)])
    assert_quiet(again)
    assert again.status == plan.status


@pytest.mark.parametrize(
    ("message", "result"),
    [("not json", "not json"), ("", None), ("42", 42), ("null", None), ('"x"', "x")],
)
def test_result_parsing(message: str, result: Any) -> None:
    body, _ = started(bgj())
    plan = decide_at(body, T0 + timedelta(minutes=1), [complete()], termination={"job-1": message})
    assert plan.status["phase"] == "Succeeded"
    assert plan.status.get("result") == result


@pytest.mark.parametrize(
    ("job_reason", "reason"),
    [
        ("BackoffLimitExceeded", "BackoffLimitExceeded"),
        ("PodFailurePolicy", "NonRetryableExitCode"),
        ("DeadlineExceeded", "DeadlineExceeded"),
    ],
)
def test_failed_job_reason_mapping(job_reason: str, reason: str) -> None:
    body, _ = started(bgj())
    failed_at = T0 + timedelta(seconds=40)
    job = view(
        "job-1",
        failed=1,
        failure_reason=job_reason,
        failure_message="Job failed",
        failure_time=failed_at,
    )
    first = decide_at(body, T0 + timedelta(minutes=1), [job])
    assert first.need_termination == "job-1"
    assert first.events == []
    plan = decide_at(
        body,
        T0 + timedelta(minutes=1),
        [job],
        termination={"job-1": '{"error": "boom", "type": "ValueError"}'},
    )
    st = plan.status
    assert st["phase"] == "Failed"
    assert st["finishedAt"] == format_time(failed_at)
    assert cond_state(st, "Failed") == ("True", reason)
    assert cond_state(st, "Running") == ("False", reason)
    assert "ValueError: boom" in condition(st, "Failed")["message"]  # type: ignore[index]
    assert reason in st["message"]
    assert [(t, r) for t, r, _ in plan.events] == [("Warning", "Failed")]
    finished = [m for m in plan.metrics if m.name == "finished"]
    assert finished[0].labels["outcome"] == "failed"
    assert plan.requeue_at == failed_at + SETTINGS.retention
    assert_quiet(decide_at(applied(body, plan), T0 + timedelta(minutes=2), [job]))


def test_failed_pod_count_increase_is_a_retry() -> None:
    body, _ = started(bgj(retries=2))
    retrying = view("job-1", active_pods=1, failed=1)
    plan = decide_at(body, T0 + timedelta(seconds=10), [retrying])
    assert [(t, r) for t, r, _ in plan.events] == [("Warning", "Retrying")]
    assert "attempt 1 of 3" in plan.events[0][2]
    assert plan.status["failedAttempts"] == 1
    assert plan.status["phase"] == "Running"
    assert cond_state(plan.status, "Running") == ("True", "PodFailed")
    retries = [m for m in plan.metrics if m.name == "retries"]
    assert retries and retries[0].value == 1
    # the same count again: no new Event
    body2 = applied(body, plan)
    assert_quiet(decide_at(body2, T0 + timedelta(seconds=20), [retrying]))
    # a second failure: one more
    plan3 = decide_at(body2, T0 + timedelta(seconds=30), [view("job-1", active_pods=1, failed=2)])
    assert reasons(plan3) == ["Retrying"]
    assert plan3.status["failedAttempts"] == 2


def test_running_condition_keeps_its_transition_time_across_retries() -> None:
    body, _ = started(bgj())
    t_started = condition(body["status"], "Running")["lastTransitionTime"]  # type: ignore[index]
    plan = decide_at(body, T0 + timedelta(minutes=5), [view("job-1", active_pods=1, failed=1)])
    assert condition(plan.status, "Running")["lastTransitionTime"] == t_started  # type: ignore[index]


def test_job_gone_before_it_finished_fails() -> None:
    body, _ = started(bgj())
    plan = decide_at(body, T0 + timedelta(minutes=1), [])
    assert plan.status["phase"] == "Failed"
    assert cond_state(plan.status, "Failed") == ("True", "JobDeleted")
    assert reasons(plan) == ["Failed"]


def test_jobview_from_body() -> None:
    job = {
        "metadata": {
            "name": "job-1",
            "uid": "u1",
            "creationTimestamp": "2030-01-01T12:00:00Z",
            "ownerReferences": [
                {"uid": "other", "controller": False},
                {"uid": UID, "controller": True},
            ],
        },
        "status": {
            "startTime": "2030-01-01T12:00:01Z",
            "failed": 2,
            "conditions": [
                {"type": "FailureTarget", "status": "True", "reason": "PodFailurePolicy"},
                {
                    "type": "Failed",
                    "status": "True",
                    "reason": "PodFailurePolicy",
                    "message": "Container handler exited with 2",
                    "lastTransitionTime": "2030-01-01T12:00:09Z",
                },
            ],
        },
    }
    v = ObservedJob.from_body(job)
    assert v.owner_uid == UID
    assert v.created == T0
    assert v.failed == 2
    assert v.failure_reason == "PodFailurePolicy"
    assert v.failure_time == T0 + timedelta(seconds=9)
    assert v.finished and not v.complete
    assert v.finish_time == T0 + timedelta(seconds=9)
    ok = ObservedJob.from_body(
        {
            "metadata": {"name": "j"},
            "status": {
                "completionTime": "2030-01-01T12:01:00Z",
                "conditions": [{"type": "Complete", "status": "True"}],
            },
        }
    )
    assert ok.complete and ok.finish_time == T0 + timedelta(minutes=1)
    assert not ObservedJob.from_body({"metadata": {"name": "j"}}).finished


# ------------------------------------------------------------------ Delayed


def test_delayed_before_due_is_scheduled() -> None:
    body = bgj(delay="1h")
    due = T0 + timedelta(hours=1)
    plan = decide_at(body, T0 + timedelta(seconds=1))
    assert plan.create == []
    st = plan.status
    assert st["type"] == "Delayed"
    assert st["phase"] == "Scheduled"
    assert st["dueAt"] == format_time(due)
    assert cond_state(st, "Scheduled") == ("True", "DueInFuture")
    assert plan.requeue_at == due
    assert reasons(plan) == ["Scheduled"]
    assert "runs" not in st or not st["runs"]
    # again, later but still before due: no new Event, same transition time
    again = decide_at(applied(body, plan), T0 + timedelta(minutes=30))
    assert_quiet(again)
    assert again.requeue_at == due
    assert condition(again.status, "Scheduled") == condition(st, "Scheduled")


@pytest.mark.parametrize(
    "before", [timedelta(microseconds=1), timedelta(seconds=1), timedelta(minutes=59)]
)
def test_delayed_never_starts_before_due(before: timedelta) -> None:
    due = T0 + timedelta(hours=1)
    plan = decide_at(bgj(delay="1h"), due - before)
    assert plan.create == []
    assert plan.status["phase"] == "Scheduled"
    assert plan.requeue_at == due


@pytest.mark.parametrize("after", [timedelta(0), timedelta(microseconds=1), timedelta(hours=3)])
def test_delayed_at_or_after_due_creates(after: timedelta) -> None:
    body = bgj(delay="1h")
    scheduled = decide_at(body, T0)
    due = T0 + timedelta(hours=1)
    plan = decide_at(applied(body, scheduled), due + after)
    assert [o["metadata"]["name"] for o in plan.create] == ["job-1"]
    st = plan.status
    assert st["phase"] == "Running"
    assert st["dueAt"] == format_time(due)
    assert cond_state(st, "Scheduled") == ("False", "Started")
    assert reasons(plan) == ["Started"]
    lateness = [m for m in plan.metrics if m.name == "lateness"]
    assert lateness[0].value == pytest.approx(after.total_seconds())


def test_run_at() -> None:
    run_at = T0 + timedelta(days=2)
    body = bgj(runAt=format_time(run_at))
    plan = decide_at(body, T0)
    assert plan.status["dueAt"] == format_time(run_at)
    assert plan.requeue_at == run_at
    assert plan.create == []
    assert len(decide_at(applied(body, plan), run_at).create) == 1


def test_run_at_in_the_past_starts_at_once() -> None:
    plan = decide_at(bgj(runAt="2000-01-01T00:00:00Z"), T0)
    assert len(plan.create) == 1


def test_delayed_rescheduled() -> None:
    body = bgj(delay="1h")
    body = applied(body, decide_at(body, T0))
    body["spec"]["delay"] = "2h"
    body["metadata"]["generation"] = 2
    plan = decide_at(body, T0 + timedelta(minutes=5))
    new_due = T0 + timedelta(hours=2)
    assert reasons(plan) == ["Rescheduled"]
    assert format_time(T0 + timedelta(hours=1)) in plan.events[0][2]
    assert plan.status["dueAt"] == format_time(new_due)
    assert plan.requeue_at == new_due
    assert plan.create == []
    assert plan.status["observedGeneration"] == 2
    # runAt instead of delay is allowed too (both Delayed)
    body2 = applied(body, plan)
    body2["spec"] = {"handler": "mail.send", "runAt": format_time(T0 + timedelta(hours=5))}
    plan2 = decide_at(body2, T0 + timedelta(minutes=6))
    assert reasons(plan2) == ["Rescheduled"]
    assert plan2.requeue_at == T0 + timedelta(hours=5)


def test_delayed_rescheduled_into_the_past_starts() -> None:
    body = bgj(delay="1h")
    body = applied(body, decide_at(body, T0))
    body["spec"]["delay"] = "1m"
    plan = decide_at(body, T0 + timedelta(minutes=5))
    assert len(plan.create) == 1


def test_trigger_starts_a_delayed_job_now() -> None:
    body = bgj(delay="1h")
    body = applied(body, decide_at(body, T0), annotations={TRIGGER: "t1"})
    plan = decide_at(body, T0 + timedelta(minutes=1))
    assert [o["metadata"]["name"] for o in plan.create] == ["job-1"]
    assert "Triggered" in reasons(plan)
    assert "Started" in reasons(plan)
    assert plan.status["phase"] == "Running"
    assert plan.status["handledActions"]["trigger"] == "t1"
    assert cond_state(plan.status, "Running") == ("True", "Triggered")
    # the same value again: nothing more
    body2 = applied(body, plan)
    again = decide_at(body2, T0 + timedelta(minutes=2), [view("job-1", active_pods=1)])
    assert_quiet(again)


def test_trigger_on_a_started_job_is_ignored() -> None:
    body, job = started(bgj())
    body["metadata"]["annotations"] = {TRIGGER: "t1"}
    plan = decide_at(body, T0, [job])
    assert plan.create == []
    assert reasons(plan) == ["TriggerIgnored"]
    assert plan.status["handledActions"]["trigger"] == "t1"


def test_trigger_of_a_delayed_job_survives_a_full_queue() -> None:
    body = bgj(delay="1h")
    body = applied(body, decide_at(body, T0), annotations={TRIGGER: "t1"})
    queued = decide_at(body, T0 + timedelta(minutes=1), admitted=False)
    assert queued.status["phase"] == "Queued"
    body = applied(body, queued)
    plan = decide_at(body, T0 + timedelta(minutes=2), admitted=True)
    assert len(plan.create) == 1  # fails: phase Scheduled, no create until the due time


# ------------------------------------------------------------------ requeue


def succeeded(body: Body) -> Body:
    body, _ = started(body)
    plan = decide_at(
        body,
        T0 + timedelta(minutes=1),
        [complete()],
        termination={"job-1": '{"n": 1}'},
    )
    assert plan.status["phase"] == "Succeeded"
    return applied(body, plan)


def test_requeue_a_finished_job_creates_the_next_run() -> None:
    body = succeeded(bgj())
    body["metadata"]["annotations"] = {REQUEUE: "r1"}
    now = T0 + timedelta(hours=1)
    plan = decide_at(body, now, [complete()])
    assert [o["metadata"]["name"] for o in plan.create] == ["job-2"]
    assert env_of(plan.create[0])["BACKGROUNDJOBS_RUN"] == "2"
    st = plan.status
    assert st["runs"] == 2
    assert st["jobName"] == "job-2"
    assert st["phase"] == "Running"
    assert "result" not in st
    assert "finishedAt" not in st
    assert st["startedAt"] == format_time(now)
    assert st["handledActions"] == {"requeue": "r1"}
    assert cond_state(st, "Running") == ("True", "Requeued")
    assert cond_state(st, "Succeeded") == ("False", "Requeued")
    assert reasons(plan) == ["Requeued"]
    assert not plan.delete_self and plan.requeue_at is None
    # the same annotation value again: no action
    body2 = applied(body, plan)
    again = decide_at(body2, now + timedelta(minutes=1), [complete(), view("job-2", active_pods=1)])
    assert_quiet(again)
    assert again.status["runs"] == 2


def test_requeue_a_failed_job() -> None:
    body, _ = started(bgj())
    job = view("job-1", failure_reason="BackoffLimitExceeded", failure_time=T0)
    body = applied(body, decide_at(body, T0, [job], termination={"job-1": ""}))
    assert body["status"]["phase"] == "Failed"
    body["metadata"]["annotations"] = {REQUEUE: "again"}
    plan = decide_at(body, T0 + timedelta(minutes=1), [job])
    assert len(plan.create) == 1
    assert cond_state(plan.status, "Failed") == ("False", "Requeued")


def test_requeue_on_a_running_job_is_ignored() -> None:
    body, job = started(bgj())
    body["metadata"]["annotations"] = {REQUEUE: "r1"}
    plan = decide_at(body, T0, [job])
    assert plan.create == []
    assert [(t, r) for t, r, _ in plan.events] == [("Warning", "RequeueIgnored")]
    assert plan.status["handledActions"]["requeue"] == "r1"
    assert plan.status["runs"] == 1
    assert_quiet(decide_at(applied(body, plan), T0, [job]))


def test_a_new_requeue_value_requeues_again() -> None:
    body = succeeded(bgj())
    body["metadata"]["annotations"] = {REQUEUE: "r1"}
    body = applied(body, decide_at(body, T0, [complete()]))
    job2 = view("job-2", start_time=T0, completion_time=T0, complete=True)
    body = applied(body, decide_at(body, T0, [complete(), job2], termination={"job-2": ""}))
    assert body["status"]["phase"] == "Succeeded"
    body["metadata"]["annotations"][REQUEUE] = "r2"
    plan = decide_at(body, T0, [complete(), job2])
    assert [o["metadata"]["name"] for o in plan.create] == ["job-3"]


# ------------------------------------------------------------------ cancel


def test_cancel_a_running_job() -> None:
    body, job = started(bgj())
    body["metadata"]["annotations"] = {CANCEL: "c1"}
    now = T0 + timedelta(minutes=1)
    plan = decide_at(body, now, [job])
    assert plan.delete_jobs == ["job-1"]
    assert plan.create == []
    st = plan.status
    assert st["phase"] == "Cancelled"
    assert st["finishedAt"] == format_time(now)
    assert cond_state(st, "Failed") == ("True", "Cancelled")
    assert cond_state(st, "Running") == ("False", "Cancelled")
    assert st["handledActions"]["cancel"] == "c1"
    assert reasons(plan) == ["Cancelled"]
    assert plan.requeue_at == now + SETTINGS.retention
    # again: nothing more (the Job is gone now)
    assert_quiet(decide_at(applied(body, plan), now + timedelta(minutes=1), []))


def test_cancel_a_scheduled_job() -> None:
    body = bgj(delay="1h")
    body = applied(body, decide_at(body, T0), annotations={CANCEL: "c1"})
    plan = decide_at(body, T0 + timedelta(minutes=1))
    assert plan.delete_jobs == []
    assert plan.status["phase"] == "Cancelled"
    assert cond_state(plan.status, "Scheduled") == ("False", "Cancelled")
    # never started afterwards, even past the due time
    after_due = decide_at(applied(body, plan), T0 + timedelta(hours=2))
    assert_quiet(after_due)
    assert after_due.status["phase"] == "Cancelled"


def test_cancel_a_finished_job_is_ignored() -> None:
    body = succeeded(bgj())
    body["metadata"]["annotations"] = {CANCEL: "c1"}
    plan = decide_at(body, T0 + timedelta(minutes=2), [complete()])
    assert plan.status["phase"] == "Succeeded"
    assert reasons(plan) == ["CancelIgnored"]
    assert plan.delete_jobs == []


# ------------------------------------------------------------------ suspend, queues


def test_suspended_job_is_not_started() -> None:
    body = bgj(suspend=True)
    plan = decide_at(body, T0)
    assert plan.create == []
    assert plan.status["phase"] == "Suspended"
    assert cond_state(plan.status, "Suspended") == ("True", "Suspended")
    assert reasons(plan) == ["Suspended"]
    body = applied(body, plan)
    assert_quiet(decide_at(body, T0 + timedelta(hours=1)))
    body["spec"]["suspend"] = False
    resumed = decide_at(body, T0 + timedelta(hours=2))
    assert len(resumed.create) == 1
    assert cond_state(resumed.status, "Suspended") == ("False", "Resumed")


def test_suspended_delayed_job_is_not_started_after_due() -> None:
    plan = decide_at(bgj(delay="1m", suspend=True), T0 + timedelta(hours=1))
    assert plan.create == []
    assert plan.status["phase"] == "Suspended"


def test_full_queue_holds_the_job() -> None:
    body = bgj(queue="bulk")
    plan = decide_at(body, T0, admitted=False)
    assert plan.create == []
    assert plan.status["phase"] == "Queued"
    assert cond_state(plan.status, "Queued") == ("True", "QueueFull")
    assert plan.admission == Admission("bulk")  # and waits for one
    assert reasons(plan) == ["Queued"]
    body = applied(body, plan)
    again = decide_at(body, T0 + timedelta(seconds=5), admitted=False)
    assert_quiet(again)
    assert condition(again.status, "Queued") == condition(plan.status, "Queued")
    free = decide_at(body, T0 + timedelta(seconds=10), admitted=True)
    assert len(free.create) == 1
    assert cond_state(free.status, "Queued") == ("False", "Started")


# ------------------------------------------------------------------ continuations


def parent(phase: str | None, result: Any = None, uid: str = PARENT_UID, **spec: Any) -> Body:
    status: Body | None = None
    if phase is not None:
        status = {"phase": phase}
        if result is not None:
            status["result"] = result
    return bgj(name="parent", uid=uid, status=status, **spec)


def child(when: str | None = None, **kw: Any) -> Body:
    after: Body = {"name": "parent"}
    if when:
        after["when"] = when
    return bgj(name="child", after=after, **kw)


def test_child_waits_for_an_absent_parent() -> None:
    plan = decide_at(child(), T0, parent=None)
    assert plan.create == []
    assert plan.status["type"] == "Continuation"
    assert plan.status["phase"] == "Waiting"
    assert cond_state(plan.status, "Waiting") == ("True", "ParentNotFound")
    assert reasons(plan) == ["Waiting"]
    assert "parentUid" not in plan.status
    assert_quiet(decide_at(applied(child(), plan), T0 + timedelta(minutes=1), parent=None))


def test_parent_deleted_after_it_was_seen_fails_the_child() -> None:
    body = child()
    body = applied(body, decide_at(body, T0, parent=parent("Running")))
    assert body["status"]["parentUid"] == PARENT_UID
    now = T0 + timedelta(minutes=1)
    plan = decide_at(body, now, parent=None)
    assert plan.create == []
    assert plan.status["phase"] == "Failed"
    assert cond_state(plan.status, "Failed") == ("True", "ParentDeleted")
    assert cond_state(plan.status, "Waiting") == ("False", "ParentDeleted")
    assert plan.status["finishedAt"] == format_time(now)
    assert [(t, r) for t, r, _ in plan.events] == [("Warning", "Failed")]
    assert_quiet(decide_at(applied(body, plan), now + timedelta(minutes=1), parent=None))


def test_parent_recreated_fails_the_child() -> None:
    body = child()
    body = applied(body, decide_at(body, T0, parent=parent("Running")))
    plan = decide_at(body, T0, parent=parent("Succeeded", uid="another-uid"))
    assert plan.create == []
    assert cond_state(plan.status, "Failed") == ("True", "ParentDeleted")


@pytest.mark.parametrize(
    ("phase", "reason"),
    [("Running", "ParentRunning"), (None, "ParentPending"), ("Scheduled", "ParentPending")],
)
def test_child_waits_while_the_parent_has_not_finished(phase: str | None, reason: str) -> None:
    plan = decide_at(child(), T0, parent=parent(phase))
    assert plan.create == []
    assert plan.status["phase"] == "Waiting"
    assert cond_state(plan.status, "Waiting") == ("True", reason)
    assert plan.status["parentUid"] == PARENT_UID


def test_waiting_event_only_when_the_reason_changes() -> None:
    body = child()
    p1 = decide_at(body, T0, parent=None)
    body = applied(body, p1)
    p2 = decide_at(body, T0, parent=parent("Running"))
    assert reasons(p2) == ["Waiting"]
    body = applied(body, p2)
    assert_quiet(decide_at(body, T0, parent=parent("Running")))


def test_parent_succeeded_starts_the_child_with_parent_env() -> None:
    body = child()
    body = applied(body, decide_at(body, T0, parent=parent("Running")))
    plan = decide_at(body, T0, parent=parent("Succeeded", result={"rows": 7}))
    assert [o["metadata"]["name"] for o in plan.create] == ["child-1"]
    env = env_of(plan.create[0])
    assert env["BACKGROUNDJOBS_PARENT"] == "parent"
    assert json.loads(env["BACKGROUNDJOBS_PARENT_RESULT"]) == {"rows": 7}
    assert plan.status["phase"] == "Running"
    assert cond_state(plan.status, "Waiting") == ("False", "Started")
    assert reasons(plan) == ["Started"]


def test_parent_failed_keeps_a_when_succeeded_child_waiting() -> None:
    plan = decide_at(child(), T0, parent=parent("Failed"))
    assert plan.create == []
    assert plan.status["phase"] == "Waiting"
    assert cond_state(plan.status, "Waiting") == ("True", "ParentFailed")


@pytest.mark.parametrize(
    ("when", "parent_phase", "starts", "reason"),
    [
        ("Failed", "Failed", True, None),
        ("Failed", "Cancelled", True, None),
        ("Finished", "Failed", True, None),
        ("Finished", "Succeeded", True, None),
        ("Finished", "Cancelled", True, None),
        ("Succeeded", "Succeeded", True, None),
        ("Failed", "Succeeded", False, "ParentSucceeded"),
        ("Failed", "Running", False, "ParentRunning"),
        ("Finished", "Running", False, "ParentRunning"),
    ],
)
def test_when(when: str, parent_phase: str, starts: bool, reason: str | None) -> None:
    plan = decide_at(child(when=when), T0, parent=parent(parent_phase))
    assert bool(plan.create) is starts
    if reason:
        assert cond_state(plan.status, "Waiting") == ("True", reason)


def test_recurring_parent_is_invalid_spec() -> None:
    plan = decide_at(child(), T0, parent=parent("Scheduled", schedule="@daily"))
    assert plan.create == []
    assert plan.status["phase"] == "Failed"
    assert cond_state(plan.status, "Failed") == ("True", "InvalidSpec")
    assert "Recurring" in condition(plan.status, "Failed")["message"]  # type: ignore[index]
    assert [(t, r) for t, r, _ in plan.events] == [("Warning", "InvalidSpec")]
    # no retry loop: the next look changes nothing and posts nothing
    body = applied(child(), plan)
    again = decide_at(
        body, T0 + timedelta(minutes=1), parent=parent("Scheduled", schedule="@daily")
    )
    assert_quiet(again)
    assert again.status["phase"] == "Failed"


def test_invalid_spec_plan_for_a_refused_job() -> None:
    """The API server refused the Job (a bad podTemplate): Failed/InvalidSpec once, no loop."""
    body = bgj(podTemplate={"spec": {"containers": [{"name": "x"}]}})
    plan = checked(invalid_spec_plan(body, T0, SETTINGS, "the API server refused Job job-1: bad"))
    assert plan.create == []
    assert plan.status["type"] == "Immediate"
    assert plan.status["phase"] == "Failed"
    assert cond_state(plan.status, "Failed") == ("True", "InvalidSpec")
    assert [(t, r) for t, r, _ in plan.events] == [("Warning", "InvalidSpec")]
    body = applied(body, plan)
    again = checked(invalid_spec_plan(body, T0, SETTINGS, "the API server refused Job job-1: bad"))
    assert again.events == []
    later = decide_at(body, T0 + timedelta(minutes=1))
    assert_quiet(later)
    assert later.status["phase"] == "Failed"


def test_invalid_spec_job_is_deleted_after_retention() -> None:
    body = child()
    body = applied(body, decide_at(body, T0, parent=parent("Scheduled", schedule="@daily")))
    assert body["status"]["phase"] == "Failed"
    plan = decide_at(body, T0 + SETTINGS.retention + timedelta(hours=1), parent=None)
    assert plan.delete_self


def test_child_not_started_before_parent_when_queue_full() -> None:
    plan = decide_at(child(), T0, parent=parent("Succeeded"), admitted=False)
    assert plan.create == []
    assert plan.status["phase"] == "Queued"


# ------------------------------------------------------------------ retention


def test_retention_from_settings() -> None:
    body = succeeded(bgj())
    finished = datetime.fromisoformat(body["status"]["finishedAt"].replace("Z", "+00:00"))
    before = decide_at(body, finished + SETTINGS.retention - timedelta(seconds=1), [complete()])
    assert not before.delete_self
    assert before.requeue_at == finished + SETTINGS.retention
    at = decide_at(body, finished + SETTINGS.retention, [complete()])
    assert at.delete_self
    short = Settings(retention=timedelta(minutes=1))
    assert decide_at(
        body, finished + timedelta(minutes=2), [complete()], settings=short
    ).delete_self


def test_retention_from_ttl_after_finished() -> None:
    body = succeeded(bgj(ttlAfterFinished="10m"))
    finished = datetime.fromisoformat(body["status"]["finishedAt"].replace("Z", "+00:00"))
    plan = decide_at(body, finished + timedelta(minutes=5), [complete()])
    assert plan.requeue_at == finished + timedelta(minutes=10)
    assert not plan.delete_self
    assert decide_at(body, finished + timedelta(minutes=10), [complete()]).delete_self


def test_zero_ttl_deletes_at_once() -> None:
    body, _ = started(bgj(ttlAfterFinished="0s"))
    plan = decide_at(body, T0 + timedelta(minutes=1), [complete()], termination={"job-1": ""})
    assert plan.status["phase"] == "Succeeded"
    assert plan.delete_self


# ------------------------------------------------------------------ Recurring


def recurring(**kw: Any) -> Body:
    spec = {"schedule": "0 2 * * *", **kw}
    return bgj(name="cleanup", **spec)


def scheduled_job(minute: int, created: datetime, **kw: Any) -> ObservedJob:
    return view(f"cleanup-{minute}", created=created, owner="cronjob-uid", **kw)


def cronjob_of(plan: Plan) -> Body:
    cjs = [o for o in plan.create if o["kind"] == "CronJob"]
    if plan.replace_cronjob is not None:
        cjs.append(plan.replace_cronjob)
    assert len(cjs) == 1
    return cjs[0]


def test_recurring_first_reconcile_creates_the_cronjob() -> None:
    plan = decide_at(recurring(), T0)
    cj = cronjob_of(plan)
    assert cj["metadata"]["name"] == "cleanup"
    assert cj["spec"]["schedule"] == "0 2 * * *"
    st = plan.status
    assert st["type"] == "Recurring"
    assert st["phase"] == "Scheduled"
    nxt = datetime(2030, 1, 2, 2, 0, tzinfo=UTC)
    assert st["dueAt"] == format_time(nxt)
    assert cond_state(st, "Scheduled") == ("True", "Scheduled")
    assert plan.requeue_at == nxt + timedelta(seconds=1)
    assert reasons(plan) == ["Created"]
    assert not plan.delete_self


def test_recurring_due_in_time_zone() -> None:
    plan = decide_at(recurring(timeZone="America/New_York"), T0)
    assert plan.status["dueAt"] == format_time(datetime(2030, 1, 2, 7, 0, tzinfo=UTC))
    assert cronjob_of(plan)["spec"]["timeZone"] == "America/New_York"


def test_recurring_steady_state_is_quiet() -> None:
    body = recurring()
    plan = decide_at(body, T0)
    cj = cronjob_of(plan)
    again = decide_at(applied(body, plan), T0 + timedelta(minutes=1), cronjob=cj)
    assert_quiet(again)
    assert again.status["dueAt"] == plan.status["dueAt"]


def test_recurring_replaces_the_cronjob_only_on_spec_change() -> None:
    body = recurring()
    plan = decide_at(body, T0)
    cj = cronjob_of(plan)
    body = applied(body, plan)
    body["spec"]["schedule"] = "0 3 * * *"
    body["metadata"]["generation"] = 2
    changed = decide_at(body, T0 + timedelta(minutes=1), cronjob=cj)
    assert changed.create == []
    assert changed.replace_cronjob is not None
    assert changed.replace_cronjob["spec"]["schedule"] == "0 3 * * *"
    assert reasons(changed) == ["Updated"]
    assert changed.status["dueAt"] == format_time(datetime(2030, 1, 2, 3, 0, tzinfo=UTC))
    # after the replace, the new CronJob is observed: quiet again
    settled = decide_at(
        applied(body, changed), T0 + timedelta(minutes=2), cronjob=changed.replace_cronjob
    )
    assert_quiet(settled)


def test_recurring_recreates_a_missing_cronjob() -> None:
    body = recurring()
    body = applied(body, decide_at(body, T0))
    plan = decide_at(body, T0 + timedelta(minutes=1), cronjob=None)
    assert cronjob_of(plan)["metadata"]["name"] == "cleanup"


@pytest.mark.parametrize(
    ("fields", "text"),
    [
        ({"schedule": "61 * * * *"}, "spec.schedule"),
        ({"schedule": "0 0 30 2 *"}, "never matches"),
        ({"schedule": "@daily", "timeZone": "Mars/Olympus"}, "spec.timeZone"),
    ],
)
def test_recurring_invalid_spec(fields: Body, text: str) -> None:
    body = bgj(name="cleanup", **fields)
    plan = decide_at(body, T0)
    assert plan.create == []
    assert plan.status["phase"] == "Failed"
    assert cond_state(plan.status, "Failed") == ("True", "InvalidSpec")
    assert text in condition(plan.status, "Failed")["message"]  # type: ignore[index]
    assert [(t, r) for t, r, _ in plan.events] == [("Warning", "InvalidSpec")]
    assert plan.requeue_at is None
    assert_quiet(decide_at(applied(body, plan), T0 + timedelta(minutes=1)))


def test_recurring_spec_fixed_after_invalid() -> None:
    body = bgj(name="cleanup", schedule="61 * * * *")
    body = applied(body, decide_at(body, T0))
    body["spec"]["schedule"] = "@hourly"
    body["metadata"]["generation"] = 2
    plan = decide_at(body, T0 + timedelta(minutes=1))
    assert cronjob_of(plan)["spec"]["schedule"] == "@hourly"
    assert cond_state(plan.status, "Failed") == ("False", "SpecFixed")
    assert plan.status["phase"] == "Scheduled"


def test_recurring_trigger_creates_one_extra_job() -> None:
    body = recurring()
    first = decide_at(body, T0)
    cj = cronjob_of(first)
    body = applied(body, first, annotations={TRIGGER: "2030-01-01T12:05:00Z"})
    plan = decide_at(body, T0 + timedelta(minutes=5), cronjob=cj)
    jobs = [o for o in plan.create if o["kind"] == "Job"]
    assert len(jobs) == 1
    assert jobs[0]["metadata"]["name"] == builders.triggered_job_name(
        "cleanup", "2030-01-01T12:05:00Z"
    )
    assert reasons(plan) == ["Triggered"]
    assert plan.status["handledActions"]["trigger"] == "2030-01-01T12:05:00Z"
    assert plan.replace_cronjob is None
    assert plan.status["dueAt"] == first.status["dueAt"]  # the schedule is unchanged
    # once more with the same value: no second Job
    body2 = applied(body, plan)
    again = decide_at(body2, T0 + timedelta(minutes=6), cronjob=cj)
    assert again.create == []


def test_recurring_requeue_runs_once_now_schedule_unchanged() -> None:
    body = recurring()
    first = decide_at(body, T0)
    body = applied(body, first, annotations={REQUEUE: "r"})
    plan = decide_at(body, T0, cronjob=cronjob_of(first))
    assert [j["metadata"]["name"] for j in plan.create] == [
        builders.triggered_job_name("cleanup", "requeue r")
    ]
    assert reasons(plan) == ["Requeued"]
    assert plan.status["dueAt"] == first.status["dueAt"]
    assert plan.replace_cronjob is None


def test_recurring_counts_new_jobs() -> None:
    body = recurring()
    first = decide_at(body, T0)
    cj = cronjob_of(first)
    body = applied(body, first)
    t1 = datetime(2030, 1, 2, 2, 0, 1, tzinfo=UTC)
    j1 = scheduled_job(1, t1, active_pods=1)
    plan = decide_at(body, t1 + timedelta(seconds=1), [j1], cronjob=cj)
    st = plan.status
    assert st["runs"] == 1
    assert st["lastRunAt"] == format_time(t1)
    assert st["jobName"] == "cleanup-1"
    assert reasons(plan) == ["Started"]
    assert cond_state(st, "Running") == ("True", "RunActive")
    assert st["phase"] == "Scheduled"
    assert st["dueAt"] == format_time(datetime(2030, 1, 3, 2, 0, tzinfo=UTC))
    body = applied(body, plan)
    # the same Job again: not counted twice
    same = decide_at(body, t1 + timedelta(seconds=5), [j1], cronjob=cj)
    assert_quiet(same)
    assert same.status["runs"] == 1
    # two more at once (one of them triggered)
    t2 = t1 + timedelta(days=1)
    j2 = scheduled_job(2, t2, active_pods=1)
    j3 = view("cleanup-tabc", created=t2 + timedelta(seconds=1), active_pods=1)
    more = decide_at(body, t2 + timedelta(seconds=5), [j1, j2, j3], cronjob=cj)
    assert more.status["runs"] == 3
    assert more.status["jobName"] == "cleanup-tabc"
    assert reasons(more) == ["Started", "Started"]


def test_recurring_run_outcomes() -> None:
    body = recurring()
    first = decide_at(body, T0)
    cj = cronjob_of(first)
    body = applied(body, first)
    t1 = datetime(2030, 1, 2, 2, 0, 1, tzinfo=UTC)
    body = applied(body, decide_at(body, t1, [scheduled_job(1, t1, active_pods=1)], cronjob=cj))
    done = t1 + timedelta(seconds=20)
    j1 = scheduled_job(1, t1, start_time=t1, completion_time=done, complete=True)
    ask = decide_at(body, done + timedelta(seconds=1), [j1], cronjob=cj)
    assert ask.need_termination == "cleanup-1"
    plan = decide_at(
        body, done + timedelta(seconds=1), [j1], cronjob=cj, termination={"cleanup-1": "[1, 2]"}
    )
    st = plan.status
    assert st["lastSuccessAt"] == format_time(done)
    assert st["finishedAt"] == format_time(done)
    assert st["result"] == [1, 2]
    assert cond_state(st, "Succeeded") == ("True", "Completed")
    assert cond_state(st, "Running") == ("False", "NoRunActive")
    assert st["phase"] == "Scheduled"
    assert reasons(plan) == ["Succeeded"]
    body = applied(body, plan)
    assert_quiet(decide_at(body, done + timedelta(seconds=2), [j1], cronjob=cj))
    # the next run fails
    t2 = t1 + timedelta(days=1)
    j2 = scheduled_job(
        2,
        t2,
        failed=1,
        failure_reason="BackoffLimitExceeded",
        failure_time=t2 + timedelta(seconds=5),
    )
    failed = decide_at(
        body, t2 + timedelta(seconds=6), [j1, j2], cronjob=cj, termination={"cleanup-2": ""}
    )
    assert cond_state(failed.status, "Failed") == ("True", "BackoffLimitExceeded")
    assert cond_state(failed.status, "Succeeded") == ("False", "BackoffLimitExceeded")
    assert failed.status["lastSuccessAt"] == format_time(done)
    assert [(t, r) for t, r, _ in failed.events] == [("Normal", "Started"), ("Warning", "Failed")]
    assert failed.status["phase"] == "Scheduled"


def test_recurring_suspended() -> None:
    body = recurring(suspend=True)
    plan = decide_at(body, T0)
    assert cronjob_of(plan)["spec"]["suspend"] is True
    st = plan.status
    assert st["phase"] == "Suspended"
    assert "dueAt" not in st
    assert cond_state(st, "Suspended") == ("True", "Suspended")
    assert "Suspended" in reasons(plan)
    assert plan.requeue_at is None
    body = applied(body, plan)
    assert_quiet(decide_at(body, T0 + timedelta(minutes=1), cronjob=cronjob_of(plan)))
    # resume: the CronJob follows and the next run is due again
    body["spec"]["suspend"] = False
    resumed = decide_at(body, T0 + timedelta(minutes=2), cronjob=cronjob_of(plan))
    assert resumed.replace_cronjob is not None
    assert resumed.replace_cronjob["spec"]["suspend"] is False
    assert resumed.status["phase"] == "Scheduled"
    assert resumed.status["dueAt"] == format_time(next_run("0 2 * * *", None, T0))
    assert cond_state(resumed.status, "Suspended") == ("False", "Resumed")


def test_recurring_cancel_deletes_running_jobs() -> None:
    body = recurring()
    first = decide_at(body, T0)
    body = applied(body, first, annotations={CANCEL: "c"})
    jobs = [
        scheduled_job(1, T0, active_pods=1),
        scheduled_job(2, T0, complete=True, completion_time=T0),
    ]
    plan = decide_at(body, T0, jobs, cronjob=cronjob_of(first), termination={"cleanup-2": ""})
    assert plan.delete_jobs == ["cleanup-1"]
    assert "Cancelled" in reasons(plan)


# ------------------------------------------------------------------ conditions & idempotence


def test_condition_transition_time_moves_only_on_status_change() -> None:
    body = bgj(delay="1h")
    p1 = decide_at(body, T0)
    t_scheduled = condition(p1.status, "Scheduled")["lastTransitionTime"]  # type: ignore[index]
    assert t_scheduled == format_time(T0)
    body = applied(body, p1)
    p2 = decide_at(body, T0 + timedelta(minutes=10))
    assert condition(p2.status, "Scheduled")["lastTransitionTime"] == t_scheduled  # type: ignore[index]
    due = T0 + timedelta(hours=1)
    p3 = decide_at(applied(body, p2), due)
    assert condition(p3.status, "Scheduled")["lastTransitionTime"] == format_time(due)  # type: ignore[index]
    assert condition(p3.status, "Scheduled")["observedGeneration"] == 1  # type: ignore[index]


SCENARIOS: dict[str, tuple[Body, dict[str, Any]]] = {
    "immediate": (bgj(), {}),
    "delayed-scheduled": (bgj(delay="1h"), {}),
    "delayed-due": (bgj(delay="1s"), {}),
    "suspended": (bgj(suspend=True), {}),
    "queued": (bgj(), {"admitted": False}),
    "child-no-parent": (child(), {"parent": None}),
    "child-parent-running": (child(), {"parent": parent("Running")}),
    "child-parent-failed": (child(), {"parent": parent("Failed")}),
    "child-parent-succeeded": (child(), {"parent": parent("Succeeded", result=1)}),
    "child-recurring-parent": (child(), {"parent": parent("Scheduled", schedule="@daily")}),
    "recurring": (recurring(), {}),
    "recurring-suspended": (recurring(suspend=True), {}),
    "recurring-invalid": (recurring(schedule="61 * * * *"), {}),
    "cancel-before-start": (bgj(delay="1h", annotations={CANCEL: "c"}), {}),
}


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_decide_is_idempotent(scenario: str) -> None:
    """Decide, write the status and the children, decide again: nothing new to do or say."""
    body, kw = SCENARIOS[scenario]
    now = T0 + timedelta(seconds=5)
    first = decide_at(body, now, **kw)
    body2 = applied(body, first)
    jobs = [
        view(o["metadata"]["name"], created=now, active_pods=1)
        for o in first.create
        if o["kind"] == "Job"
    ]
    cronjobs = [o for o in first.create if o["kind"] == "CronJob"]
    kw2 = dict(kw)
    if cronjobs:
        kw2["cronjob"] = cronjobs[0]
    second = decide_at(body2, now + timedelta(seconds=1), jobs, **kw2)
    assert_quiet(second)
    assert second.need_termination is None
    # conditions did not move
    assert second.status.get("conditions") == first.status.get("conditions")
    assert second.status.get("phase") == first.status.get("phase")
    assert second.status.get("runs") == first.status.get("runs")
