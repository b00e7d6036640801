"""The operator's memory release after bursts (controller/memory.py)."""

from __future__ import annotations

import asyncio
import gc
import os
import weakref

import pytest

from backgroundjobs.controller import memory

pytestmark = pytest.mark.unit


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def test_release_returns_freed_heap_to_the_os() -> None:
    if memory._TRIM is None:
        pytest.skip("not glibc: release() is a no-op by design")
    # ~40 MB in 1 KB blocks: malloc's heap (not pymalloc's arenas, not mmap), kept by
    # glibc after they are freed, as after a burst of jobs
    blocks = [bytes(1024) for _ in range(40_000)]
    keep = bytes(1024)  # above them on the heap: free() alone cannot shrink it
    del blocks
    before = _rss()
    assert memory.release() is True
    assert before - _rss() > 20 * 2**20, "release() returned less than half of it"
    assert keep


async def _ticks(n: int) -> None:
    for _ in range(n):
        await asyncio.sleep(0.01)


def test_release_only_once_idle_after_work(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    state = {"work": 0, "idle": False}
    monkeypatch.setattr(memory, "release", lambda: calls.append(state["work"]) or True)

    async def scenario() -> None:
        task = asyncio.create_task(
            memory.release_when_idle(
                lambda: state["work"], lambda: state["idle"], period=0.001, burst=10
            )
        )
        await _ticks(5)
        assert calls == [], "no work done yet: nothing to release"
        state["work"] = 5
        state["idle"] = True
        await _ticks(5)
        assert calls == [], "less than a burst of work: no release"
        state["idle"] = False
        state["work"] = 10
        await _ticks(5)
        assert calls == [], "work pending (not idle): no release"
        state["idle"] = True
        for _ in range(200):
            if calls:
                break
            await asyncio.sleep(0.01)
        assert calls == [10]
        await _ticks(5)
        assert calls == [10], "no new work since: released once"
        task.cancel()

    asyncio.run(scenario())


class _Node:
    def __init__(self) -> None:
        self.other: _Node | None = None


def test_freeze_start_up_leaves_start_up_objects_out_of_collections() -> None:
    """What is alive at start is frozen (a full collection no longer scans it); what comes
    later is collected as before, cycles included."""
    start_up = _Node()
    start_up.other = start_up  # a cycle: only the collector could ever free it
    try:
        frozen = memory.freeze_start_up()
        assert frozen == gc.get_freeze_count() > 0
        assert not any(o is start_up for o in gc.get_objects()), "start-up object still scanned"
        later = _Node()
        later.other = later
        gone = weakref.ref(later)
        del later
        gc.collect()
        assert gone() is None, "a cycle made after the freeze was not collected"
    finally:
        gc.unfreeze()  # the rest of the test session as it was
    assert any(o is start_up for o in gc.get_objects())
