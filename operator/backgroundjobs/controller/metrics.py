"""Prometheus metrics of API.md §5 (prefix ``backgroundjobs_``); no per-object labels."""

from __future__ import annotations

from collections import Counter as Tally
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server
from prometheus_client.core import GaugeMetricFamily

from backgroundjobs import __version__

REGISTRY = CollectorRegistry(auto_describe=True)

_DURATION_BUCKETS = (0.1, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 7200)
_LATENESS_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)

JOBS_STARTED = Counter(
    "backgroundjobs_jobs_started_total",
    "Jobs (runs) started, by job type and queue.",
    ["type", "queue"],
    registry=REGISTRY,
)
JOBS_FINISHED = Counter(
    "backgroundjobs_jobs_finished_total",
    "Runs finished, by type, queue and outcome (succeeded, failed, cancelled).",
    ["type", "queue", "outcome"],
    registry=REGISTRY,
)
JOB_DURATION = Histogram(
    "backgroundjobs_job_duration_seconds",
    "Run time from start to finish, by type, queue and outcome.",
    ["type", "queue", "outcome"],
    buckets=_DURATION_BUCKETS,
    registry=REGISTRY,
)
START_LATENESS = Histogram(
    "backgroundjobs_start_lateness_seconds",
    "Job created minus the time it was due, by type.",
    ["type"],
    buckets=_LATENESS_BUCKETS,
    registry=REGISTRY,
)
RETRIES = Counter(
    "backgroundjobs_retries_total",
    "Pod failures that were retried, by queue.",
    ["queue"],
    registry=REGISTRY,
)
RECONCILE_ERRORS = Counter(
    "backgroundjobs_reconcile_errors_total",
    "Reconciliations that failed or met an invalid spec, by reason.",
    ["reason"],
    registry=REGISTRY,
)
BUILD_INFO = Gauge(
    "backgroundjobs_build_info",
    "The operator's version.",
    ["version"],
    registry=REGISTRY,
)
BUILD_INFO.labels(version=__version__).set(1)


class PhaseCollector:
    """``backgroundjobs_jobs{phase,queue}``: counted from the operator's cache at scrape time."""

    def __init__(self, source: Callable[[], Iterable[tuple[str, str]]]) -> None:
        self.source = source

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "backgroundjobs_jobs", "BackgroundJobs by phase and queue.", labels=["phase", "queue"]
        )
        for (phase, queue), count in sorted(Tally(self.source()).items()):
            family.add_metric([phase, queue], count)
        yield family

    def describe(self) -> Iterator[Any]:
        return iter(())


_collector: PhaseCollector | None = None


def register_phase_source(source: Callable[[], Iterable[tuple[str, str]]]) -> None:
    global _collector
    if _collector is not None:
        REGISTRY.unregister(_collector)
    _collector = PhaseCollector(source)
    REGISTRY.register(_collector)


class PendingCollector:
    """``backgroundjobs_operator_pending{stage}``: objects waiting for a worker
    (``reconcile``) and Jobs created whose status write is still to come (``status``)."""

    def __init__(self, source: Callable[[], dict[str, int]]) -> None:
        self.source = source

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "backgroundjobs_operator_pending",
            "Work waiting in the operator, by stage (reconcile, status).",
            labels=["stage"],
        )
        for stage, count in sorted(self.source().items()):
            family.add_metric([stage], count)
        yield family

    def describe(self) -> Iterator[Any]:
        return iter(())


_pending: PendingCollector | None = None


def register_queue_depths(source: Callable[[], dict[str, int]]) -> None:
    global _pending
    if _pending is not None:
        REGISTRY.unregister(_pending)
    _pending = PendingCollector(source)
    REGISTRY.register(_pending)


def record(name: str, labels: dict[str, str], value: float) -> None:
    """Apply one metric observation from a decision's plan."""
    if name == "started":
        JOBS_STARTED.labels(**labels).inc(value)
    elif name == "finished":
        JOBS_FINISHED.labels(**labels).inc(value)
    elif name == "duration":
        JOB_DURATION.labels(**labels).observe(value)
    elif name == "lateness":
        START_LATENESS.labels(**labels).observe(value)
    elif name == "retries":
        RETRIES.labels(**labels).inc(value)
    elif name == "reconcile_errors":
        RECONCILE_ERRORS.labels(**labels).inc(value)


def serve(port: int) -> None:
    if port:
        start_http_server(port, registry=REGISTRY)
