"""Batches, the pure parts: item counts from a Job's status, the batch's decisions (its
ConfigMap and Indexed Job, its end by the failure budget), the CEL rules in the generated
CRD, the runtime's pick of its item, and the client's check of every item."""

from __future__ import annotations

import copy
import functools
import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError
from tests.unit.test_decisions import SETTINGS, T0, bgj, checked, condition, reasons, view

from backgroundjobs._credentials import SecretKey
from backgroundjobs.api import constants as c
from backgroundjobs.api.crd import build_crd
from backgroundjobs.api.models import BackgroundJobSpec
from backgroundjobs.client._batches import prepare_items
from backgroundjobs.controller.decisions import Observed, ObservedJob, Plan, decide
from backgroundjobs.controller.decisions.batch import (
    batch_status,
    count_indexes,
    items_jsonl,
    items_problem,
)
from backgroundjobs.controller.decisions.observed import (
    PARSED_SPEC_MIN_ITEMS,
    PARSED_SPECS_MAX,
    parse_spec,
)
from backgroundjobs.errors import InvalidArguments, InvalidSpec
from backgroundjobs.runtime._env import InvalidJobEnv, job_from_env
from backgroundjobs.runtime._items import InvalidBatchItem, batch_item

pytestmark = pytest.mark.unit

Body = dict[str, Any]
ITEMS = [{"args": [f"user-{i}"], "kwargs": {"title": "News"}} for i in range(5)]


def batch_bgj(status: Body | None = None, **spec: Any) -> Body:
    return bgj("news", status=status, items=copy.deepcopy(ITEMS), **spec)


def decide_batch(body: Body, jobs: list[ObservedJob] = (), **kw: Any) -> Plan:  # type: ignore[assignment]
    obs = Observed(bgj=copy.deepcopy(body), now=T0, jobs={j.name: j for j in jobs}, **kw)
    return checked(decide(obs, SETTINGS))


def started() -> Body:
    body = batch_bgj(parallelism=2, retries=1, maxFailed=1)
    plan = decide_batch(body, admitted=True)
    body["status"] = plan.status
    return body


# ------------------------------------------------------------------ counts


@pytest.mark.parametrize(
    ("intervals", "count"), [("", 0), ("0", 1), ("1,3-5", 4), ("0-9999", 10000), ("2, 7", 2)]
)
def test_count_indexes(intervals: str, count: int) -> None:
    assert count_indexes(intervals) == count


def test_batch_status_from_the_job_counts() -> None:
    running = view("news-1", active_pods=3, succeeded=4, completed_indexes="0-3", failed=2)
    b = batch_status(running, 10)
    assert (b.succeeded, b.failed, b.running, b.progress) == (4, 0, 3, "4/10")
    done = view("news-1", completed_indexes="0,2-9", failed_indexes="1", active_pods=1)
    done = ObservedJob(**{**done.__dict__, "complete": True})
    b = batch_status(done, 10, "KeyError: x")
    assert (b.succeeded, b.failed, b.running, b.progress) == (9, 1, 0, "10/10")
    assert (b.failed_indexes, b.last_error) == ("1", "KeyError: x")


def test_failed_indexes_text_is_bounded() -> None:
    many = ",".join(str(i) for i in range(0, 4000, 2))
    b = batch_status(view("news-1", failed_indexes=many), 4000)
    assert b.failed == 2000  # counted from the whole list
    assert b.failed_indexes is not None and len(b.failed_indexes) <= c.MAX_FAILED_INDEXES_TEXT
    assert b.failed_indexes.endswith(",...") and b.failed_indexes.startswith("0,2,4")


# ------------------------------------------------------------------ decisions


def test_first_reconcile_creates_the_configmap_then_the_indexed_job() -> None:
    plan = decide_batch(batch_bgj(parallelism=2, retries=1, maxFailed=1), admitted=True)
    cm, job = plan.create
    assert (cm["kind"], cm["metadata"]["name"], job["metadata"]["name"]) == (
        "ConfigMap",
        "news-1",
        "news-1",
    )
    assert cm["immutable"] is True
    assert cm["metadata"]["ownerReferences"][0]["uid"] == bgj()["metadata"]["uid"]
    lines = cm["data"][c.BATCH_ITEMS_KEY].splitlines()
    assert [json.loads(x) for x in lines] == ITEMS
    spec = job["spec"]
    assert spec["completionMode"] == "Indexed"
    assert (spec["completions"], spec["parallelism"]) == (5, 2)
    assert (spec["backoffLimitPerIndex"], spec["maxFailedIndexes"]) == (1, 1)
    assert "backoffLimit" not in spec  # a Job-wide limit would count every item's failures
    assert [r["action"] for r in spec["podFailurePolicy"]["rules"]] == ["FailIndex", "Ignore"]
    pod = spec["template"]["spec"]
    assert pod["volumes"] == [
        {"name": c.BATCH_ITEMS_VOLUME, "configMap": {"name": "news-1"}},
    ]
    (handler,) = pod["containers"]
    env = {e["name"]: e.get("value") for e in handler["env"]}
    assert env[c.ENV_ITEMS_FILE] == f"{c.BATCH_ITEMS_DIR}/{c.BATCH_ITEMS_KEY}"
    assert handler["volumeMounts"][-1]["mountPath"] == c.BATCH_ITEMS_DIR
    assert plan.status["type"] == "Batch"
    assert plan.status["batch"] == {"total": 5, "succeeded": 0, "failed": 0, "running": 0,
                                    "progress": "0/5"}  # fmt: skip


def test_parallelism_defaults_to_20_capped_by_the_items() -> None:
    plan = decide_batch(batch_bgj(), admitted=True)
    assert plan.create[1]["spec"]["parallelism"] == 5
    assert "maxFailedIndexes" not in plan.create[1]["spec"]  # no budget: every item runs


def test_a_full_queue_holds_the_whole_batch() -> None:
    plan = decide_batch(batch_bgj(), admitted=False)
    assert plan.create == [] and plan.status["phase"] == "Queued"


def test_running_batch_reports_progress() -> None:
    body = started()
    job = view("news-1", active_pods=2, succeeded=2, completed_indexes="0-1", start_time=T0)
    plan = decide_batch(body, [job])
    assert plan.status["phase"] == "Running"
    assert plan.status["batch"]["progress"] == "2/5"
    assert plan.status["batch"]["running"] == 2
    assert "2/5 items done" in plan.status["message"]
    assert plan.create == [] and plan.need_termination is None


def test_complete_batch_succeeds_without_reading_a_pod() -> None:
    body = started()
    job = view("news-1", succeeded=5, completed_indexes="0-4", complete=True, completion_time=T0)
    plan = decide_batch(body, [job])
    assert plan.need_termination is None
    assert plan.status["phase"] == "Succeeded"
    assert plan.status["result"] == {"total": 5, "succeeded": 5, "failed": 0}
    assert "Succeeded" in reasons(plan)


def failed_job(indexes: str, reason: str, completed: str = "0,2-4") -> ObservedJob:
    return view(
        "news-1",
        completed_indexes=completed,
        failed_indexes=indexes,
        failure_reason=reason,
        failure_time=T0,
    )


def test_failures_within_the_budget_succeed_with_the_last_error() -> None:
    body = started()
    job = failed_job("1", "FailedIndexes")
    plan = decide_batch(body, [job])
    assert plan.need_termination == "news-1"  # one failed item's error, read once
    message = json.dumps({"error": "no such user", "type": "KeyError"})
    plan = decide_batch(body, [job], termination={"news-1": message})
    st = plan.status
    assert st["phase"] == "Succeeded", st["message"]
    assert st["batch"]["failedIndexes"] == "1"
    assert st["batch"]["lastError"] == "KeyError: no such user"
    assert "within the failure budget of 1" in st["message"]


def test_failures_without_a_budget_fail_the_batch() -> None:
    body = batch_bgj(status=None)
    body["status"] = decide_batch(body, admitted=True).status
    plan = decide_batch(body, [failed_job("1", "FailedIndexes")], termination={"news-1": None})
    assert plan.status["phase"] == "Failed"
    assert condition(plan.status, "Failed")["reason"] == "FailedIndexes"  # type: ignore[index]


def test_over_the_budget_fails_saying_the_rest_did_not_run() -> None:
    body = started()
    job = failed_job("0-1", "MaxFailedIndexesExceeded", completed="")
    plan = decide_batch(body, [job], termination={"news-1": "boom"})
    st = plan.status
    assert st["phase"] == "Failed"
    assert condition(st, "Failed")["reason"] == "MaxFailedIndexesExceeded"  # type: ignore[index]
    assert "the rest did not run" in st["message"] and "last error: boom" in st["message"]


def test_a_batch_timeout_fails_it_with_the_jobs_reason() -> None:
    body = started()
    job = view("news-1", completed_indexes="0", failure_reason="DeadlineExceeded",
               failure_message="Job was active longer than specified deadline")  # fmt: skip
    plan = decide_batch(body, [job])
    assert plan.status["phase"] == "Failed"
    assert "deadline" in plan.status["message"]


def test_cancel_deletes_the_batch_job() -> None:
    body = started()
    body["metadata"]["annotations"] = {c.ANNOTATION_CANCEL: "now"}
    plan = decide_batch(body, [view("news-1", active_pods=2)])
    assert plan.delete_jobs == ["news-1"] and plan.status["phase"] == "Cancelled"


def test_items_with_args_or_too_large_are_invalid_spec() -> None:
    plan = decide_batch(batch_bgj(args=["x"]), admitted=True)
    assert plan.status["phase"] == "Failed" and plan.create == []
    assert "spec.items replaces spec.args" in plan.status["message"]
    huge = [{"args": ["x" * 60_000]} for _ in range(20)]
    plan = decide_batch(bgj("news", items=huge), admitted=True)
    assert plan.create == [] and "several batches" in plan.status["message"]
    deep: Any = []
    for _ in range(100):
        deep = [deep]
    spec = BackgroundJobSpec.model_validate({"handler": "h", "items": [{"args": deep}]})
    problem = items_problem(spec, [{"args": deep}])
    assert problem is not None and problem.startswith("spec.items is nested")


def test_items_jsonl_is_one_line_per_item() -> None:
    spec = BackgroundJobSpec.model_validate({"handler": "h", "items": [{"args": [1]}, {}]})
    assert items_jsonl(spec.items or []) == '{"args":[1],"kwargs":{}}\n{"args":[],"kwargs":{}}\n'


# ------------------------------------------------------------------ the CRD's rules


@functools.cache
def crd() -> Body:
    return build_crd()


def spec_rules() -> list[Body]:
    schema = crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return list(schema["properties"]["spec"]["x-kubernetes-validations"])


@pytest.mark.parametrize(
    ("needle", "field_path", "message"),
    [
        ("size(self.items) > 0", ".items", "spec.items must hold at least one item"),
        ("!has(self.schedule)", ".items", "cannot be combined with spec.schedule"),
        ("!has(self.after)", ".items", "cannot be combined with spec.after"),
        ("!has(self.delay)", ".items", "cannot be combined with spec.delay"),
        ("!has(self.runAt)", ".items", "cannot be combined with spec.runAt"),
        ("!has(self.parallelism) || has(self.items)", ".parallelism", "spec.parallelism"),
        ("!has(self.maxFailed) || has(self.items)", ".maxFailed", "spec.maxFailed"),
        ("self.maxFailed <= size(self.items)", ".maxFailed", "cannot exceed"),
        ("has(self.items) == has(oldSelf.items)", ".items", "a batch stays a batch"),
    ],
)
def test_batch_rules_name_their_field(needle: str, field_path: str, message: str) -> None:
    (rule,) = [r for r in spec_rules() if needle in r["rule"] and "items" in r["rule"]]
    assert rule["fieldPath"] == field_path
    assert message in rule["message"]


def test_items_schema_is_bounded() -> None:
    spec = crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    items = spec["properties"]["items"]
    assert items["maxItems"] == c.MAX_BATCH_ITEMS  # keeps the CEL cost estimate bounded
    assert set(items["items"]["properties"]) == {"args", "kwargs"}
    assert spec["properties"]["parallelism"]["maximum"] == c.MAX_BATCH_PARALLELISM


# ------------------------------------------------------------------ the runtime


def items_env(tmp_path: Path, index: str, lines: list[str]) -> dict[str, str]:
    path = tmp_path / c.BATCH_ITEMS_KEY
    path.write_text("".join(line + "\n" for line in lines))
    return {
        c.ENV_HANDLER: "mail.send",
        c.ENV_ARGS: "[]",
        c.ENV_ITEMS_FILE: str(path),
        c.ENV_COMPLETION_INDEX: index,
    }


def test_runtime_picks_the_item_of_its_completion_index(tmp_path: Path) -> None:
    env = items_env(tmp_path, "2", [json.dumps(i) for i in ITEMS[:3]])
    job = job_from_env({**env, c.ENV_NAME: "news", c.ENV_NAMESPACE: "shop", c.ENV_RUN: "1"})
    assert (job.args, job.kwargs) == (["user-2"], {"title": "News"})
    assert job.key == "shop/news/1/2"  # an idempotency key per item
    assert batch_item({c.ENV_HANDLER: "x"}) is None  # not a batch


@pytest.mark.parametrize(
    ("index", "lines", "error"),
    [
        ("", ['{"args": []}'], "is not an index"),
        ("3", ['{"args": []}'], "has no item 3"),
        ("0", ["[1, 2]"], "must be an object"),
        ("0", ["{not json"], "not valid JSON"),
        ("0", ['{"args": {"a": 1}}'], "args must be an array"),
    ],
)
def test_runtime_refuses_a_bad_item(
    tmp_path: Path, index: str, lines: list[str], error: str
) -> None:
    env = items_env(tmp_path, index, lines)
    with pytest.raises(InvalidBatchItem, match=error):
        batch_item(env)
    with pytest.raises(InvalidJobEnv, match=error):  # exits 2: the item fails, not retried
        job_from_env(env)


# ------------------------------------------------------------------ the client


def send(user_id: str, message: str, title: str = "") -> None:
    """A handler to check items against."""


def test_client_checks_every_item_against_the_signature() -> None:
    name, items, _ = prepare_items(
        send, [(("u1", "hi"), {}), {"args": ["u2"], "kwargs": {"message": "yo"}}], {"title": "T"}
    )
    assert name.endswith(":send")
    assert items == [
        {"args": ["u1", "hi"], "kwargs": {"title": "T"}},
        {"args": ["u2"], "kwargs": {"message": "yo", "title": "T"}},
    ]
    with pytest.raises(InvalidArguments, match=r"item 1: .*message"):
        prepare_items(send, [(("u1", "hi"), {}), (("u2",), {})], {})
    with pytest.raises(InvalidArguments, match="item 0: only args and kwargs"):
        prepare_items(send, [{"args": ["u"], "extra": 1}], {})
    with pytest.raises(InvalidArguments, match="item 0: a batch item cannot pass a SecretKey"):
        prepare_items(send, [(("u", "m"), {"title": SecretKey("s", "k")})], {})


def test_client_refuses_empty_and_oversized_batches() -> None:
    with pytest.raises(InvalidSpec, match="at least one item"):
        prepare_items(send, [], {})
    big = [((f"user-{i}", "m" * 600), {}) for i in range(2000)]  # 1.2 MB as JSON lines
    with pytest.raises(InvalidSpec, match="several batches"):
        prepare_items(send, big, {})


def test_requeue_runs_the_whole_batch_again_with_a_new_configmap() -> None:
    body = started()
    job = view("news-1", completed_indexes="0,2-4", failed_indexes="1",
               failure_reason="FailedIndexes", failure_time=T0)  # fmt: skip
    body["status"] = decide_batch(body, [job], termination={"news-1": "boom"}).status
    assert body["status"]["phase"] == "Succeeded"  # within its budget of 1
    body["metadata"]["annotations"] = {c.ANNOTATION_REQUEUE: "1"}
    plan = decide_batch(body, [job], admitted=True)
    assert [(o["kind"], o["metadata"]["name"]) for o in plan.create] == [
        ("ConfigMap", "news-2"),
        ("Job", "news-2"),
    ]
    assert plan.status["batch"]["progress"] == "0/5" and plan.status["runs"] == 2


# ------------------------------------------------------------------ parsed spec cache


def big_batch(uid: str, generation: int = 1, n: int = PARSED_SPEC_MIN_ITEMS) -> Body:
    items = [{"args": [f"user-{i}"], "kwargs": {"title": "News"}} for i in range(n)]
    return bgj("big", uid=uid, generation=generation, items=items)


def test_a_large_batch_spec_is_parsed_once_per_generation() -> None:
    body = big_batch("uid-big-1")
    first = parse_spec(body)
    assert parse_spec(copy.deepcopy(body)) is first  # a new watch event, the same spec
    changed = big_batch("uid-big-1", generation=2)
    changed["spec"]["items"][0]["args"] = ["someone-else"]
    second = parse_spec(changed)
    assert second is not first and second.items is not None
    assert second.items[0].args == ["someone-else"]
    small = bgj("small", uid="uid-small", items=copy.deepcopy(ITEMS))
    assert parse_spec(small) is not parse_spec(small)  # small specs are not kept


def test_the_parsed_spec_cache_is_bounded_and_keeps_no_invalid_spec() -> None:
    first = parse_spec(big_batch("uid-bound-0"))
    for i in range(1, PARSED_SPECS_MAX + 1):
        parse_spec(big_batch(f"uid-bound-{i}"))
    assert parse_spec(big_batch("uid-bound-0")) is not first  # the oldest went first
    invalid = big_batch("uid-invalid")
    invalid["spec"]["parallelism"] = "many"
    for _ in range(2):
        with pytest.raises(ValidationError):
            parse_spec(invalid)


def test_deciding_a_running_batch_leaves_its_shared_spec_unchanged() -> None:
    """The cached model is shared by every reconcile: deciding must not change it."""
    body = big_batch("uid-shared")
    plan = decide_batch(body, admitted=True)
    body["status"] = plan.status
    shared = parse_spec(body)
    before = shared.model_dump()
    job = view("big-1", active_pods=2, succeeded=2, completed_indexes="0-1", start_time=T0)
    obs = Observed(bgj=body, now=T0, jobs={job.name: job})
    assert checked(decide(obs, SETTINGS)).status["phase"] == "Running"
    assert parse_spec(body) is shared and shared.model_dump() == before
