"""The operator crashes while a parent finishes: after a restart its child starts exactly once.

The operator keeps no state of its own (API.md §1 "actions": a restart never repeats an
action); everything is derived from the objects, and Job names are deterministic.
"""

from __future__ import annotations

import time

import pytest
from tests.integration.bgj import RUN_FOR, Jobs, manifest, wait_for
from tests.integration.harness import OperatorProcess

pytestmark = pytest.mark.integration


def job_complete(bgjobs: Jobs, name: str) -> bool:
    job = bgjobs.job(name)
    conditions = (job and job.status and job.status.conditions) or []
    return any(x.type == "Complete" and x.status == "True" for x in conditions)


def test_child_starts_exactly_once_after_a_crash_while_the_parent_finishes(
    bgjobs: Jobs, operator: OperatorProcess
) -> None:
    bgjobs.create(manifest("parent", pod_annotations={RUN_FOR: "3s"}))
    bgjobs.create(manifest("child", after={"name": "parent"}))
    try:
        bgjobs.wait_phase("parent", "Running", timeout=60)  # its Job created and recorded
        (parent_job,) = bgjobs.jobs("parent")
        operator.kill()  # SIGKILL while the parent's pod still runs
        assert not job_complete(bgjobs, parent_job.metadata.name), "parent finished too early"
        assert bgjobs.status("parent")["phase"] == "Running"

        wait_for(
            "the parent's Job to complete with no operator",
            lambda: job_complete(bgjobs, parent_job.metadata.name),
            timeout=90,
        )
        assert bgjobs.status("parent")["phase"] == "Running"  # nobody recorded it
        assert bgjobs.jobs("child") == []
    finally:
        if operator.proc is None or operator.proc.poll() is not None:
            operator.start()

    parent = bgjobs.wait_phase("parent", "Succeeded", timeout=120)
    assert parent["runs"] == 1
    st = bgjobs.wait_phase("child", "Succeeded", timeout=120)
    time.sleep(3)  # nothing more comes
    child_jobs = bgjobs.jobs("child")
    assert [j.metadata.name for j in child_jobs] == [st["jobName"]]
    assert bgjobs.status("child")["runs"] == 1
    assert len(bgjobs.jobs("parent")) == 1
    assert bgjobs.event_reasons("child").count("Started") == 1
