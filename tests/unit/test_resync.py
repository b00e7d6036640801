"""Resync: a relist compared with the cache finds what a watch gap hid (deletions, creations,
changes), without taking an object newer than the list for a deleted one."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from kubernetes_asyncio.client.exceptions import ApiException
from tests.unit.test_reconciler import NS, FakeKube, Harness, bgj, run

from backgroundjobs.api import constants as c
from backgroundjobs.controller import loop as loop_module
from backgroundjobs.controller.loop import STUCK_AFTER

pytestmark = pytest.mark.unit


class ListingKube(FakeKube):
    """The fake API server, with the metadata lists of a relist."""

    def __init__(self) -> None:
        super().__init__()
        self.list_as_of: int | None = None  # the list's resourceVersion (default: now)

    async def list_versions(
        self, kind: str, namespace: str | None, label_selector: str | None = None
    ) -> tuple[dict[tuple[str, str], str], int]:
        self._check("list_versions", kind)
        found = {
            (obj["metadata"].get("namespace", NS), name): obj["metadata"]["resourceVersion"]
            for (k, name), obj in self.objects.items()
            if k == kind
        }
        as_of = self.list_as_of if self.list_as_of is not None else next(self._versions)
        return found, as_of


def harness(**settings: Any) -> Harness:
    h = Harness(**settings)
    h.kube = ListingKube()
    h.loop.kube = h.loop.reconciler.kube = h.kube
    return h


def test_a_job_deleted_during_a_watch_gap_is_found_and_its_run_fails() -> None:
    async def case() -> None:
        h = harness()
        h.apply(bgj("welcome"))
        await h.reconcile("welcome")
        h.queued()
        del h.kube.objects[("Job", "welcome-1")]  # the watch missed it
        await h.loop.resync()
        assert (NS, "welcome") in h.queued()
        assert h.loop.cache.jobs((NS, "welcome")) == {}
        await h.reconcile("welcome")
        status = h.status("welcome")
        assert status["phase"] == "Failed"
        assert any(cond.get("reason") == "JobDeleted" for cond in status["conditions"])

    run(case)


def test_a_job_made_and_deleted_before_any_watch_event_showed_it_is_found(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A Job the operator made (or read) before its Job watch listed, deleted before that
    list: no event will ever come. It is read again after CONFIRM_AFTER and handled as
    deleted: its slot is free and its run fails (JobDeleted), long before a resync."""

    async def case() -> None:
        h = harness(max_running=1)
        h.apply(bgj("welcome"))
        h.apply(bgj("next"))
        await h.reconcile("welcome")
        assert h.loop.cache.slots.holds((NS, "welcome"))
        h.queued()
        await h.loop.confirm_jobs()  # too soon to tell
        assert h.kube.count("get") == 0
        del h.kube.objects[("Job", "welcome-1")]  # deleted, and no watch event of it
        monkeypatch.setattr(loop_module, "CONFIRM_AFTER", 0.0)
        await h.loop.confirm_jobs()
        assert not h.loop.cache.slots.holds((NS, "welcome"))
        assert h.loop.cache.jobs((NS, "welcome")) == {}
        assert (NS, "welcome") in h.queued()
        await h.reconcile("welcome")
        assert h.status("welcome")["phase"] == "Failed"
        await h.reconcile("next")
        assert h.status("next")["phase"] == "Running"
        # each Job read at most once: a watch event (or a read that finds it) confirms it
        h.loop.on_job_event({"type": "ADDED", "object": h.kube.objects[("Job", "next-1")]})
        before = h.kube.count("get")
        await h.loop.confirm_jobs()
        assert h.kube.count("get") == before

    run(case)


def test_a_job_made_and_still_there_is_read_once_and_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    async def case() -> None:
        h = harness()
        h.apply(bgj("slow-watch"))
        await h.reconcile("slow-watch")
        monkeypatch.setattr(loop_module, "CONFIRM_AFTER", 0.0)
        await h.loop.confirm_jobs()
        await h.loop.confirm_jobs()
        assert h.kube.count("get") == 1
        assert "slow-watch-1" in h.loop.cache.jobs((NS, "slow-watch"))

    run(case)


def test_a_background_job_deleted_during_a_watch_gap_is_forgotten() -> None:
    async def case() -> None:
        h = harness()
        h.apply(bgj("gone"))
        del h.kube.objects[(c.KIND, "gone")]
        await h.loop.resync()
        assert h.loop.cache.bgj((NS, "gone")) is None

    run(case)


def test_one_created_or_changed_during_a_watch_gap_is_read_and_reconciled() -> None:
    async def case() -> None:
        h = harness()
        h.apply(bgj("seen"))
        h.queued()
        h.kube.add(bgj("missed"))  # created while the watch was away
        h.kube.objects[(c.KIND, "seen")]["metadata"]["annotations"] = {"x": "1"}
        h.kube._stamp(h.kube.objects[(c.KIND, "seen")])
        await h.loop.resync()
        assert h.queued() == {(NS, "missed"), (NS, "seen")}
        seen = h.loop.cache.bgj((NS, "seen"))
        assert seen is not None and seen["metadata"]["annotations"] == {"x": "1"}
        assert h.kube.count("get") == 2  # only what differs is read

    run(case)


def test_an_object_newer_than_the_list_is_not_taken_for_deleted() -> None:
    async def case() -> None:
        h = harness()
        h.kube.list_as_of = 1  # a list served before the object was created
        h.apply(bgj("young"))
        h.kube.objects.clear()
        await h.loop.resync()
        assert h.loop.cache.bgj((NS, "young")) is not None

    run(case)


def test_a_watch_that_never_delivers_what_two_relists_show_is_reported_stuck() -> None:
    async def case() -> None:
        h = harness()
        h.loop.on_bgj_event({"type": "ADDED", "object": h.kube.add(bgj("seen"))})
        await h.loop.resync()
        assert h.loop.problems() == []
        h.kube.add(bgj("missed"))  # the watch shows nothing of it
        await h.loop.resync()  # the first relist that shows it: the watch may be late
        assert h.loop.problems() == []
        await h.loop.resync()  # a period later, still nothing
        assert h.loop.problems() == ["the watch of BackgroundJob is stuck"]
        h.loop.on_bgj_event({"type": "ADDED", "object": h.kube.add(bgj("later"))})
        await h.loop.resync()
        assert h.loop.problems() == []

    run(case)


def test_work_waiting_with_no_step_finished_for_long_is_reported_stuck() -> None:
    async def case() -> None:
        h = harness()
        h.apply(bgj("waiting"))
        now = time.monotonic()
        h.loop._progress_at = now - 10
        assert h.loop.problems() == []
        h.loop._progress_at = now - STUCK_AFTER - 1
        assert h.loop.problems()[0].startswith("1 objects wait and no worker finished for")
        key = await h.loop.work.get()
        await h.loop._run_step(key, lambda: h.loop.reconciler.reconcile(key))
        assert h.loop.problems() == []

    run(case)


def test_the_first_success_after_the_api_server_was_unreachable_resyncs_at_once() -> None:
    async def case() -> None:
        h = harness()
        h.apply(bgj("welcome"))
        key = await h.loop.work.get()
        h.kube.fail["create"] = ApiException(status=503, reason="Unavailable")
        await h.loop._run_step(key, lambda: h.loop.reconciler.reconcile(key))
        assert not h.loop._resync_soon.is_set()
        h.loop.work._timers.pop(key)[1].cancel()
        h.loop.work.add(key)
        key = await h.loop.work.get()
        await h.loop._run_step(key, lambda: h.loop.reconciler.reconcile(key))
        assert h.loop._resync_soon.is_set()

    run(case)


def test_a_refusal_is_no_outage() -> None:
    async def case() -> None:
        h = harness()
        h.apply(bgj("welcome"))
        key = await h.loop.work.get()
        h.kube.fail["create"] = ApiException(status=403, reason="Forbidden")
        await h.loop._run_step(key, lambda: h.loop.reconciler.reconcile(key))
        assert not h.loop._unreachable

    run(case)


def test_the_queue_gate_opens_when_a_listed_object_is_deleted_before_it_is_seen() -> None:
    """A BackgroundJob listed at start but deleted before its watch event came (a namespace
    being torn down) does not hold admission until the warm-up's timeout."""

    async def case() -> None:
        h = harness()
        h.kube.objects[(c.KIND, "ghost")] = {"metadata": {"name": "ghost", "resourceVersion": "1"}}
        task = asyncio.create_task(h.loop.warm_up(timeout=60, relist=2.0))
        await asyncio.sleep(0.5)
        assert not task.done()  # waits for the listed object
        del h.kube.objects[(c.KIND, "ghost")]  # deleted; the watch never brought it
        started = time.monotonic()
        await asyncio.wait_for(task, timeout=30)
        # gone at the next relist, not after STALLED_RELISTS of them
        assert time.monotonic() - started < 4 and h.loop.cache.slots.ready

    run(case)


def test_admission_opens_with_the_queue_objects_read_not_the_defaults() -> None:
    """A BackgroundJobQueue the watch has not brought yet is read before admission opens: a
    run admitted under the defaults (no limit) would not be taken back. A queue the watch
    brought newer than the list is kept as the watch brought it."""

    async def case() -> None:
        h = harness()
        for name, limit, version in (("limited", 1, "5"), ("edited", 2, "6")):
            h.kube.objects[(c.QUEUE_KIND, name)] = {
                "metadata": {"namespace": NS, "name": name, "resourceVersion": version},
                "spec": {"maxConcurrency": limit},
            }
        newer = {
            "metadata": {"namespace": NS, "name": "edited", "resourceVersion": "9"},
            "spec": {"maxConcurrency": 7},
        }
        h.loop.on_queue_event({"type": "MODIFIED", "object": newer})
        await asyncio.wait_for(h.loop.warm_up(timeout=60, relist=0.2), timeout=30)
        assert h.loop.cache.slots.ready
        assert h.loop.cache.queue_policy((NS, "limited")).max_concurrency == 1
        assert h.loop.cache.queue_policy((NS, "edited")).max_concurrency == 7

    run(case)


def test_a_queue_list_that_fails_does_not_keep_admission_closed() -> None:
    async def case() -> None:
        h = harness()
        h.kube.fail["list_queues"] = ApiException(status=403, reason="Forbidden")
        await asyncio.wait_for(h.loop.warm_up(timeout=60, relist=0.2), timeout=30)
        assert h.loop.cache.slots.ready

    run(case)


def test_the_queue_gate_opens_when_listed_objects_stay_uncached() -> None:
    """A listed object the cache never takes (here a Job nobody owns) holds the gate only for
    a few relists, not for the warm-up's timeout."""

    async def case() -> None:
        h = harness()
        h.kube.objects[("Job", "stray")] = {"metadata": {"name": "stray", "resourceVersion": "1"}}
        started = time.monotonic()
        await asyncio.wait_for(h.loop.warm_up(timeout=60, relist=0.2), timeout=30)
        assert time.monotonic() - started < 10 and h.loop.cache.slots.ready

    run(case)


def test_the_queue_gate_opens_when_the_watch_brought_an_object_the_cache_does_not_take() -> None:
    """A Job the watch delivered but the cache does not keep (no BackgroundJob owns it) is
    seen: the gate does not wait for it at all."""

    async def case() -> None:
        h = harness()
        stray = {"metadata": {"name": "stray", "namespace": "", "resourceVersion": "1"}}
        h.kube.objects[("Job", "stray")] = stray
        task = asyncio.create_task(h.loop.warm_up(timeout=60, relist=30.0))
        await asyncio.sleep(0.5)
        assert not task.done()
        h.loop.on_job_event({"type": "ADDED", "object": stray})
        await asyncio.wait_for(task, timeout=5)  # long before the first relist
        assert h.loop.cache.slots.ready

    run(case)


def test_the_queue_gate_opens_while_other_listed_objects_keep_being_deleted() -> None:
    """Namespaces torn down delete listed objects at every relist; an object the watch never
    brings still holds the gate only for a few relists: deletions are no progress of the
    watch."""

    async def case() -> None:
        h = harness()
        h.kube.objects[("Job", "stray")] = {"metadata": {"name": "stray", "resourceVersion": "1"}}
        for i in range(40):
            h.kube.objects[(c.KIND, f"dying-{i}")] = {
                "metadata": {"name": f"dying-{i}", "resourceVersion": "1"}
            }

        async def tear_down() -> None:
            for i in range(40):  # one every 0.3 s: 12 s in all
                await asyncio.sleep(0.3)
                del h.kube.objects[(c.KIND, f"dying-{i}")]

        teardown = asyncio.create_task(tear_down())
        started = time.monotonic()
        await asyncio.wait_for(h.loop.warm_up(timeout=60, relist=0.2), timeout=30)
        opened = time.monotonic() - started
        print("OPENED", opened)
        teardown.cancel()
        assert opened < 8 and h.loop.cache.slots.ready

    run(case)


def test_with_its_own_watch_the_gate_waits_for_that_watchs_first_list_not_a_list_of_its_own() -> (
    None
):
    """The loop's BackgroundJob watch delivers every object its first list reads: the gate
    waits for that list to end, and the warm-up lists only Jobs (at 100,000 stored jobs a
    second list of BackgroundJobs cost the API server about 40 s)."""

    async def case() -> None:
        h = harness()
        h.kube.objects[(c.KIND, "stored")] = {
            "metadata": {"name": "stored", "resourceVersion": "1"}
        }
        watch = asyncio.create_task(asyncio.sleep(3600))  # stands for the running watch
        h.loop._watches.append(watch)
        h.loop._first_lists.add(None)
        task = asyncio.create_task(h.loop.warm_up(timeout=60, relist=0.2))
        await asyncio.sleep(1.5)  # several relists: none of them opens the gate
        assert not task.done()
        h.loop._first_lists.discard(None)  # the watch's first list ended
        await asyncio.wait_for(task, timeout=5)
        assert h.loop.cache.slots.ready
        assert ("list_versions", c.KIND) not in h.kube.calls
        assert ("list_versions", "Job") in h.kube.calls
        watch.cancel()

    run(case)
