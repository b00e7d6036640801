"""The Kueue hand-off (decisions/kueue.py): Jobs made suspended with the LocalQueue's label,
and the run's phase and conditions following its Workload's."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from tests.unit.test_decisions import T0, applied, bgj, cond_state, decide_at, view
from tests.unit.test_reconciler import NS, Harness, run
from tests.unit.test_reconciler import bgj as rbgj

from backgroundjobs.api import constants as c
from backgroundjobs.controller.decisions.kueue import why_held
from backgroundjobs.controller.decisions.workload import WorkloadState, workload_state

pytestmark = pytest.mark.unit

Body = dict[str, Any]
LQ = "team-a"


def workload(name: str, created: str, *conditions: tuple[str, str, str, str], cq: str = "") -> Body:
    status: Body = {
        "conditions": [
            {"type": t, "status": s, "reason": r, "message": m} for t, s, r, m in conditions
        ]
    }
    if cq:
        status["admission"] = {"clusterQueue": cq}
    return {"metadata": {"name": name, "creationTimestamp": created}, "status": status}


PENDING = workload(
    "job-job-1-abc",
    "2030-01-01T12:00:01Z",
    ("QuotaReserved", "False", "Pending", "couldn't assign flavors: insufficient quota for cpu"),
)


def test_a_first_run_makes_its_job_suspended_with_the_local_queue_label() -> None:
    plan = decide_at(bgj(), T0, kueue_local_queue=LQ, admitted=True)
    [job] = plan.create
    assert job["spec"]["suspend"] is True
    assert job["metadata"]["labels"][c.KUEUE_QUEUE_LABEL] == LQ
    st = plan.status
    assert st["phase"] == "Queued" and st["runs"] == 1 and st["jobName"] == "job-1"
    assert cond_state(st, "Queued") == ("True", "WaitingForQuota")
    assert cond_state(st, "Admitted") == ("False", "WaitingForQuota")
    assert cond_state(st, "Running") == ("False", "WaitingForQuota")


def test_without_kueue_the_job_is_not_suspended_nor_labelled() -> None:
    [job] = decide_at(bgj(), T0, admitted=True).create
    assert not job["spec"].get("suspend")
    assert c.KUEUE_QUEUE_LABEL not in job["metadata"].get("labels", {})


def held_status(state: WorkloadState | None) -> Body:
    body = applied(bgj(), decide_at(bgj(), T0, kueue_local_queue=LQ, admitted=True))
    later = T0 + timedelta(seconds=5)
    plan = decide_at(
        body,
        later,
        jobs=[view("job-1", suspended=True)],
        kueue_local_queue=LQ,
        workload=state,
    )
    assert plan.create == [] and plan.delete_jobs == []
    assert plan.requeue_at is not None and plan.requeue_at <= later + timedelta(seconds=30)
    return plan.status


def test_a_suspended_job_waits_queued_with_the_workloads_pending_message() -> None:
    st = held_status(workload_state([PENDING]))
    assert st["phase"] == "Queued"
    assert cond_state(st, "Queued") == ("True", "WaitingForQuota")
    assert "insufficient quota for cpu" in st["message"]


@pytest.mark.parametrize(
    ("conditions", "reason"),
    [
        ((("QuotaReserved", "True", "QuotaReserved", ""),), "QuotaReserved"),
        ((("Evicted", "True", "Preempted", "preempted by a higher priority"),), "Evicted"),
        (
            (
                ("Evicted", "True", "Preempted", "x"),
                ("Preempted", "True", "InClusterQueue", "by ns/other"),
            ),
            "Preempted",
        ),
    ],
)
def test_the_wait_reason_is_the_workloads(
    conditions: tuple[tuple[str, str, str, str], ...], reason: str
) -> None:
    st = held_status(workload_state([workload("w", "2030-01-01T12:00:01Z", *conditions)]))
    assert st["phase"] == "Queued"
    assert cond_state(st, "Queued") == ("True", reason)
    assert cond_state(st, "Admitted") == ("False", reason)


def test_no_workload_api_is_said_plainly() -> None:
    st = held_status(WorkloadState(installed=False))
    assert cond_state(st, "Queued") == ("True", "KueueNotInstalled")
    assert "workloads.kueue.x-k8s.io" in st["message"]


def test_no_workload_yet_waits_for_quota() -> None:
    st = held_status(None)
    assert cond_state(st, "Queued") == ("True", "WaitingForQuota")


def test_admitted_runs_then_a_preemption_queues_it_again_then_it_succeeds() -> None:
    body = applied(bgj(), decide_at(bgj(), T0, kueue_local_queue=LQ, admitted=True))
    admitted = workload(
        "w",
        "2030-01-01T12:00:01Z",
        ("QuotaReserved", "True", "QuotaReserved", ""),
        ("Admitted", "True", "Admitted", ""),
        cq="cq-1",
    )
    plan = decide_at(
        body,
        T0 + timedelta(seconds=10),
        jobs=[view("job-1", active_pods=1)],
        kueue_local_queue=LQ,
        workload=workload_state([admitted]),
    )
    st = plan.status
    assert st["phase"] == "Running"
    assert cond_state(st, "Admitted") == ("True", "Admitted")
    assert cond_state(st, "Queued") == ("False", "Admitted")
    assert cond_state(st, "Running") == ("True", "Admitted")
    assert "cq-1" in st["message"]
    body = applied(body, plan)
    evicted = workload(
        "w",
        "2030-01-01T12:00:01Z",
        ("Evicted", "True", "Preempted", "preempted"),
        ("Preempted", "True", "InClusterQueue", "to fit ns/urgent"),
    )
    plan = decide_at(
        body,
        T0 + timedelta(seconds=20),
        jobs=[view("job-1", suspended=True)],
        kueue_local_queue=LQ,
        workload=workload_state([evicted]),
    )
    st = plan.status
    assert st["phase"] == "Queued" and st["runs"] == 1  # the same run waits again
    assert cond_state(st, "Queued") == ("True", "Preempted")
    assert cond_state(st, "Running") == ("False", "Preempted")
    assert "to fit ns/urgent" in st["message"]
    body = applied(body, plan)
    done = view("job-1", complete=True, succeeded=1, completion_time=T0 + timedelta(seconds=40))
    plan = decide_at(
        body,
        T0 + timedelta(seconds=41),
        jobs=[done],
        kueue_local_queue=LQ,
        termination={"job-1": None},
    )
    assert plan.status["phase"] == "Succeeded"


def test_workload_state_reads_the_newest_workload() -> None:
    old = workload("a", "2030-01-01T12:00:01Z", ("Evicted", "True", "x", "old"))
    new = workload("b", "2030-01-01T12:00:09Z", ("QuotaReserved", "False", "Pending", "new"))
    state = workload_state([new, old])
    assert state.found and state.installed
    assert state.true("Evicted") is None
    assert why_held(LQ, state) == (
        c.Reason.WAITING_FOR_QUOTA,
        f"waiting for quota (LocalQueue {LQ}): new",
    )
    assert workload_state([]) == WorkloadState()


# ------------------------------------------------------------------ through the reconciler


def kueue_queue(h: Harness, name: str, **spec: Any) -> None:
    h.loop.cache.observe_queue(
        "ADDED",
        {
            "metadata": {"name": name, "namespace": NS},
            "spec": {"kueue": {"localQueue": LQ}, **spec},
        },
    )


def test_a_kueue_queue_makes_every_job_at_once_suspended_holding_no_slot_of_its_own() -> None:
    async def case() -> None:
        h = Harness()
        kueue_queue(h, "kq", maxConcurrency=1)  # Kueue's business: not applied
        names = ["a", "b", "c"]
        for name in names:
            h.apply(rbgj(name, queue="kq"))
            await h.reconcile(name)
        for name in names:
            job = h.kube.objects[("Job", f"{name}-1")]
            assert job["spec"]["suspend"] is True
            assert job["metadata"]["labels"][c.KUEUE_QUEUE_LABEL] == LQ
            h.watch_brings("Job", f"{name}-1")
            assert h.status(name)["phase"] == "Queued"
        slots = h.loop.cache.slots
        assert slots.running((NS, "kq")) == 0 and slots.pending((NS, "kq")) == 0

        # Kueue is not installed: said in the condition
        h.kube.workload_lists["uid-Job-a-1"] = None
        await h.reconcile("a")
        assert cond_state(h.status("a"), "Queued") == ("True", "KueueNotInstalled")

        # Kueue admits b: its Job unsuspended, its Workload Admitted
        h.kube.workload_lists["uid-Job-b-1"] = [
            workload(
                "job-b-1-x",
                "2030-01-01T12:00:01Z",
                ("QuotaReserved", "True", "QuotaReserved", ""),
                ("Admitted", "True", "Admitted", ""),
                cq="cq-1",
            )
        ]
        admitted_job = h.kube.objects[("Job", "b-1")]
        admitted_job["spec"]["suspend"] = False
        admitted_job["status"] = {"active": 1}
        h.kube._stamp(admitted_job)
        h.watch_brings("Job", "b-1")
        await h.reconcile("b")
        status = h.status("b")
        assert status["phase"] == "Running"
        assert cond_state(status, "Admitted") == ("True", "Admitted")
        assert "cq-1" in status["message"]

    run(case)


def test_a_paused_kueue_queue_makes_no_job() -> None:
    async def case() -> None:
        h = Harness()
        kueue_queue(h, "kq", paused=True)
        h.apply(rbgj("a", queue="kq"))
        await h.reconcile("a")
        assert ("Job", "a-1") not in h.kube.objects
        assert cond_state(h.status("a"), "Queued") == ("True", "QueuePaused")

    run(case)
