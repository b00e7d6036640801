"""Recurring runs through queue admission (controller.heldruns), without a cluster: which
CronJobs make held runs, and how the cache counts a held run, admits it in its place and
frees its slot."""

from __future__ import annotations

import time
from typing import Any

import pytest

from backgroundjobs.api import constants as c
from backgroundjobs.api.models import BackgroundJobSpec
from backgroundjobs.controller import builders
from backgroundjobs.controller.cache import Cache
from backgroundjobs.controller.heldruns import owner_key, run_key
from backgroundjobs.controller.settings import QueueConfig, Settings

pytestmark = pytest.mark.unit

Body = dict[str, Any]
NS = "shop"


def recurring(name: str, queue: str) -> Body:
    return {
        "apiVersion": c.API_VERSION,
        "kind": c.KIND,
        "metadata": {"name": name, "namespace": NS, "uid": f"uid-{name}", "generation": 1},
        "spec": {"handler": "mail.send", "schedule": "* * * * *", "queue": queue},
    }


def job(owner: str, name: str, queue: str, created: str, **state: Any) -> Body:
    """A Job of ``owner`` (suspended unless ``suspend=False``; ``done=True``: Complete)."""
    labels = {c.LABEL_NAME: owner, c.LABEL_QUEUE: queue, c.LABEL_TYPE: c.JobType.RECURRING}
    ref = {"apiVersion": c.API_VERSION, "kind": c.KIND, "name": owner, "controller": True}
    conditions = [{"type": "Complete", "status": "True"}] if state.get("done") else []
    return {
        "metadata": {
            "name": name,
            "namespace": NS,
            "uid": f"uid-{name}",
            "labels": labels,
            "ownerReferences": [{**ref, "uid": f"uid-{owner}"}],
            "creationTimestamp": created,
            "resourceVersion": str(time.monotonic_ns()),
        },
        "spec": {"suspend": state.get("suspend", True)},
        "status": {"conditions": conditions},
    }


def template_suspend(settings: Settings, queue: str) -> Any:
    body = recurring("tick", queue)
    spec = BackgroundJobSpec.model_validate(body["spec"])
    cronjob = builders.build_cronjob(body, spec, settings)
    return cronjob["spec"]["jobTemplate"]["spec"].get("suspend")


def test_only_a_queue_that_can_hold_a_run_makes_the_cronjobs_jobs_suspended() -> None:
    limited = Settings(queues={"one": QueueConfig(max_concurrency=1)})
    assert template_suspend(limited, "one") is True
    assert template_suspend(limited, "default") is None  # no limit: runs as before
    assert template_suspend(Settings(max_running=10), "default") is True  # the operator cap
    rate = Settings(queues={"slow": QueueConfig(holds=True)})
    assert template_suspend(rate, "slow") is True  # a rate limit or a pause


def test_a_held_run_waits_behind_the_queue_and_gets_the_slot_first_freed() -> None:
    cache = Cache(Settings(queues={"one": QueueConfig(max_concurrency=1)}))
    long_key = (NS, "long")  # an Immediate job's run holds the queue's one slot
    cache.slots.hold(long_key, (NS, "one"), None)

    cache.observe_job("ADDED", job("tick", "tick-1", "one", "2026-01-01T00:01:00Z"))
    run = run_key((NS, "tick"), "tick-1")
    assert owner_key(run) == (NS, "tick")
    assert cache.held_runs((NS, "tick")) == ["tick-1"]
    assert cache.slots.pending((NS, "one")) == 1 and not cache.slots.holds(run)
    want = cache.run_want(run)
    assert want is not None
    verdict, _ = cache.slots.want(run, want, time.monotonic(), time.time())
    assert not verdict.admitted and verdict.reason == c.Reason.QUEUE_FULL

    freed = cache.slots.release(long_key, time.monotonic(), time.time())
    assert [g.key for g in freed.grants] == [run]  # the held run gets the slot
    cache.observe_job(
        "MODIFIED", job("tick", "tick-1", "one", "2026-01-01T00:01:00Z", suspend=False)
    )
    assert cache.slots.running((NS, "one")) == 1 and cache.slots.pending((NS, "one")) == 0
    assert cache.held_runs((NS, "tick")) == []

    # a second run of the same schedule waits while the first runs, then follows it
    cache.observe_job("ADDED", job("tick", "tick-2", "one", "2026-01-01T00:02:00Z"))
    second = run_key((NS, "tick"), "tick-2")
    assert not cache.slots.holds(second)
    done = job("tick", "tick-1", "one", "2026-01-01T00:01:00Z", suspend=False, done=True)
    change = cache.observe_job("MODIFIED", done)
    assert change is not None and (NS, "tick") in change.woken  # the owner, not the run key
    assert cache.slots.holds(second)


def test_a_restarted_cache_counts_unsuspended_runs_and_queues_held_ones_in_creation_order() -> None:
    cache = Cache(Settings(queues={"one": QueueConfig(max_concurrency=1)}))
    cache.slots.ready = False
    # as a fresh operator's watches deliver them: newest first
    cache.observe_job("ADDED", job("b", "b-1", "one", "2026-01-01T00:03:00Z"))
    cache.observe_job("ADDED", job("a", "a-1", "one", "2026-01-01T00:02:00Z"))
    cache.observe_job("ADDED", job("c", "c-1", "one", "2026-01-01T00:01:00Z", suspend=False))
    assert cache.slots.running((NS, "one")) == 1  # the unsuspended one runs
    cache.slots.ready = True
    assert cache.slots.dispatch(time.monotonic(), time.time()).grants == []  # full
    cache.observe_job(
        "MODIFIED", job("c", "c-1", "one", "2026-01-01T00:01:00Z", suspend=False, done=True)
    )
    assert cache.slots.holds(run_key((NS, "a"), "a-1"))  # the older held run first
    assert not cache.slots.holds(run_key((NS, "b"), "b-1"))
    cache.observe_job("DELETED", job("a", "a-1", "one", "2026-01-01T00:02:00Z"))
    assert cache.slots.holds(run_key((NS, "b"), "b-1"))  # a deleted run frees its slot
