"""What the job page shows, built from the objects the API server returns (pure functions):
the timeline of conditions and Events, the operator's record of the attempts, the pods of
each run, log lines."""

from __future__ import annotations

import json
from typing import Any

from backgroundjobs.api.constants import HANDLER_CONTAINER, LABEL_JOB_NAME, LABEL_RUN


def _event_time(event: dict[str, Any]) -> str:
    for key in ("eventTime", "lastTimestamp", "firstTimestamp"):
        if event.get(key):
            return str(event[key])
    return str((event.get("metadata") or {}).get("creationTimestamp") or "")


def timeline(obj: dict[str, Any], events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The job's conditions (each at its last transition) and the Events about it, its
    Jobs and pods, oldest first."""
    entries: list[dict[str, Any]] = []
    for cond in (obj.get("status") or {}).get("conditions") or []:
        if not isinstance(cond, dict):
            continue
        entries.append(
            {
                "time": cond.get("lastTransitionTime") or "",
                "source": "condition",
                "kind": "Condition",
                "object": (obj.get("metadata") or {}).get("name", ""),
                "type": "Normal" if cond.get("type") != "Failed" else "Warning",
                "title": f"{cond.get('type')}={cond.get('status')}",
                "reason": cond.get("reason") or "",
                "message": cond.get("message") or "",
                "current": cond.get("status") == "True",
            }
        )
    for event in events:
        involved = event.get("involvedObject") or {}
        entries.append(
            {
                "time": _event_time(event),
                "source": "event",
                "kind": involved.get("kind") or "",
                "object": involved.get("name") or "",
                "type": event.get("type") or "Normal",
                "title": event.get("reason") or "",
                "reason": event.get("reason") or "",
                "message": event.get("message") or event.get("note") or "",
                "count": event.get("count") or 1,
            }
        )
    return sorted(entries, key=lambda e: (e["time"], e["source"] != "condition"))


def _terminated(pod: dict[str, Any]) -> dict[str, Any]:
    for status in (pod.get("status") or {}).get("containerStatuses") or []:
        if status.get("name") == HANDLER_CONTAINER:
            state = status.get("state") or {}
            last = status.get("lastState") or {}
            return dict(state.get("terminated") or last.get("terminated") or {})
    return {}


def _job_outcome(job: dict[str, Any]) -> str:
    for cond in (job.get("status") or {}).get("conditions") or []:
        if cond.get("status") == "True" and cond.get("type") in ("Complete", "Failed"):
            return "Succeeded" if cond["type"] == "Complete" else "Failed"
    return "Running" if (job.get("status") or {}).get("active") else "Pending"


def attempts(runs: list[dict[str, Any]], pods: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The runs (batch/v1 Jobs), newest first, each with its attempts (pods) oldest first:
    phase, start, end, exit code, reason and termination message."""
    by_job: dict[str, list[dict[str, Any]]] = {}
    for pod in pods:
        job_name = ((pod.get("metadata") or {}).get("labels") or {}).get(LABEL_JOB_NAME)
        if job_name:
            by_job.setdefault(job_name, []).append(pod)
    out = []
    for job in runs:
        meta = job.get("metadata") or {}
        status = job.get("status") or {}
        tries = []
        for pod in sorted(
            by_job.get(meta.get("name", ""), []),
            key=lambda p: (p.get("metadata") or {}).get("creationTimestamp") or "",
        ):
            term = _terminated(pod)
            pod_status = pod.get("status") or {}
            tries.append(
                {
                    "pod": (pod.get("metadata") or {}).get("name", ""),
                    "phase": pod_status.get("phase") or "Pending",
                    "node": (pod.get("spec") or {}).get("nodeName") or "",
                    "started": term.get("startedAt") or pod_status.get("startTime"),
                    "finished": term.get("finishedAt"),
                    "exitCode": term.get("exitCode"),
                    "reason": term.get("reason") or pod_status.get("reason") or "",
                    "message": (term.get("message") or pod_status.get("message") or "")[:4096],
                }
            )
        out.append(
            {
                "job": meta.get("name", ""),
                "run": (meta.get("labels") or {}).get(LABEL_RUN),
                "created": meta.get("creationTimestamp"),
                "started": status.get("startTime"),
                "finished": status.get("completionTime")
                or next(
                    (
                        c.get("lastTransitionTime")
                        for c in status.get("conditions") or []
                        if c.get("type") == "Failed" and c.get("status") == "True"
                    ),
                    None,
                ),
                "outcome": _job_outcome(job),
                "attempts": tries,
            }
        )
    return list(reversed(out))


def recorded_attempts(status: dict[str, Any]) -> dict[str, Any]:
    """The operator's record of the current or last run's finished attempts
    (``status.attempts``, kept after their pods are gone; API.md "attempts"): the records as
    they are, oldest first, how many attempts the run had in all, and that run."""
    records = []
    for record in status.get("attempts") or []:
        if not isinstance(record, dict):
            continue
        records.append(
            {
                "attempt": record.get("attempt"),
                "run": record.get("run"),
                "job": record.get("job") or "",
                "pod": record.get("pod") or None,
                "node": record.get("node") or "",
                "started": record.get("startedAt"),
                "finished": record.get("finishedAt"),
                "exitCode": record.get("exitCode"),
                "reason": record.get("reason") or "",
                "message": str(record.get("message") or ""),
            }
        )
    total = status.get("attemptsTotal")
    if not isinstance(total, int) or total < len(records):
        total = len(records)  # an operator that predates attemptsTotal
    return {
        "total": total,
        "run": records[-1]["run"] if records else None,
        "records": records,
    }


def log_record(text: str, job: tuple[str, str] | None = None) -> dict[str, Any]:
    """One handler log line for the page: a runtime JSON record's time, level, message and
    exception, or its progress (``done``/``total``/``percent``); other text as it is. With
    ``job`` (namespace, name), a progress record that names another job moves no bar (as
    the operator counts only the job's own records)."""
    out: dict[str, Any] = {"text": text}
    try:
        record = json.loads(text)
    except ValueError:
        return out
    if not isinstance(record, dict):
        return out
    out["time"] = record.get("time") or record.get("timestamp")
    out["level"] = str(record.get("level") or record.get("levelname") or "info").lower()
    out["message"] = str(record.get("message") or record.get("msg") or "")
    if record.get("exception"):
        out["exception"] = str(record["exception"])
    named = record.get("job")
    if (
        job is not None
        and named is not None
        and (named != job[1] or (record.get("namespace") or job[0]) != job[0])
    ):
        return out  # another job's record: its line, not its progress
    if record.get("event") == "progress":
        try:
            done, total = float(record.get("done", 0)), float(record.get("total", 0))
        except (TypeError, ValueError):
            return out
        percent = max(0.0, min(100.0, 100.0 * done / total)) if total > 0 else None
        out["progress"] = {"done": done, "total": total, "percent": percent}
    return out
