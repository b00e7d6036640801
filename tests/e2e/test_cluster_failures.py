"""Failures for real: a handler's exception retried by the Job controller, a permanent error
never retried, a timeout delivered as SIGTERM, a cancel that ends the pod."""

from __future__ import annotations

import subprocess
import time
from datetime import UTC, datetime

import pytest
from kubernetes.client.exceptions import ApiException
from tests.e2e.realcluster import Jobs, background_job, wait_until

# The first test of a session may start the cluster, build the images and install the chart.
pytestmark = [pytest.mark.e2e, pytest.mark.timeout(1800)]


def test_an_exception_is_retried_then_backoff_limit_exceeded(jobs: Jobs) -> None:
    jobs.create(
        background_job(
            "flaky", "test.echo", ["gateway timeout"], {"sleep": 0, "fail": "exception"}, retries=1
        )
    )
    status = jobs.wait_phase("flaky", timeout=420)
    assert status["phase"] == "Failed", status
    failed = jobs.condition("flaky", "Failed")
    assert failed is not None and failed["reason"] == "BackoffLimitExceeded", failed
    assert "test.echo failed on request: gateway timeout" in status["message"], status
    assert jobs.handler_exit_codes("flaky") == [1, 1]  # the first run and its one retry


def test_a_permanent_error_exits_2_and_is_never_retried(jobs: Jobs) -> None:
    jobs.create(
        background_job("bad-card", "test.echo", ["card refused"], {"sleep": 0, "fail": "permanent"})
    )
    status = jobs.wait_phase("bad-card", timeout=300)
    assert status["phase"] == "Failed", status
    failed = jobs.condition("bad-card", "Failed")
    assert failed is not None and failed["reason"] == "NonRetryableExitCode", failed
    assert "failed permanently on request: card refused" in status["message"], status
    assert jobs.handler_exit_codes("bad-card") == [2]


def _running_pod(jobs: Jobs, name: str) -> str:
    def probe() -> str | None:
        for pod in jobs.pods(name):
            if pod.status.phase == "Running":
                return str(pod.metadata.name)
        return None

    return wait_until(f"a Running pod of {name}", probe, timeout=300)


def test_a_timeout_delivers_sigterm_and_ends_deadline_exceeded(jobs: Jobs) -> None:
    jobs.create(background_job("slow", "test.echo", ["slow work"], {"sleep": 300}, timeout="20s"))
    pod = _running_pod(jobs, "slow")
    # Follow the log from now on: the pod is deleted with its Job's deadline.
    follow = subprocess.Popen(
        ["kubectl", "logs", "-f", "-n", jobs.namespace, pod, "-c", "handler"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        status = jobs.wait_phase("slow", timeout=300)
        streamed, _ = follow.communicate(timeout=120)
    finally:
        follow.kill()
    assert status["phase"] == "Failed", status
    failed = jobs.condition("slow", "Failed")
    assert failed is not None and failed["reason"] == "DeadlineExceeded", failed
    assert "echo: cancelled after" in streamed, streamed


def test_cancel_terminates_the_pod_within_its_grace_period(jobs: Jobs) -> None:
    jobs.create(background_job("long", "test.echo", ["long work"], {"sleep": 600}))

    pod = _running_pod(jobs, "long")
    grace = 30  # the pod's default terminationGracePeriodSeconds
    requested = time.monotonic()
    jobs.annotate("long", "backgroundjobs.dev/cancel", datetime.now(UTC).isoformat())
    assert jobs.wait_phase("long", "Cancelled", timeout=120)["phase"] == "Cancelled"

    def pod_gone() -> bool:
        try:
            jobs.core.read_namespaced_pod(pod, jobs.namespace)
        except ApiException as e:
            return e.status == 404
        return False

    wait_until(f"pod {pod} gone", pod_gone, timeout=grace + 60)
    # The handler stops on SIGTERM at once: the pod goes well within its grace period.
    assert time.monotonic() - requested < grace + 30
