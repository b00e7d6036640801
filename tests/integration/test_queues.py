"""Queues as resources on the cluster: BackgroundJobQueue objects, strict FIFO under a limit,
requeues and triggers through admission, concurrency keys, pause and resume, a queue edited
live, and a restart in the middle of a queue."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client
from tests.integration.bgj import RUN_FOR, Jobs, manifest, wait_for
from tests.integration.queue_helpers import JobLog, Queues
from tests.integration.test_cli import Cli

from backgroundjobs.api import constants as c

pytestmark = pytest.mark.integration
Body = dict[str, Any]


@pytest.fixture
def queues(api_client: client.ApiClient, namespace: str, bgjobs: Jobs) -> Iterator[Queues]:
    yield Queues(api_client, namespace)


def phases(bgjobs: Jobs, names: list[str]) -> dict[str, str]:
    return {n: bgjobs.status(n).get("phase") or "" for n in names}


def test_a_limit_3_queue_runs_60_jobs_in_exact_creation_order(
    bgjobs: Jobs, queues: Queues, api_client: client.ApiClient
) -> None:
    queues.create("fifo", maxConcurrency=3)
    names = [f"f-{i:03d}" for i in range(60)]
    with JobLog(api_client, bgjobs.ns) as log:
        for name in names:
            bgjobs.create(manifest(name, queue="fifo", pod_annotations={RUN_FOR: "1s"}))
        status = wait_for(
            "the queue's status to show waiting jobs",
            lambda: (s := queues.get("fifo").get("status") or {}).get("pending") and s,
            timeout=60,
        )
        assert status["running"] <= 3 and status["oldestPendingSince"]
        waiting = next(n for n in reversed(names) if bgjobs.status(n).get("phase") == "Queued")
        assert bgjobs.condition(waiting, "Queued")["reason"] == "QueueFull"  # type: ignore[index]
        for name in names:
            bgjobs.wait_phase(name, "Succeeded", timeout=300)
    assert log.created == names  # order violations: 0
    assert log.max_running <= 3
    wait_for(
        "the queue's status to show it empty",
        lambda: (queues.get("fifo").get("status") or {}).get("pending") == 0,
        timeout=30,
    )


def test_requeue_and_trigger_wait_for_the_queue_like_first_runs(
    bgjobs: Jobs, queues: Queues, api_client: client.ApiClient
) -> None:
    queues.create("one", maxConcurrency=1)
    bgjobs.create(manifest("done-once", queue="one"))
    bgjobs.wait_phase("done-once", "Succeeded")
    bgjobs.create(manifest("delayed", queue="one", delay="1h"))
    bgjobs.wait_phase("delayed", "Scheduled")
    with JobLog(api_client, bgjobs.ns) as log:
        bgjobs.create(manifest("blocker", queue="one", pod_annotations={RUN_FOR: "6s"}))
        bgjobs.wait_phase("blocker", "Running")
        bgjobs.annotate("done-once", c.ANNOTATION_REQUEUE, "1")
        bgjobs.annotate("delayed", c.ANNOTATION_TRIGGER, "1")
        bgjobs.wait_phase("done-once", "Queued", timeout=30)
        bgjobs.wait_phase("delayed", "Queued", timeout=30)
        assert log.max_running == 1
        for name in ("blocker", "done-once", "delayed"):
            bgjobs.wait_phase(name, "Succeeded", timeout=120)
    assert bgjobs.status("done-once")["runs"] == 2
    assert log.max_running == 1
    assert log.created == ["blocker", "done-once", "delayed"]  # by creation time


def test_a_concurrency_key_runs_one_job_at_a_time_per_key(
    bgjobs: Jobs, api_client: client.ApiClient
) -> None:
    names = [f"k-{i:02d}" for i in range(20)]
    with JobLog(api_client, bgjobs.ns) as log:
        for i, name in enumerate(names):
            bgjobs.create(
                manifest(name, concurrencyKey=f"user-{i % 4}", pod_annotations={RUN_FOR: "2s"})
            )
        wait_for(
            "a job waiting for its key",
            lambda: any(
                (bgjobs.condition(n, "Queued") or {}).get("reason") == "ConcurrencyKeyBusy"
                for n in names
            ),
            timeout=60,
        )
        for name in names:
            bgjobs.wait_phase(name, "Succeeded", timeout=300)
    assert log.max_by_key and max(log.max_by_key.values()) == 1
    assert log.max_running >= 2  # different keys ran side by side


def test_a_paused_queue_lets_running_jobs_finish_and_starts_nothing_until_resumed(
    bgjobs: Jobs, queues: Queues
) -> None:
    queues.create("pausable", maxConcurrency=2)
    bgjobs.create(manifest("p-running", queue="pausable", pod_annotations={RUN_FOR: "4s"}))
    bgjobs.wait_phase("p-running", "Running")
    queues.patch("pausable", {"paused": True})
    wait_for("the pause to be seen", lambda: queues.get("pausable")["spec"]["paused"])
    for name in ("p-1", "p-2"):
        bgjobs.create(manifest(name, queue="pausable"))
    bgjobs.wait_phase("p-1", "Queued", timeout=30)
    assert bgjobs.condition("p-1", "Queued")["reason"] == "QueuePaused"  # type: ignore[index]
    bgjobs.wait_phase("p-running", "Succeeded", timeout=60)
    assert phases(bgjobs, ["p-1", "p-2"]) == {"p-1": "Queued", "p-2": "Queued"}
    assert bgjobs.jobs("p-1") == [] and bgjobs.jobs("p-2") == []
    queues.patch("pausable", {"paused": False})
    for name in ("p-1", "p-2"):
        bgjobs.wait_phase(name, "Succeeded", timeout=60)


def test_raising_a_queues_limit_live_runs_more_at_once(
    bgjobs: Jobs, queues: Queues, api_client: client.ApiClient
) -> None:
    queues.create("grow", maxConcurrency=1)
    names = [f"g-{i}" for i in range(6)]
    with JobLog(api_client, bgjobs.ns) as log:
        for name in names:
            bgjobs.create(manifest(name, queue="grow", pod_annotations={RUN_FOR: "8s"}))
        bgjobs.wait_phase("g-0", "Running")
        wait_for("the rest to queue", lambda: bgjobs.status("g-5").get("phase") == "Queued")
        assert log.max_running == 1
        queues.patch("grow", {"maxConcurrency": 4})
        wait_for("four at once", lambda: len(log.running) >= 4, timeout=30)
        for name in names:
            bgjobs.wait_phase(name, "Succeeded", timeout=120)
    assert log.max_running == 4
    assert log.created == names


def test_killed_mid_queue_the_operator_rebuilds_order_and_counts_from_the_cluster(
    bgjobs: Jobs, queues: Queues, api_client: client.ApiClient, operator: Any
) -> None:
    queues.create("crash", maxConcurrency=2)
    names = [f"r-{i:02d}" for i in range(14)]
    with JobLog(api_client, bgjobs.ns) as log:
        for name in names[:8]:
            bgjobs.create(manifest(name, queue="crash", pod_annotations={RUN_FOR: "3s"}))
        wait_for("two running, the rest queued", lambda: log.created[:2] == names[:2])
        operator.kill()
        try:
            for name in names[8:]:  # arrive while it is down
                bgjobs.create(manifest(name, queue="crash", pod_annotations={RUN_FOR: "3s"}))
        finally:
            operator.start()
        for name in names:
            bgjobs.wait_phase(name, "Succeeded", timeout=300)
    assert log.created == names
    assert log.max_running <= 2
    assert all(bgjobs.status(n)["runs"] == 1 for n in names)


def test_a_rate_limited_queue_starts_no_more_than_its_rate(
    bgjobs: Jobs, queues: Queues, api_client: client.ApiClient
) -> None:
    queues.create("slow", rateLimit={"perSecond": 2, "burst": 1})
    names = [f"s-{i}" for i in range(10)]
    with JobLog(api_client, bgjobs.ns) as log:
        for name in names:
            bgjobs.create(manifest(name, queue="slow"))
        wait_for(
            "a job held by the rate",
            lambda: any(
                (bgjobs.condition(n, "Queued") or {}).get("reason") == "RateLimited" for n in names
            ),
            timeout=60,
        )
        for name in names:
            bgjobs.wait_phase(name, "Succeeded", timeout=120)
    # 10 starts at 2/s with a burst of 1: at least 4.5 s from the first to the last (a
    # watch delivers late, never early: 10 % are left for its jitter).
    spread = log.created_at[-1] - log.created_at[0]
    assert spread >= 4.5 * 0.9, spread
    assert log.created == names


def test_the_cli_pauses_lists_and_resumes_a_queue_and_describes_a_waiting_jobs_place(
    bgjobs: Jobs, queues: Queues, capsys: pytest.CaptureFixture[str]
) -> None:
    cli = Cli(bgjobs.ns, capsys)
    queues.create("clip", maxConcurrency=1)
    assert "queue clip paused" in cli("queue", "pause", "clip")
    cli("queue", "pause", "no-such-queue", code=3)
    for i in range(3):
        cli("enqueue", "test.echo", "--queue", "clip", "--name", f"c-{i}",
            "--concurrency-key", "user-1")  # fmt: skip
    for i in range(3):
        bgjobs.wait_phase(f"c-{i}", "Queued", timeout=30)
    assert bgjobs.get("c-0")["spec"]["concurrencyKey"] == "user-1"  # type: ignore[index]
    assert bgjobs.condition("c-1", "Queued")["reason"] == "QueuePaused"  # type: ignore[index]
    assert "position 2 of 3 in queue clip (QueuePaused: queue clip is paused)" in cli(
        "describe", "c-1"
    )
    wait_for("the queue's status", lambda: " 3 " in cli("queue", "list"), timeout=30)
    row = next(line for line in cli("queue", "list").splitlines() if line.startswith("clip"))
    assert row.split()[1:6] == ["1", "0", "true", "3", "0"]
    assert "queue clip resumed" in cli("queue", "resume", "clip")
    for i in range(3):
        bgjobs.wait_phase(f"c-{i}", "Succeeded", timeout=60)


def test_a_tenant_holds_neither_another_namespaces_queue_nor_a_slot_with_look_alike_jobs(
    bgjobs: Jobs, queues: Queues, api_client: client.ApiClient, core_v1: client.CoreV1Api
) -> None:
    """Issue 14, item 7: a queue is per namespace, and only the Jobs the operator made (by
    controller owner reference) hold its slots. A noisy namespace that fills its own queue
    named "shared", and a Job that merely carries a job's labels, block nobody else."""
    from tests.integration.test_rbac import delete_namespace, new_namespace

    noisy_ns = new_namespace(core_v1, "noisy")
    try:
        noisy, noisy_queues = Jobs(api_client, noisy_ns), Queues(api_client, noisy_ns)
        noisy_queues.create("shared", maxConcurrency=1)
        for i in range(3):
            noisy.create(manifest(f"noise-{i}", queue="shared", pod_annotations={RUN_FOR: "1h"}))
        noisy.wait_phase("noise-0", "Running", timeout=60)
        noisy.wait_phase("noise-2", "Queued", timeout=60)

        queues.create("shared", maxConcurrency=1)
        # A look-alike run of this queue (of a job "ghost"): labels, no owner reference.
        client.BatchV1Api(api_client).create_namespaced_job(bgjobs.ns, {
            "apiVersion": "batch/v1", "kind": "Job",
            "metadata": {"name": "look-alike", "labels": {
                c.LABEL_NAME: "ghost", c.LABEL_QUEUE: "shared", c.LABEL_MANAGED_BY: c.MANAGED_BY}},
            "spec": {"backoffLimit": 0, "template": {
                "metadata": {"annotations": {RUN_FOR: "1h"}},
                "spec": {"restartPolicy": "Never",
                         "containers": [{"name": "handler", "image": "busybox"}]}}},
        })  # fmt: skip
        bgjobs.create(manifest("mine", queue="shared"))
        bgjobs.wait_phase("mine", "Succeeded", timeout=90)
        assert noisy.status("noise-2")["phase"] == "Queued"  # its own queue is still full
    finally:
        delete_namespace(core_v1, noisy_ns)


def test_a_job_admitted_while_its_namespace_is_deleted_is_no_invalid_spec(  # type: ignore[no-untyped-def]
    api_client: client.ApiClient, core_v1: client.CoreV1Api, kubeconfig: str, operator
) -> None:
    """The API server refuses every create in a namespace being deleted (403, cause
    NamespaceTerminating). With the namespace controller frozen (kube-controller-manager
    SIGSTOPped) the namespace stays Terminating with its jobs in it; a job admitted then is
    refused its Job. It is going with its namespace: not InvalidSpec, nothing written, and the
    namespace goes once the controller is back."""
    from tests.integration.test_rbac import delete_namespace, new_namespace
    from tests.reliability.controlplane import ControlPlane

    ns = new_namespace(core_v1, "doomed")
    try:
        doomed, doomed_queues = Jobs(api_client, ns), Queues(api_client, ns)
        doomed_queues.create("held", maxConcurrency=1, paused=True)
        doomed.create(manifest("late", queue="held"))
        doomed.wait_phase("late", "Queued", timeout=60)
        plane = ControlPlane(os.environ.get("BGJ_CLUSTER", "backgroundjobs-test"), kubeconfig)
        plane.hang("kube-controller-manager")
        try:
            core_v1.delete_namespace(ns)
            wait_for(
                f"namespace {ns} Terminating",
                lambda: core_v1.read_namespace(ns).status.phase == "Terminating",
                timeout=30,
            )
            doomed_queues.patch("held", {"paused": False})  # admits "late" now
            said = f"{ns}/late: namespace {ns} is being deleted; its Job is not made"
            wait_for("the operator's log line", lambda: said in operator.log_path.read_text())
            status = doomed.status("late")
            assert status.get("phase") == "Queued", status
            assert not any(
                cond.get("reason") == c.Reason.INVALID_SPEC for cond in status.get("conditions", [])
            ), status
        finally:
            plane.resume("kube-controller-manager")

        def gone() -> bool:
            try:
                core_v1.read_namespace(ns)
                return False
            except client.ApiException as exc:
                return exc.status == 404

        wait_for(f"namespace {ns} gone", gone, timeout=180)
    finally:
        delete_namespace(core_v1, ns)
