"""What ``decide`` returns: the steps the reconciler applies, in order."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, NamedTuple

from backgroundjobs.api.constants import EventReason, EventType

Body = dict[str, Any]


class MetricName(StrEnum):
    """The observations a plan records (controller.metrics maps each to its metric)."""

    STARTED = "started"
    FINISHED = "finished"
    DURATION = "duration"
    LATENESS = "lateness"
    RETRIES = "retries"
    RECONCILE_ERRORS = "reconcile_errors"
    MISFIRES = "misfires"
    ATTEMPT_LATENESS = "attempt_lateness"


class Outcome(StrEnum):
    """How a run ended: the ``outcome`` label of the finished and duration metrics."""

    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


@dataclass
class Metric:
    name: MetricName
    labels: dict[str, str]
    value: float = 1.0


@dataclass(frozen=True)
class Admission:
    """A run (first, requeue, trigger) asks its queue for a slot: on the plan that creates
    its Job (the reconciler asks the admitter, or decides again with ``Observed.admitted``
    False and the reason), and on the plan that keeps it ``Queued`` (it keeps its place)."""

    queue: str


class Event(NamedTuple):
    """An Event to post on the BackgroundJob."""

    type: EventType
    reason: EventReason
    message: str


@dataclass
class Plan:
    """What the reconciler must do, in order: delete, create, update, status, events.

    ``need_termination`` / ``need_pods`` name a Job whose termination message / pods (what
    keeps them from starting) ``decide`` needs: the reconciler reads them and decides again;
    ``need_attempts`` likewise names a Job whose finished pods ``status.attempts`` lacks.

    ``status`` is the whole new status (built as the ``BackgroundJobStatus`` model and dumped
    as the API takes it); the reconciler writes what differs from the observed one.
    """

    status: Body = field(default_factory=dict)
    create: list[Body] = field(default_factory=list)
    replace_cronjob: Body | None = None
    delete_jobs: list[str] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    requeue_at: datetime | None = None
    delete_self: bool = False
    need_termination: str | None = None
    need_pod_policy_admission: bool = False
    need_pods: str | None = None
    admission: Admission | None = None
    metrics: list[Metric] = field(default_factory=list)
    need_attempts: str | None = None

    def look_again(self, when: datetime) -> None:
        """Reconcile again by ``when`` (the earliest of the times asked for wins)."""
        self.requeue_at = when if self.requeue_at is None else min(self.requeue_at, when)

    def event(self, etype: EventType, reason: EventReason, message: str) -> None:
        self.events.append(Event(etype, reason, message))

    @property
    def creates_job(self) -> bool:
        """True when the plan creates a Job (a run starts)."""
        return any(obj["kind"] == "Job" for obj in self.create)
