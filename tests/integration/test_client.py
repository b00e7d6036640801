"""The Python client against the local cluster and the running operator: the reference
scenarios (SCENARIOS.md), both Client and AsyncClient, and the typed errors."""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client as k8s

from backgroundjobs import Conflict, InvalidArguments, InvalidSpec, JobNotFound
from backgroundjobs.client import LABEL_BATCH, AsyncClient, Client, JobInfo
from backgroundjobs.cron import Cron

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "job_images" / "examples"))
from bgj_examples import mail, notifications, report  # noqa: F401  (registers the handlers)

pytestmark = pytest.mark.integration

EXIT_CODE = "kwok.backgroundjobs.dev/exit-code"
DURATION = "kwok.backgroundjobs.dev/duration"
MESSAGE = "kwok.backgroundjobs.dev/message"


def pod(**annotations: str) -> dict[str, Any]:
    """A podTemplate whose kwok-simulated pod has these outcome annotations."""
    return {
        "metadata": {
            "annotations": {
                f"kwok.backgroundjobs.dev/{k.replace('_', '-')}": v for k, v in annotations.items()
            }
        }
    }


@pytest.fixture
def jobs(kubeconfig: str, namespace: str, operator: object) -> Iterator[Client]:
    with Client(kubeconfig=kubeconfig, namespace=namespace) as c:
        yield c


def wait_until(what: str, probe: Any, timeout: float = 60, interval: float = 0.25) -> Any:
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what} (last: {last!r})")


# ------------------------------------------------------------------ scenario 1


def test_welcome_email_fire_and_forget(jobs: Client) -> None:
    name = jobs.enqueue(
        mail.send,
        "new.user@example.com",
        subject="Welcome",
        body="<h1>Hi!</h1>",
        html=True,
        pod_template=pod(message='{"status": "sent"}'),
    )
    assert name.startswith("mail-send-")
    info = jobs.wait(name, timeout=90)
    assert info.phase == "Succeeded" and info.succeeded and info.finished
    assert info.type == "Immediate" and info.handler == "mail.send"
    assert info.args == ["new.user@example.com"]
    assert info.kwargs == {"subject": "Welcome", "body": "<h1>Hi!</h1>", "html": True}
    assert info.result == {"status": "sent"}
    assert info.runs == 1 and info.job_name
    cond = info.condition("Succeeded")
    assert cond is not None and cond.status == "True"
    assert info.raw["metadata"]["labels"]["app.kubernetes.io/created-by"] == "backgroundjobs-client"
    # what describe shows: its Job, the pod, and Events
    runs = jobs.runs(name)
    assert [r["metadata"]["name"] for r in runs] == [info.job_name]
    assert jobs.pods(name) and jobs.pods(name, run=1)
    assert {"Succeeded"} <= {e["reason"] for e in jobs.events(name)}


def test_failed_job_is_retried_then_requeued(jobs: Client) -> None:
    name = jobs.enqueue(
        "mail.send",
        "x@example.com",
        subject="s",
        body="b",
        retries=1,
        pod_template=pod(exit_code="1"),
    )
    info = jobs.wait(name, timeout=120)
    assert info.phase == "Failed"
    requeued = jobs.requeue(name)
    assert "backgroundjobs.dev/requeue" in requeued.annotations
    info = wait_until("run 2", lambda: (j := jobs.get(name)).runs == 2 and j.finished and j)
    assert info.phase == "Failed" and info.job_name != jobs.runs(name)[0]["metadata"]["name"]


# ------------------------------------------------------------------ scenario 2


def test_password_reset_now_and_reminder_in_an_hour(jobs: Client) -> None:
    now_name = jobs.enqueue(mail.send, "u@example.com", subject="Reset your password", body="link")
    reminder = jobs.schedule(
        mail.send,
        "u@example.com",
        subject="Did you reset it?",
        body="...",
        delay=timedelta(hours=1),
    )
    assert jobs.wait(now_name, timeout=90).phase == "Succeeded"
    info = jobs.wait(reminder, until="Scheduled", timeout=30)
    assert info.type == "Delayed" and info.raw["spec"]["delay"] == "1h"
    assert info.due_at is not None and info.created_at is not None
    assert abs((info.due_at - info.created_at) - timedelta(hours=1)) <= timedelta(seconds=2)
    with pytest.raises(TimeoutError, match="did not reach"):
        jobs.wait(reminder, timeout=1)
    # an admin sends it now (Hangfire's Trigger of a scheduled job)
    jobs.trigger(reminder)
    assert jobs.wait(reminder, timeout=90).phase == "Succeeded"


def test_schedule_at_a_time(jobs: Client) -> None:
    at = datetime.now(UTC) + timedelta(seconds=3)
    name = jobs.schedule("test.echo", "later", at=at)
    info = jobs.wait(name, timeout=90)
    assert info.phase == "Succeeded"
    assert info.started_at is not None and info.started_at >= at.replace(microsecond=0)


# ------------------------------------------------------------------ scenario 3


def test_daily_cleanup_added_updated_triggered_removed(
    jobs: Client, batch_v1: k8s.BatchV1Api
) -> None:
    first = jobs.add_or_update_recurring(
        "cleanup-temp-files",
        "cleanup.temp_files",
        cron=Cron.daily(2),
        time_zone="UTC",
        older_than_hours=24,
    )
    assert first == "cleanup-temp-files"
    created = jobs.wait(first, until="Scheduled", timeout=30)
    assert created.type == "Recurring" and created.schedule == "0 2 * * *"
    # registering again at start-up changes nothing
    jobs.add_or_update_recurring(
        "cleanup-temp-files", "cleanup.temp_files", cron=Cron.daily(2), older_than_hours=24
    )
    same = jobs.get(first)
    assert (
        same.uid == created.uid
        and same.raw["metadata"]["generation"] == created.raw["metadata"]["generation"]
    )
    # a new schedule updates the one object (add-or-update), and its CronJob follows
    jobs.add_or_update_recurring(
        "cleanup-temp-files", "cleanup.temp_files", cron=Cron.hourly(30), older_than_hours=12
    )
    updated = jobs.get(first)
    assert updated.uid == created.uid and updated.schedule == "30 * * * *"
    assert updated.kwargs == {"older_than_hours": 12}
    assert len(jobs.list(type="Recurring")) == 1
    wait_until(
        "the CronJob's new schedule",
        lambda: any(
            cj.spec.schedule == "30 * * * *"
            for cj in batch_v1.list_namespaced_cron_job(jobs.namespace).items
        ),
    )
    # trigger: one extra run now
    jobs.trigger(first)
    wait_until(
        "the triggered run to succeed",
        lambda: (j := jobs.get(first)).runs >= 1 and j.last_success_at,
    )
    # remove, and removing again is fine
    assert jobs.remove_recurring(first) is True
    with pytest.raises(JobNotFound):
        jobs.get(first)
    assert jobs.remove_recurring(first) is False


# ------------------------------------------------------------------ scenario 4


def test_report_then_email(jobs: Client, batch_v1: k8s.BatchV1Api) -> None:
    report_name = jobs.enqueue(
        "report.generate",
        7,
        title="Monthly",
        pod_template=pod(duration="3s", message='"/reports/7.pdf"'),
    )
    child = jobs.continue_with(
        report_name, mail.send, "u7@example.com", subject="Report ready", body="see link"
    )
    assert jobs.wait(child, until="Waiting", timeout=30).parent == report_name
    parent = jobs.wait(report_name, timeout=90)
    assert parent.phase == "Succeeded" and parent.result == "/reports/7.pdf"
    info = jobs.wait(child, timeout=90)
    assert info.phase == "Succeeded" and info.type == "Continuation"
    assert parent.finished_at is not None and info.started_at is not None
    assert info.started_at >= parent.finished_at
    job = batch_v1.read_namespaced_job(info.job_name, jobs.namespace)
    env = {e.name: e.value for e in job.spec.template.spec.containers[0].env}
    assert env["BACKGROUNDJOBS_PARENT"] == report_name
    assert env["BACKGROUNDJOBS_PARENT_RESULT"] == '"/reports/7.pdf"'


# ------------------------------------------------------------------ scenario 5


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_bulk_notification_of_1000_users(jobs: Client) -> None:
    items: list[Any] = [
        ((f"user-{i}", "Our terms changed"), {"title": "News"}) for i in range(1000)
    ]
    items[500] = ((), {"title": "no user"})  # a bad item: missing arguments
    seen: list[int] = []
    results = jobs.enqueue_many(
        notifications.send_to_user,
        items,
        concurrency=32,
        on_progress=lambda done, total: seen.append(done),
    )
    assert len(results) == 1000 and seen[-1] == 1000
    bad = results.pop(500)
    assert isinstance(bad, InvalidArguments) and "user_id" in str(bad)
    assert all(isinstance(r, str) for r in results), [r for r in results if not isinstance(r, str)][
        :3
    ]
    prefix = str(results[0]).rsplit("-", 1)[0]
    listed = jobs.list(labels={LABEL_BATCH: prefix})
    assert len(listed) == 999
    succeeded = wait_until(
        "all 999 notification jobs to succeed",
        lambda: (n := len(jobs.list(phase="Succeeded"))) == 999 and n,
        timeout=840,  # the operator's throughput is a benchmark's business, not this test's
        interval=10,
    )
    assert succeeded == 999
    assert not jobs.list(phase="Failed")


# ------------------------------------------------------------------ the async client


def test_async_client_main_flows(kubeconfig: str, namespace: str, operator: object) -> None:
    async def flows() -> list[JobInfo]:
        async with AsyncClient(kubeconfig=kubeconfig, namespace=namespace) as jobs:
            names = await asyncio.gather(
                jobs.enqueue(mail.send, "a@example.com", subject="Welcome", body="b"),
                jobs.schedule("test.echo", delay="1h", name="in-an-hour"),
                jobs.add_or_update_recurring(
                    "cache-cleanup", "cache.cleanup_expired", cron=Cron.hourly()
                ),
            )
            assert names[1:] == ["in-an-hour", "cache-cleanup"]
            seen: list[str | None] = []
            done = await jobs.wait(names[0], timeout=90, on_change=lambda j: seen.append(j.phase))
            assert done.phase == "Succeeded" and seen[-1] == "Succeeded"
            child = await jobs.continue_with(names[0], "test.echo", "after", when="Finished")
            await jobs.wait(child, timeout=90)
            with pytest.raises(JobNotFound):
                await jobs.cancel("nope")
            results = await jobs.enqueue_many(
                "test.echo", [((i,), {}) for i in range(20)], concurrency=5
            )
            assert all(isinstance(r, str) for r in results)
            await jobs.delete("in-an-hour")
            return await jobs.list()

    listed = asyncio.run(flows())
    assert (
        len(listed) == 1 + 1 + 1 + 20
    )  # enqueued, recurring, child, bulk (the delayed one deleted)
    assert "in-an-hour" not in {j.name for j in listed}


def test_watch_streams_phase_changes(jobs: Client) -> None:
    name = jobs.enqueue("test.echo", pod_template=pod(duration="2s"))
    phases = []
    for event in jobs.watch(name=name):
        phases.append(event.job.phase)
        if event.job.finished:
            break
    assert phases[-1] == "Succeeded" and "Running" in phases


def test_cancel_a_running_job(jobs: Client) -> None:
    name = jobs.enqueue("test.echo", pod_template=pod(duration="120s"))
    jobs.wait(name, until="Running", timeout=60)
    jobs.cancel(name)
    assert jobs.wait(name, timeout=60).phase == "Cancelled"
    jobs.delete(name)
    with pytest.raises(JobNotFound):
        jobs.get(name)


# ------------------------------------------------------------------ errors


def test_unknown_job_is_job_not_found(jobs: Client) -> None:
    for call in (jobs.get, jobs.trigger, jobs.requeue, jobs.cancel, jobs.delete, jobs.wait):
        with pytest.raises(JobNotFound, match='"no-such-job" not found'):
            call("no-such-job")


def test_bad_arguments_create_nothing(jobs: Client) -> None:
    with pytest.raises(InvalidArguments, match="missing a required argument: 'body'"):
        jobs.enqueue(mail.send, "a@example.com", subject="Welcome")
    with pytest.raises(InvalidArguments, match="parameter 'days'"):
        jobs.enqueue("report.generate", 7, days=1000)
    with pytest.raises(InvalidArguments, match="unexpected keyword argument 'cc'"):
        jobs.schedule(
            mail.send, "a@example.com", subject="s", body="b", cc="x", delay=timedelta(minutes=1)
        )
    assert jobs.list() == []


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"timeout": "0s"}, "spec.timeout"),
        ({"timeout": timedelta(0)}, "spec.timeout"),
        ({"queue": "Bad_Queue"}, "spec.queue"),
        ({"image": "has space"}, "spec.image"),
    ],
)
def test_a_spec_the_api_server_refuses_is_invalid_spec(
    jobs: Client, options: dict[str, Any], field: str
) -> None:
    with pytest.raises(InvalidSpec) as err:
        jobs.enqueue("test.echo", **options)
    assert field in str(err.value) and "is invalid" in str(err.value)
    assert jobs.list() == []


def test_a_delay_the_api_server_refuses(jobs: Client) -> None:
    with pytest.raises(InvalidSpec, match=r"spec\.delay"):
        jobs.schedule("test.echo", delay="soon")
    with pytest.raises(InvalidSpec, match=r"spec\.schedule"):
        jobs.add_or_update_recurring("bad-cron", "test.echo", cron="every day")


def test_name_conflicts_and_type_changes(jobs: Client) -> None:
    jobs.enqueue("test.echo", name="only-once")
    with pytest.raises(Conflict, match="already exists"):
        jobs.enqueue("test.echo", name="only-once")
    with pytest.raises(InvalidSpec, match="job type cannot change"):
        jobs.add_or_update_recurring("only-once", "test.echo", cron=Cron.daily())


def test_a_client_made_before_a_fork_works_in_the_forked_child(jobs: Client) -> None:
    """gunicorn --preload, Celery prefork: the app's Client is made (and used) in the
    parent; a forked worker enqueues with it. The parent's client keeps working too."""
    import os
    import signal

    first = jobs.enqueue("test.echo", name="fork-parent")
    assert jobs.get(first).name == first  # the parent's connections are open
    pid = os.fork()
    if pid == 0:  # the child reports by exit code: 0 when its enqueue and get worked
        code = 1
        try:
            name = jobs.enqueue("test.echo", name="fork-child")
            code = 0 if jobs.get(name).name == "fork-child" else 2
        finally:
            os._exit(code)
    deadline = time.monotonic() + 120
    while (done := os.waitpid(pid, os.WNOHANG))[0] == 0:
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            pytest.fail("the forked child hung using the parent's Client")
        time.sleep(0.1)
    assert os.waitstatus_to_exitcode(done[1]) == 0
    assert jobs.wait("fork-child", timeout=90).phase == "Succeeded"
    assert jobs.get(first).name == first  # the parent's client still works


def test_list_filters_are_field_selectors_the_api_server_applies(
    jobs: Client, kubeconfig: str, namespace: str
) -> None:
    """The CRD's selectableFields: the API server answers a field selector on spec.handler,
    spec.queue and status.phase (an older CRD refuses it: 400 field label not supported)."""
    from kubernetes import config as k8s_config

    done = jobs.enqueue("test.echo", name="sel-done", queue="low")
    jobs.wait(done, timeout=90)
    waiting = jobs.schedule("test.echo", delay="1h", name="sel-waiting", queue="low")
    wait_until("sel-waiting scheduled", lambda: jobs.get(waiting).phase == "Scheduled")

    api = k8s.CustomObjectsApi(k8s_config.new_client_from_config(config_file=kubeconfig))
    selected = api.list_namespaced_custom_object(
        "backgroundjobs.dev", "v1alpha1", namespace, "backgroundjobs",
        field_selector="status.phase=Succeeded,spec.queue=low,spec.handler=test.echo",
    )  # fmt: skip
    assert [o["metadata"]["name"] for o in selected["items"]] == ["sel-done"]

    assert [j.name for j in jobs.list(phase="Scheduled", queue="low")] == ["sel-waiting"]
    assert [j.name for j in jobs.list(phase="Succeeded", handler="test.echo")] == ["sel-done"]
    assert jobs.list(queue="critical") == []


def test_runs_and_pods_are_found_by_owner_not_by_labels(
    jobs: Client, batch_v1: k8s.BatchV1Api, core_v1: k8s.CoreV1Api
) -> None:
    """A Job or pod that copies a run's labels (anyone who may create them in the namespace
    can) is not shown as one of the job's runs, nor its pods or log."""
    from backgroundjobs.api.constants import LABEL_JOB_NAME, LABEL_NAME, LABEL_RUN

    name = jobs.enqueue(mail.send, "owner@example.com", subject="s", body="b")
    info = jobs.wait(name, timeout=90)
    assert info.phase == "Succeeded" and info.job_name
    ns = jobs.namespace
    real = batch_v1.read_namespaced_job(info.job_name, ns)
    template = k8s.ApiClient().sanitize_for_serialization(real.spec.template)
    template["metadata"]["labels"] = {LABEL_NAME: name, LABEL_RUN: "1"}
    batch_v1.create_namespaced_job(ns, {
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": f"{name}-lookalike", "labels": {LABEL_NAME: name, LABEL_RUN: "1"}},
        "spec": {"template": template, "backoffLimit": 0},
    })  # fmt: skip
    fake_pod = {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": f"{name}-fake-pod", "labels": {LABEL_JOB_NAME: info.job_name}},
        "spec": template["spec"],
    }  # fmt: skip
    core_v1.create_namespaced_pod(ns, fake_pod)
    wait_until(
        "the look-alikes to exist",
        lambda: core_v1.list_namespaced_pod(ns, label_selector=f"{LABEL_JOB_NAME}").items,
    )
    runs = jobs.runs(name)
    assert [r["metadata"]["name"] for r in runs] == [info.job_name]
    pods = jobs.pods(name)
    assert pods and f"{name}-fake-pod" not in [p["metadata"]["name"] for p in pods]
    assert all(p["metadata"]["labels"][LABEL_JOB_NAME] == info.job_name for p in pods)
