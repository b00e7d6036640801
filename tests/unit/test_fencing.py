"""Timeouts and fencing: every API request gives up without an answer; a leader whose
renewal hangs stops acting by its renew deadline, and stopping cancels the writes in flight;
a status write carries the resourceVersion it was decided on."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes_asyncio import client as k8s
from tests.unit.test_reconciler import NS, Harness, bgj, run

from backgroundjobs._connection import (
    ENV_REQUEST_TIMEOUT,
    ConnectionSource,
    new_api_client,
    request_timeout,
)
from backgroundjobs.api import constants as c
from backgroundjobs.controller.leader import LeaderElector
from backgroundjobs.errors import BackgroundJobsError

pytestmark = pytest.mark.unit


@pytest.fixture
def black_hole(tmp_path: Path) -> Iterator[str]:
    """A kubeconfig for a server that accepts connections and never answers."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    port = server.getsockname()[1]
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "hole", "cluster": {"server": f"http://127.0.0.1:{port}"}}],
        "users": [{"name": "u", "user": {"token": "t"}}],
        "contexts": [{"name": "hole", "context": {"cluster": "hole", "user": "u"}}],
        "current-context": "hole",
    }
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump(config))
    try:
        yield str(path)
    finally:
        server.close()


def test_a_request_to_a_black_hole_gives_up_after_the_timeout(black_hole: str) -> None:
    async def case() -> float:
        api = await new_api_client(ConnectionSource(black_hole, None), request_seconds=0.5)
        started = time.monotonic()
        try:
            with pytest.raises(asyncio.TimeoutError):
                await k8s.CoreV1Api(api).read_namespace("default")
        finally:
            await api.close()
        return time.monotonic() - started

    assert run(case) < 5.0  # without a timeout it waits for ever


def test_the_request_timeout_comes_from_the_argument_then_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(ENV_REQUEST_TIMEOUT, raising=False)
    assert request_timeout() == 30.0
    monkeypatch.setenv(ENV_REQUEST_TIMEOUT, "7.5")
    assert request_timeout() == 7.5
    assert request_timeout(2) == 2
    monkeypatch.setenv(ENV_REQUEST_TIMEOUT, "soon")
    with pytest.raises(BackgroundJobsError, match="not a number"):
        request_timeout()
    with pytest.raises(BackgroundJobsError, match="positive"):
        request_timeout(0)


class HangingRenewal(LeaderElector):
    """Acquires the Lease once; every later renewal hangs (a black-holed connection)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(None, **kwargs)  # type: ignore[arg-type]
        self.attempts = 0

    async def _try_acquire_or_renew(self) -> bool:
        self.attempts += 1
        if self.attempts == 1:
            return True
        await asyncio.Event().wait()
        raise AssertionError("unreachable")


def test_a_leader_whose_renewal_hangs_stops_by_its_renew_deadline() -> None:
    async def case() -> tuple[float, float]:
        loop = asyncio.get_running_loop()
        started: list[float] = []
        stopped: list[float] = []
        elector = HangingRenewal(
            name="lease",
            namespace="default",
            identity="me",
            lease_duration=1.5,
            on_started_leading=lambda: started.append(loop.time()),
            on_stopped_leading=lambda: stopped.append(loop.time()),
        )
        elector.start()
        for _ in range(100):
            await asyncio.sleep(0.05)
            if stopped:
                break
        assert elector._task is not None
        elector._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await elector._task
        assert started and stopped
        return stopped[0] - started[0], elector.renew_deadline

    took, deadline = run(case)
    # stopped at the renew deadline (1 s), before the Lease (1.5 s) could expire for others
    assert deadline <= took < 1.4


def test_losing_leadership_cancels_the_status_write_in_flight() -> None:
    async def case() -> None:
        h = Harness(workers=2, status_hold=0)
        h.kube.patch_gate = asyncio.Event()  # the status write hangs
        await h.loop.start()
        h.apply(bgj("welcome"))
        for _ in range(100):
            await asyncio.sleep(0.01)
            if ("Job", "welcome-1") in h.kube.objects:
                break
        await asyncio.sleep(0.05)  # the status write is waiting at the gate
        h.loop.stop_leading()
        h.kube.patch_gate.set()
        await asyncio.sleep(0.1)
        assert h.kube.count("patch_status") == 0
        assert h.status("welcome") == {}
        await h.loop.stop()

    run(case)


def test_a_status_decided_on_a_stale_object_is_not_written_and_decided_again() -> None:
    async def case() -> None:
        h = Harness()
        stored = h.apply(bgj("welcome"))
        # Someone else writes the object; the watch has not brought it yet.
        h.kube.objects[(c.KIND, "welcome")]["metadata"]["annotations"] = {"team": "shop"}
        h.kube._stamp(h.kube.objects[(c.KIND, "welcome")])
        await h.reconcile("welcome")
        assert h.kube.count("patch_status") == 1  # refused: 409
        assert h.status("welcome") == {}
        cached = h.loop.cache.bgj((NS, "welcome"))
        assert cached is not None
        assert cached["metadata"]["resourceVersion"] != stored["metadata"]["resourceVersion"]
        assert (NS, "welcome") in h.queued()  # decided again on the current object
        await h.reconcile("welcome")
        assert h.status("welcome")["phase"] == "Running"
        assert ("Job", "welcome-1") in h.kube.objects

    run(case)


def test_a_status_write_that_finds_the_object_gone_forgets_it() -> None:
    async def case() -> None:
        h = Harness()
        h.apply(bgj("welcome"))
        del h.kube.objects[(c.KIND, "welcome")]  # deleted; the watch missed it
        await h.reconcile("welcome")
        assert h.loop.cache.bgj((NS, "welcome")) is None

    run(case)


def test_a_write_after_the_lease_lapsed_is_withheld_and_the_replica_stops() -> None:
    """A process paused past its renew deadline (SIGSTOP) wakes up mid-reconcile: its next
    write is not sent, and it stops acting before the election loop notices."""

    async def case() -> None:
        h = Harness()
        elector = HangingRenewal(
            name="lease",
            namespace="default",
            identity="me",
            lease_duration=15,
            on_started_leading=h.loop.start_leading,
            on_stopped_leading=h.loop.stop_leading,
        )
        h.loop.holds_lease = elector.holds_lease
        elector.is_leader = True
        elector._last_renewal = asyncio.get_running_loop().time()
        h.apply(bgj("welcome"))
        elector._last_renewal -= 11  # paused for longer than the renew deadline (10 s)
        key = await h.loop.work.get()
        await h.loop._run_step(key, lambda: h.loop.reconciler.reconcile(key))
        assert ("Job", "welcome-1") not in h.kube.objects
        assert h.kube.count("create") == 0
        assert not h.loop.leading and not elector.is_leader
        assert key not in h.loop.work._timers  # not retried: the next leader will do it

    run(case)
