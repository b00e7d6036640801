"""The BackgroundJob watch's retry rules (controller/reflector.py), with scripted lists and
watches: a failing watch waits longer each time and lists again after a few failures; a busy
API server (429) is waited for as it asks, from the same version; 410 lists at once."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from backgroundjobs.controller.reflector import BACKOFF, RELIST_AFTER, Gone, Reflector, WatchFailed

pytestmark = pytest.mark.unit


class Scripted(Reflector):
    """Each list returns the next version; each watch takes the next outcome of ``script``
    (an exception raised, or a version returned); the script's end stops the run."""

    def __init__(self, script: list[Any]) -> None:
        no_api: Any = None  # list and watch are scripted: no request is made
        super().__init__(no_api, None, on_event=lambda e: None, on_relisted=lambda: None)
        self.script = script
        self.calls: list[str] = []
        self.waits: list[float] = []

        async def sleep(seconds: float) -> None:
            self.waits.append(seconds)

        self.sleep = sleep

    async def list(self) -> str:
        self.calls.append("list")
        return f"v{len(self.calls)}"

    async def watch(self, version: str) -> str:
        self.calls.append(f"watch {version}")
        if not self.script:
            raise asyncio.CancelledError
        outcome = self.script.pop(0)
        if isinstance(outcome, BaseException):
            raise outcome
        return str(outcome)


def run(script: list[Any]) -> Scripted:
    reflector = Scripted(script)

    async def case() -> None:
        with pytest.raises(asyncio.CancelledError):
            await reflector.run()

    asyncio.run(case())
    return reflector


def test_a_failing_watch_waits_longer_each_time_and_lists_again_after_a_few() -> None:
    failures = [WatchFailed(500, "boom")] * (RELIST_AFTER + 1)
    r = run(failures)
    assert r.calls[:1] == ["list"]
    assert r.calls.count("list") == 2  # at the start, and after RELIST_AFTER failures only
    assert r.calls[RELIST_AFTER + 1] == "list"
    assert all(w >= 0.8 * b for w, b in zip(r.waits, BACKOFF, strict=False))
    assert r.waits[1] > r.waits[0] * 1.2  # grows (jitter is within 20 %)


def test_a_busy_api_server_is_waited_for_from_the_same_version_without_listing() -> None:
    r = run([WatchFailed(429, "storage is (re)initializing", retry_after=6)] * 6)
    assert r.calls.count("list") == 1
    assert set(r.calls[1:]) == {"watch v1"}
    assert all(w >= 6 for w in r.waits)


def test_a_watch_that_ends_in_time_clears_the_failures() -> None:
    r = run([WatchFailed(500, "boom"), WatchFailed(500, "boom"), "v9", WatchFailed(500, "x")])
    assert r.calls.count("list") == 1  # two failures, a good watch, one failure: no relist
    assert r.waits[-1] < BACKOFF[1]  # the wait started over


def test_a_version_no_longer_kept_lists_again_at_once() -> None:
    r = run([Gone()])
    assert r.calls == ["list", "watch v1", "list", "watch v3"]
    assert r.waits == []
