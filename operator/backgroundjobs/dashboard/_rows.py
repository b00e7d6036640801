"""``JobRow``: the compact summary of a BackgroundJob that the dashboard's cache keeps.

The cache holds one row per job, not the object: a job's arguments may be 64 KiB and its
pod template large, and 10,000 of them must fit in a small pod. The job page reads the
whole object from the API server when it is opened.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from backgroundjobs.api.constants import JobType
from backgroundjobs.api.times import parse_time

PREVIEW_CHARS = 160  # arguments, result and message as shown (and searched) in the lists
Key = tuple[str, str]  # (namespace, name)


def epoch(value: Any) -> float | None:
    """An RFC 3339 time (``api.times.parse_time``) as epoch seconds (None when absent)."""
    moment = parse_time(value)
    return moment.timestamp() if moment is not None else None


def iso(epoch: float | None) -> str | None:
    """Epoch seconds as an RFC 3339 UTC string."""
    if epoch is None:
        return None
    text = datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds")
    return text.replace("+00:00", "Z")


def preview(value: Any, limit: int = PREVIEW_CHARS, *, as_json: bool = False) -> str:
    """A value as one short line: JSON (``as_json``, or anything but a string), else the
    text itself."""
    if value is None:
        return ""
    text = (
        value if isinstance(value, str) and not as_json else json.dumps(value, ensure_ascii=False)
    )
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def job_type(spec: dict[str, Any]) -> str:
    """The type that follows from the spec's "when" field (API.md §1)."""
    if spec.get("items"):
        return JobType.BATCH
    if spec.get("schedule"):
        return JobType.RECURRING
    if spec.get("after"):
        return JobType.CONTINUATION
    if spec.get("delay") or spec.get("runAt"):
        return JobType.DELAYED
    return JobType.IMMEDIATE


@dataclass(slots=True)
class JobRow:
    """One job as the lists, counts and graphs need it."""

    namespace: str
    name: str
    uid: str
    type: str
    handler: str
    queue: str
    phase: str  # "Pending" until the operator has written a status
    created: float | None
    due: float | None = None
    started: float | None = None
    finished: float | None = None
    last_run: float | None = None
    last_success: float | None = None
    parent: str | None = None
    parent_when: str | None = None
    schedule: str | None = None
    time_zone: str | None = None
    suspend: bool = False
    runs: int = 0
    failed_attempts: int = 0
    reason: str = ""  # the reason of the condition that explains the phase
    message: str = ""
    args: str = ""  # preview of args and kwargs
    result: str = ""  # preview of status.result
    outcome: str | None = None  # Recurring: "Succeeded"/"Failed" of the last finished run
    labels: dict[str, str] = field(default_factory=dict)
    resource_version: str = ""
    suspend_until: float | None = None
    progress: dict[str, Any] | None = None  # status.progress, its message previewed
    batch: dict[str, int] | None = None  # Batch: items total, succeeded, failed, running

    @property
    def key(self) -> Key:
        return (self.namespace, self.name)

    @property
    def finish_outcome(self) -> str | None:
        """``succeeded``/``failed`` of the run that ended at ``finished`` (None: none ended,
        or it was cancelled)."""
        if self.finished is None:
            return None
        if self.type == JobType.RECURRING:
            return self.outcome.lower() if self.outcome else None
        if self.phase == "Succeeded":
            return "succeeded"
        if self.phase == "Failed":
            return "failed"
        return None

    def matches_text(self, needle: str) -> bool:
        """Case-insensitive substring search over what a list row shows (``needle`` lower)."""
        return any(
            needle in part.lower()
            for part in (
                self.name,
                self.namespace,
                self.handler,
                self.message,
                self.args,
                self.result,
                self.reason,
                *(f"{k}={v}" for k, v in self.labels.items()),
            )
        )

    def to_json(self, queue_position: int | None = None) -> dict[str, Any]:
        """The row as the web page gets it."""
        out: dict[str, Any] = {
            "namespace": self.namespace,
            "name": self.name,
            "type": self.type,
            "handler": self.handler,
            "queue": self.queue,
            "phase": self.phase,
            "created": iso(self.created),
            "due": iso(self.due),
            "started": iso(self.started),
            "finished": iso(self.finished),
            "lastRun": iso(self.last_run),
            "lastSuccess": iso(self.last_success),
            "parent": self.parent,
            "parentWhen": self.parent_when,
            "schedule": self.schedule,
            "timeZone": self.time_zone,
            "suspend": self.suspend,
            "runs": self.runs,
            "failedAttempts": self.failed_attempts,
            "reason": self.reason,
            "message": self.message,
            "args": self.args,
            "result": self.result,
            "outcome": self.outcome,
            "labels": self.labels,
        }
        if queue_position is not None:
            out["queuePosition"] = queue_position
        out["suspendUntil"] = iso(self.suspend_until)
        out["progress"] = self.progress
        out["batch"] = self.batch
        return out


def _true_conditions(status: dict[str, Any]) -> dict[str, dict[str, Any]]:
    out = {}
    for cond in status.get("conditions") or []:
        if isinstance(cond, dict) and cond.get("status") == "True" and cond.get("type"):
            out[str(cond["type"])] = cond
    return out


def row_from_object(obj: dict[str, Any]) -> JobRow:
    """The row of a BackgroundJob object (a dict as the API server sends it)."""
    metadata = obj.get("metadata") or {}
    spec = obj.get("spec") or {}
    status = obj.get("status") or {}
    after = spec.get("after") or {}
    phase = str(status.get("phase") or "Pending")
    conditions = _true_conditions(status)
    explaining = conditions.get(phase) or (conditions.get("Failed") if phase == "Failed" else None)
    outcome = None
    if "Succeeded" in conditions:
        outcome = "Succeeded"
    elif "Failed" in conditions:
        outcome = "Failed"
    args: list[Any] = spec.get("args") or []
    kwargs: dict[str, Any] = spec.get("kwargs") or {}
    shown = ", ".join(
        [preview(a, 60, as_json=True) for a in args]
        + [f"{k}={preview(v, 60, as_json=True)}" for k, v in kwargs.items()]
    )
    items = spec.get("items")
    if isinstance(items, list):  # a batch: the items are many, their count says enough
        shown = f"{len(items)} items" + (f"; {shown}" if shown else "")
    runs = status.get("runs")
    attempts = status.get("failedAttempts")
    return JobRow(
        namespace=str(metadata.get("namespace") or ""),
        name=str(metadata.get("name") or ""),
        uid=str(metadata.get("uid") or ""),
        type=str(status.get("type") or job_type(spec)),
        handler=str(spec.get("handler") or ""),
        queue=str(spec.get("queue") or "default"),
        phase=phase,
        created=epoch(metadata.get("creationTimestamp")),
        due=epoch(status.get("dueAt")),
        started=epoch(status.get("startedAt")),
        finished=epoch(status.get("finishedAt")),
        last_run=epoch(status.get("lastRunAt")),
        last_success=epoch(status.get("lastSuccessAt")),
        parent=after.get("name") if after else None,
        parent_when=(after.get("when") or "Succeeded") if after else None,
        schedule=spec.get("schedule"),
        time_zone=(spec.get("timeZone") or "UTC") if spec.get("schedule") else None,
        suspend=bool(spec.get("suspend")),
        runs=runs if isinstance(runs, int) else 0,
        failed_attempts=attempts if isinstance(attempts, int) else 0,
        reason=str((explaining or {}).get("reason") or ""),
        message=preview(status.get("message"), 300),
        args=preview(shown),
        result=preview(status.get("result"), as_json=True),
        outcome=outcome,
        labels={str(k): str(v) for k, v in (metadata.get("labels") or {}).items()},
        resource_version=str(metadata.get("resourceVersion") or ""),
        suspend_until=epoch(spec.get("suspendUntil")) if spec.get("suspend") else None,
        progress=_progress(status.get("progress")),
        batch=_batch_counts(status.get("batch"), spec),
    )


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _progress(value: Any) -> dict[str, Any] | None:
    """``status.progress`` as a list row shows it: done, total, percent (0-100, None when the
    total is unknown), the summary, the message previewed and when it was read."""
    if not isinstance(value, dict):
        return None
    done, total = _number(value.get("done")), _number(value.get("total"))
    if done is None or total is None:
        return None
    percent = _number(value.get("percent"))
    if percent is None and total > 0:
        percent = 100.0 * done / total
    return {
        "done": done,
        "total": total,
        "percent": None if percent is None else max(0.0, min(100.0, percent)),
        "summary": preview(value.get("summary"), 64),
        "message": preview(value.get("message")),
        "updatedAt": value.get("updatedAt"),
    }


def _batch_counts(value: Any, spec: dict[str, Any]) -> dict[str, int] | None:
    """A batch's items by state: ``status.batch``'s counts, ``pending`` the rest of the
    total (before the operator's first count: every item of ``spec.items`` pending)."""
    items = spec.get("items")
    if not isinstance(value, dict) and not isinstance(items, list):
        return None
    counts = value if isinstance(value, dict) else {}

    def count(key: str) -> int:
        n = counts.get(key)
        return n if isinstance(n, int) and not isinstance(n, bool) and n > 0 else 0

    total = count("total") or (len(items) if isinstance(items, list) else 0)
    succeeded, failed, running = count("succeeded"), count("failed"), count("running")
    pending = max(0, total - succeeded - failed - running)
    return {
        "total": total,
        "succeeded": succeeded,
        "failed": failed,
        "running": running,
        "pending": pending,
    }
