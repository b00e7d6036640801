"""Priorities between queues for the operator-wide cap (BACKGROUNDJOBS_MAX_RUNNING), with an
operator of its own: the session's is paused for this module."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client
from tests.integration.bgj import RUN_FOR, Jobs, manifest, wait_for
from tests.integration.harness import OperatorProcess
from tests.integration.queue_helpers import JobLog, Queues

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def capped_namespace(core_v1: client.CoreV1Api) -> Iterator[str]:
    """The one namespace the capped operator serves: the cap counts every run it serves,
    and runs of earlier tests' namespaces still being deleted (1 h jobs among them) held a
    slot of the cap, so the test waited for a second free slot that never came."""
    name = f"t-priorities-{uuid.uuid4().hex[:6]}"
    core_v1.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    wait_for(
        "the namespace's default ServiceAccount",
        lambda: any(
            sa.metadata.name == "default"
            for sa in core_v1.list_namespaced_service_account(name).items
        ),
        timeout=120,
    )
    yield name
    core_v1.delete_namespace(name)


@pytest.fixture(scope="module")
def capped_operator(
    kubeconfig: str,
    crd: dict,
    session_operator_paused: None,
    capped_namespace: str,
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
        namespaces=[capped_namespace],
    )
    op.start()
    yield op
    op.stop()


def test_the_higher_priority_queue_gets_the_freed_slots_of_the_cap_first(
    capped_operator: OperatorProcess, api_client: client.ApiClient, capped_namespace: str
) -> None:
    namespace = capped_namespace
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
