"""``describe``'s run history: the table of ``status.runHistory`` (each run's Job, the spec
generation it ran with, why it started and who asked)."""

from __future__ import annotations

from datetime import UTC
from typing import Any

from backgroundjobs.api.times import parse_time
from backgroundjobs.cli.render.table import Column, render_table

INDENT = "  "
_COLUMNS = [
    Column("RUN"),
    Column("JOB", min_width=10, shrink_order=1),
    Column("GEN"),
    Column("REASON"),
    Column("STARTED"),
    Column("REQUESTED BY", min_width=8, shrink_order=2),
]


def run_lines(status: dict[str, Any], width: int = 80) -> list[str]:
    """The ``Run history:`` section of ``describe`` (no lines when the status has none)."""
    records = [r for r in status.get("runHistory") or [] if isinstance(r, dict)]
    if not records:
        return []
    rows = []
    for record in records:
        started = parse_time(record.get("startedAt"))
        who = str(record.get("requestedBy") or "")
        if who and record.get("requesterSource") == "Client":
            who += " (unchecked)"  # the client's word: no admission policy checked it
        rows.append(
            [
                str(record.get("run") or "extra"),
                str(record.get("job") or ""),
                str(record.get("generation") or ""),
                str(record.get("reason") or ""),
                started.astimezone(UTC).strftime("%m-%d %H:%M:%S") if started else "",
                who,
            ]
        )
    table = render_table(_COLUMNS, rows, width - len(INDENT))
    return ["", f"Run history: the last {len(records)}", *(INDENT + t for t in table.splitlines())]
