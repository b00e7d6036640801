"""A ``failed-only`` requeue of a batch, the pure parts: which items the last run did not
succeed (from its Job's interval lists, or its status), the rerun's ConfigMap and Job, its
counts over the whole batch in the user's indexes, the refusals, and the runtime's index."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.unit.test_batches import ITEMS, batch_bgj, decide_batch, items_env, started
from tests.unit.test_decisions import T0, bgj, reasons, view

from backgroundjobs.api import constants as c
from backgroundjobs.api.models import BatchRerun, BatchStatus, ItemError
from backgroundjobs.api.requester import is_failed_only, requester_of
from backgroundjobs.cli._parser import build_parser
from backgroundjobs.cli._requeue import requeue_changes
from backgroundjobs.cli.render.timeline import batch_fields
from backgroundjobs.client import JobInfo
from backgroundjobs.controller.decisions import ObservedJob
from backgroundjobs.controller.decisions.rerun import (
    intervals,
    items_to_rerun,
    parse_indexes,
)
from backgroundjobs.runtime._env import job_from_env
from backgroundjobs.runtime._items import InvalidBatchItem, batch_item

pytestmark = pytest.mark.unit

FAILED_ONLY = "failed-only 2026-11-30T18:00:00.000000Z by alice"


@pytest.mark.parametrize(
    ("value", "failed_only"),
    [("failed-only", True), (FAILED_ONLY, True), ("now", False), ("", False),
     ("failed-onlyx", False), ("2026-11-30 by failed-only", False)],
)  # fmt: skip
def test_failed_only_is_the_values_first_word(value: str, failed_only: bool) -> None:
    assert is_failed_only(value) is failed_only


def test_the_requester_is_still_read_from_a_failed_only_value() -> None:
    assert requester_of(FAILED_ONLY) == "alice"


@pytest.mark.parametrize(
    ("text", "limit", "indexes"),
    [("1,3-5", 10, {1, 3, 4, 5}), ("", 10, set()), (" 2, 7", 8, {2, 7}),
     ("0-9", 10, set(range(10))), ("0-10", 10, None), ("x", 10, None), ("5-3", 10, None),
     ("-1", 10, None), ("0-999999999999", 10, None), ("1,...", 10, None)],
)  # fmt: skip
def test_parse_indexes_refuses_what_is_not_the_batchs(
    text: str, limit: int, indexes: set[int] | None
) -> None:
    assert parse_indexes(text, limit) == indexes


@pytest.mark.parametrize(
    "indexes", [[], [0], [1, 3, 4, 5], [0, 1, 2, 9, 11, 12], list(range(0, 100, 3))]
)
def test_intervals_round_trip(indexes: list[int]) -> None:
    text = intervals(indexes)
    assert parse_indexes(text, 1000) == set(indexes)
    assert intervals([5, 4, 3, 1]) == "1,3-5"
    assert intervals([0, 1, 3, 4, 6]) == "0,1,3,4,6"  # as the Job controller writes it


def finished_job(name: str, completed: str, failed: str, reason: str) -> ObservedJob:
    return view(name, completed_indexes=completed, failed_indexes=failed, failure_reason=reason,
                failure_time=T0)  # fmt: skip


def test_items_to_rerun_are_the_failed_and_the_never_started() -> None:
    # the budget stopped the Job: 1 and 4 failed, 3 never started
    job = finished_job("news-1", "0,2", "1,4", "MaxFailedIndexesExceeded")
    assert items_to_rerun(job, None, 5) == [1, 3, 4]
    # a rerun's Job speaks in completion indexes: position 1 of (1, 3, 4) is item 3
    rerun = BatchRerun(from_run=1, items=3, indexes="1,3,4")
    last = BatchStatus(total=5, succeeded=4, failed=1, rerun=rerun)
    again = finished_job("news-2", "0,2", "1", "FailedIndexes")
    assert items_to_rerun(again, last, 5) == [3]


def test_without_its_job_the_status_must_name_every_failed_item() -> None:
    told = BatchStatus(total=5, succeeded=3, failed=2, failed_indexes="1,4")
    assert items_to_rerun(None, told, 5) == [1, 4]
    cut = BatchStatus(total=5, succeeded=3, failed=2, failed_indexes="1,...")
    assert "names only some" in str(items_to_rerun(None, cut, 5))
    unrun = BatchStatus(total=5, succeeded=1, failed=2, failed_indexes="1,4")
    assert "never ran" in str(items_to_rerun(None, unrun, 5))
    assert isinstance(items_to_rerun(None, None, 5), str)
    gone = BatchRerun(from_run=1, items=1, indexes="9")  # spec.items shrank since
    shrunk = BatchStatus(total=5, succeeded=4, failed=1, rerun=gone)
    assert "no longer match" in str(items_to_rerun(None, shrunk, 5))


def failed_first_run() -> tuple[dict[str, object], ObservedJob]:
    """A batch of 5 (budget 1) whose run 1 failed items 1 and 4, requeued failed-only."""
    body = started()
    job = finished_job("news-1", "0,2-3", "1,4", "FailedIndexes")
    body["status"] = decide_batch(body, [job], termination={"news-1": "boom"}).status
    assert body["status"]["phase"] == "Failed"  # type: ignore[index]
    body["metadata"]["annotations"] = {c.ANNOTATION_REQUEUE: FAILED_ONLY}  # type: ignore[index]
    return body, job


def test_failed_only_requeue_runs_those_items_with_their_indexes() -> None:
    body, job = failed_first_run()
    plan = decide_batch(body, [job], admitted=True)
    cm, created = plan.create
    assert (cm["metadata"]["name"], created["metadata"]["name"]) == ("news-2", "news-2")
    lines = [json.loads(x) for x in cm["data"][c.BATCH_ITEMS_KEY].splitlines()]
    assert lines == [{"index": i, **ITEMS[i]} for i in (1, 4)]
    assert (created["spec"]["completions"], created["spec"]["parallelism"]) == (2, 2)
    st = plan.status
    assert st["runs"] == 2 and st["handledActions"]["requeue"] == FAILED_ONLY
    assert st["batch"] == {
        "total": 5, "succeeded": 3, "failed": 0, "running": 0, "progress": "3/5",
        "rerun": {"fromRun": 1, "items": 2, "indexes": "1,4"},
    }  # fmt: skip
    assert st["runHistory"][-1]["reason"] == "Requeued"
    # the operator killed before the status write: the same decision, the same names
    again = decide_batch(body, [job], admitted=True)
    assert again.create == plan.create


def test_a_reruns_counts_are_over_the_whole_batch_in_the_users_indexes() -> None:
    body, job = failed_first_run()
    body["status"] = decide_batch(body, [job], admitted=True).status
    running = view("news-2", active_pods=1, completed_indexes="0")
    st = decide_batch(body, [job, running]).status
    assert (st["batch"]["succeeded"], st["batch"]["progress"]) == (4, "4/5")
    assert "rerun of 2 items of run 1" in st["message"]
    # position 1 of the rerun (item 4) fails again: within the budget of 1
    done = finished_job("news-2", "0", "1", "FailedIndexes")
    errors = {"news-2": [ItemError(index=1, error="KeyError: user-4")]}
    plan = decide_batch(body, [job, done], termination={"news-2": "boom"}, item_errors=errors)
    b = plan.status["batch"]
    assert (b["total"], b["succeeded"], b["failed"], b["failedIndexes"]) == (5, 4, 1, "4")
    assert b["itemErrors"] == [{"index": 4, "error": "KeyError: user-4"}]
    assert plan.status["phase"] == "Succeeded", plan.status["message"]
    assert plan.status["result"] == {"total": 5, "succeeded": 4, "failed": 1, "failedIndexes": "4"}


def rerun_failed_again() -> tuple[dict[str, object], ObservedJob, ObservedJob]:
    """A batch whose failed-only rerun (run 2) failed its one item again: the object, its
    first run's Job and its rerun's Job."""
    body, job = failed_first_run()
    body["status"] = decide_batch(body, [job], admitted=True).status
    done = finished_job("news-2", "0", "1", "FailedIndexes")
    body["status"] = decide_batch(body, [job, done], termination={"news-2": "boom"}).status
    return body, job, done


def test_a_rerun_of_a_rerun_takes_only_what_failed_again() -> None:
    body, job, done = rerun_failed_again()
    body["metadata"]["annotations"] = {c.ANNOTATION_REQUEUE: "failed-only again"}
    plan = decide_batch(body, [job, done], admitted=True)
    cm, created = plan.create
    assert [json.loads(x)["index"] for x in cm["data"][c.BATCH_ITEMS_KEY].splitlines()] == [4]
    assert created["spec"]["completions"] == 1
    assert plan.status["batch"]["rerun"] == {"fromRun": 2, "items": 1, "indexes": "4"}
    complete = view("news-3", completed_indexes="0", succeeded=1, complete=True,
                    completion_time=T0)  # fmt: skip
    body["status"] = plan.status
    st = decide_batch(body, [job, done, complete]).status
    assert st["phase"] == "Succeeded"
    assert (st["batch"]["succeeded"], st["batch"]["failed"], st["batch"]["progress"]) == (
        5,
        0,
        "5/5",
    )


def test_failed_only_with_nothing_failed_is_refused_with_a_warning() -> None:
    body = started()
    job = view("news-1", succeeded=5, completed_indexes="0-4", complete=True, completion_time=T0)
    body["status"] = decide_batch(body, [job]).status
    body["metadata"]["annotations"] = {c.ANNOTATION_REQUEUE: FAILED_ONLY}
    plan = decide_batch(body, [job], admitted=True)
    assert plan.create == [] and plan.status["runs"] == 1
    assert plan.status["phase"] == "Succeeded"
    assert plan.status["handledActions"]["requeue"] == FAILED_ONLY  # acted on once
    (warning,) = [e for e in plan.events if e[1] == "RequeueIgnored"]
    assert warning[0] == "Warning" and "nothing to rerun" in warning[2]


def test_failed_only_on_a_job_that_is_not_a_batch_is_refused() -> None:
    body = bgj("single", args=[1])
    body["status"] = decide_batch(body, admitted=True).status
    failed = view("single-1", failed=1, failure_reason="BackoffLimitExceeded", failure_time=T0)
    body["status"] = decide_batch(body, [failed], termination={"single-1": "boom"}).status
    assert body["status"]["phase"] == "Failed"
    body["metadata"]["annotations"] = {c.ANNOTATION_REQUEUE: "failed-only"}
    plan = decide_batch(body, [failed], admitted=True)
    assert plan.create == [] and plan.status["runs"] == 1
    assert "RequeueIgnored" in reasons(plan)
    assert any("not a batch" in e[2] for e in plan.events)


def test_failed_only_on_a_running_batch_is_refused_like_any_requeue() -> None:
    body = started()
    body["metadata"]["annotations"] = {c.ANNOTATION_REQUEUE: FAILED_ONLY}
    plan = decide_batch(body, [view("news-1", active_pods=2)])
    assert plan.create == []
    assert any("only a finished job can be requeued" in e[2] for e in plan.events)


def test_failed_only_on_a_recurring_job_is_refused() -> None:
    body = bgj("nightly", schedule="0 3 * * *")
    body["status"] = decide_batch(body).status
    body["metadata"]["annotations"] = {c.ANNOTATION_REQUEUE: FAILED_ONLY}
    plan = decide_batch(body)
    assert not [o for o in plan.create if o["kind"] == "Job"]
    assert "RequeueIgnored" in reasons(plan)


def test_runtime_reports_the_items_index_in_the_batch(tmp_path: Path) -> None:
    lines = [json.dumps({"index": i, **ITEMS[i]}) for i in (1, 4)]
    env = items_env(tmp_path, "1", lines)
    job = job_from_env({**env, c.ENV_NAME: "news", c.ENV_NAMESPACE: "shop", c.ENV_RUN: "2"})
    assert (job.item, job.args) == (4, ["user-4"])
    assert job.key == "shop/news/2/4"
    with pytest.raises(InvalidBatchItem, match="index must be"):
        batch_item(items_env(tmp_path, "0", ['{"index": -1, "args": []}']))
    with pytest.raises(InvalidBatchItem, match="index must be"):
        batch_item(items_env(tmp_path, "0", ['{"index": true, "args": []}']))


def test_a_full_batch_requeue_clears_the_rerun_record() -> None:
    body, job, done = rerun_failed_again()
    body["metadata"]["annotations"] = {c.ANNOTATION_REQUEUE: "plain"}
    plan = decide_batch(body, [job, done], admitted=True)
    assert plan.create[1]["spec"]["completions"] == 5
    assert "rerun" not in plan.status["batch"]
    assert batch_bgj()["spec"]["items"] == ITEMS


intervals_as_jobs_write = st.lists(st.integers(0, 4), max_size=5, unique=True).map(intervals)


@settings(max_examples=150, deadline=None)
@given(
    completed=intervals_as_jobs_write,
    failed=intervals_as_jobs_write,
    last_rerun=st.none() | st.lists(st.integers(0, 4), min_size=1, unique=True).map(sorted),
)
def test_a_failed_only_requeue_reruns_exactly_the_items_that_did_not_succeed(
    completed: str, failed: str, last_rerun: list[int] | None
) -> None:
    """Whatever the last run (a full run or a rerun) completed: the new run's items are the
    ones it ran without completing, each once, named by its index in the batch."""
    body = started()
    ran = last_rerun if last_rerun is not None else list(range(5))
    done = parse_indexes(completed, len(ran))
    if done is None:
        return  # a completed index past the run's completions: no Job writes that
    if last_rerun is not None:
        rerun = BatchRerun(from_run=1, items=len(ran), indexes=intervals(ran))
        body["status"]["batch"]["rerun"] = rerun.model_dump(by_alias=True)
    job = finished_job("news-1", completed, failed, "FailedIndexes")
    body["status"] = decide_batch(body, [job], termination={"news-1": "boom"}).status
    body["metadata"]["annotations"] = {c.ANNOTATION_REQUEUE: FAILED_ONLY}
    plan = decide_batch(body, [job], admitted=True)
    expected = [index for position, index in enumerate(ran) if position not in done]
    if not expected:
        assert plan.create == [] and "RequeueIgnored" in reasons(plan)
        return
    cm, created = plan.create
    lines = [json.loads(x) for x in cm["data"][c.BATCH_ITEMS_KEY].splitlines()]
    assert [x["index"] for x in lines] == expected
    assert [x["args"] for x in lines] == [ITEMS[i]["args"] for i in expected]
    assert created["spec"]["completions"] == len(expected)
    assert plan.status["batch"]["succeeded"] == 5 - len(expected)


def test_describe_says_which_items_a_rerun_runs() -> None:
    rerun = BatchRerun(from_run=1, items=3, indexes="1,3,4")
    b = BatchStatus(total=6, succeeded=5, failed=1, failed_indexes="3", rerun=rerun)
    info = JobInfo(name="b", namespace="ns", handler="h", type="Batch", phase="Failed", batch=b)
    text = "\n".join(batch_fields(info, 80))
    assert "Rerun:      3 items of run 1 (items 1,3,4)" in text
    assert "Failed:     items 3" in text
    plain = replace(info, batch=BatchStatus(total=6, succeeded=6))
    assert "Rerun" not in "\n".join(batch_fields(plain, 80))


def test_cli_failed_only_flag_becomes_the_clients_keyword() -> None:
    parse = build_parser("bgjobs").parse_args
    assert requeue_changes(parse(["requeue", "b", "--failed-only"])) == {"failed_only": True}
    changed = requeue_changes(parse(["requeue", "b", "--failed-only", "--image", "img:2"]))
    assert changed == {"failed_only": True, "image": "img:2"}
    assert "failed_only" not in requeue_changes(parse(["requeue", "b"]))


def test_a_failed_only_requeue_held_by_its_queue_waits_then_runs_the_same_items() -> None:
    body, job = failed_first_run()
    held = decide_batch(body, [job], admitted=False)
    assert held.create == [] and held.status["phase"] == "Queued"
    assert held.status.get("handledActions", {}).get("requeue") != FAILED_ONLY  # still pending
    body["status"] = held.status
    plan = decide_batch(body, [job], admitted=True)
    assert plan.status["batch"]["rerun"] == {"fromRun": 1, "items": 2, "indexes": "1,4"}
    assert plan.create[1]["spec"]["completions"] == 2
