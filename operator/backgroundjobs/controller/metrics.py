"""Prometheus metrics of API.md §5 (prefix ``backgroundjobs_``); no per-object labels.

Label values the operator chooses are lower-case snake_case (``phase="succeeded"``,
``type="immediate"``, ``reason="invalid_spec"``); queue names are the user's, kept as given.
"""

from __future__ import annotations

import re
from collections import Counter as Tally
from collections.abc import Awaitable, Callable, Iterable, Iterator
from typing import Any
from urllib.parse import urlsplit

from prometheus_client import (
    GC_COLLECTOR,
    PLATFORM_COLLECTOR,
    PROCESS_COLLECTOR,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    start_http_server,
)
from prometheus_client.core import GaugeMetricFamily

from backgroundjobs._version import __version__
from backgroundjobs.controller.decisions.plan import MetricName
from backgroundjobs.controller.queueing import Grant

REGISTRY = CollectorRegistry(auto_describe=True)
# The standard process_* (CPU, memory, file descriptors), python_gc_* and python_info series,
# as the default registry has them.
for _collector in (PROCESS_COLLECTOR, GC_COLLECTOR, PLATFORM_COLLECTOR):
    REGISTRY.register(_collector)

_DURATION_BUCKETS = (0.1, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 7200)
_LATENESS_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)

JOBS_STARTED = Counter(
    "backgroundjobs_jobs_started_total",
    "Jobs (runs) started, by job type, queue and handler.",
    ["type", "queue", "handler"],
    registry=REGISTRY,
)
JOBS_FINISHED = Counter(
    "backgroundjobs_jobs_finished_total",
    "Runs finished, by type, queue, handler and outcome (succeeded, failed, cancelled).",
    ["type", "queue", "handler", "outcome"],
    registry=REGISTRY,
)
JOB_DURATION = Histogram(
    "backgroundjobs_job_duration_seconds",
    "Run time from start to finish, by type, queue, handler and outcome.",
    ["type", "queue", "handler", "outcome"],
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
ATTEMPT_LATENESS = Histogram(
    "backgroundjobs_attempt_lateness_seconds",
    "A retryPolicy attempt's Job created minus its due time (or its resume, when suspend held"
    " it), by queue.",
    ["queue"],
    buckets=_LATENESS_BUCKETS,
    registry=REGISTRY,
)
RETRIES = Counter(
    "backgroundjobs_retries_total",
    "Pod failures that were retried, by queue and handler.",
    ["queue", "handler"],
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
LEADER = Gauge(
    "backgroundjobs_leader",
    "1 while this replica acts (holds the Lease, or runs without leader election), else 0.",
    registry=REGISTRY,
)
RECONCILE_DURATION = Histogram(
    "backgroundjobs_reconcile_duration_seconds",
    "Time of one reconcile step (a reconcile, or a deferred status write), by outcome"
    " (success, error).",
    ["outcome"],
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
    registry=REGISTRY,
)
API_REQUESTS = Counter(
    "backgroundjobs_api_requests_total",
    "The operator's requests to the Kubernetes API server (its watches aside), by verb,"
    " resource and HTTP status code (error: no answer).",
    ["verb", "resource", "code"],
    registry=REGISTRY,
)


def label_value(value: object) -> str:
    """An operator-chosen label value in lower snake_case: Succeeded -> succeeded,
    InvalidSpec -> invalid_spec, Api409 -> api409, TimeoutError -> timeout_error."""
    text = str(getattr(value, "value", value))
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", text).lower()


# Labels whose values the operator chooses (the others, queue and version, are kept as given).
_OPERATOR_LABELS = frozenset({"type", "phase", "outcome", "reason", "stage"})

# Labels whose values the job's author chooses: each keeps its first values, the rest are
# counted under OTHER, so that objects with ever new queue or handler names cannot grow the
# operator's memory and every scrape without bound (a series per value).
USER_LABEL_LIMIT = 200
OTHER = "_other"


class BoundedLabel:
    """The values one user-chosen label has taken, at most ``limit`` of them."""

    def __init__(self, limit: int = USER_LABEL_LIMIT) -> None:
        self.limit = limit
        self.seen: set[str] = set()

    def value(self, value: str) -> str:
        if value in self.seen:
            return value
        if len(self.seen) >= self.limit:
            return OTHER
        self.seen.add(value)
        return value


_USER_LABELS = {"queue": BoundedLabel(), "handler": BoundedLabel()}


def _labels(labels: dict[str, str]) -> dict[str, str]:
    out = {}
    for key, value in labels.items():
        if key in _OPERATOR_LABELS:
            out[key] = label_value(value)
        elif key in _USER_LABELS:
            out[key] = _USER_LABELS[key].value(value)
        else:
            out[key] = value
    return out


def set_leading(leading: bool) -> None:
    LEADER.set(1 if leading else 0)


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
        lambda: (
            ((label_value(phase), queue), count)
            for (phase, queue), count in Tally(source()).items()
        ),
    )


def overdue_gauge(source: Callable[[], dict[str, float]]) -> CallbackGauge:
    """``backgroundjobs_recurring_overdue_seconds{queue}``: by queue, how long ago the last
    scheduled run of the most overdue Recurring job was due without a run for it."""
    return CallbackGauge(
        "backgroundjobs_recurring_overdue_seconds",
        "Seconds since the most overdue Recurring job's missed run was due, by queue (0: none).",
        ["queue"],
        lambda: (((queue,), seconds) for queue, seconds in source().items()),
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


QUEUE_WAIT = Histogram(
    "backgroundjobs_queue_wait_seconds",
    "Seconds a run waited for its queue: admitted minus ready (created, or due), by queue.",
    ["queue"],
    buckets=_LATENESS_BUCKETS,
    registry=REGISTRY,
)


def observe_queue_wait(grant: Grant) -> None:
    QUEUE_WAIT.labels(queue=label_value(grant.queue[1])).observe(grant.waited)


def queue_pending_gauge(source: Callable[[], dict[str, int]]) -> CallbackGauge:
    """``backgroundjobs_queue_pending{queue}``: runs waiting for admission, by queue name."""
    return CallbackGauge(
        "backgroundjobs_queue_pending",
        "Runs waiting for their queue to admit them, by queue.",
        ["queue"],
        lambda: (((label_value(queue),), count) for queue, count in source().items()),
    )


def register_queue_pending(source: Callable[[], dict[str, int]]) -> None:
    _register(queue_pending_gauge(source))


def register_overdue(source: Callable[[], dict[str, float]]) -> None:
    _register(overdue_gauge(source))


def record(name: MetricName, labels: dict[str, str], value: float) -> None:
    """Apply one observation (of a decision's plan, or of the loop's failures)."""
    if name in _COUNTERS:
        _COUNTERS[name].labels(**_labels(labels)).inc(value)
    else:
        _HISTOGRAMS[name].labels(**_labels(labels)).observe(value)


RECURRING_MISFIRES = Counter(
    "backgroundjobs_recurring_misfires_total",
    "Missed scheduled times of Recurring jobs, by queue and action (skipped, caught_up).",
    ["queue", "action"],
    registry=REGISTRY,
)

_COUNTERS = {
    MetricName.MISFIRES: RECURRING_MISFIRES,
    MetricName.STARTED: JOBS_STARTED,
    MetricName.FINISHED: JOBS_FINISHED,
    MetricName.RETRIES: RETRIES,
    MetricName.RECONCILE_ERRORS: RECONCILE_ERRORS,
}
_HISTOGRAMS = {
    MetricName.DURATION: JOB_DURATION,
    MetricName.LATENESS: START_LATENESS,
    MetricName.ATTEMPT_LATENESS: ATTEMPT_LATENESS,
}


# --------------------------------------------------------------------- API requests

_RESOURCE_PATH = re.compile(
    r"^/(?:api/v1|apis/[^/]+/[^/]+)(?:/namespaces/[^/]+)?/(?P<resource>[^/]+)"
    r"(?:/(?P<name>[^/]+)(?:/(?P<sub>[^/]+))?)?/?$"
)
_VERBS = {"POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}


def request_labels(method: str, url: str, query: Iterable[tuple[str, Any]] = ()) -> tuple[str, str]:
    """(verb, resource) of a request as the API server names them: ``get`` / ``list`` /
    ``watch``, ``create``, ``update``, ``patch``, ``delete``; ``jobs``,
    ``backgroundjobs/status``."""
    path = urlsplit(url).path
    match = _RESOURCE_PATH.match(path)
    if match is None:
        return method.lower(), "other"
    resource, name, sub = match.group("resource", "name", "sub")
    if sub:
        resource = f"{resource}/{sub}"
    verb = _VERBS.get(method.upper(), method.lower())
    if method.upper() == "GET":
        watching = any(k == "watch" and str(v).lower() in ("true", "1") for k, v in query)
        verb = "watch" if watching else "get" if name else "list"
    return verb, resource


def count_requests(api_client: Any) -> None:
    """Count every request ``api_client`` (kubernetes_asyncio) sends, in
    ``backgroundjobs_api_requests_total``."""
    rest = api_client.rest_client
    send: Callable[..., Awaitable[Any]] = rest.request

    async def counted(method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        query = kwargs.get("query_params") or (args[0] if args else None) or ()
        verb, resource = request_labels(method, url, query)
        try:
            response = await send(method, url, *args, **kwargs)
        except Exception as exc:
            status = getattr(exc, "status", 0)
            API_REQUESTS.labels(verb, resource, str(status) if status else "error").inc()
            raise
        API_REQUESTS.labels(verb, resource, str(response.status)).inc()
        return response

    rest.request = counted


def observe_reconcile(seconds: float, outcome: str) -> None:
    RECONCILE_DURATION.labels(outcome).observe(seconds)


def serve(port: int) -> None:
    if port:
        start_http_server(port, registry=REGISTRY)


def batch_items_gauge(source: Callable[[], dict[tuple[str, str], int]]) -> CallbackGauge:
    """``backgroundjobs_batch_items{queue,state}``: the items of the batches still running
    (total, succeeded, failed, running), from the operator's cache at scrape time."""
    return CallbackGauge(
        "backgroundjobs_batch_items",
        "Items of the batches not finished yet, by queue and state (total, succeeded,"
        " failed, running).",
        ["queue", "state"],
        lambda: (((queue, state), count) for (queue, state), count in source().items()),
    )


def register_batch_items(source: Callable[[], dict[tuple[str, str], int]]) -> None:
    _register(batch_items_gauge(source))
