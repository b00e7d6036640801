"""Progress in status with a real handler on a real node: the runtime's progress records, read
by the operator (installed by the chart, with its RBAC) from the pod's log into
status.progress while the pod runs, and kept after it finished. kwok cannot run the runtime:
tests/integration/test_progress.py covers the operator's side with a simulated log."""

from __future__ import annotations

from typing import Any

import pytest
from tests.e2e.conftest import OperatorRelease
from tests.e2e.realcluster import Jobs, background_job, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(1800)]

SLEEP = 40  # test.echo reports progress once a second, out of SLEEP steps


def test_a_running_handler_s_progress_shows_in_status_and_stays(
    jobs: Jobs, cluster_images: dict[str, str], operator_release: OperatorRelease
) -> None:
    jobs.create(background_job("slow-echo", "test.echo", ["counting"], {"sleep": SLEEP}))

    def running_progress() -> dict[str, Any] | None:
        status = jobs.status("slow-echo")
        progress = status.get("progress")
        return progress if status.get("phase") == "Running" and progress else None

    seen = wait_until("status.progress while it runs", running_progress, timeout=300)
    assert seen["total"] == SLEEP and 0 <= seen["done"] < SLEEP
    assert seen["message"] == "sleeping"
    assert seen["summary"].startswith(f"{seen['done']:g}/{SLEEP}")
    assert seen["pod"].startswith("slow-echo-1-")

    # it moves on while the handler runs
    wait_until(
        "a later progress",
        lambda: (jobs.status("slow-echo").get("progress") or {}).get("done", -1) > seen["done"],
        timeout=60,
    )
    final = jobs.wait_phase("slow-echo", timeout=300)
    assert final["phase"] == "Succeeded", final
    assert final["progress"]["total"] == SLEEP and final["progress"]["done"] > seen["done"]
