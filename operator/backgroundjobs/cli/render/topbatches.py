"""``top``'s batches: the progress of each batch not finished yet."""

from __future__ import annotations

from collections.abc import Sequence

from backgroundjobs.api.constants import FINISHED_PHASES
from backgroundjobs.cli.render.text import cut
from backgroundjobs.client import JobInfo

TOP_BATCHES = 10  # rows; the rest are counted in one line
_HEADERS = ("BATCH", "PHASE", "PROGRESS", "SUCCEEDED", "FAILED", "RUNNING")


def render_batches(jobs: Sequence[JobInfo], width: int = 80) -> str:
    """The batches not finished yet, most items left first; "" when there is none."""
    batches = [
        job for job in jobs if job.batch is not None and (job.phase or "") not in FINISHED_PHASES
    ]
    if not batches:
        return ""

    def left(job: JobInfo) -> int:
        b = job.batch
        return 0 if b is None else b.total - b.succeeded - b.failed

    batches.sort(key=lambda job: (-left(job), job.namespace, job.name))
    rows = []
    for job in batches[:TOP_BATCHES]:
        b = job.batch
        assert b is not None
        percent = f" {100 * (b.succeeded + b.failed) // b.total}%" if b.total else ""
        progress = f"{b.succeeded + b.failed}/{b.total}{percent}"
        rows.append(
            (job.name, job.phase or "Pending", progress, str(b.succeeded), str(b.failed),
             str(b.running))
        )  # fmt: skip
    widths = [max(len(row[i]) for row in [_HEADERS, *rows]) for i in range(len(_HEADERS))]
    lines = ["", f"{len(batches)} batch(es) not finished:"]
    for row in [_HEADERS, *rows]:
        cells = [row[0].ljust(widths[0]), row[1].ljust(widths[1])]
        cells += [cell.rjust(w) for cell, w in zip(row[2:], widths[2:], strict=True)]
        lines.append(cut("   ".join(cells).rstrip(), width))
    if len(batches) > TOP_BATCHES:
        lines.append(f"... {len(batches) - TOP_BATCHES} more")
    return "\n".join(lines) + "\n"
