"""Screenshots of the dashboard for the README (docs/dashboard-*.png).

    KUBECONFIG=$(make -s kubeconfig) python hack/dashboard_screenshots.py

Against a local cluster with the CRD applied: starts the operator (as the integration tests
do), fills the namespace ``shop`` with the reference scenarios' jobs (welcome mails, a
password reset and its reminder, the recurring clean-ups, a report and its e-mail, a bulk
notification with some failures, a limited queue and a paused one, a batch), starts
``bgjobs dashboard -n shop`` and saves the main pages as Debian's headless Chromium draws
them. The fake pods' shared log (logs/handler.log, see hack/kwok/README.md) is rewritten with
the lines of an import and the progress of a running index rebuild.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "operator")]

from kubernetes import client, config  # noqa: E402
from kubernetes.client.rest import ApiException  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from tests.integration.bgj import FAIL_EXIT, MESSAGE, RUN_FOR, Jobs, manifest  # noqa: E402
from tests.integration.browser import DashboardProcess, navigate, new_driver, poll  # noqa: E402
from tests.integration.conftest import OperatorProcess  # noqa: E402
from tests.integration.queue_helpers import Queues  # noqa: E402
from tests.integration.test_batches import FAIL_INDEXES  # noqa: E402

NAMESPACE = "shop"
DOCS = REPO / "docs"


def scenario(jobs: Jobs, queues: Queues) -> None:
    """The reference scenarios' jobs, some of them failing."""
    queues.create("limited", maxConcurrency=1, priority=5)
    queues.create("exports", maxConcurrency=2, paused=True, rateLimit={"perSecond": 1, "burst": 2})
    for i, user in enumerate(["ann", "bob", "chen", "dara", "eve", "femi"]):
        result = json.dumps({"message_id": f"<{i + 40}@mail.example.com>"})
        jobs.create(
            manifest(
                f"welcome-email-{i + 40}", "mail.send", args=[f"{user}@example.com"],
                kwargs={"subject": "Welcome", "body": "<h1>Hi!</h1>", "html": True},
                pod_annotations={MESSAGE: result},
            )
        )  # fmt: skip
    jobs.create(manifest("password-reset-42", "mail.send", args=["ann@example.com"]))
    jobs.create(
        manifest("password-reset-42-reminder", "mail.send", args=["ann@example.com"], delay="1h")
    )
    jobs.create(manifest("cleanup-temp-files", "cleanup.temp_files", schedule="0 2 * * *"))
    jobs.create(manifest("cache-cleanup-expired", "cache.cleanup_expired", schedule="@hourly"))
    jobs.create(
        manifest(
            "weekly-digest", "mail.send_digest", schedule="30 8 * * 1", timeZone="Europe/Berlin"
        )
    )
    jobs.create(
        manifest(
            "monthly-report-42", "report.generate", args=[42],
            pod_annotations={RUN_FOR: "40s"}, queue="reports",
        )
    )  # fmt: skip
    jobs.create(
        manifest(
            "monthly-report-42-email", "mail.send", args=["ann@example.com"],
            kwargs={"subject": "Your report is ready"}, after={"name": "monthly-report-42"},
        )
    )  # fmt: skip
    jobs.create(
        manifest(
            "import-orders", "orders.import", args=["s3://orders/2026-11-29.csv"],
            pod_annotations={FAIL_EXIT: "1", MESSAGE: "ConnectionError: warehouse API timed out"},
            retries=2,
        )
    )  # fmt: skip
    jobs.create(
        manifest(
            "import-orders-alert", "ops.page_on_call", args=["import-orders failed"],
            after={"name": "import-orders", "when": "Failed"},
        )
    )  # fmt: skip
    jobs.create(
        manifest(
            "charge-card-1017", "payments.charge", args=[1017, "EUR", 49.9],
            pod_annotations={FAIL_EXIT: "2", MESSAGE: "PermanentError: card declined"},
        )
    )  # fmt: skip
    for i in range(24):
        annotations = {RUN_FOR: "2s"}
        if i % 7 == 3:
            annotations = {FAIL_EXIT: "1", MESSAGE: "SMTPServerDisconnected"}
        body = manifest(
            f"notify-user-{1000 + i}", "notifications.send_to_user", args=[1000 + i],
            pod_annotations=annotations, retries=0,
        )  # fmt: skip
        body["metadata"]["labels"] = {"backgroundjobs.dev/batch": "spring-sale"}
        jobs.create(body)
    for i in range(3):
        jobs.create(
            manifest(
                f"rebuild-search-index-{i}", "search.rebuild", args=[f"shard-{i}"],
                pod_annotations={RUN_FOR: "300s"}, queue="limited",
            )
        )  # fmt: skip
    for month in ("09", "10", "11"):
        jobs.create(
            manifest(f"export-invoices-2026-{month}", "billing.export", args=[f"2026-{month}"],
                     queue="exports")
        )  # fmt: skip
    jobs.create(
        manifest(
            "winter-sale-push", "notifications.send_to_user",
            items=[{"args": [2000 + i], "kwargs": {"campaign": "winter"}} for i in range(40)],
            parallelism=8, retries=0, maxFailed=5, pod_annotations={FAIL_INDEXES: "7,23"},
        )
    )  # fmt: skip
    jobs.create(
        manifest("winter-sale-summary", "notifications.report", after={"name": "winter-sale-push"})
    )


IMPORT_LOG = [
    {"level": "info", "message": "importing s3://orders/2026-11-29.csv"},
    {"level": "info", "message": "rows imported", "event": "progress", "done": 1200, "total": 4800},
    {"level": "info", "message": "rows imported", "event": "progress", "done": 2400, "total": 4800},
    {"level": "warning", "message": "warehouse API slow: retrying batch 3 (2.5 s)"},
    {
        "level": "error",
        "message": "import failed",
        "exception": 'Traceback (most recent call last):\n  File "/app/orders/jobs.py", line 41,'
        " in import_orders\n    warehouse.push(batch)\nConnectionError: warehouse API timed out",
    },
]


def write_pod_log(kubeconfig: str) -> None:
    path = Path(kubeconfig).resolve().parent / "logs" / "handler.log"
    start = time.time() - 60
    rebuild = {"level": "info", "message": "documents indexed", "event": "progress",
               "done": 61_500, "total": 150_000}  # fmt: skip
    records = [("import-orders", r) for r in IMPORT_LOG] + [("rebuild-search-index-0", rebuild)]
    with path.open("w") as f:
        for i, (job, record) in enumerate(records):
            moment = datetime.fromtimestamp(start + 9 * i, UTC)
            record = {"time": moment.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
                      "job": job, "namespace": NAMESPACE, **record}  # fmt: skip
            f.write(f"{moment.strftime('%Y-%m-%dT%H:%M:%S.%fZ')} stdout F {json.dumps(record)}\n")


def main() -> int:
    kubeconfig = os.environ["KUBECONFIG"]
    api = config.new_client_from_config(config_file=kubeconfig)
    core = client.CoreV1Api(api)
    try:
        core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=NAMESPACE)))
    except ApiException as exc:
        if exc.status != 409:
            raise
    work = Path(tempfile.mkdtemp(prefix="dashboard-screenshots-"))
    operator = OperatorProcess(
        kubeconfig, work, {"BACKGROUNDJOBS_QUEUES": '{"limited": {"maxConcurrency": 1}}'}
    )
    operator.start()
    dash = None
    driver = None
    try:
        jobs = Jobs(api, NAMESPACE)
        if jobs.get("welcome-email-40") is None:
            scenario(jobs, Queues(api, NAMESPACE))
            time.sleep(20)  # the runs finish, the retries fail, the continuation waits
            for name in ("cleanup-temp-files", "cache-cleanup-expired"):
                jobs.annotate(name, "backgroundjobs.dev/trigger", "screenshot")
            time.sleep(10)
        write_pod_log(kubeconfig)
        time.sleep(12)  # the operator reads the running pods' progress every 5 s
        dash = DashboardProcess(kubeconfig, work / "dashboard.log", "-n", NAMESPACE)
        driver = new_driver(work / "chromium")
        driver.set_window_size(1440, 1000)
        navigate(driver, dash.url)
        pages = [
            ("overview", "/", "[data-phase-count=total] .n"),
            ("failed", "/jobs?phase=Failed", "tr[data-job]"),
            ("job", f"/jobs/{NAMESPACE}/import-orders", '#attempts tr[data-attempt="3"]'),
            ("recurring", "/recurring", "#recurring table"),
            ("running", "/jobs?phase=Running", "tr[data-job] [data-progress]"),
            ("queues", "/queues", "tr[data-queue-row]"),
            ("batches", "/batches", "tr[data-batch] [data-items]"),
        ]
        for name, path, ready in pages:
            navigate(driver, dash.base + path)
            poll(name, lambda r=ready: driver.find_elements(By.CSS_SELECTOR, r))
            time.sleep(2)  # charts and the log stream settle
            height = driver.execute_script("return document.documentElement.scrollHeight")
            driver.set_window_size(1440, min(max(900, height + 20), 2400))
            time.sleep(0.5)
            out = DOCS / f"dashboard-{name}.png"
            driver.save_screenshot(str(out))
            print(out)
            driver.set_window_size(1440, 1000)
    finally:
        if driver is not None:
            driver.quit()
        if dash is not None:
            dash.stop()
        operator.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
