"""Restart safety: SIGKILL the operator with jobs of every kind in flight."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest
from tests.integration.bgj import RUN_FOR, Jobs, manifest, wait_for

pytestmark = pytest.mark.integration


def test_sigkill_with_jobs_in_flight_loses_and_duplicates_nothing(bgjobs: Jobs, operator) -> None:  # type: ignore[no-untyped-def]
    due = (datetime.now(UTC) + timedelta(seconds=4)).strftime("%Y-%m-%dT%H:%M:%SZ")
    bgjobs.create(manifest("running", pod_annotations={RUN_FOR: "6s"}))
    bgjobs.create(manifest("delayed", runAt=due))
    bgjobs.create(manifest("parent", pod_annotations={RUN_FOR: "5s"}))
    bgjobs.create(manifest("child", after={"name": "parent"}))
    wait_for("running to run", lambda: bgjobs.status("running").get("phase") == "Running")
    wait_for("child to wait", lambda: bgjobs.status("child").get("phase") == "Waiting")
    operator.kill()
    try:
        # while it is down: more work arrives, the delayed job falls due, the parent finishes
        for i in range(5):
            bgjobs.create(manifest(f"burst-{i}"))
        time.sleep(7)
    finally:
        operator.start()
    for name in ("running", "delayed", "parent", "child", *[f"burst-{i}" for i in range(5)]):
        st = bgjobs.wait_phase(name, "Succeeded", timeout=120)
        assert st["runs"] == 1, name
        assert [j.metadata.name for j in bgjobs.jobs(name)] == [f"{name}-1"], name
    # killed again right after starting: still exactly one Job per run
    operator.kill()
    operator.start()
    time.sleep(2)
    for name in ("running", "child", "burst-0"):
        assert len(bgjobs.jobs(name)) == 1
