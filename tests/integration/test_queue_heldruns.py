"""A held recurring run on the cluster (controller.heldruns): ``describe`` and ``get -o wide``
show its place in its queue and why it waits, and the operator posts one ``Admitted`` Event
when it lets the run start, not again after a restart. Triggered runs (made suspended at
once) stand in for scheduled ones: no scheduled minute to wait for."""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes import client
from tests.integration.bgj import RUN_FOR, Jobs, manifest, wait_for
from tests.integration.queue_helpers import Queues
from tests.integration.test_cli import Cli

pytestmark = pytest.mark.integration
TRIGGER = "backgroundjobs.dev/trigger"
NEVER = "0 0 1 1 *"  # once a year: only the triggers make runs


def held_job(bgjobs: Jobs, owner: str, seen: set[str]) -> Any:
    """The run of ``owner`` not in ``seen``, once the operator has made it."""
    return wait_for(
        f"a new run of {owner}",
        lambda: next((j for j in bgjobs.jobs(owner) if j.metadata.name not in seen), None),
        timeout=60,
    )


def admitted(bgjobs: Jobs, owner: str) -> list[str]:
    return [e.message for e in bgjobs.events(owner) if e.reason == "Admitted"]


def test_a_held_run_shows_its_place_and_is_admitted_with_one_event_across_a_restart(
    bgjobs: Jobs, api_client: client.ApiClient, operator: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    cli = Cli(bgjobs.ns, capsys)
    queues = Queues(api_client, bgjobs.ns)
    queues.create("held1", maxConcurrency=1)
    bgjobs.create(manifest("long", queue="held1", pod_annotations={RUN_FOR: "30m"}))
    bgjobs.wait_phase("long", "Running", timeout=120)
    bgjobs.create(manifest("a-waiter", queue="held1", pod_annotations={RUN_FOR: "1s"}))
    bgjobs.wait_phase("a-waiter", "Queued", timeout=60)
    bgjobs.create(manifest("tick", schedule=NEVER, queue="held1", pod_annotations={RUN_FOR: "1s"}))
    bgjobs.wait_phase("tick", "Scheduled", timeout=60)
    bgjobs.annotate("tick", TRIGGER, "one")
    first = held_job(bgjobs, "tick", set()).metadata.name
    wait_for(
        "the held run's Queued condition",
        lambda: (cnd := bgjobs.condition("tick", "Queued")) and cnd["status"] == "True",
    )

    # behind the Queued job created before it (or in the same second: "a-waiter" sorts
    # before "tick/..."); why: its job's Queued condition
    where = f"run {first}: position 2 of 2 in queue held1 (QueueFull: queue held1 is at"
    assert f"Waiting:     {where}" in cli("describe", "tick")
    wide = cli("get", "tick", "-o", "wide")
    assert f"{where} its concurrency limit (1))" in wide.replace("\n", " ")
    assert "position 1 of 2 in queue held1" in cli("describe", "a-waiter")
    assert admitted(bgjobs, "tick") == []

    bgjobs.delete("long")  # the waiter runs, then the held run
    wait_for(
        "the held run to succeed",
        lambda: (job := bgjobs.job(first)) is not None and (job.status.succeeded or 0) >= 1,
        timeout=120,
    )
    messages = wait_for("the Admitted Event", lambda: admitted(bgjobs, "tick"), timeout=30)
    assert len(messages) == 1, messages
    assert messages[0].startswith(f"run {first} admitted by queue held1 after waiting ")
    assert bgjobs.status("a-waiter")["phase"] == "Succeeded"  # its turn came first

    # a restarted operator relists the Jobs: the admitted run is not admitted (or told) again;
    # a second trigger shows the new operator has reconciled the job since
    operator.kill()
    operator.start()
    # (until it has seen the queue, a new operator knows no limit: wait for that first)
    queues.patch("held1", {"priority": 1})
    wait_for(
        "the new operator to see the queue",
        lambda: (queues.get("held1").get("status") or {}).get("observedGeneration") == 2,
        timeout=60,
    )
    bgjobs.annotate("tick", TRIGGER, "two")
    second = held_job(bgjobs, "tick", {first}).metadata.name
    wait_for(
        "the second run to succeed",
        lambda: (job := bgjobs.job(second)) is not None and (job.status.succeeded or 0) >= 1,
        timeout=120,
    )
    messages = wait_for(
        "the second Admitted Event",
        lambda: found if len(found := admitted(bgjobs, "tick")) >= 2 else None,
        timeout=30,
    )
    assert sorted(m.split()[1] for m in messages) == sorted([first, second])
