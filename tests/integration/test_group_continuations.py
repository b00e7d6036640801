"""Continuations after a group of separate BackgroundJobs (``spec.after.selector`` with
``count``; API.md "continuations after a group"): the child waits until ``count`` members
exist and all of them finished, runs once, and an operator killed meanwhile changes nothing.
Timeouts are generous: outcomes only.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.integration.bgj import RUN_FOR, Jobs, manifest, wait_for
from tests.integration.harness import OperatorProcess

from backgroundjobs.api import constants as c
from backgroundjobs.api.times import parse_time
from backgroundjobs.client import Client

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "job_images" / "examples"))
from bgj_examples import notifications  # registers the handlers

pytestmark = pytest.mark.integration

SETTLE = 4.0  # seconds to watch that nothing more happens


@pytest.fixture
def jobs(kubeconfig: str, namespace: str, operator: object) -> Iterator[Client]:
    with Client(kubeconfig=kubeconfig, namespace=namespace) as client:
        yield client


def member(name: str, group: str, **pod_annotations: str) -> dict[str, Any]:
    body = manifest(name, pod_annotations=pod_annotations or None)
    body["metadata"]["labels"] = {c.LABEL_BATCH: group}
    return body


def group_child(name: str, group: str, count: int) -> dict[str, Any]:
    return manifest(
        name, after={"selector": {"matchLabels": {c.LABEL_BATCH: group}}, "count": count}
    )


def waiting_reason(bgjobs: Jobs, name: str) -> str | None:
    cnd = bgjobs.condition(name, "Waiting")
    return cnd["reason"] if cnd and cnd["status"] == "True" else None


def assert_ran_once_after(bgjobs: Jobs, child: str, members: list[str]) -> None:
    st = bgjobs.wait_phase(child, "Succeeded", timeout=180)
    time.sleep(SETTLE)  # nothing more comes
    assert bgjobs.status(child)["runs"] == 1
    assert [j.metadata.name for j in bgjobs.jobs(child)] == [st["jobName"]]
    assert bgjobs.event_reasons(child).count("Started") == 1
    last_member = max(parse_time(bgjobs.status(m)["finishedAt"]) for m in members)
    (job,) = bgjobs.jobs(child)
    assert job.metadata.creation_timestamp >= last_member.replace(microsecond=0)


def test_child_waits_for_count_members_then_runs_once(bgjobs: Jobs) -> None:
    bgjobs.create(group_child("summary", "g1", count=3))
    bgjobs.create(member("g1-0", "g1"))
    bgjobs.create(member("g1-1", "g1"))
    bgjobs.create(member("other", "g2"))  # another group: never a member
    bgjobs.wait_phase("g1-0", "Succeeded", timeout=120)
    bgjobs.wait_phase("g1-1", "Succeeded", timeout=120)
    bgjobs.wait_phase("other", "Succeeded", timeout=120)
    wait_for(
        "the child to wait for the third member",
        lambda: waiting_reason(bgjobs, "summary") == c.Reason.GROUP_INCOMPLETE,
        timeout=60,
    )
    time.sleep(SETTLE)
    assert bgjobs.status("summary")["phase"] == "Waiting"
    assert "2 of 3 members exist" in bgjobs.status("summary")["message"]
    assert bgjobs.jobs("summary") == []

    bgjobs.create(member("g1-2", "g1"))
    assert_ran_once_after(bgjobs, "summary", ["g1-0", "g1-1", "g1-2"])


def test_continue_batch_with_after_enqueue_many(jobs: Client, bgjobs: Jobs) -> None:
    results = jobs.enqueue_many(
        notifications.send_to_user,
        [((f"user-{i}", "Hello"), {}) for i in range(4)],
        name_prefix="notify",
    )
    assert results == [f"notify-{i}" for i in range(4)]
    child = jobs.continue_batch_with(results, "test.echo", "all sent")
    spec = bgjobs.get(child)["spec"]  # type: ignore[index]
    assert spec["after"]["selector"] == {"matchLabels": {c.LABEL_BATCH: "notify"}}
    assert spec["after"]["count"] == 4
    assert_ran_once_after(bgjobs, child, [str(r) for r in results])


def test_operator_killed_while_the_group_runs(bgjobs: Jobs, operator: OperatorProcess) -> None:
    members = [f"k-{i}" for i in range(3)]
    bgjobs.create(group_child("after-k", "k", count=3))
    for name in members:
        bgjobs.create(member(name, "k", **{RUN_FOR: "4s"}))
    try:
        for name in members:
            bgjobs.wait_phase(name, "Running", timeout=90)
        operator.kill()  # SIGKILL while the members' pods run
        assert bgjobs.jobs("after-k") == []
        wait_for(
            "the members' Jobs to complete with no operator",
            lambda: all(
                any(
                    x.type == "Complete" and x.status == "True" for x in (j.status.conditions or [])
                )
                for name in members
                for j in bgjobs.jobs(name)
            ),
            timeout=120,
        )
        assert bgjobs.jobs("after-k") == []
    finally:
        if operator.proc is None or operator.proc.poll() is not None:
            operator.start()
    assert_ran_once_after(bgjobs, "after-k", members)
