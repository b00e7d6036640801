"""status.attempts on the cluster: a job that fails twice then succeeds keeps a record of each
attempt (exit code, reason, error, node), after its pods are gone and across operator
restarts, without duplicates."""

from __future__ import annotations

import time
from typing import Any

import pytest
from kubernetes.client.rest import ApiException
from tests.integration.bgj import FAIL_EXIT, MESSAGE, RUN_FOR, Jobs, manifest, wait_for

from backgroundjobs.api import constants as c
from backgroundjobs.cli import main

pytestmark = pytest.mark.integration

# Attempt n ends as the test says once it is running: its pod's annotations are changed
# (kwok's stage then ends it after RUN_FOR with that exit code and termination message).
ENDINGS = [
    {FAIL_EXIT: "1", MESSAGE: '{"error": "SMTP down", "type": "ConnectionError"}'},
    {FAIL_EXIT: "3", MESSAGE: '{"error": "still down", "type": "TimeoutError"}'},
    {FAIL_EXIT: "0", MESSAGE: '{"sent": true}'},
]


def end_next_attempt(bgjobs: Jobs, job: str, ended: list[str], ending: dict[str, str]) -> str:
    """Wait for the Job's next running pod and make it end with ``ending``."""

    def running_pod() -> str | None:
        for p in bgjobs.pods(job):
            if p.status.phase == "Running" and p.metadata.name not in ended:
                return str(p.metadata.name)
        return None

    name = wait_for(f"the next running pod of {job}", running_pod, timeout=180)
    bgjobs.core.patch_namespaced_pod(
        name, bgjobs.ns, {"metadata": {"annotations": {**ending, RUN_FOR: "1s"}}}
    )
    ended.append(name)
    return name


def attempts(bgjobs: Jobs, name: str) -> list[dict[str, Any]]:
    return list(bgjobs.status(name).get("attempts") or [])


def test_attempts_are_recorded_once_and_outlive_pods_and_restarts(  # type: ignore[no-untyped-def]
    bgjobs: Jobs, operator, capsys: pytest.CaptureFixture[str]
) -> None:
    bgjobs.create(manifest("flaky", retries=3, pod_annotations={RUN_FOR: "1h"}))
    ended: list[str] = []
    end_next_attempt(bgjobs, "flaky-1", ended, ENDINGS[0])
    wait_for("attempt 1 recorded", lambda: len(attempts(bgjobs, "flaky")) == 1, timeout=120)

    # attempt 2 fails while the operator is down: recorded once it is back, attempt 1 once
    operator.kill()
    try:
        second = end_next_attempt(bgjobs, "flaky-1", ended, ENDINGS[1])

        def second_failed() -> bool:
            return any(
                p.metadata.name == second and p.status.phase == "Failed"
                for p in bgjobs.pods("flaky-1")
            )

        wait_for("attempt 2 to fail", second_failed, timeout=120)
    finally:
        operator.start()
    wait_for("attempt 2 recorded", lambda: len(attempts(bgjobs, "flaky")) == 2, timeout=120)

    end_next_attempt(bgjobs, "flaky-1", ended, ENDINGS[2])
    st = bgjobs.wait_phase("flaky", "Succeeded", "Failed", timeout=180)
    assert st["phase"] == "Succeeded" and st["result"] == {"sent": True}
    records = st["attempts"]
    assert [r["attempt"] for r in records] == [1, 2, 3]
    assert st["attemptsTotal"] == 3 and st["failedAttempts"] == 2
    assert [r["pod"] for r in records] == ended
    assert [(r["exitCode"], r["reason"]) for r in records] == [
        (1, "Error"),
        (3, "Error"),
        (0, "Completed"),
    ]
    assert [r.get("message", "") for r in records] == [
        "ConnectionError: SMTP down",
        "TimeoutError: still down",
        "",
    ]
    for r in records:
        assert r["job"] == "flaky-1" and r["run"] == 1
        assert r["node"].startswith("kwok-node-")
        assert r["startedAt"] <= r["finishedAt"]

    # the pods go: the records stay
    bgjobs.core.delete_collection_namespaced_pod(
        bgjobs.ns, label_selector="batch.kubernetes.io/job-name=flaky-1"
    )
    wait_for("the pods to be gone", lambda: not bgjobs.pods("flaky-1"), timeout=120)
    assert bgjobs.status("flaky")["attempts"] == records
    capsys.readouterr()
    assert main(["-n", bgjobs.ns, "describe", "flaky"]) == 0
    attempts_section = capsys.readouterr().out.split("Attempts:")[1].split("Timeline:")[0]
    assert "3 in run 1" in attempts_section
    assert all(pod in attempts_section for pod in ended)
    assert "1: ConnectionError: SMTP down" in attempts_section

    # restarted once more: its first reconciles (every job's) add nothing either
    operator.kill()
    operator.start()
    time.sleep(5)
    st = bgjobs.status("flaky")
    assert st["attempts"] == records and st["attemptsTotal"] == 3


def test_the_attempt_the_timeout_ended_says_deadline_exceeded(bgjobs: Jobs) -> None:
    bgjobs.create(manifest("slow", timeout="3s", pod_annotations={RUN_FOR: "1h"}))
    st = bgjobs.wait_phase("slow", "Failed", timeout=120)
    failed = bgjobs.condition("slow", "Failed")
    assert failed and failed["reason"] == "DeadlineExceeded"
    records = wait_for("the attempt recorded", lambda: attempts(bgjobs, "slow"), timeout=60)
    assert len(records) == 1 and st["attemptsTotal"] == 1
    assert records[0]["reason"] == "DeadlineExceeded" and records[0]["job"] == "slow-1"


def test_a_recurring_job_keeps_the_attempts_of_its_newest_run(bgjobs: Jobs) -> None:
    # Once a year: only the triggered runs happen during the test.
    bgjobs.create(
        manifest(
            "nightly",
            schedule="0 0 1 1 *",
            retries=1,
            pod_annotations={FAIL_EXIT: "1", MESSAGE: '{"error": "no disk", "type": "OSError"}'},
        )
    )
    bgjobs.wait_phase("nightly", "Scheduled")
    bgjobs.annotate("nightly", c.ANNOTATION_TRIGGER, "first")

    def run_failed(run: int) -> dict[str, Any] | None:
        st = bgjobs.status("nightly")
        done = st.get("runs") == run and len(st.get("attempts") or []) == 2
        failed = any(
            x["type"] == "Failed" and x["status"] == "True" for x in st.get("conditions") or []
        )
        return st if done and failed else None

    st = wait_for("run 1 to fail twice", lambda: run_failed(1), timeout=180)
    first = st["attempts"]
    assert [(a["attempt"], a["run"], a["exitCode"]) for a in first] == [(1, 1, 1), (2, 1, 1)]
    assert {a["job"] for a in first} == {st["jobName"]}
    assert first[0]["message"] == "OSError: no disk"

    bgjobs.annotate("nightly", c.ANNOTATION_TRIGGER, "second")
    st = wait_for("run 2 to fail twice", lambda: run_failed(2), timeout=180)
    assert [(a["attempt"], a["run"]) for a in st["attempts"]] == [(1, 2), (2, 2)]
    assert st["attemptsTotal"] == 2 and {a["job"] for a in st["attempts"]} == {st["jobName"]}


def test_the_api_server_holds_status_attempts_to_its_bounds(bgjobs_no_operator: Jobs) -> None:
    jobs = bgjobs_no_operator
    jobs.create(manifest("bounded", suspend=True))
    widest = {
        "attempt": 1,
        "run": 1,
        "job": "j" * 253,
        "pod": "p" * 253,
        "node": "n" * 253,
        "startedAt": "2030-01-01T12:00:00Z",
        "finishedAt": "2030-01-01T12:00:01Z",
        "exitCode": 137,
        "reason": "r" * 128,
        "message": "é" * 150,  # 300 bytes, the most the operator writes
    }

    def write(attempts: list[dict[str, Any]]) -> None:
        jobs.custom.patch_namespaced_custom_object_status(
            c.GROUP,
            c.VERSION,
            jobs.ns,
            c.PLURAL,
            "bounded",
            {"status": {"attempts": attempts, "attemptsTotal": len(attempts)}},
        )

    ten = [{**widest, "attempt": i} for i in range(1, 11)]
    write(ten)  # the largest status.attempts the operator writes is accepted
    assert jobs.status("bounded")["attempts"] == ten
    for refused, field in (
        ([*ten, {**widest, "attempt": 11}], "status.attempts"),
        ([{**widest, "message": "x" * 301}], "status.attempts[0].message"),
    ):
        with pytest.raises(ApiException) as info:
            write(refused)
        assert info.value.status == 422 and field in (info.value.body or ""), info.value.body


def test_with_a_retry_policy_each_attempts_job_is_recorded(bgjobs: Jobs) -> None:
    failing = {FAIL_EXIT: "1", MESSAGE: '{"error": "relay down", "type": "SMTPError"}'}
    policy = {"backoff": {"initial": "10s", "factor": 2, "max": "1m"}}
    bgjobs.create(manifest("relay", retries=2, retryPolicy=policy, pod_annotations=failing))
    wait_for("two attempts recorded", lambda: len(attempts(bgjobs, "relay")) == 2, timeout=180)
    # the third attempt's Job (due 20 s after the second failed) is made from this spec
    fixed = {FAIL_EXIT: "0", MESSAGE: '"sent"'}
    bgjobs.patch("relay", {"spec": {"podTemplate": {"metadata": {"annotations": fixed}}}})
    st = bgjobs.wait_phase("relay", "Succeeded", "Failed", timeout=180)
    assert st["phase"] == "Succeeded"
    records = st["attempts"]
    assert [(r["attempt"], r["run"], r["job"], r["exitCode"]) for r in records] == [
        (1, 1, "relay-1", 1),
        (2, 1, "relay-1-a2", 1),
        (3, 1, "relay-1-a3", 0),
    ]
    assert records[0]["message"] == "SMTPError: relay down" and st["attemptsTotal"] == 3
