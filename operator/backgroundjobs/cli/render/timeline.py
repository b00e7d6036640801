"""``describe``: a job's fields, its attempts, then its timeline of conditions, Events, Jobs
and pods."""

from __future__ import annotations

import json
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from backgroundjobs.api.constants import LABEL_JOB_NAME, LABEL_RUN
from backgroundjobs.api.times import parse_time
from backgroundjobs.cli.render.attempts import attempt_lines
from backgroundjobs.cli.render.misfire import misfire_lines
from backgroundjobs.cli.render.runs import run_lines
from backgroundjobs.cli.render.text import age, clock, cut, due, one_line
from backgroundjobs.client import JobInfo


@dataclass(frozen=True)
class TimelineEntry:
    """One dated fact about a job: a condition change, an Event, a Job's or a pod's step."""

    time: datetime
    source: str
    what: str
    detail: str = ""
    warning: bool = False


def _meta(obj: dict[str, Any]) -> dict[str, Any]:
    meta: dict[str, Any] = obj.get("metadata") or {}
    return meta


def build_timeline(
    job: dict[str, Any],
    events: Sequence[dict[str, Any]] = (),
    runs: Sequence[dict[str, Any]] = (),
    pods: Sequence[dict[str, Any]] = (),
) -> list[TimelineEntry]:
    """The job's history, oldest first: its creation and conditions, the Events of it, of its
    Jobs and of their pods, and the Jobs' and pods' own steps (created, started, exited).

    Jobs are shown as ``run N`` (their ``backgroundjobs.dev/run`` label) and pods as
    ``run N pod <suffix>``, so the lines stay short."""
    entries: list[TimelineEntry] = []
    labels = _display_names(runs, pods)

    def add(when: Any, source: str, what: str, detail: str = "", warning: bool = False) -> None:
        moment = parse_time(when)
        if moment is not None:
            entries.append(TimelineEntry(moment, source, what, one_line(detail), warning))

    add(_meta(job).get("creationTimestamp"), "bgjob", "Created")
    for cond in (job.get("status") or {}).get("conditions") or []:
        text = f"{cond.get('type')}={cond.get('status')}"
        detail = " ".join(x for x in (cond.get("reason") or "", cond.get("message") or "") if x)
        failed = cond.get("type") == "Failed" and cond.get("status") == "True"
        add(cond.get("lastTransitionTime"), "condition", text, detail, failed)
    for event in events:
        involved = event.get("involvedObject") or {}
        kind = str(involved.get("kind") or "")
        name = str(involved.get("name") or "")
        source = (
            "bgjob"
            if kind == "BackgroundJob"
            else labels.get((kind, name), f"{kind.lower()}/{name}")
        )
        count = event.get("count") or 1
        detail = (event.get("message") or "") + (f" (x{count})" if count > 1 else "")
        when = event.get("lastTimestamp") or event.get("eventTime") or event.get("firstTimestamp")
        warning = event.get("type") == "Warning"
        add(when, source, str(event.get("reason") or "Event"), detail, warning)
    for run in runs:
        source = labels[("Job", _meta(run).get("name", ""))]
        status = run.get("status") or {}
        add(_meta(run).get("creationTimestamp"), source, "Created", f"Job {_meta(run).get('name')}")
        for cond in status.get("conditions") or []:
            if cond.get("status") != "True" or cond.get("type") not in _JOB_CONDITIONS:
                continue
            detail = " ".join(x for x in (cond.get("reason") or "", cond.get("message") or "") if x)
            failed = cond.get("type") == "Failed"
            add(cond.get("lastTransitionTime"), source, str(cond.get("type")), detail, failed)
    for pod in pods:
        source = labels[("Pod", _meta(pod).get("name", ""))]
        add(_meta(pod).get("creationTimestamp"), source, "Created", f"pod {_meta(pod).get('name')}")
        for container in (pod.get("status") or {}).get("containerStatuses") or []:
            state = container.get("state") or {}
            running = state.get("running") or {}
            terminated = state.get("terminated") or {}
            add(running.get("startedAt") or terminated.get("startedAt"), source, "Started")
            if terminated:
                code = terminated.get("exitCode")
                detail = f"exit code {code}"
                if terminated.get("reason"):
                    detail += f" ({terminated['reason']})"
                if terminated.get("message"):
                    detail += f": {terminated['message']}"
                add(terminated.get("finishedAt"), source, "Exited", detail, code not in (0, None))
    entries.sort(key=lambda e: (e.time, e.what != "Created"))
    return entries


# Job conditions worth a line (SuccessCriteriaMet and FailureTarget only precede these).
_JOB_CONDITIONS = ("Complete", "Failed", "Suspended")


def _display_names(
    runs: Sequence[dict[str, Any]], pods: Sequence[dict[str, Any]]
) -> dict[tuple[str, str], str]:
    names: dict[tuple[str, str], str] = {}
    for run in runs:
        name = str(_meta(run).get("name", ""))
        number = (_meta(run).get("labels") or {}).get(LABEL_RUN)
        names[("Job", name)] = f"run {number}" if number else f"job/{name}"
    for pod in pods:
        name = str(_meta(pod).get("name", ""))
        job_name = str((_meta(pod).get("labels") or {}).get(LABEL_JOB_NAME, ""))
        run_label = names.get(("Job", job_name))
        if run_label and name.startswith(job_name + "-"):
            names[("Pod", name)] = f"{run_label} pod {name[len(job_name) + 1 :]}"
        else:
            names[("Pod", name)] = f"pod/{name}"
    return names


def _field(label: str, value: str, width: int | None = None, wrap: bool = False) -> str:
    """``Label:     value``; a long value wrapped (``wrap``) or cut to ``width``."""
    head = f"{label + ':' if label else '':<12}"  # no label: a continuation line
    if width is None or len(head) + len(value) <= width:
        return head + value
    if not wrap:
        return head + cut(value, width - len(head))
    chunks = textwrap.wrap(value, width - len(head), break_long_words=True) or [""]
    return "\n".join([head + chunks[0], *(" " * len(head) + c for c in chunks[1:])])


def _json_text(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(", ", ": "))


DESCRIBED_ITEM_ERRORS = 10  # of status.batch.itemErrors (at most 50): the rest stay in -o yaml


def batch_fields(job: JobInfo, width: int) -> list[str]:
    """A batch's lines of ``describe``: its progress, the items a failed-only rerun runs,
    failed items, last error and the error of each failed item."""
    b = job.batch
    if b is None:
        return []
    counts = f"{b.progress} done ({b.succeeded} succeeded, {b.failed} failed, {b.running} running)"
    lines = [_field("Items", counts)]
    if b.rerun is not None:  # a failed-only requeue: counts over the whole batch
        rerun = f"{b.rerun.items} items of run {b.rerun.from_run} (items {b.rerun.indexes})"
        lines.append(_field("Rerun", rerun, width, wrap=True))
    if b.failed_indexes:
        lines.append(_field("Failed", "items " + b.failed_indexes, width, wrap=True))
    if b.last_error:
        lines.append(_field("Last error", one_line(b.last_error), width, wrap=True))
    errors = b.item_errors or []
    for item in errors[:DESCRIBED_ITEM_ERRORS]:
        label = "Errors" if item is errors[0] else ""
        text = f"#{item.index}: {one_line(item.error) or '(no message)'}"
        lines.append(_field(label, text, width, wrap=True))
    if len(errors) > DESCRIBED_ITEM_ERRORS:
        more = len(errors) - DESCRIBED_ITEM_ERRORS
        lines.append(_field("", f"... {more} more in status.batch.itemErrors", width))
    return lines


def render_describe(
    job: JobInfo, timeline: Sequence[TimelineEntry], now: datetime, width: int = 80
) -> str:
    """``describe``: the job's fields, then its timeline."""
    lines = [
        _field("Name", job.name),
        _field("Namespace", job.namespace),
        _field("Type", job.type),
        _field("Handler", job.handler),
        _field("Args", _json_text(job.args), width),
        _field("Kwargs", _json_text(job.kwargs), width),
        _field("Queue", job.queue),
    ]
    if job.schedule:
        lines.append(_field("Schedule", f"{job.schedule} ({job.time_zone or 'UTC'})"))
        lines += misfire_lines(job.raw.get("spec") or {}, job.raw.get("status") or {}, width)
    if job.parent:
        lines.append(_field("After", f"{job.parent} ({job.parent_when})"))
    lines += [
        _field("Phase", job.phase or "<none>"),
        _field("Due", f"{clock(job.due_at)} ({due(job.due_at, now)})" if job.due_at else "<none>"),
        *batch_fields(job, width),
        _field("Runs", str(job.runs)),
        _field("Job", job.job_name or "<none>"),
        _field(
            "Result", _json_text(job.result) if job.result is not None else "<none>", width, True
        ),
        _field("Message", one_line(job.message or "") or "<none>", width, wrap=True),
        _field(
            "Created",
            f"{clock(job.created_at)} ({age(job.created_at, now)} ago)"
            if job.created_at
            else "<none>",
        ),
        *attempt_lines(job.raw.get("status") or {}, width),
        *run_lines(job.raw.get("status") or {}, width),
        "",
        "Timeline:",
    ]
    if not timeline:
        lines.append("  <none>")
    one_day = len({e.time.astimezone(UTC).date() for e in timeline}) <= 1
    stamp = "%H:%M:%S" if one_day else "%m-%d %H:%M:%S"
    sources = max((len(e.source) for e in timeline), default=0)
    for entry in timeline:
        mark = "!" if entry.warning else " "
        head = (
            f"{mark} {entry.time.astimezone(UTC).strftime(stamp)}  {entry.source.ljust(sources)}  "
        )
        text = f"{entry.what}: {entry.detail}" if entry.detail else entry.what
        room = max(width - len(head), 30)
        chunks = textwrap.wrap(text, room, break_long_words=False, break_on_hyphens=False) or [""]
        lines.append(head + chunks[0])
        lines.extend(" " * len(head) + chunk for chunk in chunks[1:])
    return "\n".join(lines) + "\n"
