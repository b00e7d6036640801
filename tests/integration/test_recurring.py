"""Recurring jobs: a BackgroundJob with ``spec.schedule`` becomes a CronJob it owns (API.md §1).

Minute-boundary tests are marked ``slow``. Timeouts are generous: outcomes, never speed.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from croniter import croniter
from kubernetes import client
from kubernetes.client.rest import ApiException
from tests.integration.bgj import MESSAGE, RUN_FOR, Jobs, manifest, wait_for

from backgroundjobs.api import constants as c

pytestmark = pytest.mark.integration

MINUTE_TIMEOUT = 180  # a run at the next minute boundary, with plenty of slack


def cronjobs(bgjobs: Jobs) -> list[Any]:
    return list(bgjobs.batch.list_namespaced_cron_job(bgjobs.ns).items)


def cronjob(bgjobs: Jobs, name: str) -> Any | None:
    try:
        return bgjobs.batch.read_namespaced_cron_job(name, bgjobs.ns)
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise


def wait_cronjob(bgjobs: Jobs, name: str, timeout: float = 60) -> Any:
    return wait_for(f"CronJob {bgjobs.ns}/{name}", lambda: cronjob(bgjobs, name), timeout)


def cond_of(status: dict[str, Any], ctype: str) -> dict[str, Any] | None:
    return next((x for x in status.get("conditions") or [] if x["type"] == ctype), None)


def job_names(bgjobs: Jobs, bgj_name: str) -> list[str]:
    return sorted(j.metadata.name for j in bgjobs.jobs(bgj_name))


def sleep_past_next_minute(slack: float) -> None:
    """Sleep until ``slack`` seconds after the next minute boundary."""
    now = time.time()
    time.sleep(60 - now % 60 + slack)


@pytest.mark.slow
def test_every_minute_creates_an_owned_cronjob_and_records_the_run(bgjobs: Jobs) -> None:
    result = {"rows": 7, "ok": True}
    bgj = bgjobs.create(
        manifest(
            "every-minute",
            schedule="* * * * *",
            startingDeadline="45s",
            history={"succeeded": 2, "failed": 1},
            pod_annotations={MESSAGE: json.dumps(result)},
        )
    )

    cj = wait_cronjob(bgjobs, "every-minute")
    (owner,) = cj.metadata.owner_references
    assert (owner.kind, owner.name, owner.uid) == (c.KIND, "every-minute", bgj["metadata"]["uid"])
    assert owner.controller is True
    assert cj.spec.schedule == "* * * * *"
    assert cj.spec.time_zone == "UTC"
    assert cj.spec.concurrency_policy == "Forbid"
    assert cj.spec.starting_deadline_seconds == 45
    assert cj.spec.successful_jobs_history_limit == 2
    assert cj.spec.failed_jobs_history_limit == 1
    assert cj.spec.suspend is False
    assert cj.metadata.labels[c.LABEL_MANAGED_BY] == c.MANAGED_BY
    assert cj.metadata.labels[c.LABEL_TYPE] == c.JobType.RECURRING

    st = bgjobs.wait_phase("every-minute", "Scheduled")
    assert st["type"] == c.JobType.RECURRING
    due = datetime.fromisoformat(st["dueAt"].replace("Z", "+00:00"))
    assert due.second == 0 and due.microsecond == 0

    def run_recorded() -> dict[str, Any] | None:
        s = bgjobs.status("every-minute")
        succeeded = cond_of(s, "Succeeded")
        if s.get("lastSuccessAt") and succeeded and succeeded["status"] == "True":
            return s
        return None

    st = wait_for("a scheduled run to succeed", run_recorded, timeout=MINUTE_TIMEOUT)
    assert st["runs"] >= 1
    assert st["lastRunAt"]
    assert st["result"] == result
    assert st["jobName"] in job_names(bgjobs, "every-minute")
    job = bgjobs.job(st["jobName"])
    assert job is not None
    assert job.metadata.owner_references[0].kind == "CronJob"  # a run of the CronJob itself
    assert st["phase"] == "Scheduled"  # still waiting for the next run
    # the CronJob's run is in the run history, with the spec generation it was built from
    record = next(r for r in st["runHistory"] if r["job"] == st["jobName"])
    assert record["reason"] == "Scheduled"
    assert record["generation"] == bgj["metadata"]["generation"]
    assert record["run"] == st["runs"]


def test_trigger_runs_once_now_and_keeps_the_schedule(bgjobs: Jobs) -> None:
    # Once a year: no scheduled run can interfere with the test.
    bgjobs.create(manifest("nightly", schedule="0 0 1 1 *", pod_annotations={MESSAGE: '"done"'}))
    cj = wait_cronjob(bgjobs, "nightly")
    bgjobs.wait_phase("nightly", "Scheduled")
    assert bgjobs.jobs("nightly") == []

    bgjobs.annotate("nightly", c.ANNOTATION_TRIGGER, "2026-01-01T00:00:00Z")

    (job,) = wait_for("the triggered Job", lambda: bgjobs.jobs("nightly"), timeout=60)

    def triggered_success() -> dict[str, Any] | None:
        s = bgjobs.status("nightly")
        ok = cond_of(s, "Succeeded")
        return s if s.get("lastSuccessAt") and ok and ok["status"] == "True" else None

    st = wait_for("the triggered run to succeed", triggered_success, timeout=90)
    assert st["handledActions"]["trigger"] == "2026-01-01T00:00:00Z"
    assert st["runs"] == 1
    assert st["jobName"] == job.metadata.name
    assert st["result"] == "done"
    assert "Triggered" in bgjobs.event_reasons("nightly")

    after = cronjob(bgjobs, "nightly")
    assert after is not None
    assert after.spec.schedule == "0 0 1 1 *"
    assert after.metadata.generation == cj.metadata.generation  # the CronJob was not touched

    # The same value again (with an unrelated change that makes the operator look) does nothing.
    bgjobs.patch(
        "nightly",
        {
            "metadata": {
                "annotations": {c.ANNOTATION_TRIGGER: "2026-01-01T00:00:00Z", "touched": "yes"}
            }
        },
    )
    time.sleep(5)
    assert job_names(bgjobs, "nightly") == [job.metadata.name]
    assert bgjobs.status("nightly")["runs"] == 1

    # A new value is a new run.
    bgjobs.annotate("nightly", c.ANNOTATION_TRIGGER, "2026-01-02T00:00:00Z")
    wait_for("a second triggered Job", lambda: len(bgjobs.jobs("nightly")) == 2, timeout=60)
    wait_for("runs == 2", lambda: bgjobs.status("nightly").get("runs") == 2, timeout=60)


def test_suspend_suspends_the_cronjob(bgjobs: Jobs) -> None:
    bgjobs.create(manifest("paused", schedule="*/5 * * * *", suspend=True))

    cj = wait_cronjob(bgjobs, "paused")
    assert cj.spec.suspend is True
    st = bgjobs.wait_phase("paused", "Suspended")
    assert "dueAt" not in st
    suspended = cond_of(st, "Suspended")
    assert suspended is not None and suspended["status"] == "True"

    # Resuming is an update like any other: the CronJob follows and a due time appears.
    bgjobs.patch("paused", {"spec": {"suspend": False}})
    st = bgjobs.wait_phase("paused", "Scheduled")
    assert st.get("dueAt")
    wait_for(
        "the CronJob to be resumed",
        lambda: cronjob(bgjobs, "paused").spec.suspend is False,
        timeout=60,
    )


@pytest.mark.slow
def test_forbid_skips_a_run_while_the_last_one_is_running(bgjobs: Jobs) -> None:
    bgjobs.create(
        manifest(
            "long-runner",
            schedule="* * * * *",
            concurrencyPolicy="Forbid",
            pod_annotations={RUN_FOR: "600s"},
        )
    )
    assert wait_cronjob(bgjobs, "long-runner").spec.concurrency_policy == "Forbid"

    (first,) = wait_for(
        "the first scheduled Job", lambda: bgjobs.jobs("long-runner"), timeout=MINUTE_TIMEOUT
    )
    wait_for(
        "status to show the run",
        lambda: (cond_of(bgjobs.status("long-runner"), "Running") or {}).get("status") == "True",
        timeout=60,
    )
    sleep_past_next_minute(slack=20)  # the next boundary passes while the first run runs

    assert job_names(bgjobs, "long-runner") == [first.metadata.name]
    st = bgjobs.status("long-runner")
    assert st["runs"] == 1
    assert st["jobName"] == first.metadata.name

    # Deleting the BackgroundJob removes the CronJob and its Jobs (garbage collector).
    bgjobs.delete("long-runner")
    wait_for("the CronJob to be collected", lambda: cronjobs(bgjobs) == [], timeout=120)
    wait_for("the Jobs to be collected", lambda: bgjobs.jobs("long-runner") == [], timeout=120)


def test_schedule_update_changes_the_cronjob(bgjobs: Jobs) -> None:
    bgjobs.create(manifest("reschedule", schedule="0 0 * * *"))
    cj = wait_cronjob(bgjobs, "reschedule")
    assert cj.spec.schedule == "0 0 * * *"
    uid = cj.metadata.uid
    first_due = bgjobs.wait_phase("reschedule", "Scheduled")["dueAt"]

    bgjobs.patch("reschedule", {"spec": {"schedule": "30 1 * * *"}})

    updated = wait_for(
        "the CronJob to follow the new schedule",
        lambda: (cj := cronjob(bgjobs, "reschedule")) and cj.spec.schedule == "30 1 * * *" and cj,
        timeout=60,
    )
    assert updated.metadata.uid == uid  # updated in place, not a second CronJob
    assert len(cronjobs(bgjobs)) == 1
    st = wait_for(
        "status to follow the new schedule",
        lambda: (
            (s := bgjobs.status("reschedule")).get("dueAt") != first_due
            and s.get("observedGeneration") == 2
            and s
        ),
        timeout=60,
    )
    assert st["dueAt"].endswith("T01:30:00Z")


def test_time_zone_is_honoured_in_due_at(bgjobs: Jobs) -> None:
    tokyo = ZoneInfo("Asia/Tokyo")
    before = datetime.now(UTC)
    bgjobs.create(manifest("tokyo", schedule="0 2 * * *", timeZone="Asia/Tokyo"))

    st = bgjobs.wait_phase("tokyo", "Scheduled")
    after = datetime.now(UTC)
    expected = {
        croniter("0 2 * * *", t.astimezone(tokyo)).get_next(datetime).astimezone(UTC)
        for t in (before, after)
    }
    due = datetime.fromisoformat(st["dueAt"].replace("Z", "+00:00"))
    assert due in expected
    assert (due.hour, due.minute, due.second) == (17, 0, 0)  # 02:00 JST is 17:00Z
    assert wait_cronjob(bgjobs, "tokyo").spec.time_zone == "Asia/Tokyo"


@pytest.mark.parametrize(
    ("schedule", "zone", "needle"),
    [
        ("61 * * * *", "UTC", "61 * * * *"),
        ("0 * * * *", "Mars/Olympus", "Mars/Olympus"),
    ],
    ids=["bad-expression", "unknown-zone"],
)
def test_invalid_schedule_fails_with_invalid_spec(
    bgjobs: Jobs, schedule: str, zone: str, needle: str
) -> None:
    bgjobs.create(manifest("bad", schedule=schedule, timeZone=zone))  # the CRD lets it in

    st = bgjobs.wait_phase("bad", "Failed")
    failed = cond_of(st, "Failed")
    assert failed is not None
    assert (failed["status"], failed["reason"]) == ("True", "InvalidSpec")
    assert needle in failed["message"]

    def warning() -> list[client.CoreV1Event]:
        return [e for e in bgjobs.events("bad") if e.reason == "InvalidSpec"]

    (event,) = wait_for("a Warning InvalidSpec event", warning, timeout=30)
    assert event.type == "Warning"
    time.sleep(3)  # no retry loop, no CronJob appears later
    assert cronjobs(bgjobs) == []
    assert len(warning()) == 1 and (warning()[0].count or 1) == 1
    assert bgjobs.status("bad")["phase"] == "Failed"


def test_delete_removes_the_cronjob_and_its_jobs(bgjobs: Jobs) -> None:
    bgjobs.create(manifest("doomed", schedule="0 0 1 1 *", pod_annotations={RUN_FOR: "600s"}))
    wait_cronjob(bgjobs, "doomed")
    bgjobs.annotate("doomed", c.ANNOTATION_TRIGGER, "now")
    (job,) = wait_for("the triggered Job", lambda: bgjobs.jobs("doomed"), timeout=60)
    wait_for("its pod", lambda: bgjobs.pods(job.metadata.name), timeout=60)

    bgjobs.delete("doomed")

    wait_for("the CronJob to be collected", lambda: cronjobs(bgjobs) == [], timeout=120)
    wait_for("the Job to be collected", lambda: bgjobs.jobs("doomed") == [], timeout=120)
    wait_for("the pod to be gone", lambda: bgjobs.pods(job.metadata.name) == [], timeout=120)
    assert bgjobs.get("doomed") is None
