"""Pause until on the local cluster: ``bgjobs suspend NAME --until T`` holds a job until T,
through a SIGKILL of the operator in between, then it starts once, not before T; ``resume``
starts a job now; the API server refuses a suspendUntil without suspend."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from kubernetes.client.exceptions import ApiException
from tests.integration.bgj import Jobs, manifest, wait_for
from tests.integration.harness import OperatorProcess

from backgroundjobs.api.times import format_time, parse_time
from backgroundjobs.cli import main

pytestmark = pytest.mark.integration


def bgjobs_cli(namespace: str, *argv: str) -> int:
    return main(["-n", namespace, *argv])


def test_suspend_until_survives_a_restart_and_resumes_once_on_time(
    bgjobs: Jobs,
    namespace: str,
    operator: OperatorProcess,
    capsys: pytest.CaptureFixture[str],
) -> None:
    bgjobs.create(manifest("nightly-export", suspend=True))
    bgjobs.wait_phase("nightly-export", "Suspended")
    until = (datetime.now(UTC) + timedelta(seconds=25)).replace(microsecond=0)
    assert bgjobs_cli(namespace, "suspend", "nightly-export", "--until", format_time(until)) == 0
    assert f"suspended until {format_time(until)}" in capsys.readouterr().out
    wait_for(
        "the message naming the resume time",
        lambda: "suspended until" in (bgjobs.status("nightly-export").get("message") or ""),
        30,
    )

    # The operator dies while the job waits; its successor knows the time from the spec.
    operator.kill()
    operator.start()

    started = bgjobs.wait_phase("nightly-export", "Running", "Succeeded", timeout=90)
    jobs = bgjobs.jobs("nightly-export")
    assert [j.metadata.name for j in jobs] == ["nightly-export-1"]  # once
    created = jobs[0].metadata.creation_timestamp
    assert created >= until, f"started at {created}, before {until}"  # never early
    assert started["runs"] == 1
    resumed = bgjobs.condition("nightly-export", "Suspended")
    assert resumed is not None and resumed["status"] == "False"
    assert resumed["message"] == f"resumed at {format_time(until)} (spec.suspendUntil)"
    assert parse_time(resumed["lastTransitionTime"]) >= until  # type: ignore[operator]


def test_resume_starts_a_suspended_job_now(
    bgjobs: Jobs, namespace: str, capsys: pytest.CaptureFixture[str]
) -> None:
    bgjobs.create(manifest("held", suspend=True))
    bgjobs.wait_phase("held", "Suspended")
    assert bgjobs_cli(namespace, "resume", "held") == 0
    assert "resumed" in capsys.readouterr().out
    bgjobs.wait_phase("held", "Running", "Succeeded")
    spec = (bgjobs.get("held") or {})["spec"]
    assert spec["suspend"] is False and "suspendUntil" not in spec
    # a missing job: exit code 3; an --until in the past: a usage error, nothing changed
    assert bgjobs_cli(namespace, "suspend", "no-such-job", "--until", "1h") == 3
    assert bgjobs_cli(namespace, "suspend", "held", "--until", "2000-01-01T00:00:00Z") == 2
    assert (bgjobs.get("held") or {})["spec"]["suspend"] is False


def test_suspend_until_without_suspend_is_refused(bgjobs: Jobs) -> None:
    with pytest.raises(ApiException) as refused:
        bgjobs.create(manifest("odd", suspendUntil="2030-01-01T00:00:00Z"))
    assert refused.value.status == 422
    assert "spec.suspendUntil is only allowed with spec.suspend: true" in str(refused.value.body)
