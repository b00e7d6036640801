"""``spec.retryPolicy`` on the local cluster: each attempt is a Job of its own, created by the
operator at or after its due time (the previous attempt's failure plus the backoff); after a
SIGKILL of the operator between two attempts the next one is created once, not early; the
API server refuses a bad policy naming the field; cancel and requeue keep working."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException
from tests.integration.bgj import FAIL_EXIT, MESSAGE, Jobs, manifest, wait_for
from tests.integration.harness import OperatorProcess

from backgroundjobs.api import constants as c
from backgroundjobs.api.times import parse_time
from backgroundjobs.controller.decisions.retry import Backoff

pytestmark = pytest.mark.integration

FAILING = {FAIL_EXIT: "1", MESSAGE: '{"error": "relay down", "type": "SMTPError"}'}


def failed_at(job: Any) -> Any:
    """When the Job's Failed condition says it failed."""
    for cond in job.status.conditions or []:
        if cond.type == "Failed" and cond.status == "True":
            return cond.last_transition_time
    raise AssertionError(f"Job {job.metadata.name} has not failed")


def by_name(bgjobs: Jobs, name: str) -> dict[str, Any]:
    return {j.metadata.name: j for j in bgjobs.jobs(name)}


def retrying(bgjobs: Jobs, name: str) -> dict[str, Any] | None:
    """The status while the next attempt waits (Running, reason Retrying), else None."""
    st = bgjobs.status(name)
    running = bgjobs.condition(name, "Running") or {}
    if st.get("nextAttemptAt") and running.get("reason") == "Retrying":
        return st
    return None


def test_each_attempt_is_a_job_created_at_or_after_its_due_time(bgjobs: Jobs) -> None:
    policy = {"backoff": {"initial": "4s", "factor": 2, "max": "1m"}}
    bgjobs.create(manifest("relay", retries=2, retryPolicy=policy, pod_annotations=FAILING))
    waiting = wait_for("the first Retrying wait", lambda: retrying(bgjobs, "relay"), 120)
    assert waiting["phase"] == "Running" and waiting["attempt"] == 1
    assert "attempt 2 of 3 due at" in waiting["message"]
    assert "SMTPError: relay down" in waiting["message"]

    st = bgjobs.wait_phase("relay", "Failed", timeout=240)
    assert bgjobs.condition("relay", "Failed")["reason"] == "BackoffLimitExceeded"  # type: ignore[index]
    assert (st["attempt"], st["failedAttempts"], st["runs"]) == (3, 3, 1)
    assert "nextAttemptAt" not in st
    jobs = by_name(bgjobs, "relay")
    assert sorted(jobs) == ["relay-1", "relay-1-a2", "relay-1-a3"]
    assert all(j.spec.backoff_limit == 0 for j in jobs.values())
    uid = (bgjobs.get("relay") or {})["metadata"]["uid"]
    backoff = Backoff.parse("4s", 2, "1m")
    for attempt, (before, after) in enumerate(
        [("relay-1", "relay-1-a2"), ("relay-1-a2", "relay-1-a3")], start=1
    ):
        due = failed_at(jobs[before]) + backoff.delay(attempt, uid)
        created = jobs[after].metadata.creation_timestamp
        assert created >= due, f"{after} created at {created}, due at {due}"  # never early
    assert bgjobs.event_reasons("relay").count("Retrying") == 2

    # a requeue runs the job again from its first attempt (run 2), the fix applied
    bgjobs.patch(
        "relay", {"spec": {"podTemplate": {"metadata": {"annotations": {FAIL_EXIT: "0"}}}}}
    )
    bgjobs.annotate("relay", c.ANNOTATION_REQUEUE, "fixed")
    st = bgjobs.wait_phase("relay", "Succeeded", timeout=120)
    assert (st["runs"], st["attempt"], st["jobName"]) == (2, 1, "relay-2")


def test_after_a_sigkill_between_attempts_the_next_one_comes_once_and_not_early(
    bgjobs: Jobs, operator: OperatorProcess
) -> None:
    policy = {"backoff": {"initial": "25s"}}
    bgjobs.create(manifest("mailer", retries=1, retryPolicy=policy, pod_annotations=FAILING))
    waiting = wait_for("the Retrying wait", lambda: retrying(bgjobs, "mailer"), 120)
    due = parse_time(waiting["nextAttemptAt"])
    assert due is not None
    first = by_name(bgjobs, "mailer")["mailer-1"]
    assert due == failed_at(first) + timedelta(seconds=25)  # from the Job, jitter 0

    # The operator dies while the attempt waits; its successor has only the objects.
    operator.kill()
    operator.start()

    second = wait_for(
        "the second attempt's Job", lambda: by_name(bgjobs, "mailer").get("mailer-1-a2"), 120
    )
    assert second.metadata.creation_timestamp >= due, "created before its due time"
    st = bgjobs.wait_phase("mailer", "Failed", timeout=120)
    assert st["attempt"] == 2 and st["failedAttempts"] == 2
    jobs = by_name(bgjobs, "mailer")
    assert sorted(jobs) == ["mailer-1", "mailer-1-a2"]  # once: no third, no re-made one
    assert jobs["mailer-1-a2"].metadata.uid == second.metadata.uid


def test_an_attempt_due_while_the_operator_is_down_comes_once_when_it_is_back(
    bgjobs: Jobs, operator: OperatorProcess
) -> None:
    bgjobs.create(
        manifest(
            "late", retries=1, retryPolicy={"backoff": {"initial": "15s"}}, pod_annotations=FAILING
        )
    )
    waiting = wait_for("the Retrying wait", lambda: retrying(bgjobs, "late"), 120)
    due = parse_time(waiting["nextAttemptAt"])
    assert due is not None
    operator.kill()
    try:
        wait_for("the due time to pass", lambda: datetime.now(UTC) > due + timedelta(seconds=3), 60)
        assert sorted(by_name(bgjobs, "late")) == ["late-1"]  # nobody made it meanwhile
    finally:
        operator.start()
    st = bgjobs.wait_phase("late", "Failed", timeout=120)
    assert st["attempt"] == 2
    jobs = by_name(bgjobs, "late")
    assert sorted(jobs) == ["late-1", "late-1-a2"]
    assert jobs["late-1-a2"].metadata.creation_timestamp >= due


def test_cancel_while_waiting_stops_the_retries(bgjobs: Jobs) -> None:
    bgjobs.create(
        manifest(
            "hold",
            retryPolicy={"backoff": {"initial": "10m", "max": "1h"}},
            pod_annotations=FAILING,
        )
    )
    wait_for("the Retrying wait", lambda: retrying(bgjobs, "hold"), 120)
    bgjobs.annotate("hold", c.ANNOTATION_CANCEL, "stop")
    st = bgjobs.wait_phase("hold", "Cancelled")
    assert "nextAttemptAt" not in st
    assert sorted(by_name(bgjobs, "hold")) == ["hold-1"]


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (
            {"retryPolicy": {"backoff": {"initial": "1m", "max": "10s"}}},
            "retryPolicy.backoff.max must be at least retryPolicy.backoff.initial",
        ),
        ({"retryPolicy": {"backoff": {"initial": "0s"}}}, "retryPolicy.backoff.initial must be"),
        ({"retryPolicy": {"backoff": {"factor": 0.5}}}, "spec.retryPolicy.backoff.factor"),
        ({"retryPolicy": {"backoff": {"jitter": 2}}}, "spec.retryPolicy.backoff.jitter"),
        (
            {"retryPolicy": {}, "schedule": "@daily"},
            "spec.retryPolicy is not allowed with spec.schedule",
        ),
    ],
)
def test_a_bad_policy_is_refused_naming_the_field(
    bgjobs_no_operator: Jobs, spec: dict[str, Any], message: str
) -> None:
    with pytest.raises(ApiException) as refused:
        bgjobs_no_operator.create(manifest("bad-policy", **spec))
    assert refused.value.status == 422
    assert message in str(refused.value.body)
