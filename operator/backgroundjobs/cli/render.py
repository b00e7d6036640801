"""Pure rendering for the CLI: data in, text out (unit-tested with golden files).

Tables fit a width (80 columns unless the terminal is wider): the widest free-text columns
are cut with an ellipsis first, the short fixed ones never.
"""

from __future__ import annotations

import json
import textwrap
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import yaml

from backgroundjobs.api.columns import PRINTER_COLUMNS, PrinterColumn
from backgroundjobs.api.constants import GROUP, LABEL_JOB_NAME, LABEL_RUN, PHASES, SINGULAR
from backgroundjobs.api.times import parse_time
from backgroundjobs.client import JobInfo

ELLIPSIS = "…"
GAP = "  "
RESOURCE = f"{SINGULAR}.{GROUP}"


# ------------------------------------------------------------------ times


def human_duration(delta: timedelta) -> str:
    """A short age like kubectl's: ``45s``, ``3m20s``, ``2h``, ``5d``, ``2y30d``."""
    seconds = int(delta.total_seconds())
    if seconds < -1:
        return "<invalid>"
    if seconds < 0:
        return "0s"
    if seconds < 120:
        return f"{seconds}s"
    minutes = seconds // 60
    if minutes < 10:
        rest = seconds % 60
        return f"{minutes}m{rest}s" if rest else f"{minutes}m"
    if minutes < 180:
        return f"{minutes}m"
    hours = minutes // 60
    if hours < 8:
        rest = minutes % 60
        return f"{hours}h{rest}m" if rest else f"{hours}h"
    if hours < 48:
        return f"{hours}h"
    days = hours // 24
    if hours < 24 * 8:
        rest = hours % 24
        return f"{days}d{rest}h" if rest else f"{days}d"
    if days < 365 * 2:
        return f"{days}d"
    if days < 365 * 8:
        rest = days % 365
        return f"{days // 365}y{rest}d" if rest else f"{days // 365}y"
    return f"{days // 365}y"


def age(moment: datetime | None, now: datetime) -> str:
    """How long ago ``moment`` was (empty when unknown)."""
    return human_duration(now - moment) if moment else ""


def due(moment: datetime | None, now: datetime) -> str:
    """A due time relative to now: ``in 5m``, or ``5m ago`` once passed."""
    if moment is None:
        return ""
    if moment > now:
        return f"in {human_duration(moment - now)}"
    return f"{human_duration(now - moment)} ago"


def clock(moment: datetime) -> str:
    """``2026-11-28 16:30:29`` in UTC."""
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


# ------------------------------------------------------------------ tables


@dataclass(frozen=True)
class Column:
    """A table column; ``min_width`` set means the column may be cut down to it to fit."""

    header: str
    min_width: int | None = None
    shrink_order: int = 0


def cut(text: str, width: int) -> str:
    """``text`` cut to ``width`` characters, the last one an ellipsis when cut."""
    if len(text) <= width:
        return text
    return text[: max(width - 1, 0)] + ELLIPSIS if width > 0 else ""


def layout(
    columns: Sequence[Column], rows: Iterable[Sequence[str]], width: int | None
) -> list[int]:
    """Column widths for the rows, shrinking the cuttable columns until the table fits."""
    widths = [len(c.header) for c in columns]
    for row in rows:
        widths = [max(w, len(cell)) for w, cell in zip(widths, row, strict=True)]
    if width is None:
        return widths
    excess = sum(widths) + len(GAP) * (len(columns) - 1) - width
    order = sorted(
        (i for i, c in enumerate(columns) if c.min_width is not None),
        key=lambda i: columns[i].shrink_order,
    )
    for i in order:
        if excess <= 0:
            break
        floor = min(widths[i], columns[i].min_width or 0)
        take = min(excess, widths[i] - floor)
        widths[i] -= take
        excess -= take
    return widths


def format_row(widths: Sequence[int], cells: Sequence[str]) -> str:
    """One table line: cells cut and padded to the widths, no trailing spaces."""
    return GAP.join(cut(cell, w).ljust(w) for cell, w in zip(cells, widths, strict=True)).rstrip()


def render_table(
    columns: Sequence[Column], rows: Sequence[Sequence[str]], width: int | None = 80
) -> str:
    """A kubectl-style table: upper-case headers, columns separated by two spaces."""
    widths = layout(columns, rows, width)
    lines = [format_row(widths, [c.header for c in columns])]
    lines.extend(format_row(widths, row) for row in rows)
    return "\n".join(lines) + "\n"


# How each printer column (api.columns) is shown: its cell, and for the free-text ones the
# width it may be cut down to (with and without a NAMESPACE column) and in which order.
_CELLS: dict[str, Callable[[JobInfo, datetime], str]] = {
    "Type": lambda job, now: job.type,
    "Handler": lambda job, now: job.handler,
    "Phase": lambda job, now: job.phase or "",
    "Due": lambda job, now: due(job.due_at, now),
    "Age": lambda job, now: age(job.created_at, now),
    "Queue": lambda job, now: job.queue,
    "Job": lambda job, now: job.job_name or "",
    "Runs": lambda job, now: str(job.runs),
    "Message": lambda job, now: one_line(job.message or ""),
}
_CUTTABLE = {"Handler": (12, 10, 1), "Queue": (8, 8, 1), "Job": (12, 12, 1), "Message": (10, 10, 0)}


def _printer_columns(wide: bool) -> list[PrinterColumn]:
    return [c for c in PRINTER_COLUMNS if wide or not c.priority]


def job_columns(*, wide: bool = False, namespaces: bool = False) -> list[Column]:
    """The columns of ``get``: NAME and the CRD's printer columns (the wide ones with
    ``wide``): NAME TYPE HANDLER PHASE DUE AGE (+ QUEUE JOB RUNS MESSAGE)."""
    columns = [Column("NAMESPACE", 8, 3)] if namespaces else []
    columns.append(Column("NAME", 14 if namespaces else 16, 2))
    for printer in _printer_columns(wide):
        cut_to = _CUTTABLE.get(printer.name)
        if cut_to is None:
            columns.append(Column(printer.name.upper()))
        else:
            alone, beside_namespaces, order = cut_to
            columns.append(
                Column(printer.name.upper(), beside_namespaces if namespaces else alone, order)
            )
    return columns


# Phases in which a past due time means "overdue", worth showing.
_WAITING = ("Pending", "Scheduled", "Waiting", "Queued")


def job_row(
    job: JobInfo, now: datetime, *, wide: bool = False, namespaces: bool = False
) -> list[str]:
    """The cells of one job in the ``get`` table."""
    cells = [job.namespace] if namespaces else []
    cells.append(job.name)
    cells += [_CELLS[printer.name](job, now) for printer in _printer_columns(wide)]
    return cells


def render_jobs(
    jobs: Sequence[JobInfo],
    now: datetime,
    *,
    wide: bool = False,
    namespaces: bool = False,
    width: int | None = 80,
) -> str:
    """The ``get``/``list`` table of jobs."""
    columns = job_columns(wide=wide, namespaces=namespaces)
    rows = [job_row(j, now, wide=wide, namespaces=namespaces) for j in jobs]
    return render_table(columns, rows, width)


WATCH_SAMPLE = {
    "NAMESPACE": "x" * 20,
    "NAME": "x" * 40,
    "TYPE": "Continuation",
    "HANDLER": "x" * 28,
    "PHASE": "Scheduled",
    "DUE": "in 9m59s",
    "AGE": "9m59s",
    "QUEUE": "default",
    "JOB": "x" * 30,
    "RUNS": "999",
    "MESSAGE": "x" * 60,
}


def watch_widths(columns: Sequence[Column], width: int | None) -> list[int]:
    """Fixed widths for ``get --watch``, where rows arrive one at a time."""
    return layout(columns, [[WATCH_SAMPLE[c.header] for c in columns]], width)


def one_line(text: str) -> str:
    """Text on one line (newlines and tabs become spaces)."""
    return " ".join(text.split())


# ------------------------------------------------------------------ output formats


def resource_name(name: str) -> str:
    """``backgroundjob.backgroundjobs.dev/NAME`` (``-o name``)."""
    return f"{RESOURCE}/{name}"


def as_list(objects: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Objects wrapped in a ``v1`` ``List``, as ``kubectl get -o json`` prints several."""
    return {"apiVersion": "v1", "kind": "List", "items": list(objects), "metadata": {}}


def to_json(obj: Any) -> str:
    """Indented JSON, as ``kubectl -o json``."""
    return json.dumps(obj, indent=2, ensure_ascii=False) + "\n"


def to_yaml(obj: Any) -> str:
    """Block-style YAML, as ``kubectl -o yaml``."""
    return yaml.safe_dump(obj, sort_keys=False, allow_unicode=True, width=1000)


# ------------------------------------------------------------------ describe


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
    head = f"{label + ':':<12}"
    if width is None or len(head) + len(value) <= width:
        return head + value
    if not wrap:
        return head + cut(value, width - len(head))
    chunks = textwrap.wrap(value, width - len(head), break_long_words=True) or [""]
    return "\n".join([head + chunks[0], *(" " * len(head) + c for c in chunks[1:])])


def _json_text(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(", ", ": "))


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
    if job.parent:
        lines.append(_field("After", f"{job.parent} ({job.parent_when})"))
    lines += [
        _field("Phase", job.phase or "<none>"),
        _field("Due", f"{clock(job.due_at)} ({due(job.due_at, now)})" if job.due_at else "<none>"),
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


# ------------------------------------------------------------------ logs


def progress_bar(done: float, total: float, width: int = 20) -> str:
    """``[##########..........] 50/100``: ``done`` of ``total`` as a bar ``width`` wide."""
    fraction = min(max(done / total, 0.0), 1.0) if total else 0.0
    filled = round(fraction * width)
    return f"[{'#' * filled}{'.' * (width - filled)}] {_number(done)}/{_number(total)}"


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def render_log_line(line: str, bar_width: int = 20) -> str:
    """A runtime log line for people: a progress record as a bar, another JSON record as
    ``time level message`` (with its exception), anything else as it is."""
    text = line.rstrip("\n")
    try:
        record = json.loads(text)
    except ValueError:
        return text
    if not isinstance(record, dict):
        return text
    message = str(record.get("message") or record.get("msg") or "")
    if record.get("event") == "progress":
        try:
            bar = progress_bar(
                float(record.get("done", 0)), float(record.get("total", 0)), bar_width
            )
        except (TypeError, ValueError):
            bar = "[?]"
        return f"{bar} {message}".rstrip()
    moment = parse_time(record.get("time") or record.get("timestamp"))
    when = moment.astimezone(UTC).strftime("%H:%M:%S") if moment else "--:--:--"
    level = str(record.get("level") or record.get("levelname") or "info").upper()
    out = f"{when} {level:<7} {message}".rstrip()
    if record.get("exception"):
        out += "\n" + textwrap.indent(str(record["exception"]).rstrip(), "    ")
    return out


# ------------------------------------------------------------------ top


def render_top(jobs: Sequence[JobInfo], now: datetime, scope: str, width: int = 80) -> str:
    """``top``: job counts by phase (rows) and queue (columns), with totals.

    Queues beyond what fits the width are summed into ``other``."""
    counts: dict[str, dict[str, int]] = {}
    for job in jobs:
        counts.setdefault(job.queue, {}).setdefault(job.phase or "Pending", 0)
        counts[job.queue][job.phase or "Pending"] += 1
    busiest = sorted(counts, key=lambda q: (-sum(counts[q].values()), q))
    phase_width = max(len(p) for p in PHASES)

    def table_width(queues: Sequence[str]) -> int:
        return phase_width + sum(len(GAP) + max(len(q), 5) for q in [*queues, "TOTAL"])

    shown = list(busiest)
    while shown and table_width([*shown, "other"] if len(shown) < len(busiest) else shown) > width:
        shown.pop()
    merged = [q for q in busiest if q not in shown]
    shown.sort()
    columns = [Column("PHASE"), *(Column(q.upper()) for q in shown)]
    if merged:
        columns.append(Column("OTHER"))
    columns.append(Column("TOTAL"))
    rows = []
    for phase in PHASES:
        cells = [phase]
        cells += [str(counts[q].get(phase, 0)) for q in shown]
        if merged:
            cells.append(str(sum(counts[q].get(phase, 0) for q in merged)))
        cells.append(str(sum(counts[q].get(phase, 0) for q in counts)))
        rows.append(cells)
    totals = ["TOTAL", *(str(sum(counts[q].values())) for q in shown)]
    if merged:
        totals.append(str(sum(sum(counts[q].values()) for q in merged)))
    totals.append(str(len(jobs)))
    rows.append(totals)
    widths = layout(columns, rows, None)
    lines = [f"backgroundjobs in {scope}: {len(jobs)} jobs at {clock(now)} UTC", ""]
    for row in [[c.header for c in columns], *rows]:
        cells = [row[0].ljust(widths[0])]
        cells += [cell.rjust(w) for cell, w in zip(row[1:], widths[1:], strict=True)]
        lines.append(GAP.join(cells).rstrip())
    if merged:
        lines += ["", cut("OTHER: " + ", ".join(sorted(merged)), width)]
    return "\n".join(lines) + "\n"


__all__ = [
    "Column",
    "TimelineEntry",
    "age",
    "as_list",
    "build_timeline",
    "clock",
    "cut",
    "due",
    "format_row",
    "human_duration",
    "job_columns",
    "job_row",
    "layout",
    "one_line",
    "progress_bar",
    "render_describe",
    "render_jobs",
    "render_log_line",
    "render_table",
    "render_top",
    "resource_name",
    "to_json",
    "to_yaml",
    "watch_widths",
]
