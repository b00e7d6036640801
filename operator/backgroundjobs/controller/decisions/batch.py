"""Batches (``spec.items``): one Indexed Job over a ConfigMap of items.

A run of a batch is one Job like any other run (``runs``), with these differences: its items
go first into a ConfigMap named like the Job and owned by the BackgroundJob (created
idempotently before the Job), the Job is Indexed (one completion per item, ``retries`` per
item, ``maxFailed`` as its failure budget), and its status counts items.

The end of a batch: Succeeded when every item succeeded, or when at most ``maxFailed``
items failed (the failure budget); Failed when more failed (the Job stops early once the
budget is exceeded), or the Job failed as a whole (timeout). A continuation after a batch
therefore starts on ``Succeeded`` exactly when the batch's items are within its budget.
"""

from __future__ import annotations

import json
from typing import Any

from backgroundjobs import _json
from backgroundjobs.api import constants as c
from backgroundjobs.api.constants import Phase, Reason
from backgroundjobs.api.models import (
    BackgroundJobSpec,
    BatchItem,
    BatchRerun,
    BatchStatus,
    ItemError,
    Progress,
)
from backgroundjobs.api.times import format_time, parse_time
from backgroundjobs.controller import builders
from backgroundjobs.controller.decisions.observed import Body, ObservedJob
from backgroundjobs.controller.decisions.plan import Outcome, Plan
from backgroundjobs.controller.decisions.pods import check_pods
from backgroundjobs.controller.decisions.rerun import over_whole_batch, rerun_items_jsonl
from backgroundjobs.controller.decisions.state import Decision, error_text, failure_reason

# The Job's failure reasons when indexes failed: all finished with some failed (within or
# without a budget), or the budget (maxFailedIndexes) exceeded.
_FAILED_INDEXES = "FailedIndexes"
_MAX_FAILED_INDEXES_EXCEEDED = "MaxFailedIndexesExceeded"


def items_jsonl(items: list[BatchItem]) -> str:
    """The items as JSON lines, one ``{"args": [...], "kwargs": {...}}`` per line (line i is
    the item of completion index i)."""
    return "".join(
        json.dumps({"args": it.args, "kwargs": it.item_kwargs}, separators=(",", ":")) + "\n"
        for it in items
    )


def items_problem(spec: BackgroundJobSpec, raw_items: Any) -> str | None:
    """Why the batch's items cannot be run (nested too deep, args beside them, too large for
    a ConfigMap), else None. Checked when a run starts only: on a 10,000-item batch these
    checks take a good part of a second, too much for every status change."""
    if spec.items is None:
        return None
    nesting = _json.unstorable(raw_items, c.MAX_VALUE_DEPTH)
    if nesting is not None:
        return f"spec.items is {nesting}"
    if spec.args or spec.handler_kwargs:
        return (
            "spec.items replaces spec.args and spec.kwargs: give each call its arguments in"
            " its item"
        )
    size = len(items_jsonl(spec.items).encode())
    if size > c.MAX_BATCH_BYTES:
        return (
            f"spec.items take {size} bytes as JSON lines; the limit is {c.MAX_BATCH_BYTES}"
            " (split the items into several batches, or pass references instead of data)"
        )
    return None


def items_configmap(
    bgj: Body, spec: BackgroundJobSpec, job_name: str, rerun: BatchRerun | None = None
) -> Body:
    """The ConfigMap of a run's items (a rerun's: only those it reruns): named like its Job,
    owned by the BackgroundJob."""
    assert spec.items is not None
    data = items_jsonl(spec.items) if rerun is None else rerun_items_jsonl(spec.items, rerun)
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": job_name,
            "namespace": bgj["metadata"]["namespace"],
            "labels": builders.child_labels(bgj, spec),
            "ownerReferences": [builders.owner_reference(bgj)],
        },
        "data": {c.BATCH_ITEMS_KEY: data},
        "immutable": True,
    }


def make_indexed(job: Body, spec: BackgroundJobSpec, rerun: BatchRerun | None = None) -> Body:
    """Turn a run's Job into the batch's Indexed Job: one completion per item (a rerun's:
    per item it reruns), retries per item, the failure budget, and the items ConfigMap
    mounted in the handler container."""
    assert spec.items is not None
    count = len(spec.items) if rerun is None else rerun.items
    job_spec: Body = job["spec"]
    job_spec.pop("backoffLimit", None)  # a Job-wide limit would count every item's failures
    job_spec["completionMode"] = "Indexed"
    job_spec["completions"] = count
    job_spec["parallelism"] = min(spec.parallelism or c.DEFAULT_BATCH_PARALLELISM, count)
    job_spec["backoffLimitPerIndex"] = spec.retries
    if spec.max_failed is not None:
        job_spec["maxFailedIndexes"] = spec.max_failed
    for rule in job_spec["podFailurePolicy"]["rules"]:
        if rule["action"] == "FailJob":
            rule["action"] = "FailIndex"  # a bad item fails itself, not the whole batch
    pod_spec: Body = job_spec["template"]["spec"]
    pod_spec["volumes"] = [
        *(pod_spec.get("volumes") or []),
        {"name": c.BATCH_ITEMS_VOLUME, "configMap": {"name": job["metadata"]["name"]}},
    ]
    handler = pod_spec["containers"][0]
    handler["env"] = [
        *handler["env"],
        {"name": c.ENV_ITEMS_FILE, "value": f"{c.BATCH_ITEMS_DIR}/{c.BATCH_ITEMS_KEY}"},
    ]
    handler["volumeMounts"] = [
        *(handler.get("volumeMounts") or []),
        {"name": c.BATCH_ITEMS_VOLUME, "mountPath": c.BATCH_ITEMS_DIR, "readOnly": True},
    ]
    return job


def count_indexes(intervals: str) -> int:
    """How many indexes an interval list of the Job's status holds ("1,3-5" holds 4)."""
    total = 0
    for part in intervals.split(","):
        part = part.strip()
        if not part:
            continue
        low, _, high = part.partition("-")
        total += int(high or low) - int(low) + 1
    return total


def batch_status(
    job: ObservedJob,
    total: int,
    last_error: str | None = None,
    item_errors: list[ItemError] | None = None,
) -> BatchStatus:
    """The batch's counts from its Job's status."""
    succeeded = count_indexes(job.completed_indexes) if job.completed_indexes else job.succeeded
    failed = count_indexes(job.failed_indexes) if job.failed_indexes else 0
    failed_indexes = job.failed_indexes or None
    if failed_indexes and len(failed_indexes) > c.MAX_FAILED_INDEXES_TEXT:
        cut = failed_indexes[: c.MAX_FAILED_INDEXES_TEXT - 4].rsplit(",", 1)[0]
        failed_indexes = cut + ",..."
    return BatchStatus(
        total=total,
        succeeded=succeeded,
        failed=failed,
        running=0 if job.finished else job.active_pods,
        progress=f"{succeeded + failed}/{total}",
        failed_indexes=failed_indexes,
        last_error=(last_error or None) and last_error[:4096],
        item_errors=item_errors or None,
    )


def batch_progress(b: BatchStatus) -> Progress:
    """The PROGRESS column of a batch: its items finished (succeeded or failed) of the
    total. A batch's pods are many, so the progress reader leaves batches to this."""
    message = f"{b.succeeded} succeeded, {b.failed} failed, {b.running} running"
    return Progress.of(b.succeeded + b.failed, b.total, message)


def _summary(b: BatchStatus) -> str:
    text = f"{b.succeeded} of {b.total} items succeeded, {b.failed} failed"
    if b.rerun is not None:
        text = f"rerun of {b.rerun.items} items of run {b.rerun.from_run}: {text}"
    return text + (f" (indexes {b.failed_indexes})" if b.failed_indexes else "")


def observe_batch(d: Decision, spec: BackgroundJobSpec, job: ObservedJob) -> Plan:
    """The status of a running batch, and its end."""
    assert spec.items is not None
    plan, st = d.plan, d.st
    total = len(spec.items)
    rerun = st.batch.rerun if st.batch is not None else None

    def counted(
        last_error: str | None = None, errors: list[ItemError] | None = None
    ) -> BatchStatus:
        if rerun is None:
            return batch_status(job, total, last_error, errors)
        by_position = batch_status(job, rerun.items, last_error, errors)
        return over_whole_batch(by_position, job.failed_indexes, rerun, total)

    if job.start_time is not None and not st.started_at:
        st.started_at = format_time(job.start_time)
    st.failed_attempts = job.failed
    counts = counted()
    if job.finished and counts.failed and job.name not in d.obs.termination:
        plan.need_termination = job.name  # one failed item's error, read once at the end
        st.batch = counts
        return plan
    last_error = error_text(d.obs.termination.get(job.name)) if counts.failed else None
    errors = d.obs.item_errors.get(job.name) if counts.failed else None
    st.batch = counted(last_error, errors)
    b = st.batch
    st.progress = batch_progress(b)
    summary: dict[str, int | str] = {"total": b.total, "succeeded": b.succeeded, "failed": b.failed}
    if b.failed_indexes:
        summary["failedIndexes"] = b.failed_indexes
    if not job.finished:
        d.phase(Phase.RUNNING, f"{b.progress} items done: {_summary(b)}, {b.running} running")
        return check_pods(d, spec, job) or plan

    finished_at = job.finish_time or d.now
    started = parse_time(st.started_at) or finished_at
    took = max(0.0, (finished_at - started).total_seconds())
    st.result = summary
    within_budget = b.failed <= (spec.max_failed or 0)
    if job.complete or (job.failure_reason == _FAILED_INDEXES and within_budget):
        msg = f"{_summary(b)} in {took:.1f}s"
        if b.failed:
            msg += f"; within the failure budget of {spec.max_failed}; last error: {b.last_error}"
        return d.finish(
            spec,
            Outcome.SUCCEEDED,
            Reason.COMPLETED,
            msg,
            f"Job {job.name}: {msg}",
            finished_at=finished_at,
            took=took,
            ran=True,
            stopped=(),
        )
    reason = failure_reason(job)
    msg = _summary(b)
    if job.failure_reason == _MAX_FAILED_INDEXES_EXCEEDED:
        msg += f"; more than the failure budget of {spec.max_failed}: the rest did not run"
    elif job.failure_reason != _FAILED_INDEXES:
        msg = f"{job.failure_message or reason}; {msg}"
    if b.last_error:
        msg += f"; last error: {b.last_error}"
    return d.finish(
        spec,
        Outcome.FAILED,
        reason,
        msg,
        f"Job {job.name} failed ({reason}): {msg}",
        phase_message=f"failed ({reason}): {msg}",
        finished_at=finished_at,
        took=took,
        ran=True,
        stopped=(),
    )
