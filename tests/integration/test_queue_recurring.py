"""Recurring runs through queue admission (controller.heldruns): in a queue that can hold a
run, the CronJob makes its Jobs suspended and the operator admits each in the queue's order.
One scheduled minute: the run is held while a long job fills the queue, survives a SIGKILL of
the operator still held, and runs once when the slot frees."""

from __future__ import annotations

import time
from typing import Any

import pytest
from kubernetes import client
from tests.integration.bgj import RUN_FOR, Jobs, manifest, wait_for
from tests.integration.queue_helpers import Queues

from backgroundjobs.controller.builders import cronjob_name

pytestmark = pytest.mark.integration

# The first scheduled minute comes within 60 s; the CronJob controller makes its Job soon after.
MINUTE_TIMEOUT = 150.0


def _held(job: Any) -> bool:
    return bool(job.spec.suspend)


def test_a_recurring_run_in_a_full_queue_waits_suspended_and_runs_once_after_a_sigkill(
    bgjobs: Jobs, api_client: client.ApiClient, operator: Any
) -> None:
    queues = Queues(api_client, bgjobs.ns)
    queues.create("cron1", maxConcurrency=1)
    bgjobs.create(manifest("long", queue="cron1", pod_annotations={RUN_FOR: "30m"}))
    bgjobs.wait_phase("long", "Running", timeout=120)

    bgjobs.create(
        manifest("tick", schedule="* * * * *", queue="cron1", pod_annotations={RUN_FOR: "1s"})
    )
    cronjob = wait_for(
        "the CronJob",
        lambda: next(
            (
                cj
                for cj in client.BatchV1Api(api_client).list_namespaced_cron_job(bgjobs.ns).items
                if cj.metadata.name == cronjob_name("tick")
            ),
            None,
        ),
    )
    assert cronjob.spec.job_template.spec.suspend is True  # the queue can hold a run

    run = wait_for(
        "the scheduled run's Job",
        lambda: next(iter(bgjobs.jobs("tick")), None),
        timeout=MINUTE_TIMEOUT,
    )
    name = run.metadata.name
    assert _held(run)
    queued = wait_for(
        "the Queued condition",
        lambda: (cnd := bgjobs.condition("tick", "Queued")) and cnd["status"] == "True" and cnd,
    )
    assert queued["reason"] == "QueueFull"
    assert name in queued["message"]

    operator.kill()  # SIGKILL with the run held: the next operator must neither run it
    operator.start()  # early (the queue is still full) nor lose it
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        job = bgjobs.job(name)
        assert job is not None and _held(job), "the held run started while its queue was full"
        time.sleep(0.5)
    assert bgjobs.status("long")["phase"] == "Running"

    bgjobs.delete("long")  # its slot frees: the held run is admitted
    wait_for(
        "the held run to succeed",
        lambda: (job := bgjobs.job(name)) is not None and (job.status.succeeded or 0) >= 1,
        timeout=120,
    )
    job = bgjobs.job(name)
    assert job is not None and not _held(job)
    assert job.status.succeeded == 1 and not job.status.failed
    assert len(bgjobs.pods(name)) == 1  # one run: never started twice
    wait_for(
        "the Queued condition to clear",
        lambda: (bgjobs.condition("tick", "Queued") or {}).get("status") == "False",
    )
    # every Job of the recurring job is a distinct scheduled time (none made twice)
    names = [j.metadata.name for j in bgjobs.jobs("tick")]
    assert len(names) == len(set(names)) and name in names
