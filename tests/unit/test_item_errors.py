"""The last error of each failed item of a batch (status.batch.itemErrors) and describe."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest

from backgroundjobs.api.models import MAX_ITEM_ERRORS, BatchStatus, ItemError
from backgroundjobs.cli.render.timeline import batch_fields
from backgroundjobs.client._info import JobInfo
from backgroundjobs.controller.decisions.batch import batch_status
from backgroundjobs.controller.decisions.itemerrors import cut, indexes_of, item_errors
from backgroundjobs.controller.decisions.observed import ObservedJob

pytestmark = pytest.mark.unit


def pod(index: int | None, message: str | None, phase: str = "Failed", created: str = "1") -> Any:
    annotations = {} if index is None else {"batch.kubernetes.io/job-completion-index": str(index)}
    terminated: dict[str, Any] = {"exitCode": 1}
    if message is not None:
        terminated["message"] = message
    return {
        "metadata": {"annotations": annotations, "creationTimestamp": created},
        "status": {
            "phase": phase,
            "containerStatuses": [{"name": "handler", "state": {"terminated": terminated}}],
        },
    }


def err(text: str, kind: str = "KeyError") -> str:
    return json.dumps({"error": text, "type": kind})


def test_newest_failed_pod_of_each_failed_index() -> None:
    pods = [
        pod(4, err("first try"), created="2026-01-01T00:00:01Z"),
        pod(4, err("second try"), created="2026-01-01T00:00:09Z"),
        pod(1, err("no such user")),
        pod(2, err("ok"), phase="Succeeded"),
        pod(3, err("retried, then succeeded")),  # not in the Job's failed indexes
        pod(None, err("not a batch pod")),
        pod(7, None),
    ]
    errors = item_errors(pods, {1, 4, 7})
    assert [(e.index, e.error) for e in errors] == [
        (1, "KeyError: no such user"),
        (4, "KeyError: second try"),
        (7, ""),
    ]


def test_bounded_in_count_and_bytes() -> None:
    pods = [pod(i, err("é" * 400)) for i in range(MAX_ITEM_ERRORS + 30)]
    errors = item_errors(pods, None)
    assert [e.index for e in errors] == list(range(MAX_ITEM_ERRORS))
    assert all(len(e.error.encode()) <= 300 for e in errors)
    assert cut("aé", 2) == "a"  # never half a character


def test_indexes_of_intervals() -> None:
    assert indexes_of("1,3-5") == {1, 3, 4, 5}
    assert indexes_of("") == set()


def test_batch_status_and_describe_show_them() -> None:
    job = ObservedJob(
        name="b-1",
        uid="u",
        owner_uid="o",
        created=None,
        failure_reason="FailedIndexes",
        failed_indexes="1,4",
        completed_indexes="0,2-3",
    )
    errors = [ItemError(index=1, error="KeyError: no such user"), ItemError(index=4, error="")]
    b = batch_status(job, 5, "KeyError: no such user", errors)
    assert b.model_dump(by_alias=True, exclude_none=True)["itemErrors"] == [
        {"index": 1, "error": "KeyError: no such user"},
        {"index": 4, "error": ""},
    ]
    info = JobInfo(name="b", namespace="ns", handler="h", type="Batch", phase="Failed", batch=b)
    text = "\n".join(batch_fields(info, 80))
    assert "Errors:     #1: KeyError: no such user" in text
    assert "#4: (no message)" in text
    many = BatchStatus(total=30, item_errors=[ItemError(index=i, error="x") for i in range(30)])
    info = replace(info, batch=many)
    assert "... 20 more in status.batch.itemErrors" in "\n".join(batch_fields(info, 80))
