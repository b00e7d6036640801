"""``describe``'s attempts: the table of ``status.attempts`` (the finished attempts of the
current or last run, kept by the operator after their pods are gone)."""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from datetime import UTC
from typing import Any

from backgroundjobs.api.times import parse_time
from backgroundjobs.cli.render.table import Column, render_table
from backgroundjobs.cli.render.text import human_duration, one_line

INDENT = "  "
_COLUMNS = [
    Column("#"),
    Column("POD", min_width=10, shrink_order=1),
    Column("NODE", min_width=8, shrink_order=2),
    Column("STARTED"),
    Column("TOOK"),
    Column("EXIT"),
    Column("REASON", min_width=8, shrink_order=3),
]


def attempt_lines(status: dict[str, Any], width: int = 80) -> list[str]:
    """The ``Attempts:`` section of ``describe`` (no lines when the status has none)."""
    records = [r for r in status.get("attempts") or [] if isinstance(r, dict)]
    if not records:
        return []
    total = status.get("attemptsTotal") or len(records)
    run = records[-1].get("run")
    head = f"Attempts:   {total} in run {run}" if run else f"Attempts:   {total}"
    if total > len(records):
        head += f" (the last {len(records)} shown)"
    rows = attempt_rows(records)
    table = render_table(_COLUMNS, rows, width - len(INDENT))
    lines = ["", head, *(INDENT + line for line in table.splitlines())]
    # The errors under the table, whole (300 bytes at most) and wrapped: a column would cut
    # them to a few characters in 80 columns.
    for record in records:
        message = one_line(str(record.get("message") or ""))
        if message:
            label = f"{INDENT}{record.get('attempt', '')}: "
            room = max(width - len(label), 30)
            chunks = textwrap.wrap(message, room, break_long_words=True) or [""]
            lines.append(label + chunks[0])
            lines.extend(" " * len(label) + chunk for chunk in chunks[1:])
    return lines


def attempt_rows(records: Sequence[dict[str, Any]]) -> list[list[str]]:
    """One row per attempt: number, pod, node, start, duration, exit code, reason."""
    starts = [parse_time(r.get("startedAt")) for r in records]
    days = {s.astimezone(UTC).date() for s in starts if s is not None}
    stamp = "%H:%M:%S" if len(days) <= 1 else "%m-%d %H:%M:%S"
    rows = []
    for record, started in zip(records, starts, strict=True):
        finished = parse_time(record.get("finishedAt"))
        took = human_duration(finished - started) if started and finished else ""
        code = record.get("exitCode")
        rows.append(
            [
                str(record.get("attempt", "")),
                str(record.get("pod") or "<gone>"),
                str(record.get("node") or ""),
                started.astimezone(UTC).strftime(stamp) if started else "",
                took,
                "" if code is None else str(code),
                str(record.get("reason") or ""),
            ]
        )
    return rows
