"""The operator on the real cluster: Immediate and Delayed jobs, retries, actions, status."""

from __future__ import annotations

import json
import re
import time
from datetime import UTC, datetime, timedelta

import pytest
from tests.integration.bgj import FAIL_EXIT, MESSAGE, RUN_FOR, Jobs, manifest, wait_for

from backgroundjobs.api import constants as c

pytestmark = pytest.mark.integration


def iso(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_immediate_job_runs_to_succeeded_with_result(bgjobs: Jobs) -> None:
    bgjobs.create(
        manifest(
            "welcome",
            "mail.send",
            args=["a@b.c"],
            kwargs={"subject": "Welcome"},
            pod_annotations={MESSAGE: '{"sent": true, "id": 7}'},
        )
    )
    st = bgjobs.wait_phase("welcome", "Succeeded")
    assert st["type"] == "Immediate"
    assert st["runs"] == 1 and st["jobName"] == "welcome-1"
    assert st["result"] == {"sent": True, "id": 7}
    assert st["startedAt"] and st["finishedAt"]
    assert st["observedGeneration"] == 1
    succeeded = bgjobs.condition("welcome", "Succeeded")
    assert succeeded and succeeded["status"] == "True" and succeeded["reason"] == "Completed"
    assert succeeded["lastTransitionTime"] and succeeded["observedGeneration"] == 1

    job = bgjobs.job("welcome-1")
    bgj = bgjobs.get("welcome")
    assert job is not None and bgj is not None
    owner = job.metadata.owner_references[0]
    assert (owner.kind, owner.name, owner.uid, owner.controller) == (
        "BackgroundJob",
        "welcome",
        bgj["metadata"]["uid"],
        True,
    )
    labels = job.metadata.labels
    assert labels[c.LABEL_NAME] == "welcome" and labels[c.LABEL_TYPE] == "Immediate"
    assert labels[c.LABEL_QUEUE] == "default" and labels[c.LABEL_MANAGED_BY] == "backgroundjobs"
    assert job.spec.backoff_limit == 3
    rules = job.spec.pod_failure_policy.rules
    assert rules[0].action == "FailJob" and rules[0].on_exit_codes.values == [2]
    container = job.spec.template.spec.containers[0]
    env = {e.name: e.value for e in container.env}
    assert container.name == "handler"
    assert env["BACKGROUNDJOBS_HANDLER"] == "mail.send"
    assert json.loads(env["BACKGROUNDJOBS_ARGS"]) == ["a@b.c"]
    assert json.loads(env["BACKGROUNDJOBS_KWARGS"]) == {"subject": "Welcome"}
    assert env["BACKGROUNDJOBS_NAME"] == "welcome" and env["BACKGROUNDJOBS_RUN"] == "1"
    assert env["BACKGROUNDJOBS_NAMESPACE"] == bgjobs.ns
    assert job.spec.template.spec.restart_policy == "Never"
    reasons = wait_for(
        "the Succeeded event",
        lambda: (r := bgjobs.event_reasons("welcome")) and "Succeeded" in r and r,
    )
    assert "Started" in reasons
    # no kopf bookkeeping in status or outside our prefix
    annotations = bgj["metadata"].get("annotations") or {}
    assert not [k for k in annotations if "kopf" in k]
    assert not [k for k in bgj["status"] if "kopf" in k]


def test_spec_fields_reach_the_job(bgjobs: Jobs) -> None:
    bgjobs.create(
        manifest(
            "tuned",
            retries=5,
            nonRetryableExitCodes=[3, 4],
            timeout="90s",
            image="example/img:1",
            queue="critical",
            podTemplate={
                "metadata": {"labels": {"team": "mail"}, "annotations": {"note": "x"}},
                "spec": {
                    "nodeSelector": {"kubernetes.io/os": "linux"},
                    "containers": [
                        {
                            "name": "handler",
                            "env": [{"name": "SMTP_HOST", "value": "mx"}],
                            "resources": {"limits": {"memory": "128Mi"}},
                        },
                        {"name": "sidecar", "image": "example/side:1"},
                    ],
                },
            },
        )
    )
    job = wait_for("Job tuned-1", lambda: bgjobs.job("tuned-1"))
    spec = job.spec
    assert spec.backoff_limit == 5
    assert spec.active_deadline_seconds == 90
    assert spec.pod_failure_policy.rules[0].on_exit_codes.values == [3, 4]
    tpl = spec.template
    assert tpl.metadata.labels["team"] == "mail" and tpl.metadata.annotations["note"] == "x"
    assert tpl.metadata.labels[c.LABEL_QUEUE] == "critical"
    assert tpl.spec.node_selector == {"kubernetes.io/os": "linux"}
    handler, sidecar = tpl.spec.containers
    assert handler.image == "example/img:1"
    env = {e.name: e.value for e in handler.env}
    assert env["SMTP_HOST"] == "mx" and env["BACKGROUNDJOBS_HANDLER"] == "test.echo"
    assert handler.resources.limits == {"memory": "128Mi"}
    assert sidecar.name == "sidecar"


def test_retries_then_backoff_limit_exceeded(bgjobs: Jobs) -> None:
    bgjobs.create(
        manifest(
            "flaky",
            retries=1,
            pod_annotations={
                FAIL_EXIT: "1",
                MESSAGE: '{"error": "SMTP down", "type": "ConnectionError"}',
            },
        )
    )
    st = bgjobs.wait_phase("flaky", "Failed", timeout=120)
    failed = bgjobs.condition("flaky", "Failed")
    assert failed and failed["reason"] == "BackoffLimitExceeded"
    assert st["failedAttempts"] == 2  # retries + 1 pods failed
    assert "SMTP down" in failed["message"]
    assert len(bgjobs.pods("flaky-1")) == 2
    reasons = bgjobs.event_reasons("flaky")
    assert "Retrying" in reasons and "Failed" in reasons
    warnings = [e for e in bgjobs.events("flaky") if e.reason == "Failed"]
    assert warnings[0].type == "Warning"


def test_non_retryable_exit_code_fails_at_once(bgjobs: Jobs) -> None:
    bgjobs.create(manifest("declined", retries=3, pod_annotations={FAIL_EXIT: "2"}))
    st = bgjobs.wait_phase("declined", "Failed")
    assert bgjobs.condition("declined", "Failed")["reason"] == "NonRetryableExitCode"  # type: ignore[index]
    assert st["failedAttempts"] == 1
    assert len(bgjobs.pods("declined-1")) == 1


def test_timeout_fails_with_deadline_exceeded(bgjobs: Jobs) -> None:
    bgjobs.create(manifest("slow", timeout="2s", pod_annotations={RUN_FOR: "120s"}))
    bgjobs.wait_phase("slow", "Failed", timeout=60)
    assert bgjobs.condition("slow", "Failed")["reason"] == "DeadlineExceeded"  # type: ignore[index]


def test_delayed_job_starts_at_due_time_never_before(bgjobs: Jobs) -> None:
    due = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=6)
    bgjobs.create(manifest("reminder", "mail.send", runAt=iso(due)))
    st = bgjobs.wait_phase("reminder", "Scheduled", "Running", "Succeeded")
    assert st["type"] == "Delayed" and st["dueAt"] == iso(due)
    while datetime.now(UTC) < due - timedelta(seconds=1):
        assert bgjobs.job("reminder-1") is None, "started before its due time"
        time.sleep(0.2)
    job = wait_for("the delayed Job", lambda: bgjobs.job("reminder-1"), timeout=30)
    assert job.metadata.creation_timestamp >= due
    started = datetime.fromisoformat(
        bgjobs.wait_phase("reminder", "Running", "Succeeded")["startedAt"].replace("Z", "+00:00")
    )
    assert started >= due
    assert bgjobs.condition("reminder", "Scheduled")["status"] == "False"  # type: ignore[index]
    bgjobs.wait_phase("reminder", "Succeeded")


def test_delay_is_counted_from_creation(bgjobs: Jobs) -> None:
    body = bgjobs.create(manifest("delayed", delay="1h"))
    created = datetime.fromisoformat(body["metadata"]["creationTimestamp"].replace("Z", "+00:00"))
    st = bgjobs.wait_phase("delayed", "Scheduled")
    assert st["dueAt"] == iso(created + timedelta(hours=1))
    assert bgjobs.condition("delayed", "Scheduled")["reason"] == "DueInFuture"  # type: ignore[index]
    time.sleep(2)
    assert bgjobs.jobs("delayed") == []


def test_reschedule_moves_a_delayed_job(bgjobs: Jobs) -> None:
    bgjobs.create(manifest("moved", runAt=iso(datetime.now(UTC) + timedelta(hours=2))))
    bgjobs.wait_phase("moved", "Scheduled")
    soon = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=3)
    bgjobs.patch("moved", {"spec": {"runAt": iso(soon)}})
    wait_for("dueAt to move", lambda: bgjobs.status("moved").get("dueAt") == iso(soon))
    bgjobs.wait_phase("moved", "Succeeded", timeout=60)
    assert "Rescheduled" in bgjobs.event_reasons("moved")


def test_trigger_starts_a_delayed_job_now(bgjobs: Jobs) -> None:
    bgjobs.create(manifest("later", delay="2h"))
    bgjobs.wait_phase("later", "Scheduled")
    bgjobs.annotate("later", c.ANNOTATION_TRIGGER, "2026-01-01T00:00:00Z")
    st = bgjobs.wait_phase("later", "Running", "Succeeded")
    assert st["handledActions"]["trigger"] == "2026-01-01T00:00:00Z"
    assert bgjobs.job("later-1") is not None
    assert "Triggered" in wait_for("Triggered event", lambda: bgjobs.event_reasons("later"))


def test_requeue_of_a_failed_job_runs_it_again(bgjobs: Jobs) -> None:
    bgjobs.create(manifest("retry-me", retries=0, pod_annotations={FAIL_EXIT: "1"}))
    bgjobs.wait_phase("retry-me", "Failed", timeout=60)
    # fix the cause, then requeue (spec changes apply to the next run)
    bgjobs.patch(
        "retry-me", {"spec": {"podTemplate": {"metadata": {"annotations": {FAIL_EXIT: "0"}}}}}
    )
    bgjobs.annotate("retry-me", c.ANNOTATION_REQUEUE, "r1")
    st = bgjobs.wait_phase("retry-me", "Succeeded", timeout=60)
    assert st["runs"] == 2 and st["jobName"] == "retry-me-2"
    assert st["handledActions"]["requeue"] == "r1"
    assert {j.metadata.name for j in bgjobs.jobs("retry-me")} == {"retry-me-1", "retry-me-2"}
    # the same value again does nothing
    bgjobs.annotate("retry-me", "unrelated", "touch")
    time.sleep(2)
    assert bgjobs.status("retry-me")["runs"] == 2
    assert "Requeued" in bgjobs.event_reasons("retry-me")


def test_cancel_stops_a_running_job(bgjobs: Jobs) -> None:
    bgjobs.create(manifest("long", pod_annotations={RUN_FOR: "600s"}))
    wait_for("the Job to run", lambda: (j := bgjobs.job("long-1")) and (j.status.active or 0) > 0)
    bgjobs.annotate("long", c.ANNOTATION_CANCEL, "now")
    st = bgjobs.wait_phase("long", "Cancelled")
    assert st["handledActions"]["cancel"] == "now"
    assert bgjobs.condition("long", "Failed")["reason"] == "Cancelled"  # type: ignore[index]
    wait_for("the Job to be deleted", lambda: bgjobs.job("long-1") is None, timeout=60)
    assert bgjobs.get("long") is not None  # the record is kept


def test_delete_removes_jobs_and_pods(bgjobs: Jobs) -> None:
    bgjobs.create(manifest("gone", pod_annotations={RUN_FOR: "600s"}))
    wait_for("the pod", lambda: bgjobs.pods("gone-1"))
    bgjobs.delete("gone")
    wait_for("the Job to be collected", lambda: bgjobs.job("gone-1") is None, timeout=60)
    wait_for("the pods to be collected", lambda: not bgjobs.pods("gone-1"), timeout=60)


def test_suspend_holds_a_job_until_resumed(bgjobs: Jobs) -> None:
    bgjobs.create(manifest("held", suspend=True))
    st = bgjobs.wait_phase("held", "Suspended")
    assert bgjobs.condition("held", "Suspended")["status"] == "True"  # type: ignore[index]
    time.sleep(2)
    assert bgjobs.jobs("held") == [] and st.get("runs", 0) == 0
    bgjobs.patch("held", {"spec": {"suspend": False}})
    bgjobs.wait_phase("held", "Succeeded", timeout=60)


def test_ttl_after_finished_deletes_record_and_jobs(bgjobs: Jobs) -> None:
    bgjobs.create(manifest("short-lived", ttlAfterFinished="3s"))
    wait_for("the record to be deleted", lambda: bgjobs.get("short-lived") is None, timeout=60)
    # it was deleted because it finished (the Events outlive the record)
    wait_for("its Succeeded event", lambda: "Succeeded" in bgjobs.event_reasons("short-lived"))
    wait_for("its Job to be collected", lambda: bgjobs.job("short-lived-1") is None, timeout=60)


def test_invalid_pod_template_is_invalid_spec_without_retry_loop(bgjobs: Jobs) -> None:
    bgjobs.create(
        manifest(
            "badtpl", podTemplate={"spec": {"volumes": [{"name": "Bad Name", "emptyDir": {}}]}}
        )
    )
    st = bgjobs.wait_phase("badtpl", "Failed")
    failed = bgjobs.condition("badtpl", "Failed")
    assert failed and failed["reason"] == "InvalidSpec"
    assert "spec.template.spec.volumes[0].name" in failed["message"]
    assert st.get("runs", 0) == 0 and bgjobs.jobs("badtpl") == []
    time.sleep(4)  # no retry loop: one Warning only
    events = [e for e in bgjobs.events("badtpl") if e.reason == "InvalidSpec"]
    assert len(events) == 1 and events[0].type == "Warning"
    # fixing the spec (new generation) lets it run
    bgjobs.patch(
        "badtpl",
        {"spec": {"podTemplate": {"spec": {"volumes": [{"name": "good", "emptyDir": {}}]}}}},
    )
    bgjobs.wait_phase("badtpl", "Succeeded", timeout=60)


def test_queue_concurrency_limit_holds_jobs_queued(bgjobs: Jobs) -> None:
    for name in ("q-one", "q-two"):
        bgjobs.create(manifest(name, queue="limited", pod_annotations={RUN_FOR: "4s"}))
    wait_for(
        "one Queued",
        lambda: (
            sorted(bgjobs.status(n).get("phase") or "" for n in ("q-one", "q-two"))
            == ["Queued", "Running"]
        ),
        timeout=30,
    )
    queued = next(n for n in ("q-one", "q-two") if bgjobs.status(n).get("phase") == "Queued")
    assert bgjobs.condition(queued, "Queued")["reason"] == "QueueFull"  # type: ignore[index]
    assert bgjobs.jobs(queued) == []
    for name in ("q-one", "q-two"):
        bgjobs.wait_phase(name, "Succeeded", timeout=90)


def test_metrics_count_started_and_finished(bgjobs: Jobs, operator) -> None:  # type: ignore[no-untyped-def]
    bgjobs.create(manifest("counted"))
    bgjobs.wait_phase("counted", "Succeeded")
    text = wait_for(
        "metrics", lambda: (t := operator.metrics()) and 'outcome="succeeded"' in t and t
    )
    # label values the operator chooses are lower-case (issue 20)
    assert (
        'backgroundjobs_jobs_started_total{handler="test.echo",queue="default",type="immediate"}'
        in text
    )
    assert "backgroundjobs_job_duration_seconds_bucket" in text
    assert 'backgroundjobs_build_info{version="0.1.0"} 1.0' in text
    assert 'backgroundjobs_jobs{phase="succeeded",queue="default"}' in text
    assert "\nbackgroundjobs_leader 1.0\n" in text  # no leader election here: it acts
    assert 'backgroundjobs_reconcile_duration_seconds_count{outcome="success"}' in text
    created = re.search(
        r'^backgroundjobs_api_requests_total\{code="201",resource="jobs",verb="create"\} (\S+)$',
        text,
        re.M,
    )
    assert created and float(created.group(1)) >= 1, "the Job's create was not counted"
    assert 'resource="backgroundjobs/status",verb="patch"' in text
    # the standard process and GC collectors are on the operator's registry
    assert "\nprocess_resident_memory_bytes " in text
    assert "python_gc_collections_total{" in text
