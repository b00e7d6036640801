"""The operator's metrics without a cluster: label casing, the request counter's labels, the
leader gauge, the recurring-overdue gauge and the standard collectors."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from prometheus_client import generate_latest

from backgroundjobs.api.constants import LABEL_NAME, LABEL_TYPE, JobType, Phase
from backgroundjobs.controller import metrics
from backgroundjobs.controller.cache import Cache
from backgroundjobs.controller.decisions import MetricName
from backgroundjobs.controller.loop import ControlLoop
from backgroundjobs.controller.schedule import previous_run
from backgroundjobs.controller.settings import Settings

pytestmark = pytest.mark.unit


def exposition() -> str:
    return generate_latest(metrics.REGISTRY).decode()


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (Phase.SUCCEEDED, "succeeded"),
        (JobType.IMMEDIATE, "immediate"),
        ("InvalidSpec", "invalid_spec"),
        ("Api409", "api409"),
        ("TimeoutError", "timeout_error"),
        ("failed", "failed"),
    ],
)
def test_label_values_are_lower_snake_case(value: object, expected: str) -> None:
    assert metrics.label_value(value) == expected


def test_recorded_labels_are_lower_case_but_queues_are_kept() -> None:
    labels = {"type": JobType.DELAYED, "queue": "Mixed-Case", "handler": "Mail.Send"}
    metrics.record(MetricName.STARTED, labels, 1)  # type: ignore[arg-type]
    text = exposition()
    assert (
        'backgroundjobs_jobs_started_total{handler="Mail.Send",queue="Mixed-Case",type="delayed"}'
        in text
    )
    assert 'type="Delayed"' not in text
    gauge = metrics.phase_gauge(lambda: [(Phase.RUNNING, "default")] * 2)
    (family,) = gauge.collect()
    assert [(s.labels, s.value) for s in family.samples] == [
        ({"phase": "running", "queue": "default"}, 2)
    ]


def test_user_chosen_label_values_are_bounded() -> None:
    """Ever new handler or queue names (any author of a BackgroundJob picks them) end under
    one ``_other`` series once the limit is reached; values seen before keep their own."""
    bounded = metrics.BoundedLabel(limit=3)
    assert [bounded.value(f"h{i}") for i in range(5)] == ["h0", "h1", "h2", "_other", "_other"]
    assert bounded.value("h1") == "h1"
    assert len(bounded.seen) == 3
    before = exposition().count("backgroundjobs_retries_total{")
    for i in range(metrics.USER_LABEL_LIMIT + 50):
        metrics.record(MetricName.RETRIES, {"queue": "q", "handler": f"hostile.{i}"}, 1)
    text = exposition()
    assert text.count("backgroundjobs_retries_total{") - before <= metrics.USER_LABEL_LIMIT + 1
    assert 'backgroundjobs_retries_total{handler="_other",queue="q"}' in text


@pytest.mark.parametrize(
    ("method", "url", "query", "expected"),
    [
        ("POST", "https://h/apis/batch/v1/namespaces/ns/jobs", [], ("create", "jobs")),
        ("GET", "https://h/apis/batch/v1/namespaces/ns/jobs/j-1", [], ("get", "jobs")),
        (
            "GET",
            "https://h/api/v1/namespaces/ns/pods",
            [("labelSelector", "a=b")],
            ("list", "pods"),
        ),
        ("GET", "https://h/api/v1/namespaces/ns/pods", [("watch", True)], ("watch", "pods")),
        (
            "PATCH",
            "https://h/apis/backgroundjobs.dev/v1/namespaces/ns/backgroundjobs/x/status",
            [],
            ("patch", "backgroundjobs/status"),
        ),
        (
            "PUT",
            "https://h/apis/coordination.k8s.io/v1/namespaces/ns/leases/l",
            [],
            ("update", "leases"),
        ),
        ("DELETE", "https://h/apis/batch/v1/namespaces/ns/cronjobs/c", [], ("delete", "cronjobs")),
        ("GET", "https://h/api/v1/namespaces/ns", [], ("get", "namespaces")),
        ("GET", "https://h/version", [], ("get", "other")),
    ],
)
def test_request_labels_name_verb_and_resource_like_the_api_server(
    method: str, url: str, query: list[tuple[str, Any]], expected: tuple[str, str]
) -> None:
    assert metrics.request_labels(method, url, query) == expected


class FakeRest:
    def __init__(self, status: int | None) -> None:
        self.status = status

    async def request(self, method: str, url: str, **kwargs: Any) -> Any:
        if self.status is None:
            raise TimeoutError("no answer")
        return self


class FakeApiClient:
    def __init__(self, status: int | None) -> None:
        self.rest_client = FakeRest(status)


def requests_count(verb: str, resource: str, code: str) -> float:
    value = metrics.REGISTRY.get_sample_value(
        "backgroundjobs_api_requests_total", {"verb": verb, "resource": resource, "code": code}
    )
    return value or 0.0


def test_api_requests_are_counted_by_verb_resource_and_code() -> None:
    url = "https://h/apis/batch/v1/namespaces/ns/jobs"
    created, refused = FakeApiClient(201), FakeApiClient(None)
    metrics.count_requests(created)
    metrics.count_requests(refused)
    before = requests_count("create", "jobs", "201"), requests_count("create", "jobs", "error")
    asyncio.run(created.rest_client.request("POST", url, query_params=[]))
    with pytest.raises(TimeoutError):
        asyncio.run(refused.rest_client.request("POST", url))
    after = requests_count("create", "jobs", "201"), requests_count("create", "jobs", "error")
    assert after == (before[0] + 1, before[1] + 1)


class NoKube:
    async def close(self) -> None: ...


def leader_value() -> float | None:
    return metrics.REGISTRY.get_sample_value("backgroundjobs_leader")


def test_the_leader_gauge_follows_leadership() -> None:
    loop = ControlLoop(Settings(), NoKube(), leading=False)  # type: ignore[arg-type]
    assert leader_value() == 0
    loop.start_leading()
    assert leader_value() == 1
    loop.stop_leading()
    assert leader_value() == 0
    ControlLoop(Settings(), NoKube())  # type: ignore[arg-type]  (no leader election: acts)
    assert leader_value() == 1


def test_standard_process_and_gc_collectors_are_exported() -> None:
    text = exposition()
    assert "\nprocess_cpu_seconds_total " in text
    assert "\npython_gc_collections_total{" in text
    assert "\npython_info{" in text


# ------------------------------------------------------------------ recurring overdue

NOW = datetime(2026, 11, 30, 2, 30, tzinfo=UTC)


def recurring(name: str, queue: str = "default", **spec: Any) -> dict[str, Any]:
    status = spec.pop("status", {})
    return {
        "metadata": {
            "name": name,
            "namespace": "ns",
            "uid": f"uid-{name}",
            "creationTimestamp": spec.pop("created", "2026-11-01T00:00:00Z"),
        },
        "spec": {"handler": "h", "schedule": "0 2 * * *", "queue": queue, **spec},
        "status": status,
    }


def test_previous_run_is_the_latest_due_time_at_or_before() -> None:
    assert previous_run("0 2 * * *", None, NOW) == datetime(2026, 11, 30, 2, tzinfo=UTC)
    at_due = datetime(2026, 11, 30, 2, tzinfo=UTC)
    assert previous_run("0 2 * * *", None, at_due) == at_due
    # 02:00 in Berlin is 01:00 UTC in winter
    assert previous_run("0 2 * * *", "Europe/Berlin", NOW) == datetime(2026, 11, 30, 1, tzinfo=UTC)


def test_recurring_overdue_by_queue() -> None:
    cache = Cache()
    half_hour = timedelta(minutes=30).total_seconds()
    for body in (
        # due 02:00 today, last run yesterday: 30 minutes overdue
        recurring("missed", status={"lastRunAt": "2026-11-29T02:00:00Z"}),
        # ran at 02:00:01: not overdue
        recurring("ran", queue="low", status={"lastRunAt": "2026-11-30T02:00:01Z"}),
        # suspended: owes nothing
        recurring("paused", queue="critical", suspend=True),
        # created after its last due time: owes nothing yet
        recurring("new", queue="critical", created="2026-11-30T02:10:00Z"),
    ):
        cache.store_bgj(("ns", body["metadata"]["name"]), body)
    cache.store_bgj(("ns", "plain"), {"metadata": {"name": "plain"}, "spec": {"handler": "h"}})
    assert cache.recurring_overdue(NOW) == {"default": half_hour, "low": 0.0, "critical": 0.0}


def test_a_missed_run_stops_counting_once_its_job_is_seen() -> None:
    cache = Cache()
    cache.store_bgj(("ns", "nightly"), recurring("nightly"))
    assert cache.recurring_overdue(NOW) == {"default": 1800}
    job = {
        "metadata": {
            "name": "nightly-29409720",
            "namespace": "ns",
            "uid": "job-1",
            "creationTimestamp": "2026-11-30T02:00:00Z",  # the CronJob made it on time
            "labels": {LABEL_NAME: "nightly", LABEL_TYPE: JobType.RECURRING.value},
            # the CronJob controller's reference (the CronJob itself not cached yet)
            "ownerReferences": [
                {
                    "apiVersion": "batch/v1",
                    "kind": "CronJob",
                    "name": "nightly",
                    "uid": "cj-1",
                    "controller": True,
                }
            ],
        },
        "status": {},
    }
    assert cache.observe_job("ADDED", job) is not None
    assert cache.recurring_overdue(NOW) == {"default": 0.0}


def test_the_overdue_gauge_reads_while_the_event_loop_changes_the_cache(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The metrics endpoint computes it in its own thread while the event loop stores and
    forgets objects: a change in the middle of the computation (here made from inside it)
    must not fail the scrape (it did: 500, 'dictionary changed size during iteration')."""
    from backgroundjobs.controller import cache as cache_module

    cache = Cache()
    for i in range(3):
        cache.store_bgj(("ns", f"nightly-{i}"), recurring(f"nightly-{i}"))
    calls = 0

    def previous_run_while_objects_come_and_go(*args: Any) -> datetime:
        nonlocal calls
        calls += 1
        cache.store_bgj(("ns", f"new-{calls}"), recurring(f"new-{calls}"))
        return previous_run(*args)

    monkeypatch.setattr(cache_module, "previous_run", previous_run_while_objects_come_and_go)
    assert cache.recurring_overdue(NOW) == {"default": 1800}
    assert calls == 3  # the objects as they were when it began
