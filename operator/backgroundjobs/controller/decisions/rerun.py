"""A ``failed-only`` requeue of a batch: a new run over only the items the last run did not
succeed (issue 16 item 4), pure.

The rerun is an Indexed Job like any batch run, over a ConfigMap holding only those items,
each line with its index in ``spec.items`` (the runtime reports that index, not its
completion index). ``status.batch.rerun`` names the items the run runs, so the Job's
completion indexes map back to the user's indexes, and the batch's counts stay over the
whole batch: an item that succeeded in an earlier run counts as succeeded.

Which items: those of the last run without a completed index, read from its Job (its
failed items, and the items a failure budget kept from starting). Without the Job (deleted
by hand), from ``status.batch`` when it still tells them exactly, else refused.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

from backgroundjobs.api.constants import MAX_FAILED_INDEXES_TEXT, EventReason
from backgroundjobs.api.models import (
    MAX_RERUN_INDEXES_TEXT,
    BatchItem,
    BatchRerun,
    BatchStatus,
    ItemError,
)
from backgroundjobs.controller.decisions.observed import ObservedJob
from backgroundjobs.controller.decisions.state import Decision


def parse_indexes(text: str, limit: int) -> set[int] | None:
    """The indexes below ``limit`` of an interval list ("1,3-5"); None when the text is not
    one, or names an index at or past ``limit`` (a status written by hand)."""
    out: set[int] = set()
    for part in text.split(","):
        low_text, dash, high_text = part.strip().partition("-")
        if not low_text and not dash:
            continue
        try:
            low, high = int(low_text), int(high_text if dash else low_text)
        except ValueError:
            return None
        if not 0 <= low <= high < limit:
            return None
        out.update(range(low, high + 1))
    return out


def intervals(indexes: Iterable[int]) -> str:
    """Indexes as the Job controller writes its interval lists: [1, 3, 4, 6, 7, 8] is
    "1,3,4,6-8" (a range from three indexes on)."""
    spans: list[list[int]] = []
    for index in sorted(set(indexes)):
        if spans and index == spans[-1][1] + 1:
            spans[-1][1] = index
        else:
            spans.append([index, index])
    parts = [
        f"{low}-{high}" if high - low >= 2 else ",".join(map(str, range(low, high + 1)))
        for low, high in spans
    ]
    return ",".join(parts)


def ran_indexes(rerun: BatchRerun | None, total: int) -> list[int] | None:
    """The indexes in spec.items of a run's items, by completion index (a full run: all);
    None when a rerun's record does not fit the batch (spec.items shrank since)."""
    if rerun is None:
        return list(range(total))
    ran = parse_indexes(rerun.indexes, total)
    return None if ran is None else sorted(ran)


def items_to_rerun(
    job: ObservedJob | None, last: BatchStatus | None, total: int
) -> list[int] | str:
    """The indexes in spec.items of the last run's items that did not succeed, or why they
    cannot be told."""
    ran = ran_indexes(last.rerun if last else None, total)
    if ran is None:
        return "the last run's items no longer match spec.items"
    if job is not None and job.finished:
        completed = parse_indexes(job.completed_indexes, len(ran))
        if completed is None:
            return f"Job {job.name} reports completed indexes that are not the batch's"
        return [index for position, index in enumerate(ran) if position not in completed]
    if last is None or (last.failed_indexes is None and last.failed):
        return "the last run's Job is gone and its status does not name its failed items"
    if last.succeeded + last.failed != last.total:
        return "the last run's Job is gone and some of its items never ran"
    failed = parse_indexes(last.failed_indexes or "", total)  # "...": cut short, refused
    if failed is None:
        return "the last run's Job is gone and its status names only some failed items"
    return sorted(failed)


def choose(
    d: Decision, items: list[BatchItem] | None, job: ObservedJob | None
) -> BatchRerun | None:
    """The rerun a failed-only requeue asks for, or None with a Warning saying why none."""
    why = ""
    if items is None:
        why = "this job is not a batch (no spec.items): requeue it without failed-only"
    else:
        picked = items_to_rerun(job, d.st.batch, len(items))
        if isinstance(picked, str):
            why = f"{picked}: requeue it without failed-only to run every item"
        elif not picked:
            why = f"every item of run {d.st.runs} succeeded: nothing to rerun"
        elif len(text := intervals(picked)) > MAX_RERUN_INDEXES_TEXT:
            why = (
                f"{len(picked)} failed items too scattered to record ({len(text)} bytes of"
                " indexes): requeue it without failed-only"
            )
        else:
            return BatchRerun(from_run=d.st.runs, items=len(picked), indexes=text)
    d.warn(EventReason.REQUEUE_IGNORED, f"failed-only requeue: {why}")
    return None


def rerun_items_jsonl(items: list[BatchItem], rerun: BatchRerun) -> str:
    """The rerun's items as JSON lines, line i the item of completion index i, each with its
    index in spec.items."""
    ran = ran_indexes(rerun, len(items)) or []
    return "".join(
        json.dumps(
            {"index": i, "args": items[i].args, "kwargs": items[i].item_kwargs},
            separators=(",", ":"),
        )
        + "\n"
        for i in ran
    )


def over_whole_batch(
    counts: BatchStatus, job_failed_indexes: str, rerun: BatchRerun, total: int
) -> BatchStatus:
    """A rerun's counts (from its Job, by completion index) over the whole batch, in the
    user's indexes: the items it did not rerun had succeeded."""
    ran = ran_indexes(rerun, total) or []
    failed_positions = parse_indexes(job_failed_indexes, len(ran)) or set()
    failed_text = intervals(ran[p] for p in failed_positions) or None
    errors = [
        ItemError(index=ran[e.index], error=e.error)
        for e in counts.item_errors or []
        if e.index < len(ran)
    ]
    succeeded = total - len(ran) + counts.succeeded
    return counts.model_copy(
        update={
            "total": total,
            "succeeded": succeeded,
            "progress": f"{succeeded + counts.failed}/{total}",
            "failed_indexes": failed_text and cut_indexes(failed_text),
            "item_errors": errors or None,
            "rerun": rerun,
        }
    )


def cut_indexes(text: str, limit: int = MAX_FAILED_INDEXES_TEXT) -> str:
    """An interval list cut to ``limit`` characters at an interval's end, marked ",..."."""
    if len(text) <= limit:
        return text
    return text[: limit - 4].rsplit(",", 1)[0] + ",..."
