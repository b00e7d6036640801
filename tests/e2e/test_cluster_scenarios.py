"""The reference scenarios with the example image, for real: real pods on a real node, mail
through an SMTP sink behind a Service, files on a volume, jobs enqueued from inside a pod."""

from __future__ import annotations

import subprocess
from datetime import datetime
from typing import Any

import pytest
from kubernetes import client
from tests.e2e.conftest import OperatorRelease
from tests.e2e.incluster import node_volume, start_smtp_sink
from tests.e2e.realcluster import Jobs, background_job, kubectl, wait_until

# The first test of a session may start the cluster, build the images and install the chart.
pytestmark = [pytest.mark.e2e, pytest.mark.timeout(1800)]


def handler_template(
    env: list[dict[str, str]] | None = None,
    mounts: list[dict[str, Any]] | None = None,
    volumes: list[dict[str, Any]] | None = None,
    **pod_spec: Any,
) -> dict[str, Any]:
    container: dict[str, Any] = {"name": "handler"}
    if env:
        container["env"] = env
    if mounts:
        container["volumeMounts"] = mounts
    spec: dict[str, Any] = {"containers": [container], **pod_spec}
    if volumes:
        spec["volumes"] = volumes
    return {"spec": spec}


def _time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def test_welcome_email_is_delivered_once_although_the_first_attempt_fails(
    jobs: Jobs, cluster_images: dict[str, str]
) -> None:
    sink = start_smtp_sink(jobs.namespace, cluster_images["examples"], fail_first=1)
    welcome = background_job(
        "welcome-email-42",
        "mail.send",
        ["new.user@example.com"],
        {"subject": "Welcome to the shop", "body": "<h1>Welcome!</h1>", "html": True},
        podTemplate=handler_template(env=sink.env()),
    )
    jobs.create(welcome)
    status = jobs.wait_phase("welcome-email-42", timeout=420)
    assert status["phase"] == "Succeeded", status
    assert status["result"]["status"] == "sent"
    # One success after failures: the sink refused the first delivery, so at least one
    # attempt failed; an attempt that could not reach the sink at all (the Service's route
    # not yet in place on a loaded node) is one more failure the retries absorb.
    codes = jobs.handler_exit_codes("welcome-email-42")
    assert codes.count(0) == 1 and codes.count(1) == len(codes) - 1 >= 1, codes
    assert len(sink.refused()) == 1
    [message] = sink.messages()
    assert message["to"] == ["new.user@example.com"]
    assert message["subject"] == "Welcome to the shop"
    assert message["messageId"] == status["result"]["messageId"]


def test_password_reset_now_and_a_reminder_after_its_delay(
    jobs: Jobs, cluster_images: dict[str, str]
) -> None:
    sink = start_smtp_sink(jobs.namespace, cluster_images["examples"])
    template = handler_template(env=sink.env())
    reset = background_job(
        "password-reset-42",
        "mail.send",
        ["user@example.com"],
        {"subject": "Reset your password", "body": "Use this link"},
        podTemplate=template,
        queue="critical",
    )
    reminder = background_job(
        "password-reset-42-reminder",
        "mail.send",
        ["user@example.com"],
        {"subject": "Did you reset your password?", "body": "Your link expires soon."},
        podTemplate=template,
        delay="20s",
    )
    jobs.create(reset, reminder)
    scheduled = jobs.wait_phase("password-reset-42-reminder", "Scheduled", timeout=60)
    assert scheduled["dueAt"]
    assert jobs.wait_phase("password-reset-42")["phase"] == "Succeeded"
    later = jobs.wait_phase("password-reset-42-reminder", timeout=300)
    assert later["phase"] == "Succeeded", later
    created = _time(jobs.get("password-reset-42-reminder")["metadata"]["creationTimestamp"])
    assert (_time(later["startedAt"]) - created).total_seconds() >= 20
    subjects = sorted(m["subject"] for m in sink.messages())
    assert subjects == ["Did you reset your password?", "Reset your password"]


def test_report_then_email_with_the_report_attached_from_a_volume(
    jobs: Jobs,
    core_v1: client.CoreV1Api,
    cluster_images: dict[str, str],
    operator_release: OperatorRelease,
) -> None:
    sink = start_smtp_sink(jobs.namespace, cluster_images["examples"])
    volume = node_volume(
        core_v1, jobs.namespace, operator_release.namespace, cluster_images["examples"]
    )
    try:
        pod_volume, mount = volume.mount("/reports")
        report_env = [{"name": "BGJ_REPORT_DIR", "value": "/reports"}]
        jobs.create(
            background_job(
                "monthly-report-42",
                "report.generate",
                kwargs={"user_id": 42, "title": "Monthly report"},
                podTemplate=handler_template(report_env, [mount], [pod_volume]),
            ),
            background_job(
                "monthly-report-42-email",
                "mail.send",
                ["user42@example.com"],
                {
                    "subject": "Your report is ready",
                    "body": "Attached.",
                    "attach_parent_result": True,
                },
                podTemplate=handler_template(sink.env(), [mount], [pod_volume]),
                after={"name": "monthly-report-42"},
            ),
        )
        parent = jobs.wait_phase("monthly-report-42", timeout=300)
        assert parent["phase"] == "Succeeded", parent
        path = parent["result"]
        assert path.startswith("/reports/") and path.endswith(".pdf")
        child = jobs.wait_phase("monthly-report-42-email", timeout=300)
        assert child["phase"] == "Succeeded", child
        [message] = sink.messages()
        assert message["attachments"] == [path.rsplit("/", 1)[1]]
        on_node = volume.run_as_root("import os; print(sorted(os.listdir(os.environ['VOLUME'])))")
        assert path.rsplit("/", 1)[1] in on_node
    finally:
        volume.delete()


def test_cleanup_deletes_only_the_old_files_on_a_volume(
    jobs: Jobs,
    core_v1: client.CoreV1Api,
    cluster_images: dict[str, str],
    operator_release: OperatorRelease,
) -> None:
    volume = node_volume(
        core_v1, jobs.namespace, operator_release.namespace, cluster_images["examples"]
    )
    try:
        volume.run_as_root(
            """
            import os, time
            root = os.environ["VOLUME"]
            os.makedirs(f"{root}/sub", exist_ok=True)
            ages = {"old.tmp": 30, "sub/old.bin": 48, "new.tmp": 1, "sub/new.bin": 23}
            for name, hours in ages.items():
                with open(f"{root}/{name}", "w") as f:
                    f.write("x")
                when = time.time() - hours * 3600
                os.utime(f"{root}/{name}", (when, when))
            for dirpath, dirs, files in os.walk(root):
                for entry in dirs + files:
                    os.chown(os.path.join(dirpath, entry), 65532, 65532)
            """
        )
        pod_volume, mount = volume.mount("/tmp/app")
        jobs.create(
            background_job(
                "cleanup-temp-files",
                "cleanup.temp_files",
                kwargs={"directory": "/tmp/app", "older_than_hours": 24},
                podTemplate=handler_template(mounts=[mount], volumes=[pod_volume]),
            )
        )
        status = jobs.wait_phase("cleanup-temp-files")
        assert status["phase"] == "Succeeded", status
        assert status["result"] == 2
        remaining = volume.run_as_root(
            """
            import os
            root = os.environ["VOLUME"]
            print(sorted(os.path.relpath(os.path.join(d, f), root)
                         for d, _, files in os.walk(root) for f in files))
            """
        )
        assert remaining.strip() == str(["new.tmp", "sub/new.bin"])
    finally:
        volume.delete()


def test_a_recurring_job_runs_on_its_schedule(jobs: Jobs) -> None:
    jobs.create(
        background_job("every-minute", "test.echo", ["tick"], {"sleep": 0}, schedule="* * * * *")
    )

    def a_successful_run() -> dict[str, Any] | None:
        status = jobs.status("every-minute")
        return status if status.get("lastSuccessAt") else None

    status = wait_until("a successful run of the recurring job", a_successful_run, timeout=200)
    assert status["runs"] >= 1
    pods = jobs.pods("every-minute")
    assert pods and all(p.status.phase == "Succeeded" for p in pods if p.status.phase != "Running")


def test_bulk_notifications_enqueued_from_inside_a_pod(
    jobs: Jobs, core_v1: client.CoreV1Api
) -> None:
    # The in-cluster client of send_bulk acts as this ServiceAccount: the chart's
    # backgroundjobs-edit ClusterRole, bound in this namespace only.
    namespace = jobs.namespace
    kubectl("create", "serviceaccount", "notifier", "-n", namespace)
    kubectl(
        "create", "rolebinding", "notifier-edit", "-n", namespace,
        "--clusterrole=backgroundjobs-edit", f"--serviceaccount={namespace}:notifier",
    )  # fmt: skip
    users = [f"user-{i:03d}" for i in range(200)]
    jobs.create(
        background_job(
            "sale-today",
            "notifications.send_bulk",
            kwargs={"message": "Sale today", "user_ids": users, "batch_size": 50},
            podTemplate={"spec": {"serviceAccountName": "notifier"}},
        )
    )
    bulk = jobs.wait_phase("sale-today", timeout=300)
    assert bulk["phase"] == "Succeeded", bulk
    assert bulk["result"] == {"enqueued": 200, "alreadyEnqueued": 0, "failed": 0, "batches": 4}

    def all_sent() -> list[dict[str, Any]] | None:
        children = [j for j in jobs.list() if j["spec"]["handler"] == "notifications.send_to_user"]
        done = [
            j for j in children if (j.get("status") or {}).get("phase") in ("Succeeded", "Failed")
        ]
        return children if len(children) == 200 and len(done) == 200 else None

    children = wait_until("200 notifications delivered", all_sent, timeout=1500, every=5)
    results = [j["status"]["result"] for j in children if j["status"]["phase"] == "Succeeded"]
    assert len(results) == 200
    assert sorted(r["userId"] for r in results) == users
    assert {r["channel"] for r in results} == {"log"}


def test_describe_and_logs_show_the_real_pod(jobs: Jobs) -> None:
    jobs.create(
        background_job(
            "report-7", "report.generate", kwargs={"user_id": 7, "days": 60, "work_seconds": 6},
            podTemplate=handler_template(
                [{"name": "BGJ_REPORT_DIR", "value": "/tmp/reports"}],
                [{"name": "tmp", "mountPath": "/tmp"}],
                [{"name": "tmp", "emptyDir": {}}],
            ),
        )
    )  # fmt: skip
    logs = _bgjobs("logs", "-f", "-n", jobs.namespace, "report-7", timeout=300)
    assert "report written" in logs, logs
    assert "aggregating daily activity" in logs, logs
    assert "60/60" in logs or "100%" in logs, logs
    assert jobs.wait_phase("report-7")["phase"] == "Succeeded"
    describe = _bgjobs("describe", "-n", jobs.namespace, "report-7")
    for kubelet_event in ("Scheduled", "Pulled", "Created", "Started"):
        assert kubelet_event in describe, describe


def _bgjobs(*args: str, timeout: float = 120) -> str:
    done = subprocess.run(["bgjobs", *args], capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, done.stderr
    return done.stdout
