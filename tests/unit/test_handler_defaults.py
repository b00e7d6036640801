"""Per-handler defaults (``@handler(name, queue=..., retries=..., timeout=..., keep_*)``)
applied by the client, call options winning; retention per outcome (decisions.retention)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from tests.unit.test_decisions import T0, applied, bgj, decide_at, view

from backgroundjobs._registry import handler
from backgroundjobs.api.constants import Phase
from backgroundjobs.client._arguments import prepare_call
from backgroundjobs.client._manifests import build_manifest
from backgroundjobs.client._options import split_options, with_defaults
from backgroundjobs.controller.decisions.retention import keep_for

pytestmark = pytest.mark.unit


@handler(
    "tests.defaults.send",
    queue="critical",
    retries=5,
    timeout="5m",
    keep_succeeded="24h",
    keep_failed=timedelta(days=30),
)
def send(to: str) -> None:
    """A handler with defaults."""


def spec_of(handler_ref: Any, **kwargs: Any) -> dict[str, Any]:
    options, handler_kwargs = split_options(kwargs)
    call = prepare_call(handler_ref, ("a@b.c",), handler_kwargs)
    manifest = build_manifest(name="n", namespace="ns", call=call, **with_defaults(call, options))
    return dict(manifest["spec"])


def test_declared_defaults_go_into_the_spec() -> None:
    for ref in (send, "tests.defaults.send"):  # the function, or its registered name
        spec = spec_of(ref)
        assert spec["queue"] == "critical" and spec["retries"] == 5
        assert spec["timeout"] == "5m"
        assert spec["ttlAfterSucceeded"] == "24h" and spec["ttlAfterFailed"] == "720h"


def test_call_options_win() -> None:
    spec = spec_of(send, queue="bulk", retries=0, timeout=timedelta(seconds=30), keep_failed="0s")
    assert (spec["queue"], spec["retries"], spec["timeout"]) == ("bulk", 0, "30s")
    assert spec["ttlAfterFailed"] == "0s" and spec["ttlAfterSucceeded"] == "24h"


def test_an_unknown_handler_has_no_defaults() -> None:
    spec = spec_of("not.imported.here")
    assert "queue" not in spec and "retries" not in spec and "timeout" not in spec


@pytest.mark.parametrize(
    ("option", "value", "says"),
    [
        ("queue", "Not A Label", "DNS label"),
        ("retries", 101, "0 to 100"),
        ("retries", True, "0 to 100"),
        ("timeout", "0.5s", "at least 1s"),
        ("timeout", "soon", "timeout='soon'"),
        ("keep_failed", "-1h", "keep_failed"),
    ],
)
def test_bad_defaults_fail_at_import(option: str, value: Any, says: str) -> None:
    with pytest.raises(ValueError, match=says):
        handler("tests.defaults.bad", **{option: value})


# ------------------------------------------------------------------ retention per outcome

DAY = timedelta(days=1)


@pytest.mark.parametrize(
    ("spec", "phase", "kept"),
    [
        ({}, Phase.SUCCEEDED, 7 * DAY),
        ({"ttlAfterFinished": "1h"}, Phase.FAILED, timedelta(hours=1)),
        ({"ttlAfterFinished": "1h", "ttlAfterSucceeded": "0s"}, Phase.SUCCEEDED, timedelta(0)),
        ({"ttlAfterFinished": "1h", "ttlAfterSucceeded": "0s"}, Phase.FAILED, timedelta(hours=1)),
        ({"ttlAfterFailed": "720h"}, Phase.CANCELLED, 30 * DAY),
        ({"ttlAfterFailed": "720h"}, Phase.SUCCEEDED, 7 * DAY),
        ({"ttlAfterFailed": "garbage", "ttlAfterFinished": "2h"}, Phase.FAILED, 2 * DAY / 24),
    ],
)
def test_keep_for(spec: dict[str, Any], phase: Phase, kept: timedelta) -> None:
    assert keep_for(spec, phase, 7 * DAY) == kept


def test_a_success_kept_0s_is_deleted_at_once_a_failure_kept_30_days() -> None:
    done = T0 + timedelta(seconds=5)
    ok = bgj(ttlAfterSucceeded="0s", ttlAfterFailed="720h")
    started = decide_at(ok, T0)
    body = applied(ok, started)
    finished = decide_at(
        body,
        done,
        [view("job-1", succeeded=1, completion_time=done, complete=True)],
        termination={"job-1": ""},
    )
    assert finished.status["phase"] == "Succeeded"
    assert finished.delete_self

    bad = bgj(ttlAfterSucceeded="0s", ttlAfterFailed="720h")
    body = applied(bad, decide_at(bad, T0))
    failed = decide_at(
        body,
        done,
        [view("job-1", failed=4, failure_reason="BackoffLimitExceeded", failure_time=done)],
        termination={"job-1": ""},
    )
    assert failed.status["phase"] == "Failed"
    assert not failed.delete_self and failed.requeue_at == done + 30 * DAY
