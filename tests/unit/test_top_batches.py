"""``bgjobs top``'s batches section and the batch items gauge."""

from __future__ import annotations

import pytest

from backgroundjobs.api.models import BatchStatus
from backgroundjobs.cli.render.topbatches import TOP_BATCHES, render_batches
from backgroundjobs.client import JobInfo
from backgroundjobs.controller import metrics
from backgroundjobs.controller.cache import Cache

pytestmark = pytest.mark.unit


def batch_job(name: str, phase: str, total: int, done: int, failed: int = 0) -> JobInfo:
    b = BatchStatus(total=total, succeeded=done - failed, failed=failed, running=2)
    return JobInfo(name=name, namespace="ns", handler="h", type="Batch", phase=phase, batch=b)


def test_top_lists_unfinished_batches_most_left_first() -> None:
    jobs = [
        batch_job("small", "Running", 10, 5),
        batch_job("big", "Running", 10000, 9870, failed=3),
        batch_job("done", "Succeeded", 10, 10),
        JobInfo(name="plain", namespace="ns", handler="h", type="Immediate", phase="Running"),
    ]
    text = render_batches(jobs)
    lines = text.splitlines()
    assert lines[1] == "2 batch(es) not finished:"
    assert lines[2].split() == ["BATCH", "PHASE", "PROGRESS", "SUCCEEDED", "FAILED", "RUNNING"]
    assert lines[3].split() == ["big", "Running", "9870/10000", "98%", "9867", "3", "2"]
    assert lines[4].split()[0] == "small"
    assert "done" not in text and "plain" not in text
    assert render_batches(jobs[2:]) == ""


def test_top_counts_the_batches_it_does_not_show() -> None:
    jobs = [batch_job(f"b{i}", "Running", 100, i) for i in range(TOP_BATCHES + 3)]
    assert render_batches(jobs).splitlines()[-1] == "... 3 more"


def test_batch_items_gauge_sums_unfinished_batches_by_queue() -> None:
    cache = Cache()

    def body(name: str, phase: str, queue: str, succeeded: int) -> dict[str, object]:
        return {
            "metadata": {"name": name, "namespace": "ns", "uid": name, "resourceVersion": "1"},
            "spec": {"handler": "h", "queue": queue, "items": []},
            "status": {
                "phase": phase,
                "batch": {"total": 10, "succeeded": succeeded, "failed": 1, "running": 2},
            },
        }

    cache.store_bgj(("ns", "a"), body("a", "Running", "default", 3))
    cache.store_bgj(("ns", "b"), body("b", "Running", "default", 4))
    cache.store_bgj(("ns", "c"), body("c", "Running", "bulk", 5))
    cache.store_bgj(("ns", "d"), body("d", "Succeeded", "default", 9))
    items = cache.batch_items()
    assert items[("default", "total")] == 20
    assert items[("default", "succeeded")] == 7
    assert items[("bulk", "failed")] == 1
    assert items[("default", "running")] == 4
    (family,) = metrics.batch_items_gauge(cache.batch_items).collect()
    samples = {(s.labels["queue"], s.labels["state"]): s.value for s in family.samples}
    assert samples[("bulk", "succeeded")] == 5
