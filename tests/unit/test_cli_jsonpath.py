"""kubectl's JSONPath templates for ``-o jsonpath=`` and ``--sort-by``."""

from __future__ import annotations

from typing import Any

import pytest

from backgroundjobs.cli.render.jsonpath import JsonPathError, find, render, sort_key

pytestmark = pytest.mark.unit


def job(name: str, phase: str | None, runs: int | None = None) -> dict[str, Any]:
    status: dict[str, Any] = {}
    if phase:
        status["phase"] = phase
    if runs is not None:
        status["runs"] = runs
    return {"metadata": {"name": name, "labels": {"a": "1"}}, "status": status}


LIST = {"kind": "List", "items": [job("a", "Running", 2), job("b", "Failed", 10), job("c", None)]}


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("{.metadata.name}", "a"),
        ("{.items[*].metadata.name}", "a b c"),
        ("{.items[1].status.phase}", "Failed"),
        ("{.items[-1].metadata.name}", "c"),
        ('{range .items[*]}{.metadata.name}{"\\t"}{.status.phase}{"\\n"}{end}',
         "a\tRunning\nb\tFailed\nc\t\n"),
        ("{.items[0].metadata.labels}", '{"a": "1"}'),
        ("name={.items[0].metadata.name}!", "name=a!"),
        ("{.nothing.here}", ""),
        ("{range .items[*]}{range .metadata.labels.*}{@}{end};{end}", "1;1;1;"),
    ],
)  # fmt: skip
def test_templates_render_like_kubectl(template: str, expected: str) -> None:
    obj = LIST if "items" in template else job("a", "Running")
    assert render(template, obj) == expected


@pytest.mark.parametrize(
    "template", ["{range .items[*]}{.x}", "{.x}{end}", "{.metadata.name", "{.a[b]}"]
)
def test_bad_templates_are_refused(template: str) -> None:
    with pytest.raises(JsonPathError):
        render(template, LIST)


def test_sort_by_a_field_absent_first_numbers_by_value() -> None:
    items = LIST["items"]
    assert [j["metadata"]["name"] for j in sorted(items, key=sort_key(".status.runs"))] == [
        "c", "a", "b",
    ]  # fmt: skip
    by_phase = sorted(items, key=sort_key("{.status.phase}"))
    assert [j["metadata"]["name"] for j in by_phase] == ["c", "b", "a"]
    assert find(".metadata.name", items[0]) == ["a"]
    with pytest.raises(JsonPathError):
        sort_key("status..phase")


CONDITIONS = {
    "status": {
        "conditions": [
            {"type": "Running", "status": "False", "reason": "Completed"},
            {"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded", "n": 3},
        ]
    }
}


@pytest.mark.parametrize(
    ("template", "obj", "expected"),
    [
        ('{.status.conditions[?(@.type=="Failed")].reason}', CONDITIONS, "BackoffLimitExceeded"),
        ("{.status.conditions[?(@.status == 'True')].type}", CONDITIONS, "Failed"),
        ('{.status.conditions[?(@.status!="True")].type}', CONDITIONS, "Running"),
        ("{.status.conditions[?(@.n>=3)].type}", CONDITIONS, "Failed"),
        ("{.status.conditions[?(@.n<3)].type}", CONDITIONS, ""),
        ("{.status.conditions[?(@.n)].type}", CONDITIONS, "Failed"),
        ('{.status.conditions[?(@.n=="3")].type}', CONDITIONS, ""),  # a string is not 3
        ('{.status.conditions[?(@.type=="Absent")].reason}', CONDITIONS, ""),
        ("{..reason}", CONDITIONS, "Completed BackoffLimitExceeded"),
        ("{.items[1:3].metadata.name}", LIST, "b c"),
        ("{.items[::2].metadata.name}", LIST, "a c"),
        ("{.items[-2:].metadata.name}", LIST, "b c"),
        ('{range .items[?(@.status.runs>1)]}{.metadata.name}{"\\n"}{end}', LIST, "a\nb\n"),
    ],
)  # fmt: skip
def test_filters_slices_and_deep_paths_like_kubectl(template: str, obj: Any, expected: str) -> None:
    assert render(template, obj) == expected


@pytest.mark.parametrize(
    "template", ["{.items[?(@.a ~ 1)]}", "{.items[?(@.a == nope)]}", "{.items[::0]}"]
)
def test_bad_filters_and_slices_are_refused(template: str) -> None:
    with pytest.raises(JsonPathError):
        render(template, LIST)


def test_a_deep_path_reads_any_depth() -> None:
    deep: Any = {"reason": "bottom"}
    for _ in range(5000):
        deep = {"next": deep}
    assert render("{..reason}", deep) == "bottom"
