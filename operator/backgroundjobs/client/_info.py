"""``JobInfo``: a typed, read-only view of a BackgroundJob object."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

import pydantic

from backgroundjobs.api.constants import FINISHED_PHASES, JobType
from backgroundjobs.api.models import (
    Attempt,
    BackgroundJobSpec,
    BatchStatus,
    Condition,
    RunRecord,
)
from backgroundjobs.api.times import parse_time


@dataclass(frozen=True)
class JobInfo:
    """A BackgroundJob as last read from the API server.

    ``phase`` is ``None`` until the operator has seen the job. ``raw`` is the whole object
    (a dict, as the API returned it) for anything not surfaced here.
    """

    name: str
    namespace: str
    handler: str
    type: str
    phase: str | None
    args: list[Any] = field(default_factory=list)
    kwargs: dict[str, Any] = field(default_factory=dict)
    queue: str = "default"
    schedule: str | None = None
    time_zone: str | None = None
    parent: str | None = None
    parent_when: str | None = None
    conditions: list[Condition] = field(default_factory=list)
    result: Any = None
    message: str | None = None
    job_name: str | None = None
    runs: int = 0
    failed_attempts: int = 0
    created_at: datetime | None = None
    due_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    last_run_at: datetime | None = None
    last_success_at: datetime | None = None
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)
    uid: str | None = None
    resource_version: str | None = None
    progress: dict[str, Any] | None = None
    """The handler's latest ``progress()`` (status.progress: done, total, percent, summary,
    message, updatedAt), None until it reported one."""
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)
    batch: BatchStatus | None = None
    """A batch's item counts (``status.batch``): total, succeeded, failed, running,
    progress (``9870/10000``), failed_indexes, last_error, item_errors (index, error), and
    rerun (from_run, items, indexes) when the run reran only the failed items."""
    attempts: list[Attempt] = field(default_factory=list)
    """The finished attempts (pods) of the current or last run, oldest first
    (``status.attempts``, the last 10): attempt, job, pod, node, started_at, finished_at,
    exit_code, reason, message."""
    attempts_total: int = 0
    """All finished attempts of the current or last run (``attempts`` holds the last 10)."""
    run_history: list[RunRecord] = field(default_factory=list)
    """The last 10 runs started (``status.runHistory``): run, job, generation, reason,
    started_at, requested_by, requester_source."""

    @property
    def finished(self) -> bool:
        """True once the job is Succeeded, Failed or Cancelled."""
        return self.phase in FINISHED_PHASES

    @property
    def succeeded(self) -> bool:
        """True when the phase is Succeeded."""
        return self.phase == "Succeeded"

    def condition(self, type_: str) -> Condition | None:
        """The condition of this type (``"Succeeded"``, ``"Failed"``, ...), if any."""
        return next((c for c in self.conditions if c.type == type_), None)

    @classmethod
    def from_object(cls, obj: dict[str, Any]) -> JobInfo:
        """Read a BackgroundJob object (a dict from the API)."""
        metadata = obj.get("metadata") or {}
        spec = obj.get("spec") or {}
        status = obj.get("status") or {}
        after = spec.get("after") or {}
        job_type = status.get("type") or _type_of(spec)
        runs = status.get("runs")
        attempts = status.get("failedAttempts")
        return cls(
            name=str(metadata.get("name", "")),
            namespace=str(metadata.get("namespace", "")),
            handler=str(spec.get("handler", "")),
            type=str(job_type),
            phase=status.get("phase"),
            args=list(spec.get("args") or []),
            kwargs=dict(spec.get("kwargs") or {}),
            queue=str(spec.get("queue") or "default"),
            schedule=spec.get("schedule"),
            time_zone=spec.get("timeZone"),
            parent=after.get("name"),
            parent_when=(after.get("when") or "Succeeded") if after else None,
            conditions=_conditions(status.get("conditions")),
            result=status.get("result"),
            message=status.get("message"),
            job_name=status.get("jobName"),
            runs=runs if isinstance(runs, int) else 0,
            failed_attempts=attempts if isinstance(attempts, int) else 0,
            created_at=parse_time(metadata.get("creationTimestamp")),
            due_at=parse_time(status.get("dueAt")),
            started_at=parse_time(status.get("startedAt")),
            finished_at=parse_time(status.get("finishedAt")),
            last_run_at=parse_time(status.get("lastRunAt")),
            last_success_at=parse_time(status.get("lastSuccessAt")),
            labels=dict(metadata.get("labels") or {}),
            annotations=dict(metadata.get("annotations") or {}),
            uid=metadata.get("uid"),
            resource_version=metadata.get("resourceVersion"),
            progress=_progress(status.get("progress")),
            raw=obj,
            batch=_batch(status.get("batch")),
            attempts=_records(Attempt, status.get("attempts")),
            attempts_total=total if isinstance(total := status.get("attemptsTotal"), int) else 0,
            run_history=_records(RunRecord, status.get("runHistory")),
        )


def _progress(value: Any) -> dict[str, Any] | None:
    return dict(value) if isinstance(value, dict) else None


def _type_of(spec: dict[str, Any]) -> str:
    try:
        return BackgroundJobSpec.model_validate(spec).job_type
    except pydantic.ValidationError:
        return JobType.IMMEDIATE


def _batch(value: Any) -> BatchStatus | None:
    try:
        return BatchStatus.model_validate(value) if value else None
    except pydantic.ValidationError:
        return None  # not written by the operator


_Record = TypeVar("_Record", bound=pydantic.BaseModel)


def _records(model: type[_Record], items: Any) -> list[_Record]:
    """The items of a status list that are ``model``; any other is left out (not written by
    the operator)."""
    out = []
    for item in items if isinstance(items, list) else []:
        try:
            out.append(model.model_validate(item))
        except pydantic.ValidationError:
            continue
    return out


def _conditions(items: Any) -> list[Condition]:
    out = []
    for item in items or []:
        try:
            out.append(Condition.model_validate(item))
        except pydantic.ValidationError:
            continue  # a malformed condition (not written by the operator) is left out
    return out
