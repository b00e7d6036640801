"""Requeue with changes, the client and CLI side: the one JSON patch and its spec values."""

from __future__ import annotations

import argparse

import pytest

from backgroundjobs._credentials import SecretKey
from backgroundjobs.cli._parser import build_parser
from backgroundjobs.cli._requeue import requeue_changes
from backgroundjobs.cli._values import UsageError
from backgroundjobs.cli.render.runs import run_lines
from backgroundjobs.client import JobInfo
from backgroundjobs.client._requeue import (
    RequeueChanges,
    changed_spec,
    check_requeueable,
    requeue_patch,
)
from backgroundjobs.errors import BackgroundJobsError, InvalidArguments

pytestmark = pytest.mark.unit

SPEC = {
    "handler": "requeue.unregistered",  # no function known here: no signature check
    "args": ["a@example.com"],
    "kwargs": {"subject": "Hi", "retry": None},
    "kwargsFrom": [{"name": "token", "secretKeyRef": {"name": "smtp", "key": "token"}}],
    "podTemplate": {
        "metadata": {"labels": {"team": "mail"}},
        "spec": {
            "containers": [
                {
                    "name": "handler",
                    "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
                    "resources": {"requests": {"cpu": "100m"}, "limits": {"memory": "1Gi"}},
                }
            ]
        },
    },
}


def test_no_changes_is_empty() -> None:
    assert RequeueChanges().empty()
    assert changed_spec(SPEC, RequeueChanges()) == {}


def test_kwargs_are_set_over_the_old_ones_keeping_secret_references_and_nulls() -> None:
    out = changed_spec(SPEC, RequeueChanges(kwargs={"subject": "Again"}))
    assert out["args"] == ["a@example.com"]
    assert out["kwargs"] == {"subject": "Again", "retry": None}  # a null survives (JSON patch)
    assert out["kwargsFrom"] == SPEC["kwargsFrom"]


def test_args_replace_and_a_new_secret_reference_joins_kwargs_from() -> None:
    out = changed_spec(
        SPEC, RequeueChanges(args=["b@example.com", 2], kwargs={"body": SecretKey("m", "b")})
    )
    assert out["args"] == ["b@example.com", 2]
    assert {r["name"] for r in out["kwargsFrom"]} == {"token", "body"}
    assert "body" not in out["kwargs"]


def test_arguments_are_checked_like_enqueue() -> None:
    with pytest.raises(InvalidArguments, match="not valid JSON"):
        changed_spec(SPEC, RequeueChanges(kwargs={"x": float("nan")}))
    with pytest.raises(InvalidArguments, match="items"):
        changed_spec({"handler": "h", "items": []}, RequeueChanges(args=[1]))


def test_env_and_resources_are_set_on_the_handler_container_only() -> None:
    out = changed_spec(
        SPEC, RequeueChanges(env={"B": "3", "C": "4"}, resources={"limits": {"memory": "2Gi"}})
    )
    (handler,) = out["podTemplate"]["spec"]["containers"]
    assert handler["env"] == [
        {"name": "A", "value": "1"},
        {"name": "B", "value": "3"},
        {"name": "C", "value": "4"},
    ]
    assert handler["resources"] == {"requests": {"cpu": "100m"}, "limits": {"memory": "2Gi"}}
    assert out["podTemplate"]["metadata"] == {"labels": {"team": "mail"}}
    assert SPEC["podTemplate"]["spec"]["containers"][0]["env"][1]["value"] == "2"  # type: ignore[index]
    # no podTemplate before: one with just the handler container
    fresh = changed_spec({"handler": "h"}, RequeueChanges(image="img:2", env={"X": "1"}))
    assert fresh == {
        "image": "img:2",
        "podTemplate": {
            "spec": {"containers": [{"name": "handler", "env": [{"name": "X", "value": "1"}]}]}
        },
    }


def test_the_patch_pins_the_resource_version_and_carries_spec_and_request_together() -> None:
    obj = {"metadata": {"name": "j", "resourceVersion": "42"}, "spec": SPEC}
    ops = requeue_patch(obj, {"image": "img:2"}, "t by alice")
    assert ops == [
        {"op": "replace", "path": "/metadata/resourceVersion", "value": "42"},
        {"op": "add", "path": "/metadata/annotations", "value": {}},
        {
            "op": "add",
            "path": "/metadata/annotations/backgroundjobs.dev~1requeue",
            "value": "t by alice",
        },
        {"op": "add", "path": "/spec/image", "value": "img:2"},
    ]
    obj["metadata"]["annotations"] = {"other": "x"}  # type: ignore[index]
    assert {"op": "add", "path": "/metadata/annotations", "value": {}} not in requeue_patch(
        obj, {}, "t"
    )


def _parse(*argv: str) -> argparse.Namespace:
    return build_parser("bgjobs").parse_args(["requeue", "job", *argv])


def test_cli_flags_become_requeue_changes() -> None:
    assert requeue_changes(_parse()) == {}
    args = _parse(
        "--args", '["x", 1]', "-k", "n=3", "--image", "img:2", "--env", "A=1",
        "--requests", "cpu=250m,memory=1Gi", "--limits", "memory=2Gi",
    )  # fmt: skip
    assert requeue_changes(args) == {
        "args": ["x", 1],
        "kwargs": {"n": 3},
        "image": "img:2",
        "env": {"A": "1"},
        "resources": {"requests": {"cpu": "250m", "memory": "1Gi"}, "limits": {"memory": "2Gi"}},
    }


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--args", "{}"], "JSON array"),
        (["--args", "[1"], "not valid JSON"),
        (["--limits", ","], "RES=QTY"),
        (["--env", "novalue"], "key=value"),
    ],
)
def test_cli_bad_flags_are_usage_errors(argv: list[str], message: str) -> None:
    with pytest.raises(UsageError, match=message):
        requeue_changes(_parse(*argv))


def test_describe_shows_the_run_history() -> None:
    status = {
        "runHistory": [
            {"run": 1, "job": "j-1", "generation": 1, "reason": "Created",
             "startedAt": "2030-01-01T12:00:00Z"},
            {"run": 2, "job": "j-2", "generation": 2, "reason": "Requeued",
             "startedAt": "2030-01-01T12:05:00Z", "requestedBy": "alice",
             "requesterSource": "Client"},
        ]
    }  # fmt: skip
    lines = run_lines(status, 100)
    assert lines[1] == "Run history: the last 2"
    assert lines[2].split() == ["RUN", "JOB", "GEN", "REASON", "STARTED", "REQUESTED", "BY"]
    assert lines[4].split() == [
        "2",
        "j-2",
        "2",
        "Requeued",
        "01-01",
        "12:05:00",
        "alice",
        "(unchecked)",
    ]
    assert run_lines({}) == []


def test_changes_are_refused_for_a_job_that_has_not_finished() -> None:
    running = {"metadata": {"name": "j"}, "spec": {"handler": "h"}, "status": {"phase": "Running"}}
    with pytest.raises(BackgroundJobsError, match="j is Running: only a finished job"):
        check_requeueable(running)
    with pytest.raises(BackgroundJobsError, match="is Pending"):
        check_requeueable({"metadata": {"name": "j"}, "spec": {"handler": "h"}})
    check_requeueable({**running, "status": {"phase": "Failed"}})
    check_requeueable({**running, "spec": {"handler": "h", "schedule": "@daily"}})


def test_job_info_exposes_attempts_and_run_history_typed() -> None:
    obj = {
        "metadata": {"name": "j", "namespace": "shop"},
        "spec": {"handler": "h"},
        "status": {
            "attempts": [
                {"attempt": 1, "run": 1, "job": "j-1", "pod": "j-1-x", "exitCode": 1,
                 "reason": "Error", "message": "boom"},
                {"attempt": "not a number", "job": "j-1"},  # not the operator's: left out
            ],
            "attemptsTotal": 12,
            "runHistory": [{"run": 1, "job": "j-1", "generation": 2, "reason": "Requeued",
                            "startedAt": "2030-01-01T12:00:00Z", "requestedBy": "alice"}],
        },
    }  # fmt: skip
    info = JobInfo.from_object(obj)
    (attempt,) = info.attempts
    assert (attempt.attempt, attempt.pod, attempt.exit_code, attempt.reason) == (
        1, "j-1-x", 1, "Error",
    )  # fmt: skip
    assert info.attempts_total == 12
    (record,) = info.run_history
    assert (record.generation, record.requested_by) == (2, "alice")
    empty = JobInfo.from_object({"metadata": {"name": "j"}, "spec": {"handler": "h"}})
    assert (empty.attempts, empty.attempts_total, empty.run_history) == ([], 0, [])
