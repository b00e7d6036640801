"""Tables: a kubectl-style table engine (columns cut to fit a width), the jobs table of
``get`` (the CRD's printer columns), and ``top``'s counts by phase and queue.

Tables fit a width (80 columns unless the terminal is wider): the widest free-text columns
are cut with an ellipsis first, the short fixed ones never.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from backgroundjobs.api.columns import PRINTER_COLUMNS, PrinterColumn
from backgroundjobs.api.constants import PHASES
from backgroundjobs.cli.render.text import age, clock, cut, due, one_line
from backgroundjobs.client import JobInfo

GAP = "  "


@dataclass(frozen=True)
class Column:
    """A table column; ``min_width`` set means the column may be cut down to it to fit."""

    header: str
    min_width: int | None = None
    shrink_order: int = 0


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
    "Progress": lambda job, now: progress_cell(job.progress),
    "Age": lambda job, now: age(job.created_at, now),
    "Queue": lambda job, now: job.queue,
    "Job": lambda job, now: job.job_name or "",
    "Runs": lambda job, now: str(job.runs),
    "Message": lambda job, now: one_line(job.message or ""),
}
_CUTTABLE = {
    "Handler": (12, 10, 1),
    "Queue": (8, 8, 1),
    "Job": (12, 12, 1),
    "Message": (10, 10, 0),
    "Progress": (8, 4, 2),
}


def progress_cell(progress: dict[str, Any] | None) -> str:
    """The percent (``42%``) when the total is known, else what was done: the column stays
    narrow (``kubectl get`` shows the whole summary)."""
    if not progress:
        return ""
    percent = progress.get("percent")
    if isinstance(percent, int | float) and not isinstance(percent, bool):
        return f"{percent:g}%"
    return str(progress.get("summary") or "")


def _printer_columns(wide: bool) -> list[PrinterColumn]:
    return [c for c in PRINTER_COLUMNS if wide or not c.priority]


def job_columns(*, wide: bool = False, namespaces: bool = False) -> list[Column]:
    """The columns of ``get``: NAME and the CRD's printer columns (the wide ones with
    ``wide``): NAME TYPE HANDLER PHASE DUE PROGRESS AGE (+ QUEUE JOB RUNS MESSAGE)."""
    columns = [Column("NAMESPACE", 6, 3)] if namespaces else []
    columns.append(Column("NAME", 12 if namespaces else 14, 2))
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
    "PROGRESS": "100%",
    "AGE": "9m59s",
    "QUEUE": "default",
    "JOB": "x" * 30,
    "RUNS": "999",
    "MESSAGE": "x" * 60,
}


def watch_widths(columns: Sequence[Column], width: int | None) -> list[int]:
    """Fixed widths for ``get --watch``, where rows arrive one at a time."""
    return layout(columns, [[WATCH_SAMPLE[c.header] for c in columns]], width)


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
