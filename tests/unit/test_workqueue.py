"""The operator's work queue (controller/workqueue.py) and the loop's status stage
(controller/loop.py): one worker per key, deduplication, and status writes that wait while
Jobs are being created."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from backgroundjobs.api import constants as c
from backgroundjobs.controller.cache import routine
from backgroundjobs.controller.loop import ControlLoop
from backgroundjobs.controller.settings import Settings
from backgroundjobs.controller.workqueue import ROUTINE_EVERY, WorkQueue

pytestmark = pytest.mark.unit


def test_a_key_is_queued_once_and_never_handed_to_two_workers() -> None:
    async def case() -> None:
        q = WorkQueue()
        q.add(("ns", "a"))
        q.add(("ns", "a"))
        assert len(q) == 1
        key = await q.get()
        q.add(("ns", "a"))  # changed while a worker has it: kept for later, not handed out
        assert len(q) == 0
        q.done(key)
        assert len(q) == 1
        assert await q.get() == ("ns", "a")

    asyncio.run(case())


def test_empty_is_set_exactly_while_no_key_waits() -> None:
    async def case() -> None:
        q = WorkQueue()
        assert q.empty.is_set()
        q.add(("ns", "a"))
        q.add(("ns", "b"))
        assert not q.empty.is_set()
        await q.get()
        assert not q.empty.is_set()
        key = await q.get()
        assert q.empty.is_set()
        q.add(key)  # processing: not queued yet
        assert q.empty.is_set()
        q.done(key)  # re-queued
        assert not q.empty.is_set()

    asyncio.run(case())


def _loop(**settings: Any) -> ControlLoop:
    # The status stage never touches the API itself: the deferred step does.
    return ControlLoop(Settings(**settings), kube=None)  # type: ignore[arg-type]


async def _writer_with_one_status(
    r: ControlLoop, waiting: tuple[tuple[str, str], ...] = ()
) -> tuple[asyncio.Event, asyncio.Task[Any]]:
    """A status writer with one deferred status to write while ``waiting`` wait for a worker."""
    written = asyncio.Event()

    async def finish() -> None:
        written.set()

    key = ("ns", "started")
    r.work.add(key)
    assert await r.work.get() == key  # as a worker that created the Job, deferring its status
    for other in waiting:
        r.work.add(other)
    r._statuses.put_nowait((key, finish, asyncio.get_running_loop().time()))
    return written, asyncio.create_task(r._status_writer())


def test_status_write_waits_while_other_keys_wait_then_goes() -> None:
    async def case() -> None:
        r = _loop()
        # another object waits for a worker
        written, writer = await _writer_with_one_status(r, (("ns", "burst-1"),))
        try:
            await asyncio.sleep(0.3)
            assert not written.is_set(), "the status was written while Jobs were still to create"
            assert await r.work.get() == ("ns", "burst-1")  # a worker took the last one
            await asyncio.wait_for(written.wait(), 5)
            assert r.work.empty.is_set()
        finally:
            writer.cancel()

    asyncio.run(case())


def _queue_length_once_written(
    timeout: float, waiting: tuple[tuple[str, str], ...] = (), **settings: Any
) -> int:
    """Run a status writer until its one status is written (TimeoutError after ``timeout``);
    how many objects still waited for a worker then."""

    async def case() -> int:
        r = _loop(**settings)
        written, writer = await _writer_with_one_status(r, waiting)
        try:
            await asyncio.wait_for(written.wait(), timeout)
            return len(r.work)
        finally:
            writer.cancel()

    return asyncio.run(case())


def test_status_write_waits_at_most_the_hold() -> None:
    # never taken: a backlog that lasts
    assert _queue_length_once_written(5, (("ns", "backlog"),), status_hold=0.5) == 1


def test_status_write_goes_at_once_when_nothing_waits() -> None:
    _queue_length_once_written(1)  # the hold is 10 s: not held


def test_no_hold_when_the_hold_is_zero() -> None:
    # written while another object still waited
    assert _queue_length_once_written(1, (("ns", "burst-1"),), status_hold=0) == 1


# ------------------------------------------------------------------ lanes


def test_an_urgent_key_goes_before_routine_ones_which_are_not_starved() -> None:
    async def case() -> None:
        q = WorkQueue()
        q.add_all([("ns", f"done-{i}") for i in range(3)], routine=True)
        q.add(("ns", "due"))
        assert await q.get() == ("ns", "due")  # before the finished jobs listed earlier
        for i in range(ROUTINE_EVERY + 2):
            q.add(("ns", f"new-{i}"))
        taken = [await q.get() for _ in range(ROUTINE_EVERY)]
        # after ROUTINE_EVERY urgent keys in a row ("due" and 7 new ones), one routine key
        # has its turn
        assert taken[-1] == ("ns", "done-0")
        assert all(k[1].startswith("new-") for k in taken[:-1])
        assert len(q) == 3 + 2  # three urgent and two routine keys still wait

    asyncio.run(case())


def test_a_routine_key_made_urgent_is_taken_once_in_the_urgent_lane() -> None:
    async def case() -> None:
        q = WorkQueue()
        q.add(("ns", "a"), routine=True)
        q.add(("ns", "b"), routine=True)
        q.add(("ns", "a"))  # changed: now it may be due
        assert len(q) == 2
        for name in ("a", "b"):
            key = await q.get()
            assert key == ("ns", name)
            q.done(key)
        assert len(q) == 0
        q.add(("ns", "a"), routine=True)  # an urgent add never becomes routine by a later one
        q.add(("ns", "a"))
        key = await q.get()
        assert key == ("ns", "a") and len(q) == 0 and q.empty.is_set()

    asyncio.run(case())


def test_routine_keys_wait_while_held_and_never_hold_the_status_stage() -> None:
    async def case() -> None:
        q = WorkQueue()
        q.hold_routine(True)
        q.add(("ns", "done"), routine=True)
        assert q.empty.is_set()  # no urgent key waits: status writes need not wait
        waiter = asyncio.create_task(q.get())
        await asyncio.sleep(0.05)
        assert not waiter.done()
        q.add(("ns", "due"))
        assert await asyncio.wait_for(waiter, 1) == ("ns", "due")
        q.hold_routine(False)
        assert await asyncio.wait_for(q.get(), 1) == ("ns", "done")

    asyncio.run(case())


def test_what_is_routine() -> None:
    def job(phase: str | None, **meta: Any) -> dict[str, Any]:
        status = {"phase": phase, "observedGeneration": 1} if phase else {}
        return {"metadata": {"name": "j", "generation": 1, **meta}, "status": status}

    assert routine(job("Succeeded")) and routine(job("Failed")) and routine(job("Cancelled"))
    assert not routine(job("Running")) and not routine(job("Scheduled"))
    assert not routine(job(None)) and not routine(None)
    assert not routine(job("Succeeded", generation=2))  # a changed spec not seen yet
    assert not routine(job("Succeeded", deletionTimestamp="2026-11-30T00:00:00Z"))
    assert not routine(job("Failed", annotations={c.ANNOTATION_REQUEUE: "1"}))


def test_workers_give_the_event_loop_a_turn_between_steps_that_make_no_request() -> None:
    """A finished job's visit awaits nothing, and get() does not suspend while keys wait:
    the watches and probes must still run while thousands of them are visited."""

    async def case() -> None:
        r = _loop()
        visited: list[tuple[str, str]] = []
        all_visited = asyncio.Event()

        async def reconcile(key: tuple[str, str]) -> None:
            visited.append(key)  # no request: nothing awaited
            if len(visited) == 2000:
                all_visited.set()

        r.reconciler.reconcile = reconcile  # type: ignore[method-assign]
        for i in range(2000):
            r.work.add(("ns", f"done-{i}"))
        worker = asyncio.create_task(r._worker())
        await asyncio.sleep(0)  # the worker starts; the watch's turn comes next
        seen_at_first_turn = len(visited)
        await asyncio.wait_for(all_visited.wait(), 60)
        worker.cancel()
        await asyncio.gather(worker, return_exceptions=True)
        assert seen_at_first_turn < 10, seen_at_first_turn

    asyncio.run(case())
