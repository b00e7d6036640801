"""Queue admission (controller/queueing.py): FIFO within a queue, priorities and aging
across queues, pause, rate limits, concurrency keys, and the limits never exceeded."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from backgroundjobs.api.constants import Reason
from backgroundjobs.controller.queueing import TURN_PATIENCE, Admitter, Place, QueuePolicy, Want

pytestmark = pytest.mark.unit

NS = "ns"


def want(queue: str, i: int, key: str | None = None, since: float = 0.0) -> Want:
    return Want(queue, Place(f"2026-11-30T00:00:{i // 100:02d}Z", f"j{i:04d}"), key, since)


def admitter(policies: dict[str, QueuePolicy], **kw: object) -> Admitter:
    return Admitter(lambda q: policies.get(q[1], QueuePolicy()), **kw)  # type: ignore[arg-type]


def test_within_a_queue_runs_start_in_creation_then_name_order_whatever_the_asking_order() -> None:
    adm = admitter({"q": QueuePolicy(max_concurrency=1)})
    started = []
    verdict, _ = adm.want((NS, "j0005"), want("q", 5), 0, 0)
    assert verdict.admitted  # nothing else waits yet
    started.append("j0005")
    for i in (9, 3, 7, 1):
        verdict, dispatch = adm.want((NS, f"j{i:04d}"), want("q", i), 0, 0)
        assert not verdict.admitted and verdict.reason == Reason.QUEUE_FULL
        assert dispatch.keys == []
    running = (NS, "j0005")
    while True:
        dispatch = adm.release(running, 0, 0)
        if not dispatch.keys:
            break
        assert len(dispatch.keys) == 1  # a freed slot wakes the one run it admits
        running = dispatch.keys[0]
        started.append(running[1])
    assert started == ["j0005", "j0001", "j0003", "j0007", "j0009"]


def test_a_higher_priority_queue_gets_the_shared_cap_first_and_aging_ends_starvation() -> None:
    policies = {"high": QueuePolicy(priority=10), "low": QueuePolicy(priority=0)}
    adm = admitter(policies, max_running=1, aging=60)
    assert adm.want((NS, "first"), want("low", 0), 0, 0)[0].admitted
    adm.want((NS, "low-1"), want("low", 1, since=0), 0, 0)
    adm.want((NS, "high-1"), want("high", 50, since=0), 0, 0)
    assert adm.release((NS, "first"), 0, 1).keys == [(NS, "high-1")]
    adm.want((NS, "high-2"), want("high", 51, since=650), 0, 650)
    # The low queue's head has waited 11 minutes: 0 + 11 levels > 10 + 0 for a fresh high-2.
    assert adm.effective_priority((NS, "low"), 660) == 11
    assert adm.release((NS, "high-1"), 0, 660).keys == [(NS, "low-1")]


def test_a_paused_queue_starts_nothing_and_resuming_wakes_its_heads() -> None:
    policies = {"q": QueuePolicy(max_concurrency=2, paused=True)}
    adm = admitter(policies)
    verdict, _ = adm.want((NS, "a"), want("q", 1), 0, 0)
    assert not verdict.admitted and verdict.reason == Reason.QUEUE_PAUSED
    adm.want((NS, "b"), want("q", 2), 0, 0)
    adm.want((NS, "c"), want("q", 3), 0, 0)
    policies["q"] = QueuePolicy(max_concurrency=2)
    assert adm.dispatch(0, 0).keys == [(NS, "a"), (NS, "b")]
    assert adm.pending((NS, "q")) == 1 and adm.running((NS, "q")) == 2


def test_the_rate_limit_is_a_token_bucket_on_the_monotonic_clock() -> None:
    adm = admitter({"q": QueuePolicy(rate_per_second=2, burst=2)})
    granted = [adm.want((NS, f"j{i:04d}"), want("q", i), 100.0, 0)[0].admitted for i in range(4)]
    assert granted == [True, True, False, False]  # the burst, then nothing at the same instant
    verdict, dispatch = adm.want((NS, "j0003"), want("q", 3), 100.0, 0)
    assert verdict.reason == Reason.RATE_LIMITED
    assert dispatch.retry_at == pytest.approx(100.5) and dispatch.retry_key == (NS, "j0002")
    assert adm.dispatch(100.5, 0).keys == [(NS, "j0002")]  # one token in half a second
    assert adm.dispatch(100.9, 0).keys == []
    assert adm.dispatch(101.0, 0).keys == [(NS, "j0003")]


def test_a_busy_concurrency_key_sets_its_job_aside_without_blocking_the_queue() -> None:
    adm = admitter({"q": QueuePolicy(max_concurrency=5)}, key_limit=1)
    assert adm.want((NS, "a1"), want("q", 1, key="user-a"), 0, 0)[0].admitted
    verdict, _ = adm.want((NS, "a2"), want("q", 2, key="user-a"), 0, 0)
    assert not verdict.admitted and verdict.reason == Reason.CONCURRENCY_KEY_BUSY
    assert adm.want((NS, "b1"), want("q", 3, key="user-b"), 0, 0)[0].admitted
    assert adm.want((NS, "x"), want("q", 4), 0, 0)[0].admitted
    # the key is per namespace
    assert adm.want(("other", "a1"), want("q", 1, key="user-a"), 0, 0)[0].admitted
    for name in ("a1", "b1", "x"):
        adm.hold((NS, name), (NS, "q"), None)  # their Jobs made
    assert adm.release((NS, "a1"), 0, 0).keys == [(NS, "a2")]


def test_nothing_is_granted_before_the_operator_is_ready_then_order_is_from_the_objects() -> None:
    adm = admitter({"q": QueuePolicy(max_concurrency=2)}, ready=False)
    adm.hold((NS, "running"), (NS, "q"), None)  # a Job seen after the restart
    for i in (8, 2, 5):
        verdict, _ = adm.want((NS, f"j{i:04d}"), want("q", i), 0, 0)
        assert verdict.reason == Reason.OPERATOR_STARTING
    adm.ready = True
    assert adm.dispatch(0, 0).keys == [(NS, "j0002")]


def test_a_grant_not_used_is_given_back_to_the_next_run() -> None:
    adm = admitter({"q": QueuePolicy(max_concurrency=1)})
    assert adm.want((NS, "a"), want("q", 1), 0, 0)[0].admitted
    adm.want((NS, "b"), want("q", 2), 0, 0)
    assert adm.granted_without_job((NS, "a"))
    assert adm.withdraw((NS, "a"), 0, 0).keys == [(NS, "b")]  # cancelled before its Job
    adm.hold((NS, "b"), (NS, "q"), None)
    assert adm.withdraw((NS, "b"), 0, 0).keys == []  # its Job runs: the slot stays held


def test_runs_granted_in_one_round_make_their_jobs_in_the_order_granted() -> None:
    policies = {"q": QueuePolicy(max_concurrency=1)}
    adm = admitter(policies)
    for i in range(4):
        adm.want((NS, f"j{i:04d}"), want("q", i), 0, 0)
    adm.hold((NS, "j0000"), (NS, "q"), None)
    policies["q"] = QueuePolicy(max_concurrency=4)
    assert adm.dispatch(0, 0).keys == [(NS, "j0001"), (NS, "j0002"), (NS, "j0003")]
    assert [adm.has_turn((NS, f"j{i:04d}"), 1.0) for i in (1, 2, 3)] == [None, 5.0, 5.0]
    assert adm.hold((NS, "j0002"), (NS, "q"), None) == []  # not its turn: nothing to wake
    assert adm.hold((NS, "j0001"), (NS, "q"), None) == [(NS, "j0003")]
    assert adm.first_unstarted() == [(NS, "j0003")]
    assert adm.has_turn((NS, "j0003"), 1.0) is None


def test_a_slow_but_healthy_first_grant_is_waited_for_however_long_it_takes() -> None:
    """The order violation once seen in bench q1: the first grant's reconcile took more
    than TURN_PATIENCE on a loaded machine and the second made its Job first."""
    adm = admitter({"q": QueuePolicy(max_concurrency=2)})
    first, second = (NS, "j0001"), (NS, "j0002")
    adm.want(first, want("q", 1), 0.0, 0)
    adm.want(second, want("q", 2), 0.0, 0)
    for mono in (1.0, TURN_PATIENCE + 1, 3600.0):
        assert adm.has_turn(second, mono) == TURN_PATIENCE  # asks again later, still waits
    assert adm.hold(first, (NS, "q"), None) == [second]  # its turn: woken
    assert adm.has_turn(second, 3600.0) is None


def test_a_first_grant_whose_reconcile_failed_holds_the_next_back_only_so_long() -> None:
    adm = admitter({"q": QueuePolicy(max_concurrency=3)})
    keys = [(NS, f"j{i:04d}") for i in (1, 2, 3)]
    for i, key in enumerate(keys, 1):
        adm.want(key, want("q", i), 0.0, 0)
    adm.turn_failed(keys[0], 100.0)
    adm.turn_failed(keys[0], 103.0)  # failing again: patience counts from the first failure
    assert adm.has_turn(keys[1], 102.0) == TURN_PATIENCE - 2
    assert adm.has_turn(keys[1], 100.0 + TURN_PATIENCE) is None
    assert adm.hold(keys[1], (NS, "q"), None) == []  # not the first: nobody else woken
    assert adm.has_turn(keys[2], 100.0 + TURN_PATIENCE) is None


def test_a_failure_marks_only_a_grant_still_to_make_its_job() -> None:
    adm = admitter({"q": QueuePolicy(max_concurrency=3)})
    first, second, third = (NS, "j0001"), (NS, "j0002"), (NS, "j0003")
    for i, key in enumerate((first, second, third), 1):
        adm.want(key, want("q", i), 0.0, 0)
    adm.turn_failed((NS, "nobody"), 1.0)  # no slot: nothing to mark
    adm.turn_failed(second, 1.0)  # not first: its failure does not let the third pass the first
    assert adm.has_turn(third, 100.0) == TURN_PATIENCE
    assert adm.hold(first, (NS, "q"), None) == [second]
    adm.turn_failed(first, 2.0)  # its Job was made: nothing to mark
    assert adm.has_turn(third, 2.0) == TURN_PATIENCE - 1.0  # behind the failed second
    assert adm.has_turn(third, 6.0) is None


Step = tuple[str, int, int, str | None]  # ("want"|"end", job, queue index, key)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["want", "end", "end"]),
            st.integers(0, 30),
            st.integers(0, 1),
            st.sampled_from([None, "k1", "k2"]),
        ),
        max_size=120,
    ),
    st.integers(1, 3),
    st.sampled_from([None, 2, 4]),
)
def test_limits_are_never_exceeded_and_each_queue_starts_in_fifo_order(
    steps: list[Step], limit: int, cap: int | None
) -> None:
    names = ["a", "b"]
    adm = admitter({n: QueuePolicy(max_concurrency=limit) for n in names}, max_running=cap)
    wants: dict[int, Want] = {}
    running: set[int] = set()
    waiting: set[int] = set()

    def started_now(keys: list[tuple[str, str]]) -> None:
        jobs = {int(name) for _, name in keys}
        running.update(jobs)
        waiting.difference_update(jobs)
        for job in jobs:
            # FIFO: no earlier run of the queue, free to start (no key), still waits.
            queue = wants[job].queue
            assert not [
                w
                for w in waiting
                if w < job and wants[w].queue == queue and wants[w].concurrency_key is None
            ]

    for action, job, q, key in steps:
        if action == "want" and job not in wants:
            wants[job] = Want(names[q], Place("2026-11-30T00:00:00Z", f"{job:03d}"), key)
            waiting.add(job)
            verdict, dispatch = adm.want((NS, f"{job:03d}"), wants[job], 0, 0)
            assert verdict.admitted == ((NS, f"{job:03d}") in dispatch.keys)
            started_now(dispatch.keys)
        elif action == "end" and running:
            done = sorted(running)[job % len(running)]
            running.discard(done)
            started_now(adm.release((NS, f"{done:03d}"), 0, 0).keys)
        per_queue = {n: sum(1 for j in running if wants[j].queue == n) for n in names}
        assert all(count <= limit for count in per_queue.values())
        assert cap is None or len(running) <= cap
        for k in ("k1", "k2"):
            assert sum(1 for j in running if wants[j].concurrency_key == k) <= 1


def test_the_committed_queue_crd_is_generated_from_the_models() -> None:
    from pathlib import Path

    from backgroundjobs.api import queues

    committed = Path(__file__).parents[2] / "crds" / "backgroundjobs.dev_backgroundjobqueues.yaml"
    assert committed.read_text() == queues.render(), "run `make crd` and commit the result"
    version = queues.build_crd()["spec"]["versions"][0]
    spec = version["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]
    assert set(spec) == {
        "maxConcurrency",
        "priority",
        "priorityClassName",
        "rateLimit",
        "paused",
        "kueue",
    }
    assert spec["kueue"]["required"] == ["localQueue"]
    assert spec["rateLimit"]["required"] == ["perSecond"]
    assert [col["name"] for col in version["additionalPrinterColumns"]][:5] == [
        "Max",
        "Priority",
        "Paused",
        "Pending",
        "Running",
    ]
