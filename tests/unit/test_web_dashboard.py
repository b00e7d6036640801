"""The web dashboard's pure parts: rows from objects, the cache's counts, filters, paging and
per-minute series, label selectors, cron in words, the job page's timeline and attempts, log
records, Prometheus answers, and the settings that would open a hole."""

from __future__ import annotations

import copy
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

import backgroundjobs.dashboard
from backgroundjobs.dashboard._cron_words import describe
from backgroundjobs.dashboard._details import attempts, log_record, recorded_attempts, timeline
from backgroundjobs.dashboard._prometheus import PrometheusError, points_from_matrix
from backgroundjobs.dashboard._rows import row_from_object
from backgroundjobs.dashboard._series import WINDOW_MINUTES, MinuteSeries
from backgroundjobs.dashboard._server import Settings, available_actions, is_loopback
from backgroundjobs.dashboard._store import JobStore, Query, SelectorError, parse_selector

pytestmark = pytest.mark.unit

NOW = datetime(2030, 1, 2, 12, 0, 30, tzinfo=UTC).timestamp()
Body = dict[str, Any]


def stamp(seconds_before_now: float) -> str:
    moment = datetime.fromtimestamp(NOW - seconds_before_now, UTC)
    return moment.isoformat().replace("+00:00", "Z")


def bgj(
    name: str,
    phase: str | None = None,
    namespace: str = "shop",
    rv: str = "1",
    uid: str | None = None,
    status: Body | None = None,
    labels: dict[str, str] | None = None,
    created: float = 600,
    **spec: Any,
) -> Body:
    body_status: Body = dict(status or {})
    if phase is not None:
        body_status["phase"] = phase
    return {
        "apiVersion": "backgroundjobs.dev/v1alpha1",
        "kind": "BackgroundJob",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "uid": uid or f"uid-{namespace}-{name}",
            "resourceVersion": rv,
            "creationTimestamp": stamp(created),
            "labels": labels or {},
        },
        "spec": {"handler": "mail.send", **spec},
        "status": body_status,
    }


# ------------------------------------------------------------------ rows


def test_row_reads_type_phase_times_and_previews() -> None:
    obj = bgj(
        "welcome",
        "Failed",
        args=["a@b.c"],
        kwargs={"subject": "Hi"},
        queue="critical",
        status={
            "finishedAt": stamp(30),
            "startedAt": stamp(40),
            "message": "failed (BackoffLimitExceeded): boom",
            "failedAttempts": 4,
            "runs": 1,
            "conditions": [
                {"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded"},
                {"type": "Succeeded", "status": "False", "reason": "BackoffLimitExceeded"},
            ],
        },
    )
    row = row_from_object(obj)
    assert (row.type, row.phase, row.queue, row.reason) == (
        "Immediate",
        "Failed",
        "critical",
        "BackoffLimitExceeded",
    )
    assert row.args == '"a@b.c", subject="Hi"'
    assert row.finished == pytest.approx(NOW - 30)
    assert row.failed_attempts == 4
    assert row.finish_outcome == "failed"


def test_row_of_a_job_the_operator_has_not_seen_is_pending_and_typed_by_its_spec() -> None:
    assert row_from_object(bgj("later", delay="1h")).type == "Delayed"
    assert row_from_object(bgj("cron", schedule="0 2 * * *")).type == "Recurring"
    child = row_from_object(bgj("child", after={"name": "parent"}))
    assert (child.type, child.phase, child.parent, child.parent_when) == (
        "Continuation",
        "Pending",
        "parent",
        "Succeeded",
    )


def test_recurring_outcome_is_the_last_run_s() -> None:
    obj = bgj(
        "cron",
        "Scheduled",
        schedule="@hourly",
        status={
            "finishedAt": stamp(10),
            "conditions": [{"type": "Succeeded", "status": "True", "reason": "Completed"}],
        },
    )
    row = row_from_object(obj)
    assert row.outcome == "Succeeded"
    assert row.finish_outcome == "succeeded"
    assert row.time_zone == "UTC"


def test_long_arguments_are_cut_in_the_row() -> None:
    row = row_from_object(bgj("big", args=["x" * 70_000]))
    assert len(row.args) <= 160
    assert row.args.endswith("…")


# ------------------------------------------------------------------ store


def filled_store() -> JobStore:
    store = JobStore()
    objects = [
        bgj("a1", "Succeeded", status={"finishedAt": stamp(90)}, labels={"app": "shop"}),
        bgj("a2", "Failed", status={"finishedAt": stamp(30)}, queue="critical"),
        bgj("a3", "Running", created=300),
        bgj("a4", "Queued", queue="limited", created=200),
        bgj("a5", "Queued", queue="limited", created=100, namespace="other"),
        bgj("a6", "Waiting", after={"name": "a3"}),
        bgj("a7", "Scheduled", schedule="0 2 * * *", status={"dueAt": stamp(-3600)}),
    ]
    store.replace(None, objects, NOW)
    return store


def test_counts_by_phase_queue_and_type_follow_every_change() -> None:
    store = filled_store()
    counts = store.counts()
    assert counts["total"] == 7
    assert counts["phases"]["Queued"] == 2
    assert counts["queues"]["limited"] == {"Queued": 2}
    assert store.counts("other")["total"] == 1

    moved = bgj("a3", "Succeeded", rv="2", created=300, status={"finishedAt": stamp(1)})
    store.apply("MODIFIED", moved, NOW)
    assert store.counts()["phases"]["Running"] == 0
    assert store.counts()["phases"]["Succeeded"] == 2
    store.apply("DELETED", moved, NOW)
    assert store.counts()["total"] == 6
    assert "a3" not in {r.name for r in store.rows.values()}


def test_a_relist_removes_what_is_gone_and_only_in_its_namespace() -> None:
    store = filled_store()
    store.replace("shop", [bgj("a1", "Succeeded", status={"finishedAt": stamp(90)})], NOW)
    assert sorted(k for k in store.rows) == [("other", "a5"), ("shop", "a1")]


def test_query_filters_sorts_and_pages() -> None:
    store = filled_store()
    page = store.query(Query(phase="Queued"))
    assert [i["name"] for i in page.items] == ["a5", "a4"]  # newest first
    # A queue is (namespace, name): each is first in its own namespace's queue.
    assert [i["queuePosition"] for i in page.items] == [1, 1]
    store.apply("ADDED", bgj("a0", "Queued", queue="limited", created=900), NOW)
    page = store.query(Query(phase="Queued", namespace="shop"))
    # a0 is older than a4: next in line (FIFO by creation time)
    assert [(i["name"], i["queuePosition"]) for i in page.items] == [("a4", 2), ("a0", 1)]
    store.apply("DELETED", bgj("a0", "Queued", queue="limited", created=900), NOW)
    assert store.query(Query(queue="critical")).total == 1
    assert store.query(Query(labels="app=shop")).total == 1
    assert store.query(Query(labels="!app")).total == 6
    assert store.query(Query(text="A7")).items[0]["name"] == "a7"
    assert store.query(Query(namespace="other")).total == 1
    first = store.query(Query(limit=3, sort="name"))
    second = store.query(Query(limit=3, offset=3, sort="name"))
    assert first.total == second.total == 7
    assert [i["name"] for i in first.items + second.items] == [
        "a5", "a1", "a2", "a3", "a4", "a6",
    ]  # fmt: skip
    with pytest.raises(ValueError, match="sort"):
        store.query(Query(sort="phase"))


def test_page_size_is_capped() -> None:
    store = JobStore()
    store.replace(None, [bgj(f"j{i}", "Succeeded", created=i) for i in range(300)], NOW)
    page = store.query(Query(limit=10_000))
    assert page.total == 300
    assert len(page.items) == 200


def test_children_and_ancestors_make_the_chain() -> None:
    store = JobStore()
    store.replace(
        None,
        [
            bgj("report", "Succeeded"),
            bgj("mail", "Succeeded", after={"name": "report"}),
            bgj("audit", "Waiting", after={"name": "mail", "when": "Finished"}),
            bgj("orphan", "Waiting", after={"name": "absent"}),
        ],
        NOW,
    )
    assert [c.name for c in store.children("shop", "report")] == ["mail"]
    chain = store.ancestors("shop", "audit")
    assert [(p["name"], p["when"]) for p in chain] == [
        ("mail", "Finished"),
        ("report", "Succeeded"),
    ]
    assert store.ancestors("shop", "orphan") == [
        {"name": "absent", "missing": True, "when": "Succeeded"}
    ]
    store.apply("DELETED", bgj("mail"), NOW)
    assert store.children("shop", "report") == []


def test_changes_since_names_each_changed_job_once() -> None:
    store = filled_store()
    version = store.version
    store.apply("MODIFIED", bgj("a3", "Running", rv="5"), NOW)
    store.apply("MODIFIED", bgj("a3", "Succeeded", rv="6"), NOW)
    store.apply("ADDED", bgj("new", "Pending"), NOW)
    assert store.changes_since(version) == [("shop", "a3"), ("shop", "new")]
    assert store.changes_since(store.version) == []


def test_finished_runs_are_counted_once_per_minute_and_outcome() -> None:
    store = JobStore()
    store.replace(
        None,
        [
            bgj("s", "Succeeded", status={"finishedAt": stamp(10)}),
            bgj("f", "Failed", status={"finishedAt": stamp(70)}),
            bgj("c", "Cancelled", status={"finishedAt": stamp(10)}),
            bgj("old", "Succeeded", status={"finishedAt": stamp(2 * 86400)}),
        ],
        NOW,
    )
    points = store.series(None, NOW, 3)
    assert [(p.succeeded, p.failed) for p in points] == [(0, 0), (0, 1), (1, 0)]
    # The same object seen again (a relist, a resync) is not counted twice.
    store.replace(None, [bgj("s", "Succeeded", rv="9", status={"finishedAt": stamp(10)})], NOW)
    assert store.series(None, NOW, 1)[0].succeeded == 1
    # A requeued run that finishes again is a new run.
    store.apply("MODIFIED", bgj("s", "Succeeded", rv="10", status={"finishedAt": stamp(5)}), NOW)
    assert store.series(None, NOW, 1)[0].succeeded == 2
    assert store.series("elsewhere", NOW, 1)[0].succeeded == 0


def test_series_window_drops_old_minutes() -> None:
    series = MinuteSeries()
    assert series.add(NOW - 10, "succeeded", NOW)
    assert not series.add(NOW - (WINDOW_MINUTES + 5) * 60, "succeeded", NOW)
    assert not series.add(NOW, "cancelled", NOW)
    later = NOW + WINDOW_MINUTES * 60
    assert series.totals(later) == (0, 0)
    assert len(series.points(NOW)) == WINDOW_MINUTES


# ------------------------------------------------------------------ selectors


def test_label_selectors() -> None:
    terms = parse_selector("app=shop, tier!=web,batch,!canary,env==prod")
    labels = {"app": "shop", "tier": "db", "batch": "x", "env": "prod"}
    assert all(t.matches(labels) for t in terms)
    assert not all(t.matches({**labels, "canary": "1"}) for t in terms)
    for bad in ("app in (a,b)", "!app=x", "=x"):
        with pytest.raises(SelectorError):
            parse_selector(bad)


# ------------------------------------------------------------------ cron in words


@pytest.mark.parametrize(
    ("expression", "words"),
    [
        ("0 2 * * *", "at 02:00 every day"),
        ("@hourly", "every hour, on the hour"),
        ("@daily", "at 00:00 every day"),
        ("*/5 * * * *", "every 5 minutes"),
        ("* * * * *", "every minute"),
        ("30 9 * * 1-5", "at 09:30 on weekdays"),
        ("0 0 1 * *", "at 00:00 on the 1st of the month"),
        ("0 9,17 * * *", "at 09:00 and 17:00 every day"),
        ("15 */2 * * *", "at minute 15 of every 2nd hour"),
        ("0 8 * * mon,wed", "at 08:00 on Monday and Wednesday"),
        ("*/10 9-17 * * 1-5", "every 10 minutes from 09:00 to 17:59 on weekdays"),
        ("0 3 * * 7", "at 03:00 on Sunday"),
        ("0 0 1 1 *", "at 00:00 on the 1st of the month in January"),
        ("not cron", "not cron"),
        ("61 * * * *", "61 * * * *"),
    ],
)
def test_cron_in_words(expression: str, words: str) -> None:
    assert describe(expression) == words


# ------------------------------------------------------------------ the job page


def test_timeline_merges_conditions_and_events_in_time_order() -> None:
    obj = bgj(
        "j",
        "Succeeded",
        status={
            "conditions": [
                {
                    "type": "Succeeded",
                    "status": "True",
                    "reason": "Completed",
                    "lastTransitionTime": stamp(5),
                },
                {"type": "Running", "status": "False", "lastTransitionTime": stamp(5)},
            ]
        },
    )
    events = [
        {
            "involvedObject": {"kind": "BackgroundJob", "name": "j"},
            "reason": "Started",
            "type": "Normal",
            "lastTimestamp": stamp(20),
            "message": "Job j-1 created",
        },
        {
            "involvedObject": {"kind": "Pod", "name": "j-1-x"},
            "reason": "Scheduled",
            "type": "Normal",
            "eventTime": stamp(18),
        },
    ]
    entries = timeline(obj, events)
    assert [e["title"] for e in entries] == [
        "Started", "Scheduled", "Succeeded=True", "Running=False",
    ]  # fmt: skip
    assert entries[2]["current"] is True


def test_attempts_group_pods_by_run_newest_run_first() -> None:
    def job(name: str, run: str, complete: bool | None) -> Body:
        conditions = []
        if complete is not None:
            conditions = [{"type": "Complete" if complete else "Failed", "status": "True"}]
        return {
            "metadata": {
                "name": name,
                "labels": {"backgroundjobs.dev/run": run},
                "creationTimestamp": stamp(100 - int(run)),
            },
            "status": {"conditions": conditions},
        }

    def pod(name: str, job_name: str, exit_code: int, created: float) -> Body:
        return {
            "metadata": {
                "name": name,
                "creationTimestamp": stamp(created),
                "labels": {"batch.kubernetes.io/job-name": job_name},
            },
            "status": {
                "phase": "Failed" if exit_code else "Succeeded",
                "containerStatuses": [
                    {
                        "name": "handler",
                        "state": {"terminated": {"exitCode": exit_code, "message": "boom"}},
                    }
                ],
            },
        }

    runs = [job("j-1", "1", False), job("j-2", "2", True)]
    pods = [pod("j-1-b", "j-1", 1, 50), pod("j-1-a", "j-1", 1, 60), pod("j-2-a", "j-2", 0, 10)]
    out = attempts(runs, pods)
    assert [r["run"] for r in out] == ["2", "1"]
    assert [r["outcome"] for r in out] == ["Succeeded", "Failed"]
    assert [a["pod"] for a in out[1]["attempts"]] == ["j-1-a", "j-1-b"]
    assert out[1]["attempts"][0]["exitCode"] == 1


def test_log_records() -> None:
    progress = log_record(
        '{"time": "2030-01-02T12:00:00Z", "level": "info", "message": "rows",'
        ' "event": "progress", "done": 5, "total": 20}'
    )
    assert progress["progress"] == {"done": 5.0, "total": 20.0, "percent": 25.0}
    assert progress["message"] == "rows"
    error = log_record('{"level": "error", "message": "failed", "exception": "Traceback"}')
    assert (error["level"], error["exception"]) == ("error", "Traceback")
    assert log_record("plain text") == {"text": "plain text"}
    assert "progress" not in log_record('{"event": "progress", "done": "x", "total": 1}')
    # Another job's progress record (one log shared by several jobs) moves no bar.
    own = '{"event": "progress", "done": 1, "total": 2, "job": "j", "namespace": "shop"}'
    assert log_record(own, ("shop", "j"))["progress"]["percent"] == 50.0
    assert "progress" not in log_record(own, ("shop", "other"))
    assert "progress" not in log_record(own, ("team", "j"))
    unnamed = '{"event": "progress", "done": 1, "total": 4}'
    assert log_record(unnamed, ("shop", "j"))["progress"]["percent"] == 25.0


# ------------------------------------------------------------------ Prometheus


def test_prometheus_matrix_becomes_minutes() -> None:
    minute = int(NOW // 60) * 60
    answer = {
        "status": "success",
        "data": {
            "resultType": "matrix",
            "result": [
                {
                    "metric": {"outcome": "succeeded"},
                    "values": [[minute, "3.9"], [minute - 60, "1"]],
                },
                {"metric": {"outcome": "failed"}, "values": [[minute, "1.2"], [minute, "NaN"]]},
            ],
        },
    }
    points = points_from_matrix(answer, NOW)
    assert len(points) == WINDOW_MINUTES
    assert (points[-1].succeeded, points[-1].failed) == (4, 1)
    assert points[-2].succeeded == 1
    with pytest.raises(PrometheusError, match="bad query"):
        points_from_matrix({"status": "error", "error": "bad query"}, NOW)


# ------------------------------------------------------------------ settings and actions


def test_settings_refuse_an_unauthenticated_write_path() -> None:
    Settings(namespace=None).check()
    Settings(namespace=None, auth="none", read_only=True, address="0.0.0.0").check()
    Settings(namespace=None, auth="proxy", impersonate=True).check()
    with pytest.raises(ValueError, match="--read-only"):
        Settings(namespace=None, auth="none").check()
    with pytest.raises(ValueError, match="loopback"):
        Settings(namespace=None, auth="token", address="0.0.0.0").check()
    with pytest.raises(ValueError, match="loopback"):
        Settings(namespace=None, auth="proxy", address="10.0.0.1").check()
    with pytest.raises(ValueError, match="--auth proxy"):
        Settings(namespace=None, impersonate=True).check()
    assert is_loopback("127.0.0.2") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("example.com")


@pytest.mark.parametrize(
    ("obj", "expected"),
    [
        (bgj("j", "Succeeded"), ["requeue", "delete"]),
        (
            bgj(
                "b",
                "Failed",
                status={"batch": {"total": 4, "succeeded": 2, "failed": 2}},
                items=[{}] * 4,
            ),
            ["requeue", "requeue-failed", "delete"],
        ),
        (
            bgj("b", "Succeeded", status={"batch": {"total": 4, "succeeded": 4}}, items=[{}] * 4),
            ["requeue", "delete"],
        ),
        (bgj("j", "Running"), ["cancel", "delete"]),
        (bgj("j", "Scheduled", delay="1h"), ["trigger", "cancel", "suspend", "delete"]),
        (bgj("j", "Scheduled", schedule="@daily"), ["trigger", "cancel", "suspend", "delete"]),
        (
            bgj("j", "Suspended", schedule="@daily", suspend=True),
            ["trigger", "cancel", "resume", "delete"],
        ),
    ],
)
def test_actions_offered_follow_the_state(obj: Body, expected: list[str]) -> None:
    assert available_actions(row_from_object(copy.deepcopy(obj))) == expected


def test_a_first_page_of_many_rows_is_the_sorted_one() -> None:
    store = JobStore()
    store.replace(
        None, [bgj(f"j{i:04d}", "Succeeded", created=(i * 7919) % 1000) for i in range(1000)], NOW
    )
    for sort in ("-created", "created", "name", "-name"):
        every = store.query(Query(sort=sort, limit=200)).items  # sorts all the matches
        first = store.query(Query(sort=sort, limit=20, offset=40)).items  # picks from a heap
        assert first == every[40:60], sort


def test_row_carries_progress_pause_until_and_batch_counts() -> None:
    running = row_from_object(
        bgj(
            "export",
            "Running",
            status={
                "progress": {
                    "done": 3, "total": 4, "percent": 75.0, "summary": "3/4 (75%)",
                    "message": "rows " * 100, "pod": "export-1-x", "updatedAt": stamp(2),
                }
            },
        )
    ).to_json()  # fmt: skip
    assert running["progress"]["percent"] == 75.0
    assert running["progress"]["summary"] == "3/4 (75%)"
    assert len(running["progress"]["message"]) <= 160  # previewed, as the lists show it
    unknown_total = row_from_object(
        bgj("scan", "Running", status={"progress": {"done": 7, "total": 0, "summary": "7"}})
    ).to_json()
    assert unknown_total["progress"]["percent"] is None
    # A hostile or half-written status is no progress, never an error.
    broken = bgj("bad", "Running", status={"progress": {"done": "x", "total": None}})
    assert row_from_object(broken).to_json()["progress"] is None
    assert row_from_object(bgj("none", "Running")).to_json()["progress"] is None

    until = stamp(-7200)
    paused = row_from_object(bgj("later", "Suspended", suspend=True, suspendUntil=until))
    assert paused.to_json()["suspendUntil"] == until
    # suspendUntil means nothing without suspend (the API server refuses it anyway).
    assert row_from_object(bgj("x", "Succeeded", suspendUntil=until)).suspend_until is None

    items = [{"args": [f"user-{i}"]} for i in range(6)]
    fresh = row_from_object(bgj("news", None, items=items))
    assert fresh.type == "Batch"
    assert fresh.args == "6 items"
    assert fresh.batch == {"total": 6, "succeeded": 0, "failed": 0, "running": 0, "pending": 6}
    counted = row_from_object(
        bgj(
            "news",
            "Running",
            items=items,
            status={
                "type": "Batch",
                "batch": {"total": 6, "succeeded": 3, "failed": 1, "running": 2},
                "progress": {"done": 4, "total": 6, "percent": 66.7, "summary": "4/6 (66.7%)"},
            },
        )
    )
    assert counted.batch == {"total": 6, "succeeded": 3, "failed": 1, "running": 2, "pending": 0}
    assert counted.to_json()["progress"]["summary"] == "4/6 (66.7%)"
    assert row_from_object(bgj("plain", "Succeeded")).batch is None


def test_store_lists_a_queue_s_waiting_jobs_in_admission_order_and_the_batches() -> None:
    store = filled_store()
    store.apply("ADDED", bgj("b1", "Queued", queue="limited", created=150), NOW)
    store.apply("ADDED", bgj("b0", "Queued", queue="limited", created=150), NOW)  # same time
    assert [r.name for r in store.queued("shop", "limited")] == ["a4", "b0", "b1"]
    assert [r.name for r in store.queued("other", "limited")] == ["a5"]
    assert store.queue_phases("shop")[("shop", "limited")] == {"Queued": 3}
    assert store.queue_phases()[("other", "limited")] == {"Queued": 1}
    assert store.batches() == []
    store.apply("ADDED", bgj("old", "Succeeded", items=[{}], created=500), NOW)
    store.apply("ADDED", bgj("new", "Running", items=[{}, {}], created=5), NOW)
    store.apply("ADDED", bgj("elsewhere", "Running", items=[{}], namespace="other"), NOW)
    assert [r.name for r in store.batches("shop")] == ["new", "old"]  # newest first
    assert len(store.batches()) == 3


def test_recorded_attempts_are_the_operator_s_records_with_the_run_s_total() -> None:
    status = {
        "runs": 2,
        "attemptsTotal": 12,
        "attempts": [
            {"attempt": n, "run": 2, "job": "j-2", "pod": f"j-2-{n}", "node": "kwok-node-0",
             "startedAt": stamp(100 - n), "finishedAt": stamp(90 - n), "exitCode": 1,
             "reason": "Error", "message": "ConnectionError: SMTP down"}
            for n in range(3, 13)
        ] + ["not a record"],
    }  # fmt: skip
    status["attempts"][-2].update(pod=None, exitCode=None, reason="PodDeleted", message="")
    out = recorded_attempts(status)
    assert (out["total"], out["run"]) == (12, 2)
    assert [r["attempt"] for r in out["records"]] == list(range(3, 13))
    first = out["records"][0]
    assert (first["pod"], first["node"], first["exitCode"]) == ("j-2-3", "kwok-node-0", 1)
    assert first["started"] == stamp(97) and first["finished"] == stamp(87)
    assert first["message"] == "ConnectionError: SMTP down"
    assert (out["records"][-1]["pod"], out["records"][-1]["reason"]) == (None, "PodDeleted")
    # Without attemptsTotal (an older operator) the total is what is recorded; no record: none.
    del status["attemptsTotal"]
    assert recorded_attempts(status)["total"] == 10
    assert recorded_attempts({}) == {"total": 0, "run": None, "records": []}


def test_the_front_end_loads_nothing_from_elsewhere() -> None:
    """Issue 18 item 4: the page, its script and its style name no other origin (no CDN, no
    web font); the only absolute URL is the SVG icon's XML namespace, which is not fetched."""
    static = Path(backgroundjobs.dashboard.__file__).parent / "static"
    files = sorted(static.iterdir())
    assert {f.name for f in files} >= {"index.html", "app.js", "app.css"}
    for f in files:
        text = f.read_text()
        urls = set(re.findall(r"(?:https?:)?//[A-Za-z0-9.-]+\.[A-Za-z]{2,}[^\s'\"`)]*", text))
        urls.discard("http://www.w3.org/2000/svg")
        assert not urls, f"{f.name} names another origin: {sorted(urls)}"
        assert "@import" not in text and "import(" not in text, f.name


def test_handler_filter_and_free_text_over_handler_arguments_message_and_result() -> None:
    store = JobStore()
    store.replace(
        None,
        [
            bgj("mail-1", "Succeeded", args=["ann@example.com"], status={"result": {"id": 77}}),
            bgj("mail-2", "Failed", args=["bob@example.com"],
                status={"message": "failed: SMTPServerDisconnected"}),
            bgj("report-1", "Running", handler="report.generate", args=["2026-Q3"]),
        ],
        NOW,
    )  # fmt: skip

    def names(query: Query) -> list[str]:
        return sorted(i["name"] for i in store.query(query).items)

    assert names(Query(handler="report.generate")) == ["report-1"]
    assert names(Query(handler="mail.send")) == ["mail-1", "mail-2"]
    assert names(Query(text="bob@")) == ["mail-2"]  # an argument
    assert names(Query(text="smtpserver")) == ["mail-2"]  # the message, any case
    assert names(Query(text="report.gen")) == ["report-1"]  # the handler
    assert names(Query(text='"id": 77')) == ["mail-1"]  # the result
    assert names(Query(text="nowhere")) == []
