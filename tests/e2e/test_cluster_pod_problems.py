"""What a real pod can do wrong, on the real node, with the operator installed by the chart
and the namespace enforcing the `restricted` Pod Security Standard: an image that cannot be
pulled, a Secret that does not exist (created late, or never), a pod that Pod Security
refuses, a ResourceQuota without room, a nodeSelector no node matches. Each shows as a
condition with the kubelet's, the scheduler's or the API server's message and a Warning
Event, then ends as docs/API.md says ("when the pod cannot start").

The time from the cause (the pod's start on the node, its first FailedCreate, its turning
unschedulable) to the condition is printed (``pytest -s``); the bound asserted is the
contract's 60 s.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import pytest
from kubernetes import client
from tests.e2e.realcluster import Jobs, background_job, real_ready_nodes, wait_until

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


def _failed_create_since(jobs: Jobs, job_name: str) -> datetime:
    """When the Job controller first failed to create the Job's pod (its FailedCreate)."""

    def probe() -> datetime | None:
        events = jobs.core.list_namespaced_event(
            jobs.namespace, field_selector=f"involvedObject.name={job_name},reason=FailedCreate"
        ).items
        times = [e.first_timestamp or e.event_time for e in events]
        return min((t for t in times if t is not None), default=None)

    return wait_until(f"a FailedCreate Event of Job {job_name}", probe, timeout=120)


def test_a_pod_refused_by_pod_security_fails_the_job(jobs: Jobs) -> None:
    escalates = {"name": "handler", "securityContext": {"allowPrivilegeEscalation": True}}
    jobs.create(
        background_job(
            "escalates", "test.echo", ["x"], podTemplate={"spec": {"containers": [escalates]}}
        )
    )
    cause = _failed_create_since(jobs, "escalates-1")
    wait_until(
        "Failed PodCreateRefused",
        lambda: _reason(jobs, "escalates", "Failed", "PodCreateRefused"),
        timeout=CONTRACT_S + 60,
    )
    took = (datetime.now(UTC) - cause).total_seconds()
    print(f"\nPodCreateRefused: Failed {took:.1f}s after the first FailedCreate")
    assert took < CONTRACT_S
    failed = jobs.condition("escalates", "Failed")
    assert failed is not None and "violates PodSecurity" in failed["message"], failed
    assert "Failed" in _warnings(jobs.core, jobs.namespace, "escalates")


def test_a_full_quota_waits_then_the_job_runs(jobs: Jobs) -> None:
    quota = client.V1ResourceQuota(
        metadata=client.V1ObjectMeta(name="no-pods"),
        spec=client.V1ResourceQuotaSpec(hard={"pods": "0"}),
    )
    jobs.core.create_namespaced_resource_quota(jobs.namespace, quota)
    wait_until(
        "the quota's usage",
        lambda: jobs.core.read_namespaced_resource_quota("no-pods", jobs.namespace).status.used,
        timeout=120,
    )
    jobs.create(background_job("waits", "test.echo", ["x"], {"sleep": 0}))
    cause = _failed_create_since(jobs, "waits-1")
    shown = wait_until(
        "Running QuotaExceeded",
        lambda: _reason(jobs, "waits", "Running", "QuotaExceeded"),
        timeout=CONTRACT_S + 60,
    )
    took = (datetime.now(UTC) - cause).total_seconds()
    print(f"\nQuotaExceeded: condition {took:.1f}s after the first FailedCreate")
    assert took < CONTRACT_S
    assert "exceeded quota: no-pods" in shown["message"], shown
    assert "QuotaExceeded" in _warnings(jobs.core, jobs.namespace, "waits")
    jobs.core.delete_namespaced_resource_quota("no-pods", jobs.namespace)
    assert jobs.wait_phase("waits", timeout=600)["phase"] == "Succeeded"


def test_an_unschedulable_pod_waits_then_runs_once_a_node_fits(jobs: Jobs) -> None:
    label = "e2e.backgroundjobs.dev/podfail"
    picky = {"spec": {"nodeSelector": {label: "yes"}}}
    jobs.create(background_job("picky", "test.echo", ["x"], {"sleep": 0}, podTemplate=picky))

    def unschedulable_since() -> datetime | None:
        for pod in jobs.pods("picky"):
            for cnd in pod.status.conditions or []:
                if cnd.type == "PodScheduled" and cnd.reason == "Unschedulable":
                    return parse_time(cnd.last_transition_time.isoformat())
        return None

    cause = wait_until("the pod unschedulable", unschedulable_since, timeout=120)
    shown = wait_until(
        "Running Unschedulable",
        lambda: _reason(jobs, "picky", "Running", "Unschedulable"),
        timeout=CONTRACT_S + 60,
    )
    took = (datetime.now(UTC) - cause).total_seconds()
    print(f"\nUnschedulable: condition {took:.1f}s after the pod turned unschedulable")
    assert took < CONTRACT_S
    assert "didn't match" in shown["message"], shown
    assert jobs.status("picky")["phase"] == "Running"

    node = real_ready_nodes(jobs.core)[0]
    jobs.core.patch_node(node, {"metadata": {"labels": {label: "yes"}}})
    try:
        assert jobs.wait_phase("picky", timeout=300)["phase"] == "Succeeded"
    finally:
        jobs.core.patch_node(node, {"metadata": {"labels": {label: None}}})
