"""``suspend`` holds a pending retry on the local cluster: a job whose next attempt waits
(``spec.retryPolicy``) and is suspended gets no attempt past its due time, then gets it,
once, when resumed; a SIGKILL of the operator while it is held changes nothing."""

from __future__ import annotations

import time

import pytest
from tests.integration.bgj import FAIL_EXIT, Jobs, manifest, wait_for
from tests.integration.harness import OperatorProcess

from backgroundjobs.api.times import parse_time
from backgroundjobs.cli import main

pytestmark = pytest.mark.integration


def test_a_suspended_retry_waits_for_resume(
    bgjobs: Jobs, namespace: str, operator: OperatorProcess, capsys: pytest.CaptureFixture[str]
) -> None:
    policy = {"backoff": {"initial": "6s", "factor": 2, "max": "1m"}}
    bgjobs.create(manifest("held", retries=2, retryPolicy=policy, pod_annotations={FAIL_EXIT: "1"}))
    waiting = wait_for(
        "the first Retrying wait",
        lambda: (st := bgjobs.status("held")).get("nextAttemptAt") and st,
        timeout=120,
    )
    assert main(["-n", namespace, "suspend", "held"]) == 0
    bgjobs.wait_phase("held", "Suspended", timeout=60)
    due = parse_time(waiting["nextAttemptAt"])
    assert due is not None
    # past the due time, and across a SIGKILL of the operator: no second attempt
    operator.kill()
    operator.start()
    while time.time() < due.timestamp() + 8:
        time.sleep(1)
    assert [j.metadata.name for j in bgjobs.jobs("held")] == ["held-1"]
    assert bgjobs.status("held")["phase"] == "Suspended"
    capsys.readouterr()
    assert main(["-n", namespace, "resume", "held"]) == 0
    wait_for("the second attempt", lambda: bgjobs.job("held-1-a2"), timeout=120)
    # the operator writes the status after it created the Job (a CI run read it between)
    wait_for("the job out of Suspended", lambda: bgjobs.status("held")["phase"] != "Suspended", 60)
    assert bgjobs.status("held")["phase"] in ("Running", "Retrying", "Failed")
    time.sleep(2)
    assert sorted(j.metadata.name for j in bgjobs.jobs("held"))[:2] == ["held-1", "held-1-a2"]
    assert len([j for j in bgjobs.jobs("held") if j.metadata.name == "held-1-a2"]) == 1
