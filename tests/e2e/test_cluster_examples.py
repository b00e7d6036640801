"""examples/ applied unchanged on a real node, with what examples/README.md says they need
(Secret `smtp`, PVC `app-data`), and their effect checked."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from tests.e2e.conftest import OperatorRelease
from tests.e2e.incluster import node_volume, start_smtp_sink
from tests.e2e.realcluster import ROOT, Jobs, kubectl, wait_until

# The first test of a session may start the cluster, build the images and install the chart.
pytestmark = [pytest.mark.e2e, pytest.mark.timeout(1800)]

EXAMPLES = sorted((ROOT / "examples").glob("*.yaml"))
HOUR = 3600


def test_the_examples_run_for_real(
    jobs: Jobs,
    core_v1: client.CoreV1Api,
    cluster_images: dict[str, str],
    operator_release: OperatorRelease,
) -> None:
    namespace = jobs.namespace
    sink = start_smtp_sink(namespace, cluster_images["examples"])
    settings = {e["name"]: e["value"] for e in sink.env()}
    kubectl(
        "create", "secret", "generic", "smtp", "-n", namespace,
        *(f"--from-literal={k}={v}" for k, v in settings.items()),
    )  # fmt: skip
    volume = node_volume(
        core_v1, namespace, operator_release.namespace, cluster_images["examples"], "app-data"
    )
    try:
        now = time.time()
        cache = {"a": now - 10, "b": now + HOUR, "c": now - HOUR}
        volume.run_as_root(
            f"""
            import json, os
            root = os.environ["VOLUME"]
            for d in ("reports", "tmp", "cache"):
                os.makedirs(f"{{root}}/{{d}}", exist_ok=True)
            for name, hours in {{"old.tmp": 30, "new.tmp": 1}}.items():
                with open(f"{{root}}/tmp/{{name}}", "w") as f:
                    f.write("x")
                os.utime(f"{{root}}/tmp/{{name}}", ({now} - hours * 3600,) * 2)
            for key, expires in {json.dumps(cache)}.items():
                with open(f"{{root}}/cache/{{key}}.json", "w") as f:
                    json.dump({{"key": key, "expiresAt": expires, "value": 1}}, f)
            for dirpath, dirs, files in os.walk(root):
                for entry in dirs + files:
                    os.chown(os.path.join(dirpath, entry), 65532, 65532)
            """
        )
        for manifest in EXAMPLES:
            kubectl("apply", "-n", namespace, "-f", str(manifest))
        # What would run later runs now: the reminder and the recurring clean-ups.
        stamp = datetime.now(UTC).isoformat()
        for name in ("password-reset-42-reminder", "cleanup-temp-files", "cleanup-expired-cache"):
            jobs.annotate(name, "backgroundjobs.dev/trigger", stamp)

        for name in (
            "welcome-email-42",
            "password-reset-42",
            "password-reset-42-reminder",
            "monthly-report-42",
            "monthly-report-42-email",
            "delayed-echo",
            "terms-changed",
            "terms-changed-summary",
        ):
            status = jobs.wait_phase(name, timeout=420)
            assert status["phase"] == "Succeeded", (name, status)

        def recurring_done(name: str) -> dict[str, Any] | None:
            status = jobs.status(name)
            return status if status.get("lastSuccessAt") else None

        for name in ("cleanup-temp-files", "cleanup-expired-cache"):
            wait_until(f"a successful run of {name}", lambda n=name: recurring_done(n), timeout=300)

        messages = sink.messages()
        subjects = sorted(m["subject"] for m in messages)
        assert subjects == [
            "Did you reset your password?",
            "Reset your password",
            "Terms update: notifications sent",
            "Welcome to the shop",
            "Your report is ready",
        ]
        [summary] = [m for m in messages if m["subject"] == "Terms update: notifications sent"]
        assert "20 of 20 notifications were sent; 0 failed." in summary["body"]
        # The reset link came from the Secret the job names (kwargsFrom), not from its spec.
        [reset_mail] = [m for m in messages if m["subject"] == "Reset your password"]
        assert "https://shop.example/reset/abc" in reset_mail["body"]
        for pod in jobs.pods("password-reset-42"):
            assert "shop.example/reset" not in json.dumps(pod.spec.to_dict(), default=str)
        report_path = jobs.status("monthly-report-42")["result"]
        [report_mail] = [m for m in messages if m["subject"] == "Your report is ready"]
        assert report_mail["attachments"] == [Path(report_path).name]
        left = volume.run_as_root(
            """
            import os
            root = os.environ["VOLUME"]
            print(sorted(os.listdir(root + "/tmp")), sorted(os.listdir(root + "/cache")))
            """
        )
        assert left.strip() == str(["new.tmp"]) + " " + str(["b.json"])
    finally:
        volume.delete()
