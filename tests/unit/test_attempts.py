"""status.attempts: reading attempts off pods, merging them into the status, the bound, the
cut of errors, re-reads that add nothing, and the decisions that ask for the pods."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from tests.unit.test_reconciler import Harness, run
from tests.unit.test_reconciler import bgj as manifest

from backgroundjobs.api import constants as c
from backgroundjobs.api.models import MAX_ATTEMPTS_KEPT, Attempt, BackgroundJobStatus
from backgroundjobs.api.times import format_time
from backgroundjobs.cli.render import render_describe
from backgroundjobs.cli.render.attempts import attempt_lines
from backgroundjobs.client import JobInfo
from backgroundjobs.controller.decisions import Observed, ObservedJob, decide
from backgroundjobs.controller.decisions.attempts import (
    current_run,
    cut_bytes,
    error_of,
    merge,
    recorded_for,
)
from backgroundjobs.controller.decisions.podattempts import PodAttempt, pod_attempt, pod_attempts
from backgroundjobs.controller.settings import Settings

pytestmark = pytest.mark.unit

Body = dict[str, Any]
T0 = datetime(2030, 1, 1, 12, 0, 0, tzinfo=UTC)
UID = "11111111-0000-4000-8000-000000000001"
SETTINGS = Settings(default_image="example.com/handlers:1")


def pod(
    name: str,
    n: int = 0,
    *,
    phase: str = "Failed",
    exit_code: int | None = 1,
    reason: str | None = "Error",
    message: str | None = None,
    pod_reason: str | None = None,
    pod_message: str | None = None,
    deleted: bool = False,
    node: str = "node-a",
) -> Body:
    """A pod made ``n`` seconds after T0 that ran for 2 s."""
    created = T0 + timedelta(seconds=10 * n)
    terminated: Body = {
        "startedAt": format_time(created + timedelta(seconds=1)),
        "finishedAt": format_time(created + timedelta(seconds=3)),
    }
    if exit_code is not None:
        terminated["exitCode"] = exit_code
    if reason:
        terminated["reason"] = reason
    if message is not None:
        terminated["message"] = message
    status: Body = {
        "phase": phase,
        "startTime": format_time(created),
        "containerStatuses": [
            {"name": "sidecar", "state": {"terminated": {"exitCode": 9, "reason": "Error"}}},
            {"name": "handler", "state": {"terminated": terminated}},
        ],
    }
    if pod_reason:
        status["reason"] = pod_reason
    if pod_message:
        status["message"] = pod_message
    meta: Body = {"name": name, "creationTimestamp": format_time(created)}
    if deleted:
        meta["deletionTimestamp"] = format_time(created + timedelta(seconds=5))
    return {"metadata": meta, "spec": {"nodeName": node}, "status": status}


def attempts(*pods: Body) -> tuple[PodAttempt, ...]:
    return pod_attempts(list(pods))


# ------------------------------------------------------------------ reading pods


def test_a_failed_pod_becomes_an_attempt_of_its_handler_container() -> None:
    found = pod_attempt(pod("j-1-a", message='{"error": "SMTP down", "type": "ConnectionError"}'))
    assert found is not None
    assert (found.pod, found.node, found.exit_code, found.reason) == ("j-1-a", "node-a", 1, "Error")
    assert found.started_at == "2030-01-01T12:00:01Z"
    assert found.finished_at == "2030-01-01T12:00:03Z"
    assert not found.succeeded and not found.deleted
    assert error_of(found) == "ConnectionError: SMTP down"


def test_pending_and_running_pods_are_not_attempts_yet() -> None:
    running = pod("j-1-a", phase="Running")
    running["status"]["containerStatuses"] = [{"name": "handler", "state": {"running": {}}}]
    assert pod_attempt(running) is None
    assert pod_attempt({"metadata": {"name": "x"}, "status": {"phase": "Pending"}}) is None
    assert attempts(running, pod("j-1-b", 1)) == attempts(pod("j-1-b", 1))


def test_the_pods_reason_wins_over_the_containers() -> None:
    evicted = pod_attempt(
        pod("e", pod_reason="Evicted", pod_message="The node was low on resource: memory.")
    )
    assert evicted is not None and evicted.reason == "Evicted"
    assert error_of(evicted) == "The node was low on resource: memory."
    oom = pod_attempt(pod("o", exit_code=137, reason="OOMKilled"))
    assert oom is not None and (oom.reason, oom.exit_code) == ("OOMKilled", 137)
    drained = pod("d", reason=None)
    drained["status"]["conditions"] = [
        {"type": "DisruptionTarget", "status": "True", "reason": "EvictionByEvictionAPI"}
    ]
    found = pod_attempt(drained)
    assert found is not None and found.reason == "EvictionByEvictionAPI"


def test_a_pod_being_deleted_is_an_attempt_even_before_it_ends() -> None:
    killed = pod("k", phase="Running", exit_code=None, reason=None, deleted=True)
    killed["status"]["containerStatuses"] = []
    found = pod_attempt(killed)
    assert found is not None and found.deleted and found.reason == "Deleted"
    assert found.exit_code is None


def test_attempts_come_in_the_order_the_pods_were_made() -> None:
    names = [a.pod for a in attempts(pod("j-1-zz", 2), pod("j-1-aa", 1), pod("j-1-mm", 0))]
    assert names == ["j-1-mm", "j-1-aa", "j-1-zz"]


def test_a_succeeded_attempt_keeps_no_error() -> None:
    done = pod_attempt(pod("s", phase="Succeeded", exit_code=0, reason="Completed", message="42"))
    assert done is not None and done.succeeded and error_of(done) == ""


# ------------------------------------------------------------------ cutting errors


def test_errors_are_cut_to_300_bytes_never_inside_a_character() -> None:
    long_error = json.dumps({"error": "é" * 400 + "\n tail", "type": "ValueError"})
    found = pod_attempt(pod("x", message=long_error))
    assert found is not None
    text = error_of(found)
    assert len(text.encode()) <= 300 and text.startswith("ValueError: éé")
    assert "\ufffd" not in text
    record = merge([], 0, 1, "j-1", 1, None, (found,))[0][0]
    Attempt.model_validate(record.model_dump())  # within the CRD's maxLength
    assert cut_bytes("ab€", 4) == "ab"  # € is 3 bytes
    assert cut_bytes("short", 300) == "short"


def test_an_error_on_several_lines_is_one_line() -> None:
    found = pod_attempt(pod("x", message="Traceback:\n  File x\nKeyError: 'id'"))
    assert found is not None and error_of(found) == "Traceback: File x KeyError: 'id'"


# ------------------------------------------------------------------ merging


def test_new_pods_are_numbered_on_and_a_reread_adds_nothing() -> None:
    first = attempts(pod("j-1-a", 0, message='{"error": "one"}'))
    records, total = merge([], 0, 1, "j-1", 1, None, first)
    assert [(r.attempt, r.pod, r.message) for r in records] == [(1, "j-1-a", "one")]
    second = attempts(pod("j-1-a", 0, message='{"error": "one"}'), pod("j-1-b", 1, exit_code=3))
    records, total = merge(records, total, 1, "j-1", 2, None, second)
    assert [(r.attempt, r.pod, r.exit_code) for r in records] == [(1, "j-1-a", 1), (2, "j-1-b", 3)]
    again, again_total = merge(records, total, 1, "j-1", 2, None, second)
    assert again == records and again_total == total == 2


def test_a_known_pod_is_updated_in_place() -> None:
    killed = pod("j-1-a", phase="Running", exit_code=None, reason=None, deleted=True)
    records, total = merge([], 0, 1, "j-1", 1, None, attempts(killed))
    assert records[0].reason == "Deleted" and records[0].exit_code is None
    ended = pod("j-1-a", exit_code=137, deleted=True)
    records, total = merge(records, total, 1, "j-1", 1, None, attempts(ended))
    assert [(r.attempt, r.exit_code, r.reason) for r in records] == [(1, 137, "Error")]
    assert total == 1


def test_the_list_keeps_the_newest_ten_and_counts_all() -> None:
    pods = [pod(f"j-1-{i:02d}", i, exit_code=i + 1) for i in range(25)]
    records: list[Attempt] = []
    total = 0
    for seen in range(1, 26):  # the Job's pods read after each failure
        records, total = merge(records, total, 1, "j-1", seen, None, attempts(*pods[:seen]))
        assert len(records) == min(seen, MAX_ATTEMPTS_KEPT) and total == seen
    assert [r.attempt for r in records] == list(range(16, 26))
    assert [r.pod for r in records] == [f"j-1-{i:02d}" for i in range(15, 25)]
    # every pod read again at once (a restart): the dropped ones do not come back
    again, again_total = merge(records, total, 1, "j-1", 25, None, attempts(*pods))
    assert again == records and again_total == 25
    # one more pod after that: exactly one record more
    pods.append(pod("j-1-25", 25))
    more, more_total = merge(records, total, 1, "j-1", 26, None, attempts(*pods))
    assert more_total == 26 and [r.pod for r in more][-1] == "j-1-25" and len(more) == 10


def test_dropped_records_whose_kept_pods_are_gone_count_from_the_job() -> None:
    pods = [pod(f"j-1-{i:02d}", i) for i in range(12)]
    records, total = merge([], 0, 1, "j-1", 12, None, attempts(*pods))
    assert total == 12 and records[0].pod == "j-1-02"
    # the pods of every kept record are gone; two old ones (dropped) and one new one remain
    left = attempts(pods[0], pods[1], pod("j-1-12", 12))
    records, total = merge(records, total, 1, "j-1", 13, None, left)
    assert total == 13 and records[-1].pod == "j-1-12"
    assert [r.pod for r in records].count("j-1-00") == 0


def test_pods_the_job_counts_but_that_are_gone_get_a_record_without_a_pod() -> None:
    records, total = merge([], 0, 1, "j-1", 2, None, attempts(pod("j-1-b", 1)))
    assert total == 2
    gone = [r for r in records if r.pod is None]
    assert len(gone) == 1 and gone[0].reason == "PodDeleted" and gone[0].job == "j-1"
    # the count has caught up: nothing more on the next read
    assert recorded_for(records, total, "j-1") == 2
    records, total = merge([], 0, 1, "j-1", 1, "DeadlineExceeded", ())
    assert records[0].reason == "DeadlineExceeded"


def test_the_pod_deleted_by_the_jobs_deadline_says_so() -> None:
    killed = pod("j-1-a", exit_code=137, deleted=True)
    records, _ = merge([], 0, 1, "j-1", 1, "DeadlineExceeded", attempts(killed))
    assert (records[0].reason, records[0].exit_code) == ("DeadlineExceeded", 137)


def test_one_job_per_attempt_feeds_the_same_list() -> None:
    records, total = merge([], 0, 1, "j-1-a1", 1, "BackoffLimitExceeded", attempts(pod("p1", 0)))
    records, total = merge(records, total, 1, "j-1-a2", 1, None, attempts(pod("p2", 1)))
    records, total = merge(records, total, 1, "j-1-a2", 1, None, attempts(pod("p2", 1)))
    assert [(r.attempt, r.job, r.pod) for r in records] == [
        (1, "j-1-a1", "p1"),
        (2, "j-1-a2", "p2"),
    ]
    assert total == 2


def test_a_new_run_starts_a_new_list() -> None:
    old = [Attempt(attempt=1, run=1, job="j-1", pod="p", reason="Error")]
    assert current_run(old, 1, 2) == ([], 0)
    assert current_run(old, 1, 1) == (old, 1)


# ------------------------------------------------------------------ decisions


def bgj(status: Body) -> Body:
    return {
        "apiVersion": "backgroundjobs.dev/v1alpha1",
        "kind": "BackgroundJob",
        "metadata": {
            "name": "job",
            "namespace": "shop",
            "uid": UID,
            "generation": 1,
            "creationTimestamp": format_time(T0),
        },
        "spec": {"handler": "mail.send", "retries": 3},
        "status": status,
    }


def running() -> Body:
    return {"phase": "Running", "runs": 1, "jobName": "job-1", "startedAt": "2030-01-01T12:00:00Z"}


def job_view(**kw: Any) -> ObservedJob:
    return ObservedJob(name="job-1", uid="uid-job-1", owner_uid=UID, created=T0, **kw)


def test_a_failed_pod_asks_for_the_jobs_pods_then_records_them() -> None:
    job = job_view(failed=1, active_pods=1)
    obs = Observed(bgj=bgj(running()), now=T0 + timedelta(seconds=20), jobs={"job-1": job})
    plan = decide(obs, SETTINGS)
    assert plan.need_attempts == "job-1"
    obs.attempt_pods["job-1"] = attempts(pod("job-1-a", message='{"error": "boom"}'))
    plan = decide(obs, SETTINGS)
    assert plan.need_attempts is None
    st = BackgroundJobStatus.model_validate(plan.status)
    assert [(a.attempt, a.run, a.pod, a.message) for a in st.attempts] == [
        (1, 1, "job-1-a", "boom")
    ]
    assert st.attempts_total == 1 and st.failed_attempts == 1
    # the next reconcile (the status written): nothing to read, nothing changes
    again = Observed(bgj=bgj(plan.status), now=obs.now, jobs={"job-1": job})
    plan2 = decide(again, SETTINGS)
    assert plan2.need_attempts is None and plan2.status["attempts"] == plan.status["attempts"]


def test_a_job_without_finished_pods_reads_nothing_and_writes_no_attempts() -> None:
    job = job_view(active_pods=1, ready_pods=1)
    plan = decide(Observed(bgj=bgj(running()), now=T0, jobs={"job-1": job}), SETTINGS)
    assert plan.need_attempts is None
    assert "attempts" not in plan.status and "attemptsTotal" not in plan.status


def test_a_finished_job_is_recorded_and_its_result_read_from_the_same_pods() -> None:
    job = job_view(succeeded=1, complete=True, completion_time=T0 + timedelta(seconds=5))
    obs = Observed(bgj=bgj(running()), now=T0 + timedelta(seconds=6), jobs={"job-1": job})
    plan = decide(obs, SETTINGS)
    assert plan.need_attempts == "job-1"
    obs.attempt_pods["job-1"] = attempts(
        pod("job-1-a", phase="Succeeded", exit_code=0, reason="Completed")
    )
    obs.termination["job-1"] = '{"sent": true}'  # what the reconciler takes from those pods
    plan = decide(obs, SETTINGS)
    assert plan.status["phase"] == "Succeeded" and plan.status["result"] == {"sent": True}
    assert plan.status["attempts"][0]["reason"] == "Completed"
    assert plan.status["attempts"][0]["exitCode"] == 0 and plan.status["attemptsTotal"] == 1


# ------------------------------------------------------------------ the reconciler's reads


def test_each_finished_attempt_costs_one_pod_list_and_the_last_serves_the_result() -> None:
    async def case() -> None:
        h = Harness()
        h.apply(manifest("flaky", retries=3))
        await h.reconcile("flaky")
        job = h.kube.objects[("Job", "flaky-1")]
        h.kube.pods["flaky-1"] = []

        async def pod_ends(body: Body, job_status: Body) -> None:
            h.kube.pods["flaky-1"].append(body)
            job["status"] = job_status
            h.kube._stamp(job)
            h.watch_brings("Job", "flaky-1")
            await h.reconcile("flaky")
            h.watch_brings(c.KIND, "flaky")

        await pod_ends(pod("flaky-1-a", 0, message='{"error": "one"}'), {"failed": 1, "active": 1})
        await pod_ends(pod("flaky-1-b", 1, exit_code=3), {"failed": 2, "active": 1})
        assert h.kube.count("owned_job_pods") == 2
        # a reconcile with nothing new (another event, a restart) reads nothing
        await h.reconcile("flaky")
        assert h.kube.count("owned_job_pods") == 2
        now = format_time(datetime.now(UTC))
        done = {
            "failed": 2,
            "succeeded": 1,
            "completionTime": now,
            "conditions": [{"type": "Complete", "status": "True", "lastTransitionTime": now}],
        }
        last = pod("flaky-1-c", 2, phase="Succeeded", exit_code=0, reason="Completed")
        last["status"]["containerStatuses"][1]["state"]["terminated"]["message"] = '{"ok": 1}'
        await pod_ends(last, done)
        st = h.status("flaky")
        assert st["phase"] == "Succeeded" and st["result"] == {"ok": 1}
        assert [(a["attempt"], a["pod"], a.get("exitCode")) for a in st["attempts"]] == [
            (1, "flaky-1-a", 1),
            (2, "flaky-1-b", 3),
            (3, "flaky-1-c", 0),
        ]
        assert h.kube.count("owned_job_pods") == 3 and h.kube.count("termination_message") == 0

    run(case)


# ------------------------------------------------------------------ bgjobs describe


def test_describe_shows_the_attempts_as_a_table_within_the_width() -> None:
    status: Body = {
        "attemptsTotal": 12,
        "attempts": [
            {
                "attempt": 11,
                "run": 2,
                "job": "flaky-2",
                "pod": "flaky-2-x7k2p",
                "node": "kwok-node-0",
                "startedAt": "2030-01-01T12:00:01Z",
                "finishedAt": "2030-01-01T12:02:06Z",
                "exitCode": 1,
                "reason": "Error",
                "message": "ConnectionError: SMTP relay refused " + "x" * 200,
            },
            {"attempt": 12, "run": 2, "job": "flaky-2", "reason": "PodDeleted"},
        ],
    }
    lines = attempt_lines(status, width=80)
    assert lines[1] == "Attempts:   12 in run 2 (the last 2 shown)"
    header, first, second, *errors = lines[2:]
    assert header.split() == ["#", "POD", "NODE", "STARTED", "TOOK", "EXIT", "REASON"]
    assert first.split() == ["11", "flaky-2-x7k2p", "kwok-node-0", "12:00:01", "2m5s", "1", "Error"]
    assert second.split() == ["12", "<gone>", "PodDeleted"]
    assert errors[0].startswith("  11: ConnectionError: SMTP relay refused x")
    assert "".join(e.strip() for e in errors).endswith("x" * 50)  # whole, wrapped
    assert all(len(line) <= 80 for line in lines)
    assert attempt_lines({"phase": "Running"}) == []
    info = JobInfo.from_object(
        {"metadata": {"name": "flaky"}, "spec": {"handler": "h"}, "status": status}
    )
    described = render_describe(info, [], T0)
    assert described.index("Attempts:") < described.index("Timeline:")


def test_a_pod_ended_by_the_deadline_is_recorded_before_the_job_has_failed() -> None:
    # The Job controller sets FailureTarget, deletes the pod, counts it failed, and only
    # then (the pod gone) sets Failed: the attempt is read in between.
    body = {
        "metadata": {"name": "job-1", "uid": "uid-job-1"},
        "status": {
            "failed": 1,
            "conditions": [
                {"type": "FailureTarget", "status": "True", "reason": "DeadlineExceeded"}
            ],
        },
    }
    job = ObservedJob.from_body(body)
    assert job.failure_target == "DeadlineExceeded" and not job.finished
    obs = Observed(bgj=bgj(running()), now=T0 + timedelta(seconds=20), jobs={"job-1": job})
    obs.attempt_pods["job-1"] = attempts(pod("job-1-a", exit_code=137, deleted=True))
    plan = decide(obs, SETTINGS)
    assert [(a["reason"], a["exitCode"]) for a in plan.status["attempts"]] == [
        ("DeadlineExceeded", 137)
    ]


def test_a_hostile_count_costs_no_more_than_ten_records() -> None:
    records, total = merge([], 0, 1, "j-1", 10**9, None, attempts(pod("j-1-a", 0)))
    assert total == 10**9 and len(records) == MAX_ATTEMPTS_KEPT
    assert [r.attempt for r in records] == list(range(10**9 - 9, 10**9 + 1))
    assert all(r.reason == "PodDeleted" for r in records)
