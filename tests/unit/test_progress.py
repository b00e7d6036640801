"""status.progress: the progress records of a handler's log, read by the operator (pure parts
and one round of the reader against fakes)."""

from __future__ import annotations

import asyncio
import json
import math
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from kubernetes_asyncio.client.exceptions import ApiException
from tests.unit.test_decisions import T0, applied, bgj, decide_at, view

from backgroundjobs.api import constants as c
from backgroundjobs.api.models import progress_summary as summary
from backgroundjobs.controller.progress import (
    ProgressReader,
    changed,
    is_running,
    latest_progress,
    pick,
)

pytestmark = pytest.mark.unit

Body = dict[str, Any]


def record(done: Any, total: Any, job: str = "export", message: str = "", **extra: Any) -> str:
    entry = {"event": "progress", "job": job, "namespace": "ns", "done": done, "total": total}
    return json.dumps({**entry, "message": message, **extra})


def test_the_last_progress_record_of_the_job_wins() -> None:
    log = "\n".join(
        [
            record(1, 10),
            "plain text the handler printed",
            record(5, 10, message="halfway"),
            json.dumps({"event": "started", "job": "export"}),
            record(9, 10, job="another-job"),  # another job's record (a shared log)
            "",
        ]
    )
    progress = latest_progress(log, "export", "ns")
    assert progress is not None
    assert (progress.done, progress.total, progress.percent) == (5, 10, 50.0)
    assert progress.message == "halfway"
    assert progress.summary == "5/10 (50%)"


def test_no_progress_record_no_progress() -> None:
    assert latest_progress("", "export", "ns") is None
    assert latest_progress("hello\n{not json", "export", "ns") is None
    assert latest_progress(record(1, 2, job="other"), "export", "ns") is None
    assert latest_progress(record(1, 2).replace('"ns"', '"elsewhere"'), "export", "ns") is None


@pytest.mark.parametrize("bad", ["7", None, True, math.nan, math.inf, [1]])
def test_a_record_without_finite_numbers_is_skipped(bad: Any) -> None:
    log = (
        record(1, 4)
        + "\n"
        + json.dumps(
            {"event": "progress", "job": "export", "done": bad, "total": 4}, allow_nan=True
        )
    )
    progress = latest_progress(log, "export", "ns")
    assert progress is not None and progress.done == 1


def test_unknown_total_has_no_percent() -> None:
    progress = latest_progress(record(42, 0), "export", "ns")
    assert progress is not None
    assert progress.percent is None and progress.summary == "42"


@given(
    done=st.floats(allow_nan=False, allow_infinity=False, width=32),
    total=st.floats(allow_nan=False, allow_infinity=False, width=32),
    message=st.text(max_size=3000),
)
def test_any_numbers_and_message_fit_the_status(done: float, total: float, message: str) -> None:
    progress = latest_progress(record(done, total, message=message), "export", "ns")
    assert progress is not None
    assert len(progress.summary) <= 64 and len(progress.message) <= 1024
    assert progress.summary == summary(done, total, progress.percent)[:64]


def test_changed_ignores_when_and_where_it_was_read() -> None:
    progress = latest_progress(record(1, 2, message="m"), "export", "ns")
    assert progress is not None
    as_written = progress.model_dump(mode="json", by_alias=True, exclude_none=True)
    as_written |= {"pod": "export-1-abcde", "updatedAt": "2026-01-01T00:00:00Z"}
    assert not changed(as_written, progress)
    assert changed(None, progress)
    assert changed({**as_written, "done": 0}, progress)


def test_pick_reads_the_longest_unread_pods_first() -> None:
    last = {"a": 3.0, "b": 1.0, "c": 2.0}
    assert pick(["a", "b", "c", "new"], last, 2) == ["new", "b"]
    assert pick(["a"], last, 10) == ["a"]


HANGS = "<the kubelet does not answer>"
FORBIDDEN = "<no right to read pods/log>"
GONE = "<the pod was deleted since the list>"


class FakeApi:
    """Running pods and their logs; patches recorded."""

    def __init__(self, pods: dict[tuple[str, str], str], logs: dict[str, str]) -> None:
        self.pods = pods  # (namespace, pod) -> BackgroundJob name
        self.logs = logs
        self.patches: list[tuple[str, str, Body]] = []
        self.log_reads = 0

    async def running_pods(self, namespace: str | None, label_selector: str) -> list[Body]:
        assert label_selector == f"{c.LABEL_MANAGED_BY}={c.MANAGED_BY}"
        return [
            {"metadata": {"namespace": ns, "name": pod, "labels": {c.LABEL_NAME: name}}}
            for (ns, pod), name in self.pods.items()
            if namespace in (None, ns)
        ]

    async def pod_log(
        self, namespace: str, pod: str, container: str, tail_lines: int, limit_bytes: int
    ) -> str:
        assert container == c.HANDLER_CONTAINER
        self.log_reads += 1
        text = self.logs[pod]
        if text == HANGS:
            await asyncio.sleep(3600)
        if text == FORBIDDEN:
            raise ApiException(status=403, reason="Forbidden")
        if text == GONE:
            raise ApiException(status=404, reason="Not Found")
        return text

    async def patch_status(
        self, namespace: str, name: str, status_patch: Body, resource_version: str | None = None
    ) -> Body:
        self.patches.append((namespace, name, status_patch))
        return {}


def test_a_round_patches_running_jobs_whose_progress_changed_within_its_budget() -> None:
    api = FakeApi(
        pods={("ns", "export-1-a"): "export", ("ns", "done-1-a"): "done", ("ns", "b-1"): "b"},
        logs={"export-1-a": record(3, 4), "done-1-a": record(1, 1, job="done"), "b-1": ""},
    )
    statuses: dict[tuple[str, str], Body] = {
        ("ns", "export"): {"phase": "Running"},
        ("ns", "done"): {"phase": "Succeeded"},  # finished: its pod is not read
        ("ns", "b"): {"phase": "Running"},  # no progress in its log: nothing written
    }
    reader = ProgressReader(api, api, (), 5, 10, statuses.get, lambda: True)
    asyncio.run(reader.round())
    assert [(ns, name) for ns, name, _ in api.patches] == [("ns", "export")]
    written = api.patches[0][2]["progress"]
    assert written["summary"] == "3/4 (75%)" and written["pod"] == "export-1-a"
    assert api.log_reads == 2 and reader.requests == 3  # one list, two log reads

    # the same progress again: read, not written
    statuses[("ns", "export")]["progress"] = written
    asyncio.run(reader.round())
    assert len(api.patches) == 1

    # a budget of one read a round: the pods take turns
    api.log_reads = 0
    turns = ProgressReader(api, api, ("ns",), 5, 1, statuses.get, lambda: True)
    asyncio.run(turns.round())
    asyncio.run(turns.round())
    assert api.log_reads == 2 and set(turns._last_read) == {"export-1-a", "b-1"}


def test_a_read_that_hangs_or_fails_neither_holds_the_round_nor_stops_the_others(
    caplog: pytest.LogCaptureFixture,
) -> None:
    api = FakeApi(
        pods={
            ("ns", "cut-1"): "cut",
            ("ns", "denied-1"): "denied",
            ("ns", "gone-1"): "gone",
            ("ns", "export-1"): "export",
        },
        logs={"cut-1": HANGS, "denied-1": FORBIDDEN, "gone-1": GONE, "export-1": record(3, 4)},
    )
    statuses: dict[tuple[str, str], Body] = {
        ("ns", name): {"phase": "Running"} for name in ("cut", "denied", "gone", "export")
    }
    reader = ProgressReader(api, api, (), 5, 10, statuses.get, lambda: True)
    reader.read_timeout = 0.2

    async def two_rounds() -> None:
        await asyncio.wait_for(reader.round(), 5)  # not the hour the hung read would take
        await asyncio.wait_for(reader.round(), 5)

    with caplog.at_level("WARNING", logger="backgroundjobs.progress"):
        asyncio.run(two_rounds())
    assert {name for _, name, _ in api.patches} == {"export"}  # the one readable log
    assert reader.failed_reads == 4  # both failing pods, both rounds (a pod gone: none)
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1, warnings  # once, not every round
    assert "2 of 4 pod log reads failed" in warnings[0]
    assert "(the first: pod ns/denied-1: 403 Forbidden)" in warnings[0]  # fails at once


def test_a_recurring_run_counts_as_running_by_its_condition() -> None:
    assert is_running({"phase": "Running"})
    recurring = {"phase": "Scheduled", "conditions": [{"type": "Running", "status": "True"}]}
    assert is_running(recurring)
    assert not is_running({"phase": "Scheduled", "conditions": [{"type": "Running"}]})
    assert not is_running({"phase": "Succeeded"}) and not is_running(None)


def test_a_requeue_starts_without_the_last_run_s_progress() -> None:
    done = T0 + timedelta(seconds=5)
    body = bgj()
    body = applied(body, decide_at(body, T0))
    finished = decide_at(
        body,
        done,
        [view("job-1", succeeded=1, completion_time=done, complete=True)],
        termination={"job-1": ""},
    )
    body = applied(body, finished, annotations={"backgroundjobs.dev/requeue": "r1"})
    body["status"]["progress"] = {"done": 4, "total": 4, "summary": "4/4 (100%)"}
    requeued = decide_at(body, done + timedelta(seconds=1))
    assert [j["metadata"]["name"] for j in requeued.create] == ["job-2"]
    assert "progress" not in requeued.status
