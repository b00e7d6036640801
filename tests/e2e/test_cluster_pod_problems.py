"""What a real pod can do wrong, on the real node, with the operator installed by the chart:
an image that cannot be pulled, a Secret that does not exist (created late, or never). Each
shows as the Running condition's reason with the kubelet's message and a Warning Event, then
ends as docs/API.md says ("when the pod cannot start"). Admission refusals, quotas and
unschedulable pods are the control plane's doing: tests/integration/test_pod_problems.py.

The time from the cause (the pod's start on the node) to the condition is printed
(``pytest -s``); the bound asserted is the contract's 60 s.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import pytest
from kubernetes import client
from tests.e2e.realcluster import Jobs, background_job, wait_until

from backgroundjobs.api.times import parse_time

# The first test of a session may start the cluster, build the images and install the chart.
pytestmark = [pytest.mark.e2e, pytest.mark.timeout(1800)]

CONTRACT_S = 60.0
GRACE_S = 60.0  # the chart's default podStartGrace


def _reason(jobs: Jobs, name: str, ctype: str, reason: str) -> dict[str, Any] | None:
    cnd = jobs.condition(name, ctype)
    return cnd if cnd is not None and cnd.get("reason") == reason else None


def _pod_started(jobs: Jobs, name: str) -> datetime:
    """When the kubelet took the job's pod (status.startTime): the cause's start."""

    def probe() -> datetime | None:
        for pod in jobs.pods(name):
            if pod.status.start_time is not None:
                return parse_time(pod.status.start_time.isoformat())
        return None

    return wait_until(f"a started pod of {name}", probe, timeout=300)


def _warnings(core: client.CoreV1Api, namespace: str, name: str) -> list[str]:
    events = core.list_namespaced_event(
        namespace, field_selector=f"involvedObject.kind=BackgroundJob,involvedObject.name={name}"
    ).items
    return [e.reason for e in events if e.type == "Warning"]


def test_an_image_that_cannot_be_pulled_fails_the_job(jobs: Jobs) -> None:
    image = "registry.invalid/backgroundjobs/missing:1"
    jobs.create(background_job("no-image", "test.echo", ["hello"], image=image))
    started = _pod_started(jobs, "no-image")
    shown = wait_until(
        "Running ImagePullBackOff",
        lambda: _reason(jobs, "no-image", "Running", "ImagePullBackOff"),
        timeout=CONTRACT_S + 60,
    )
    took = (datetime.now(UTC) - started).total_seconds()
    print(f"\nImagePullBackOff: condition {took:.1f}s after the pod started")
    assert took < CONTRACT_S
    assert image in shown["message"], shown
    assert "ImagePullBackOff" in _warnings(jobs.core, jobs.namespace, "no-image")

    status = jobs.wait_phase("no-image", "Failed", timeout=GRACE_S + 120)
    ended = (datetime.now(UTC) - started).total_seconds()
    print(f"ImagePullFailed: Failed {ended:.1f}s after the pod started (grace {GRACE_S:.0f}s)")
    failed = jobs.condition("no-image", "Failed")
    assert failed is not None and failed["reason"] == "ImagePullFailed", failed
    assert image in status["message"]
    assert ended >= GRACE_S
    assert "Failed" in _warnings(jobs.core, jobs.namespace, "no-image")
    # its Job was deleted: no pod keeps pulling
    wait_until("the pods gone", lambda: not jobs.pods("no-image"), timeout=120)


def _needs_secret(name: str, secret: str) -> dict[str, Any]:
    handler = {
        "name": "handler",
        "env": [
            {
                "name": "SMTP_PASSWORD",
                "valueFrom": {"secretKeyRef": {"name": secret, "key": "password"}},
            }
        ],
    }
    return background_job(
        name, "test.echo", ["mail"], {"sleep": 0}, podTemplate={"spec": {"containers": [handler]}}
    )


def test_a_missing_secret_is_shown_then_waits_for_it_or_fails(jobs: Jobs) -> None:
    jobs.create(_needs_secret("late-secret", "smtp-late"), _needs_secret("no-secret", "smtp-none"))
    started = _pod_started(jobs, "late-secret")
    shown = wait_until(
        "Running CreateContainerConfigError",
        lambda: _reason(jobs, "late-secret", "Running", "CreateContainerConfigError"),
        timeout=CONTRACT_S + 60,
    )
    took = (datetime.now(UTC) - started).total_seconds()
    print(f"\nCreateContainerConfigError: condition {took:.1f}s after the pod started")
    assert took < CONTRACT_S
    assert 'secret "smtp-late" not found' in shown["message"], shown
    assert "CreateContainerConfigError" in _warnings(jobs.core, jobs.namespace, "late-secret")

    # The Secret comes within the grace: the pod starts and the job succeeds.
    jobs.core.create_namespaced_secret(
        jobs.namespace,
        client.V1Secret(
            metadata=client.V1ObjectMeta(name="smtp-late"), string_data={"password": "x"}
        ),
    )
    created = time.monotonic()
    assert jobs.wait_phase("late-secret", timeout=300)["phase"] == "Succeeded"
    print(f"late Secret: Succeeded {time.monotonic() - created:.1f}s after it was created")

    # The other never gets one: ConfigError once the grace is over.
    status = jobs.wait_phase("no-secret", timeout=GRACE_S + 120)
    failed = jobs.condition("no-secret", "Failed")
    assert failed is not None and failed["reason"] == "ConfigError", (status, failed)
    assert 'secret "smtp-none" not found' in failed["message"]
