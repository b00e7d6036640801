"""Prometheus metrics of API.md §5 (prefix ``backgroundjobs_``); no per-object labels."""

from __future__ import annotations

from collections import Counter as Tally
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server
from prometheus_client.core import GaugeMetricFamily

from backgroundjobs._version import __version__
from backgroundjobs.controller.decisions.plan import MetricName

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


class CallbackGauge:
    """A gauge family whose samples come from a callable at scrape time: (label values,
    value) pairs, exported sorted by label values."""

    def __init__(
        self,
        name: str,
        documentation: str,
        labels: list[str],
        samples: Callable[[], Iterable[tuple[tuple[str, ...], float]]],
    ) -> None:
        self.name = name
        self.documentation = documentation
        self.labels = labels
        self.samples = samples

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(self.name, self.documentation, labels=self.labels)
        for values, value in sorted(self.samples()):
            family.add_metric(list(values), value)
        yield family

    def describe(self) -> Iterator[Any]:
        return iter(())


def phase_gauge(source: Callable[[], Iterable[tuple[str, str]]]) -> CallbackGauge:
    """``backgroundjobs_jobs{phase,queue}``: counted from the operator's cache at scrape time."""
    return CallbackGauge(
        "backgroundjobs_jobs",
        "BackgroundJobs by phase and queue.",
        ["phase", "queue"],
        lambda: Tally(source()).items(),
    )


def pending_gauge(source: Callable[[], dict[str, int]]) -> CallbackGauge:
    """``backgroundjobs_operator_pending{stage}``: objects waiting for a worker
    (``reconcile``) and Jobs created whose status write is still to come (``status``)."""
    return CallbackGauge(
        "backgroundjobs_operator_pending",
        "Work waiting in the operator, by stage (reconcile, status).",
        ["stage"],
        lambda: (((stage,), count) for stage, count in source().items()),
    )


_gauges: dict[str, CallbackGauge] = {}


def _register(gauge: CallbackGauge) -> None:
    """Register ``gauge``, replacing the one of the same name (a new control loop's source)."""
    old = _gauges.pop(gauge.name, None)
    if old is not None:
        REGISTRY.unregister(old)
    _gauges[gauge.name] = gauge
    REGISTRY.register(gauge)


def register_phase_source(source: Callable[[], Iterable[tuple[str, str]]]) -> None:
    _register(phase_gauge(source))


def register_pending(source: Callable[[], dict[str, int]]) -> None:
    _register(pending_gauge(source))


def record(name: MetricName, labels: dict[str, str], value: float) -> None:
    """Apply one observation (of a decision's plan, or of the loop's failures)."""
    if name in _COUNTERS:
        _COUNTERS[name].labels(**labels).inc(value)
    else:
        _HISTOGRAMS[name].labels(**labels).observe(value)


_COUNTERS = {
    MetricName.STARTED: JOBS_STARTED,
    MetricName.FINISHED: JOBS_FINISHED,
    MetricName.RETRIES: RETRIES,
    MetricName.RECONCILE_ERRORS: RECONCILE_ERRORS,
}
_HISTOGRAMS = {MetricName.DURATION: JOB_DURATION, MetricName.LATENESS: START_LATENESS}


def serve(port: int) -> None:
    if port:
        start_http_server(port, registry=REGISTRY)
