"""The operator's memory release after bursts (controller/memory.py)."""

from __future__ import annotations

import asyncio
import gc

import pytest

from backgroundjobs.controller import memory

pytestmark = pytest.mark.unit


def test_release_runs_a_collection_and_reports_a_bool() -> None:
    class Cycle:
        def __init__(self) -> None:
            self.me = self

    before = sum(isinstance(o, Cycle) for o in gc.get_objects())
    for _ in range(100):
        Cycle()  # unreachable reference cycles: only a collection frees them
    assert isinstance(memory.release(), bool)
    after = sum(isinstance(o, Cycle) for o in gc.get_objects())
    assert after == before


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
