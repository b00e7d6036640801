"""``report.generate``: a user's activity report as a PDF (or HTML) file (scenario 4).

Settings: ``BGJ_REPORT_DIR``, the directory the reports are written to (a mounted volume),
unless the job names one with ``directory``.

The figures are the user's daily activity over ``days`` days. This example has no database,
so they are derived from the user id (the same user always gets the same figures), or given
by the caller as ``rows``. ``work_seconds`` makes the job as slow as a real report (scenario 4
says "seconds"), spread over the days with a progress record each.
"""

from __future__ import annotations

import contextlib
import hashlib
import html
import logging
import os
import random
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, Field

from backgroundjobs import handler
from backgroundjobs.runtime import cancelled, current_job, progress
from bgj_examples._config import env_dir, safe_filename
from bgj_examples._pdf import render_pdf

log = logging.getLogger(__name__)


class DayActivity(BaseModel):
    """One row of the report."""

    day: date
    visits: int
    orders: int
    revenue: float


@handler("report.generate")
def generate(
    user_id: str | int,
    title: str = "Activity report",
    days: Annotated[int, Field(ge=1, le=366)] = 30,
    rows: list[DayActivity] | None = None,
    file_format: Literal["pdf", "html"] = "pdf",
    work_seconds: float = 0.0,
    directory: str | None = None,
) -> str:
    """Write the report of ``user_id`` to the report directory and return the file's path.

    The file name is stable within a job run (a retry overwrites its own partial work) and
    written atomically: a reader never sees half a report.
    """
    user_id = str(user_id)
    out_dir = env_dir("BGJ_REPORT_DIR", directory)
    activity = rows if rows is not None else _activity(user_id, days)
    for index in range(len(activity)):
        if cancelled():
            raise RuntimeError("report generation cancelled")
        if work_seconds:
            time.sleep(work_seconds / len(activity))
        if (index + 1) % 10 == 0 or index + 1 == len(activity):
            progress(index + 1, len(activity), "aggregating daily activity")

    generated = datetime.now(UTC)
    heading = f"{title}: user {user_id}"
    if file_format == "pdf":
        data = render_pdf(heading, report_lines(user_id, activity, generated), created=generated)
    else:
        data = render_html(heading, user_id, activity, generated).encode()
    path = out_dir / f"{_file_stem(user_id, generated)}.{file_format}"
    _write_atomically(path, data)
    log.info("report written: %s (%d bytes)", path, len(data), extra={"event": "report_written"})
    return str(path)


def report_lines(user_id: str, activity: list[DayActivity], generated: datetime) -> list[str]:
    """The text of the report: a header, one line per day, and the totals."""
    lines = [
        f"User: {user_id}",
        f"Generated: {generated.isoformat(timespec='seconds')}",
        f"Period: {activity[0].day} to {activity[-1].day}" if activity else "Period: -",
        "",
        f"{'Day':<12}{'Visits':>10}{'Orders':>10}{'Revenue':>14}",
        "-" * 46,
    ]
    for row in activity:
        lines.append(
            f"{row.day.isoformat():<12}{row.visits:>10}{row.orders:>10}{row.revenue:>14.2f}"
        )
    lines.append("-" * 46)
    lines.append(
        f"{'Total':<12}{sum(r.visits for r in activity):>10}"
        f"{sum(r.orders for r in activity):>10}{sum(r.revenue for r in activity):>14.2f}"
    )
    return lines


def render_html(title: str, user_id: str, activity: list[DayActivity], generated: datetime) -> str:
    """The report as a standalone HTML page."""
    body_rows = "\n".join(
        f"<tr><td>{r.day}</td><td>{r.visits}</td><td>{r.orders}</td><td>{r.revenue:.2f}</td></tr>"
        for r in activity
    )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title></head><body>\n"
        f"<h1>{html.escape(title)}</h1>\n"
        f"<p>User {html.escape(user_id)}, generated {generated.isoformat(timespec='seconds')}</p>\n"
        "<table>\n<tr><th>Day</th><th>Visits</th><th>Orders</th><th>Revenue</th></tr>\n"
        f"{body_rows}\n</table>\n</body></html>\n"
    )


def _activity(user_id: str, days: int) -> list[DayActivity]:
    seed = int.from_bytes(hashlib.sha256(user_id.encode()).digest()[:8], "big")
    rng = random.Random(seed)
    end = datetime.now(UTC).date()
    rows = []
    for offset in range(days - 1, -1, -1):
        visits = rng.randint(0, 40)
        orders = rng.randint(0, max(1, visits // 8))
        rows.append(
            DayActivity(
                day=end - timedelta(days=offset),
                visits=visits,
                orders=orders,
                revenue=round(orders * rng.uniform(5, 120), 2),
            )
        )
    return rows


def _file_stem(user_id: str, generated: datetime) -> str:
    job = current_job()
    if job is not None and job.name:
        suffix = f"{safe_filename(job.name)}-run{job.run or 0}"
    else:
        suffix = generated.strftime("%Y%m%dT%H%M%SZ")
    return f"report-{safe_filename(user_id)}-{suffix}"


def _write_atomically(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-report-")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
