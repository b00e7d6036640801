"""CLI rendering, pinned by golden files: tables (fitting 80 columns), describe's timeline,
log lines and progress bars, and top."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from tests.unit.golden import assert_golden

from backgroundjobs.cli import render
from backgroundjobs.client import JobInfo

pytestmark = pytest.mark.unit

NOW = datetime(2026, 11, 28, 16, 30, 0, tzinfo=UTC)
CRD_FILE = Path(__file__).resolve().parents[2] / "crds" / "backgroundjobs.dev_backgroundjobs.yaml"


def ts(seconds_before_now: float) -> str:
    return (NOW - timedelta(seconds=seconds_before_now)).isoformat().replace("+00:00", "Z")


def bgjob(
    name: str,
    *,
    spec: dict[str, Any],
    status: dict[str, Any] | None = None,
    age: float = 60,
    namespace: str = "shop",
) -> dict[str, Any]:
    return {
        "apiVersion": "backgroundjobs.dev/v1alpha1",
        "kind": "BackgroundJob",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "creationTimestamp": ts(age),
            "uid": f"uid-{name}",
        },
        "spec": spec,
        "status": status or {},
    }


def sample_jobs() -> list[JobInfo]:
    objects = [
        bgjob(
            "mail-send-x7k2m",
            spec={"handler": "mail.send", "args": ["a@b.c"]},
            status={
                "type": "Immediate",
                "phase": "Succeeded",
                "runs": 1,
                "jobName": "mail-send-x7k2m-1",
                "message": "succeeded in 1.3s",
                "progress": {
                    "done": 420,
                    "total": 1000,
                    "percent": 42,
                    "summary": "420/1000 (42%)",
                },
            },
            age=5,
        ),
        bgjob(
            "reminder-p2q4r",
            spec={"handler": "mail.send", "delay": "1h"},
            status={
                "type": "Delayed",
                "phase": "Scheduled",
                "dueAt": ts(-3540),
                "message": "due at ...",
            },
            age=60,
        ),
        bgjob(
            "cleanup-temp-files",
            spec={"handler": "cleanup.temp_files", "schedule": "0 2 * * *", "queue": "low"},
            status={"type": "Recurring", "phase": "Scheduled", "dueAt": ts(-34200), "runs": 12},
            age=86400 * 12,
        ),
        bgjob(
            "report-mail-k9d3s",
            spec={"handler": "mail.send", "after": {"name": "report-generate-b4n7w"}},
            status={
                "type": "Continuation",
                "phase": "Waiting",
                "message": "waiting for report-generate-b4n7w\nto succeed",
            },
            age=200,
        ),
        bgjob(
            "notifications-send-to-user-q8r2t-9999",
            spec={"handler": "notifications.send_to_user", "queue": "critical"},
            status={
                "type": "Immediate",
                "phase": "Failed",
                "runs": 1,
                "jobName": "notifications-send-to-user-q8r2t-9999-1",
                "message": "failed (BackoffLimitExceeded): Job has reached the specified backoff"
                " limit; last error: SMTPServerDisconnected",
            },
            age=7200,
        ),
        bgjob("fresh", spec={"handler": "test.echo"}, age=0),
    ]
    return [JobInfo.from_object(o) for o in objects]


def assert_fits(text: str, width: int = 80) -> None:
    for line in text.splitlines():
        assert len(line) <= width, f"{len(line)} columns: {line!r}"


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (-5, "<invalid>"),
        (-1, "0s"),
        (0, "0s"),
        (59, "59s"),
        (119, "119s"),
        (120, "2m"),
        (200, "3m20s"),
        (600, "10m"),
        (10799, "179m"),
        (10800, "3h"),
        (12000, "3h20m"),
        (8 * 3600, "8h"),
        (47 * 3600, "47h"),
        (48 * 3600, "2d"),
        (50 * 3600, "2d2h"),
        (8 * 86400, "8d"),
        (729 * 86400, "729d"),
        (730 * 86400, "2y"),
        (800 * 86400, "2y70d"),
        (9 * 365 * 86400, "9y"),
    ],
)
def test_human_duration_matches_kubectl(seconds: int, text: str) -> None:
    assert render.human_duration(timedelta(seconds=seconds)) == text


def test_get_table() -> None:
    text = render.render_jobs(sample_jobs(), NOW)
    assert_fits(text)
    assert text.splitlines()[0].split() == [
        "NAME",
        "TYPE",
        "HANDLER",
        "PHASE",
        "DUE",
        "PROGRESS",
        "AGE",
    ]
    assert text.splitlines()[1].split()[4] == "42%"  # the percent: the column stays narrow
    assert_golden("get.txt", text)


def test_get_table_all_namespaces() -> None:
    text = render.render_jobs(sample_jobs(), NOW, namespaces=True)
    assert_fits(text)
    assert_golden("get_all_namespaces.txt", text)


def test_get_wide_unbounded_and_fitted() -> None:
    text = render.render_jobs(sample_jobs(), NOW, wide=True, width=None)
    header = text.splitlines()[0].split()
    assert header == [
        "NAME",
        "TYPE",
        "HANDLER",
        "PHASE",
        "DUE",
        "PROGRESS",
        "AGE",
        "QUEUE",
        "JOB",
        "RUNS",
        "MESSAGE",
    ]
    assert "SMTPServerDisconnected" in text  # nothing cut without a width
    assert_golden("get_wide.txt", text)
    fitted = render.render_jobs(sample_jobs(), NOW, wide=True, width=120)
    assert_fits(fitted, 120)
    assert_golden("get_wide_120.txt", fitted)


def test_short_names_are_never_cut() -> None:
    text = render.render_jobs(sample_jobs()[:2], NOW)
    assert "mail-send-x7k2m " in text and render.ELLIPSIS not in text


def test_get_shows_the_printer_columns_of_the_crd() -> None:
    crd = yaml.safe_load(CRD_FILE.read_text())
    printer = crd["spec"]["versions"][0]["additionalPrinterColumns"]
    narrow = [c["name"].upper() for c in printer if not c.get("priority")]
    every = [c["name"].upper() for c in printer]
    assert [c.header for c in render.job_columns()] == ["NAME", *narrow]
    assert [c.header for c in render.job_columns(wide=True)] == ["NAME", *every]
    assert [c.header for c in render.job_columns(namespaces=True)] == ["NAMESPACE", "NAME", *narrow]


def test_watch_rows_fit() -> None:
    for wide, ns in ((False, False), (False, True)):
        columns = render.job_columns(wide=wide, namespaces=ns)
        widths = render.watch_widths(columns, 80)
        for job in sample_jobs():
            assert len(render.format_row(widths, render.job_row(job, NOW, namespaces=ns))) <= 80


def test_a_batch_shows_its_progress_in_get_and_describe() -> None:
    batch = JobInfo.from_object(
        bgjob(
            "notify-all-x2b9c",
            spec={"handler": "notifications.send_to_user", "items": [{"args": ["u1"]}]},
            status={
                "type": "Batch",
                "phase": "Running",
                "runs": 1,
                "jobName": "notify-all-x2b9c-1",
                "batch": {
                    "total": 10000,
                    "succeeded": 9860,
                    "failed": 10,
                    "running": 20,
                    "progress": "9870/10000",
                    "failedIndexes": "3,17-25",
                },
                "progress": {
                    "done": 9870,
                    "total": 10000,
                    "percent": 98.7,
                    "summary": "9870/10000 (98.7%)",
                },
            },
            age=300,
        )
    )
    text = render.render_jobs([batch], NOW, wide=True, width=None)
    header, row = text.splitlines()[:2]
    assert row[header.index("PHASE") :].split()[:2] == ["Running", "98.7%"]
    described = render.render_describe(batch, [], NOW)
    assert "Items:      9870/10000 done (9860 succeeded, 10 failed, 20 running)" in described
    assert "Failed:     items 3,17-25" in described
    plain = render.render_describe(sample_jobs()[0], [], NOW)
    assert "Items:" not in plain


def timeline_input() -> tuple[
    dict[str, Any], list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]
]:
    job = bgjob(
        "report-generate-b4n7w",
        spec={"handler": "report.generate", "args": [42], "kwargs": {"format": "pdf"}},
        status={
            "type": "Immediate",
            "phase": "Succeeded",
            "runs": 1,
            "jobName": "report-generate-b4n7w-1",
            "result": {"path": "s3://reports/42.pdf"},
            "message": "succeeded in 4.2s (2 attempts)",
            "conditions": [
                {
                    "type": "Running",
                    "status": "False",
                    "reason": "Completed",
                    "message": "",
                    "lastTransitionTime": ts(50),
                },
                {
                    "type": "Succeeded",
                    "status": "True",
                    "reason": "Completed",
                    "message": "succeeded in 4.2s",
                    "lastTransitionTime": ts(50),
                },
            ],
        },
        age=70,
    )
    events = [
        {
            "involvedObject": {"kind": "BackgroundJob", "name": "report-generate-b4n7w"},
            "reason": "Started",
            "message": "Job report-generate-b4n7w-1 created (run 1)",
            "type": "Normal",
            "lastTimestamp": ts(69),
        },
        {
            "involvedObject": {"kind": "BackgroundJob", "name": "report-generate-b4n7w"},
            "reason": "Retrying",
            "message": "pod failed (attempt 1 of 4); retrying",
            "type": "Warning",
            "lastTimestamp": ts(60),
        },
        {
            "involvedObject": {"kind": "BackgroundJob", "name": "report-generate-b4n7w"},
            "reason": "Succeeded",
            "message": "Job report-generate-b4n7w-1 succeeded in 4.2s",
            "type": "Normal",
            "lastTimestamp": ts(50),
        },
        {
            "involvedObject": {"kind": "Job", "name": "report-generate-b4n7w-1"},
            "reason": "SuccessfulCreate",
            "message": "Created pod: report-generate-b4n7w-1-abcde",
            "type": "Normal",
            "lastTimestamp": ts(69),
            "count": 1,
        },
        {
            "involvedObject": {"kind": "Pod", "name": "report-generate-b4n7w-1-fghij"},
            "reason": "Scheduled",
            "message": "Successfully assigned shop/report-generate-b4n7w-1-fghij to kwok-node-0",
            "type": "Normal",
            "eventTime": ts(58),
        },
    ]
    runs = [
        {
            "metadata": {
                "name": "report-generate-b4n7w-1",
                "creationTimestamp": ts(69),
                "labels": {"backgroundjobs.dev/run": "1"},
            },
            "status": {
                "startTime": ts(69),
                "conditions": [
                    {"type": "SuccessCriteriaMet", "status": "True", "lastTransitionTime": ts(50)},
                    {
                        "type": "Complete",
                        "status": "True",
                        "reason": "CompletionsReached",
                        "message": "Reached expected number of succeeded pods",
                        "lastTransitionTime": ts(50),
                    },
                ],
            },
        },
    ]
    pod_labels = {"batch.kubernetes.io/job-name": "report-generate-b4n7w-1"}
    pods = [
        {
            "metadata": {
                "name": "report-generate-b4n7w-1-abcde",
                "creationTimestamp": ts(69),
                "labels": pod_labels,
            },
            "status": {
                "containerStatuses": [
                    {
                        "name": "handler",
                        "state": {
                            "terminated": {
                                "exitCode": 1,
                                "reason": "Error",
                                "message": '{"error": "timeout", "type": "TimeoutError"}',
                                "startedAt": ts(68),
                                "finishedAt": ts(61),
                            }
                        },
                    }
                ]
            },
        },
        {
            "metadata": {
                "name": "report-generate-b4n7w-1-fghij",
                "creationTimestamp": ts(58),
                "labels": pod_labels,
            },
            "status": {
                "containerStatuses": [
                    {
                        "name": "handler",
                        "state": {
                            "terminated": {
                                "exitCode": 0,
                                "reason": "Completed",
                                "message": '{"path": "s3://reports/42.pdf"}',
                                "startedAt": ts(57),
                                "finishedAt": ts(51),
                            }
                        },
                    }
                ]
            },
        },
    ]
    return job, events, runs, pods


def test_timeline_order_and_sources() -> None:
    job, events, runs, pods = timeline_input()
    timeline = render.build_timeline(job, events, runs, pods)
    assert [e.time for e in timeline] == sorted(e.time for e in timeline)
    assert timeline[0].source == "bgjob" and timeline[0].what == "Created"
    sources = {e.source for e in timeline}
    assert {"bgjob", "condition", "run 1", "run 1 pod abcde", "run 1 pod fghij"} == sources
    assert not any(e.what == "SuccessCriteriaMet" for e in timeline)
    warnings = [(e.source, e.what) for e in timeline if e.warning]
    assert warnings == [("run 1 pod abcde", "Exited"), ("bgjob", "Retrying")]


def test_describe() -> None:
    job, events, runs, pods = timeline_input()
    info = JobInfo.from_object(job)
    text = render.render_describe(info, render.build_timeline(job, events, runs, pods), NOW)
    assert_fits(text)
    assert_golden("describe.txt", text)


def test_describe_of_a_new_recurring_job() -> None:
    job = bgjob(
        "cleanup",
        spec={
            "handler": "cleanup.temp_files",
            "schedule": "0 2 * * *",
            "timeZone": "Europe/Berlin",
        },
        status={"type": "Recurring", "phase": "Scheduled", "dueAt": ts(-3600)},
        age=3,
    )
    text = render.render_describe(JobInfo.from_object(job), render.build_timeline(job), NOW)
    assert "Schedule:   0 2 * * * (Europe/Berlin)" in text
    assert_golden("describe_recurring.txt", text)


@pytest.mark.parametrize(
    ("done", "total", "bar"),
    [
        (0, 100, "[....................] 0/100"),
        (50, 100, "[##########..........] 50/100"),
        (100, 100, "[####################] 100/100"),
        (150, 100, "[####################] 150/100"),
        (1, 3, "[#######.............] 1/3"),
        (2.5, 10, "[#####...............] 2.5/10"),
        (0, 0, "[....................] 0/0"),
    ],
)
def test_progress_bar(done: float, total: float, bar: str) -> None:
    assert render.progress_bar(done, total) == bar


def test_log_lines() -> None:
    lines = [
        '{"time": "2026-11-28T16:29:01.123Z", "level": "info", "logger": "backgroundjobs.runtime",'
        ' "message": "running report.generate", "job": "r", "run": 1}',
        '{"time": "2026-11-28T16:29:02.000Z", "level": "info", "message": "rendering pages",'
        ' "event": "progress", "done": 5, "total": 10, "percent": 50.0}',
        '{"time": "2026-11-28T16:29:03.000Z", "level": "info", "message": "", "event": "progress",'
        ' "done": 10, "total": 10}',
        '{"time": "2026-11-28T16:29:04.000Z", "level": "error", "message": "handler failed",'
        ' "exception": "Traceback (most recent call last):\\n  ...\\nTimeoutError: slow"}',
        "plain text from a library",
        "[1, 2, 3]",
        '{"msg": "structlog style", "levelname": "WARNING"}',
    ]
    text = "\n".join(render.render_log_line(line) for line in lines) + "\n"
    assert_golden("logs.txt", text)


def test_top() -> None:
    jobs = sample_jobs()
    text = render.render_top(jobs, NOW, "namespace shop")
    assert_fits(text)
    lines = text.splitlines()
    assert lines[2].split() == ["PHASE", "CRITICAL", "DEFAULT", "LOW", "TOTAL"]
    assert lines[-1].split() == ["TOTAL", "1", "4", "1", "6"]
    assert_golden("top.txt", text)


def test_top_merges_queues_that_do_not_fit() -> None:
    jobs = [
        JobInfo.from_object(
            bgjob(
                f"j{i}",
                spec={"handler": "h", "queue": f"queue-number-{i % 9}"},
                status={"phase": "Running" if i % 2 else "Succeeded"},
            )
        )
        for i in range(40)
    ]
    text = render.render_top(jobs, NOW, "all namespaces")
    assert_fits(text)
    assert "OTHER" in text.splitlines()[2]
    assert text.splitlines()[-1].startswith("OTHER: queue-number-")
    assert_golden("top_many_queues.txt", text)


def test_logs_command_renders_each_pod(capsys: pytest.CaptureFixture[str]) -> None:
    import argparse
    import asyncio
    from collections.abc import AsyncIterator

    from backgroundjobs.cli._commands import cmd_logs
    from backgroundjobs.client import LogLine

    class FakeClient:
        async def logs(self, name: str, *, run: int | None, follow: bool) -> AsyncIterator[LogLine]:
            assert (name, run, follow) == ("r", 2, False)
            yield LogLine(
                "r-2-aaaaa", '{"time": "2026-11-28T16:29:01Z", "level": "error", "message": "boom"}'
            )
            yield LogLine(
                "r-2-bbbbb", '{"event": "progress", "done": 1, "total": 2, "message": "half"}'
            )
            yield LogLine("r-2-bbbbb", "not json")

    args = argparse.Namespace(name="r", run=2, follow=False, raw=False)
    assert asyncio.run(cmd_logs(FakeClient(), args)) == 0  # type: ignore[arg-type]
    out, err = capsys.readouterr()
    assert out == "16:29:01 ERROR   boom\n[##########..........] 1/2 half\nnot json\n"
    assert err == "# pod r-2-aaaaa\n# pod r-2-bbbbb\n"
    args.raw = True
    asyncio.run(cmd_logs(FakeClient(), args))  # type: ignore[arg-type]
    assert capsys.readouterr().out.splitlines()[1].startswith('{"event": "progress"')
