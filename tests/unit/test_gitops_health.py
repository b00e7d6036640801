"""docs/gitops.md's Argo CD health check, run in Lua 5.1 on a BackgroundJob of every phase
(statuses shaped as docs/API.md §1 describes them)."""

from __future__ import annotations

from typing import Any

import pytest
from tests.gitops_health import argo_health, health_check_lua

pytestmark = pytest.mark.unit


def bgj(
    phase: str | None,
    *,
    job_type: str = "Immediate",
    conditions: dict[str, str] | None = None,
    generation: int = 1,
    observed: int | None = 1,
    message: str | None = None,
) -> dict[str, Any]:
    """A BackgroundJob; ``conditions`` maps a True condition's type to its reason."""
    obj: dict[str, Any] = {
        "apiVersion": "backgroundjobs.dev/v1alpha1",
        "kind": "BackgroundJob",
        "metadata": {"name": "j", "namespace": "ns", "generation": generation},
        "spec": {"handler": "test.echo"},
    }
    if phase is None:
        return obj
    status: dict[str, Any] = {"phase": phase, "type": job_type}
    if observed is not None:
        status["observedGeneration"] = observed
    if message is not None:
        status["message"] = message
    status["conditions"] = [
        {"type": t, "status": "True", "reason": r, "message": f"{t}: {r}"}
        for t, r in (conditions or {}).items()
    ]
    obj["status"] = status
    return obj


@pytest.mark.parametrize(
    ("obj", "health"),
    [
        (bgj(None), "Progressing"),
        (bgj("Pending"), "Progressing"),
        (bgj("Queued", conditions={"Queued": "QueueFull"}), "Progressing"),
        (bgj("Running", conditions={"Running": "JobRunning"}), "Progressing"),
        (bgj("Succeeded", conditions={"Succeeded": "Completed"}), "Healthy"),
        (bgj("Failed", conditions={"Failed": "BackoffLimitExceeded"}), "Degraded"),
        (bgj("Failed", conditions={"Failed": "InvalidSpec"}), "Degraded"),
        (bgj("Cancelled", conditions={"Failed": "Cancelled"}), "Suspended"),
        (bgj("Suspended", conditions={"Suspended": "Suspended"}), "Suspended"),
        (bgj("Scheduled", job_type="Delayed", conditions={"Scheduled": "DueInFuture"}), "Healthy"),
        (bgj("Scheduled", job_type="Recurring", conditions={"Scheduled": "Scheduled"}), "Healthy"),
        (
            bgj("Scheduled", job_type="Recurring",
                conditions={"Scheduled": "Scheduled", "Failed": "BackoffLimitExceeded"}),
            "Degraded",
        ),
        (bgj("Waiting", job_type="Continuation", conditions={"Waiting": "ParentRunning"}),
         "Progressing"),
        (bgj("Waiting", job_type="Continuation", conditions={"Waiting": "ParentNotFound"}),
         "Progressing"),
        (bgj("Waiting", job_type="Continuation", conditions={"Waiting": "ParentFailed"}),
         "Degraded"),
        (bgj("Waiting", job_type="Continuation", conditions={"Waiting": "ParentSucceeded"}),
         "Healthy"),
        # A new generation the operator has not acted on yet: whatever the old phase said.
        (bgj("Succeeded", generation=2, observed=1), "Progressing"),
        (bgj("Failed", generation=3, observed=2), "Progressing"),
        # An older operator that wrote no observedGeneration: the phase decides.
        (bgj("Failed", observed=None), "Degraded"),
    ],
)  # fmt: skip
def test_health_of_each_phase(obj: dict[str, Any], health: str) -> None:
    assert argo_health(obj)[0] == health


def test_a_false_condition_does_not_count() -> None:
    obj = bgj("Scheduled", job_type="Recurring")
    obj["status"]["conditions"] = [
        {"type": "Failed", "status": "False", "reason": "Completed", "message": ""}
    ]
    assert argo_health(obj)[0] == "Healthy"


def test_the_message_is_the_status_message() -> None:
    obj = bgj("Failed", message="failed (BackoffLimitExceeded): boom")
    assert argo_health(obj) == ("Degraded", "failed (BackoffLimitExceeded): boom")
    assert argo_health(bgj("Running"))[1] == "Running"  # no message: the phase
    assert "generation 2" in argo_health(bgj("Running", generation=2))[1]


def test_the_check_is_one_lua_chunk_that_returns_its_table() -> None:
    script = health_check_lua()
    assert script.rstrip().endswith("return hs")
    with pytest.raises(Exception, match="attempt to index"):
        argo_health(bgj("Running"), script.replace("obj.status", "obj.nothing.status"))
