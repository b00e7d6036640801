"""Continuations after a group: the cache's group index, the decision over a group, and the
client's and CLI's way of naming a group."""

from __future__ import annotations

from typing import Any

import pytest
from tests.unit.test_decisions import T0, applied, bgj, cond_state, decide_at, env_of, reasons

from backgroundjobs.api.constants import LABEL_BATCH
from backgroundjobs.cli._group import parse_group
from backgroundjobs.cli._parser import build_parser
from backgroundjobs.cli._values import UsageError
from backgroundjobs.client._groups import group_after
from backgroundjobs.controller.cache import Cache
from backgroundjobs.controller.groups import GroupIndex
from backgroundjobs.errors import BackgroundJobsError, InvalidSpec

pytestmark = pytest.mark.unit

SELECTOR = {LABEL_BATCH: "g"}


def group_child(when: str = "Succeeded", count: int = 3) -> dict[str, Any]:
    after = {"selector": {"matchLabels": SELECTOR}, "count": count, "when": when}
    return bgj(name="child", after=after)


def obj(name: str, labels: dict[str, str] | None = None, phase: str = "", **spec: Any) -> Any:
    status = {"phase": phase} if phase else {}
    meta = {"name": name, "namespace": "ns", "uid": f"uid-{name}", "resourceVersion": "1"}
    if labels:
        meta["labels"] = labels
    return {"metadata": meta, "spec": {"handler": "h", **spec}, "status": status}


# ------------------------------------------------------------------ the decision


@pytest.mark.parametrize(
    ("members", "when", "reason"),
    [
        ({}, "Succeeded", "GroupIncomplete"),
        ({"a": "Succeeded", "b": "Succeeded"}, "Finished", "GroupIncomplete"),
        ({"a": "Succeeded", "b": "Running", "c": ""}, "Finished", "GroupRunning"),
        ({"a": "Succeeded", "b": "Failed", "c": "Succeeded"}, "Succeeded", "GroupFailed"),
        ({"a": "Succeeded", "b": "Cancelled", "c": "Succeeded"}, "Succeeded", "GroupFailed"),
        ({"a": "Succeeded", "b": "Succeeded", "c": "Succeeded"}, "Failed", "GroupSucceeded"),
    ],
)
def test_child_waits(members: dict[str, str], when: str, reason: str) -> None:
    plan = decide_at(group_child(when), T0, group=members)
    assert plan.create == []
    assert plan.status["phase"] == "Waiting"
    assert cond_state(plan.status, "Waiting") == ("True", reason)
    assert reasons(plan) == ["Waiting"]


@pytest.mark.parametrize(
    ("phases", "when"),
    [
        (("Succeeded", "Succeeded", "Succeeded"), "Succeeded"),
        (("Succeeded", "Failed", "Succeeded"), "Failed"),
        (("Cancelled", "Failed", "Failed"), "Failed"),
        (("Succeeded", "Failed", "Cancelled"), "Finished"),
        (("Succeeded", "Succeeded", "Succeeded", "Running"), "Finished"),  # more than count
    ],
)
def test_child_starts_once_every_member_reached_when(phases: tuple[str, ...], when: str) -> None:
    body = group_child(when)
    body = applied(body, decide_at(body, T0, group={}))
    members = {f"m{i}": phase for i, phase in enumerate(phases)}
    plan = decide_at(body, T0, group=members, admitted=True)
    if "Running" in phases:  # every member that matches counts, not just the first count
        assert plan.create == []
        return
    assert [o["metadata"]["name"] for o in plan.create] == ["child-1"]
    assert "BACKGROUNDJOBS_PARENT" not in env_of(plan.create[0])


# ------------------------------------------------------------------ the cache's index


def test_cache_indexes_members_and_wakes_the_child() -> None:
    cache = Cache()
    assert cache.store_bgj(("ns", "a"), obj("a", SELECTOR, "Succeeded")) == []
    cache.store_bgj(("ns", "x"), obj("x", {LABEL_BATCH: "other"}, "Succeeded"))
    child = obj("child", SELECTOR, after={"selector": {"matchLabels": SELECTOR}, "count": 2})
    cache.store_bgj(("ns", "child"), child)
    assert cache.group(("ns", "child")) == {"a": "Succeeded"}  # itself and x excluded
    assert cache.store_bgj(("ns", "b"), obj("b", SELECTOR, "Running")) == [("ns", "child")]
    assert cache.store_bgj(("ns", "b"), obj("b", SELECTOR, "Running")) == []  # no change
    assert cache.children(("ns", "b")) == [("ns", "child")]
    assert cache.store_bgj(("ns", "b"), obj("b", SELECTOR, "Succeeded")) == [("ns", "child")]
    assert cache.group(("ns", "child")) == {"a": "Succeeded", "b": "Succeeded"}
    assert cache.store_bgj(("other-ns", "c"), obj("c", SELECTOR, "Running")) == []
    assert ("ns", "child") in cache.forget_bgj(("ns", "a"))
    assert cache.group(("ns", "child")) == {"b": "Succeeded"}
    assert cache.store_bgj(("ns", "b"), obj("b", {}, "Succeeded")) == [("ns", "child")]
    assert cache.group(("ns", "child")) == {}


def test_a_started_child_is_no_longer_indexed() -> None:
    cache = Cache()
    after = {"selector": {"matchLabels": SELECTOR}, "count": 1}
    cache.store_bgj(("ns", "child"), obj("child", after=after))
    assert cache.group(("ns", "child")) == {}
    started = obj("child", phase="Running", after=after)
    started["status"]["runs"] = 1
    cache.store_bgj(("ns", "child"), started)
    assert cache.group(("ns", "child")) is None
    assert cache.store_bgj(("ns", "a"), obj("a", SELECTOR, "Running")) == []


def test_group_index_unwatch_drops_every_reverse_entry() -> None:
    index = GroupIndex()
    index.watch(("ns", "c"), SELECTOR, [("a", SELECTOR, "Running"), ("b", {}, "")])
    assert index.waiters(("ns", "a")) == [("ns", "c")]
    index.unwatch(("ns", "c"))
    assert index.waiters(("ns", "a")) == []
    assert index.members(("ns", "c")) is None


# ------------------------------------------------------------------ client and CLI


def test_group_after_from_enqueue_many_results() -> None:
    results: list[str | BackgroundJobsError] = ["n-0", BackgroundJobsError("bad"), "n-2"]
    after = group_after(results, None, "Finished")
    assert after == {
        "selector": {"matchLabels": {LABEL_BATCH: "n"}},
        "count": 2,
        "when": "Finished",
    }
    assert group_after("n", 5, "Succeeded")["selector"] == {"matchLabels": {LABEL_BATCH: "n"}}
    assert group_after({"team": "a"}, 1, "Failed")["count"] == 1


@pytest.mark.parametrize(
    ("group", "count"),
    [("n", None), ({"team": "a"}, None), ([], None), (["a-0", "b-0"], None), ({}, 1)],
)
def test_group_after_refuses_what_cannot_fix_a_group(group: Any, count: int | None) -> None:
    with pytest.raises(InvalidSpec):
        group_after(group, count, "Succeeded")


def test_cli_group_syntax() -> None:
    assert parse_group("notify-x") == "notify-x"
    assert parse_group("team=a, tier=b") == {"team": "a", "tier": "b"}
    with pytest.raises(UsageError):
        parse_group("team=a,b")


def test_cli_continue_group_takes_the_first_positional_as_the_handler() -> None:
    args = build_parser().parse_args(
        ["continue", "--group", "notify-x", "--count", "3", "mail.summary", "7"]
    )
    assert (args.group, args.count, args.parent, args.handler) == (
        "notify-x",
        3,
        "mail.summary",
        "7",
    )
    named = build_parser().parse_args(["continue", "parent", "mail.summary", "7"])
    assert (named.group, named.parent, named.handler, named.args) == (
        None,
        "parent",
        "mail.summary",
        ["7"],
    )
