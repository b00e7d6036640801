"""Where a held recurring run stands (cli/_heldruns.py): its place among the queue's waiting
runs in the operator's order, and why it waits, as ``describe`` and ``get -o wide`` show."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from backgroundjobs.cli._heldruns import held_runs, is_held, queue_order, why_held
from backgroundjobs.client import JobInfo

pytestmark = pytest.mark.unit
Body = dict[str, Any]
HELD_WHY = "held: tick-2, tick-3 (queue bulk is at its concurrency limit (2))"


def run(name: str, created: str, *, suspend: bool = True, finished: str | None = None) -> Body:
    conditions = [{"type": finished, "status": "True"}] if finished else []
    return {
        "metadata": {"name": name, "creationTimestamp": created},
        "spec": {"suspend": suspend},
        "status": {"conditions": conditions},
    }


def recurring(name: str, queued: Body | None = None) -> JobInfo:
    conditions = [queued] if queued else []
    raw = {
        "metadata": {"name": name, "namespace": "ns", "creationTimestamp": "2026-11-30T10:00:00Z"},
        "status": {"conditions": conditions},
    }
    return JobInfo(
        name=name, namespace="ns", handler="h", type="Recurring", phase="Scheduled",
        queue="bulk", raw=raw,
    )  # fmt: skip


QUEUED = {"type": "Queued", "status": "True", "reason": "QueueFull", "message": HELD_WHY}


def test_only_a_suspended_unfinished_run_is_held() -> None:
    assert is_held(run("a", "t"))
    assert not is_held(run("a", "t", suspend=False))
    assert not is_held(run("a", "t", finished="Complete"))
    assert not is_held(run("a", "t", finished="Failed"))


def test_each_held_run_gets_its_place_among_queued_jobs_and_other_jobs_held_runs() -> None:
    runs = [
        run("tick-1", "2026-11-30T10:01:00Z", suspend=False),  # running: not waiting
        run("tick-2", "2026-11-30T10:02:00Z"),
        run("tick-3", "2026-11-30T10:03:00Z"),
    ]
    order = [
        ("2026-11-30T10:02:30Z", "mail-7"),  # a Queued job between the two
        ("2026-11-30T10:02:00Z", "tick/tick-2"),
        ("2026-11-30T10:03:00Z", "tick/tick-3"),
        ("2026-11-30T10:00:00Z", "alpha/alpha-1"),  # another recurring job's, earlier
        ("2026-11-30T10:03:00Z", "audit"),  # same second: the name decides
    ]
    lines = [h.line() for h in held_runs(recurring("tick", QUEUED), runs, order)]
    why = "(QueueFull: queue bulk is at its concurrency limit (2))"
    assert lines == [
        f"run tick-2: position 2 of 5 in queue bulk {why}",
        f"run tick-3: position 5 of 5 in queue bulk {why}",
    ]


def test_why_is_the_queued_conditions_reason_and_the_queues_own_words() -> None:
    assert why_held({}) == ""
    assert why_held(QUEUED) == " (QueueFull: queue bulk is at its concurrency limit (2))"
    other = {"reason": "QueuePaused", "message": "queue bulk is paused"}
    assert why_held(other) == " (QueuePaused: queue bulk is paused)"


class FakeClient:
    """The two reads queue_order makes: jobs by queue/phase/type, and a job's runs."""

    def __init__(self, jobs: list[JobInfo], runs: dict[str, list[Body]]) -> None:
        self.jobs, self._runs = jobs, runs

    async def list(self, **selected: Any) -> list[JobInfo]:
        return [
            j for j in self.jobs
            if selected.get("phase") in (None, j.phase) and selected.get("type") in (None, j.type)
        ]  # fmt: skip

    async def runs(self, name: str, **_: Any) -> list[Body]:
        return self._runs[name]


def test_the_queue_order_counts_queued_jobs_and_only_held_runs_of_waiting_recurring_jobs() -> None:
    queued = JobInfo(
        name="mail-7", namespace="ns", handler="h", type="Immediate", phase="Queued",
        queue="bulk", raw={"metadata": {"creationTimestamp": "2026-11-30T10:02:30Z"}},
    )  # fmt: skip
    client = FakeClient(
        [queued, recurring("tick", QUEUED), recurring("idle")],
        {"tick": [run("tick-2", "2026-11-30T10:02:00Z")], "idle": [run("idle-1", "x")]},
    )
    order = asyncio.run(queue_order(client, "ns", "bulk"))  # type: ignore[arg-type]
    assert sorted(order) == [
        ("2026-11-30T10:02:00Z", "tick/tick-2"),
        ("2026-11-30T10:02:30Z", "mail-7"),
    ]


def test_a_jobs_time_as_the_client_gives_it_sorts_as_the_same_time_as_a_custom_objects() -> None:
    """The client turns a Job's creationTimestamp into ``+00:00``: same second, the name
    decides, as in the operator."""
    queued = JobInfo(
        name="a-waiter", namespace="ns", handler="h", type="Immediate", phase="Queued",
        queue="bulk", raw={"metadata": {"creationTimestamp": "2026-11-30T10:02:00Z"}},
    )  # fmt: skip
    runs = [run("tick-2", "2026-11-30T10:02:00+00:00")]
    client = FakeClient([queued, recurring("tick", QUEUED)], {"tick": runs})
    order = asyncio.run(queue_order(client, "ns", "bulk"))  # type: ignore[arg-type]
    lines = [h.line() for h in held_runs(recurring("tick", QUEUED), runs, order)]
    assert lines[0].startswith("run tick-2: position 2 of 2 in queue bulk")
