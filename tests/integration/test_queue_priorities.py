"""Priorities between queues for the operator-wide cap (BACKGROUNDJOBS_MAX_RUNNING), with an
operator of its own: the session's is paused for this module."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client
from tests.integration.bgj import RUN_FOR, Jobs, manifest, wait_for
from tests.integration.harness import OperatorProcess
from tests.integration.queue_helpers import JobLog, Queues

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def capped_operator(
    kubeconfig: str,
    crd: dict,
    session_operator_paused: None,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[OperatorProcess]:
    op = OperatorProcess(
        kubeconfig,
        Path(tmp_path_factory.mktemp("capped")),
        {
            "BACKGROUNDJOBS_MAX_RUNNING": "2",
            "BACKGROUNDJOBS_QUEUE_AGING": "0",  # no aging: the order is priority alone
            "BACKGROUNDJOBS_POD_POLICY_CHECK": "false",
        },
    )
    op.start()
    yield op
    op.stop()


def test_the_higher_priority_queue_gets_the_freed_slots_of_the_cap_first(
    capped_operator: OperatorProcess, api_client: client.ApiClient, namespace: str
) -> None:
    jobs = Jobs(api_client, namespace)
    queues = Queues(api_client, namespace)
    queues.create("hi", priority=10)
    queues.create("lo", priority=0)
    with JobLog(api_client, namespace) as log:
        for name in ("block-1", "block-2"):
            jobs.create(manifest(name, queue="lo", pod_annotations={RUN_FOR: "6s"}))
        # A new operator admits nothing until its watches delivered what runs (its warm-up:
        # seconds, up to 120 s on a loaded API server), so the first wait allows for that.
        wait_for("the cap taken", lambda: len(log.running) == 2, timeout=180)
        lows = [f"lo-{i}" for i in range(3)]
        highs = [f"hi-{i}" for i in range(3)]
        for name in lows:  # created first: FIFO alone would start them first
            jobs.create(manifest(name, queue="lo", pod_annotations={RUN_FOR: "2s"}))
        for name in highs:
            jobs.create(manifest(name, queue="hi", pod_annotations={RUN_FOR: "2s"}))
        wait_for("all waiting", lambda: jobs.status("hi-2").get("phase") == "Queued", timeout=60)
        for name in lows + highs:
            jobs.wait_phase(name, "Succeeded", timeout=180)
    assert log.created == ["block-1", "block-2", *highs, *lows]
    assert log.max_running <= 2
