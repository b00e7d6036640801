"""What goes wrong with one object stays with that object: an error from its own data ends it
Failed/InvalidSpec with one Warning (the API server's errors are retried); continuation
cycles fail; a result the status cannot hold is kept as text with a Warning."""

from __future__ import annotations

import asyncio

import pytest
from kubernetes_asyncio.client.exceptions import ApiException
from tests.unit.test_reconciler import NS, Harness, bgj, run

from backgroundjobs.controller.loop import transient

pytestmark = pytest.mark.unit


def failed_condition(status: dict) -> dict:
    return next(cond for cond in status["conditions"] if cond["type"] == "Failed")


def test_an_error_from_the_objects_data_fails_it_once_and_the_next_goes_on() -> None:
    async def case() -> None:
        h = Harness()
        h.apply(bgj("poison"))
        h.apply(bgj("fine"))

        async def broken() -> None:
            raise RecursionError("maximum recursion depth exceeded")

        for _ in range(2):  # a second failure posts no second Warning
            await h.loop._run_step((NS, "poison"), broken)
            h.watch_brings("BackgroundJob", "poison")
        status = h.status("poison")
        assert status["phase"] == "Failed"
        failed = failed_condition(status)
        assert failed["reason"] == "InvalidSpec"
        assert "RecursionError" in failed["message"]
        # not retried: the one timer left is retention's, days away
        at, _ = h.loop.work._timers[(NS, "poison")]
        assert at - asyncio.get_running_loop().time() > 24 * 3600
        assert await h.posted() == [("poison", "InvalidSpec")]
        await h.reconcile("fine")
        assert h.status("fine")["phase"] == "Running"

    run(case)


@pytest.mark.parametrize(
    ("exc", "retried"),
    [
        (ApiException(status=503), True),
        (ApiException(status=409), True),
        (ApiException(status=422), True),  # an admission policy may allow it later
        (ConnectionResetError(), True),
        (TimeoutError(), True),
        (RecursionError(), False),
        (KeyError("x"), False),
    ],
)
def test_only_the_api_servers_and_the_networks_errors_are_retried(
    exc: Exception, retried: bool
) -> None:
    assert transient(exc) is retried


@pytest.mark.parametrize("size", [1, 2, 10])
def test_a_cycle_of_continuations_fails_every_member(size: int) -> None:
    async def case() -> None:
        h = Harness()
        names = [f"ring-{i}" for i in range(size)]
        for i, name in enumerate(names):
            h.apply(bgj(name, after={"name": names[(i + 1) % size]}))
        for name in names:
            await h.reconcile(name)
        for name in names:
            status = h.status(name)
            assert status["phase"] == "Failed", name
            failed = failed_condition(status)
            assert failed["reason"] == "InvalidSpec"
            assert "cycle" in failed["message"]
        assert not [key for key in h.kube.objects if key[0] == "Job"]

    run(case)


def test_a_chain_into_a_cycle_waits_and_only_the_cycle_fails() -> None:
    async def case() -> None:
        h = Harness()
        h.apply(bgj("a", after={"name": "b"}))
        h.apply(bgj("b", after={"name": "c"}))
        h.apply(bgj("c", after={"name": "b"}))
        for name in ("a", "b", "c"):
            await h.reconcile(name)
        assert h.status("a")["phase"] == "Waiting"
        assert h.status("b")["phase"] == h.status("c")["phase"] == "Failed"

    run(case)


@pytest.mark.parametrize(
    ("message", "problem"),
    [
        ("NaN", "NaN"),
        ("[1e999]", "NaN"),
        ("[" * 1500 + "]" * 1500, "nested more than 64"),
    ],
)
def test_a_result_the_status_cannot_hold_is_kept_as_text(message: str, problem: str) -> None:
    async def case() -> None:
        h = Harness()
        h.apply(bgj("odd"))
        await h.reconcile("odd")
        h.kube.finish_job("odd-1", message=message)
        h.watch_brings("Job", "odd-1")
        await h.reconcile("odd")
        status = h.status("odd")
        assert status["phase"] == "Succeeded"
        assert status["result"] == message
        h.loop.events.start()
        await h.loop.events.stop()
        warnings = [m for name, reason, m in h.kube.events if reason == "ResultAsText"]
        assert len(warnings) == 1 and problem in warnings[0], warnings

    run(case)
