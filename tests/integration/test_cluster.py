"""The local cluster behaves like a real one where the operator depends on it.

The real Job, CronJob, garbage-collector and serviceaccount controllers and the scheduler run;
kwok plays the kubelet with the project's stages (hack/kwok/pod-stages.yaml), whose
annotations decide how a pod ends. Timeouts are generous: these tests assert outcomes, never
speed.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

pytestmark = pytest.mark.integration

EXIT_CODE = "kwok.backgroundjobs.dev/exit-code"
DURATION = "kwok.backgroundjobs.dev/duration"
MESSAGE = "kwok.backgroundjobs.dev/message"

T = TypeVar("T")


def wait_until(
    what: str, probe: Callable[[], T | None], timeout: float = 120, interval: float = 0.5
) -> T:
    """Poll `probe` until it returns something other than None/False; fail after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value is not None and value is not False:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def job_manifest(
    name: str,
    annotations: dict[str, str] | None = None,
    backoff_limit: int = 0,
    pod_failure_policy: dict[str, Any] | None = None,
) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "backoffLimit": backoff_limit,
        "template": {
            "metadata": {"annotations": annotations or {}},
            "spec": {
                "restartPolicy": "Never",
                "containers": [{"name": "main", "image": "registry.invalid/job:1"}],
            },
        },
    }
    if pod_failure_policy is not None:
        spec["podFailurePolicy"] = pod_failure_policy
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name}, "spec": spec}


def finished_condition(job: client.V1Job) -> client.V1JobCondition | None:
    """The Job's Complete or Failed condition once it is True."""
    for c in (job.status and job.status.conditions) or []:
        if c.type in ("Complete", "Failed") and c.status == "True":
            return c
    return None


def wait_job_finished(
    batch_v1: client.BatchV1Api, ns: str, name: str, timeout: float = 180
) -> tuple[client.V1Job, client.V1JobCondition]:
    def probe() -> tuple[client.V1Job, client.V1JobCondition] | None:
        job = batch_v1.read_namespaced_job(name, ns)
        cond = finished_condition(job)
        return (job, cond) if cond else None

    return wait_until(f"job {ns}/{name} to finish", probe, timeout)


def job_pods(core_v1: client.CoreV1Api, ns: str, job_name: str) -> list[client.V1Pod]:
    return core_v1.list_namespaced_pod(ns, label_selector=f"job-name={job_name}").items


def terminated(pod: client.V1Pod) -> client.V1ContainerStateTerminated | None:
    statuses = pod.status.container_statuses or []
    return statuses[0].state.terminated if statuses else None


def test_succeeding_pod_completes_the_job(
    batch_v1: client.BatchV1Api, core_v1: client.CoreV1Api, namespace: str
) -> None:
    batch_v1.create_namespaced_job(namespace, job_manifest("ok"))

    job, cond = wait_job_finished(batch_v1, namespace, "ok")

    assert cond.type == "Complete"
    assert job.status.succeeded == 1
    (pod,) = job_pods(core_v1, namespace, "ok")
    assert pod.spec.node_name and pod.spec.node_name.startswith("kwok-node-")  # the scheduler
    assert pod.status.phase == "Succeeded"
    term = terminated(pod)
    assert term is not None
    assert (term.exit_code, term.reason) == (0, "Completed")


def test_backoff_limit_fails_the_job_after_limit_plus_one_pod_failures(
    batch_v1: client.BatchV1Api, core_v1: client.CoreV1Api, namespace: str
) -> None:
    batch_v1.create_namespaced_job(
        namespace, job_manifest("flaky", annotations={EXIT_CODE: "1"}, backoff_limit=2)
    )

    # The Job controller waits 10s, then 20s between retries.
    job, cond = wait_job_finished(batch_v1, namespace, "flaky", timeout=300)

    assert (cond.type, cond.reason) == ("Failed", "BackoffLimitExceeded")
    assert job.status.failed == 3
    pods = job_pods(core_v1, namespace, "flaky")
    assert len(pods) == 3
    for pod in pods:
        assert pod.status.phase == "Failed"
        term = terminated(pod)
        assert term is not None
        assert (term.exit_code, term.reason) == (1, "Error")


def test_pod_failure_policy_fails_the_job_on_exit_code(
    batch_v1: client.BatchV1Api, namespace: str
) -> None:
    policy = {
        "rules": [
            {
                "action": "FailJob",
                "onExitCodes": {"containerName": "main", "operator": "In", "values": [2]},
            }
        ]
    }
    batch_v1.create_namespaced_job(
        namespace,
        job_manifest(
            "fatal", annotations={EXIT_CODE: "2"}, backoff_limit=5, pod_failure_policy=policy
        ),
    )

    job, cond = wait_job_finished(batch_v1, namespace, "fatal")

    assert (cond.type, cond.reason) == ("Failed", "PodFailurePolicy")
    assert job.status.failed == 1


def test_termination_message_appears_in_container_status(
    batch_v1: client.BatchV1Api, core_v1: client.CoreV1Api, namespace: str
) -> None:
    result = json.dumps({"ok": True, "value": 42, "note": "<a & b>\nsecond line"})
    batch_v1.create_namespaced_job(namespace, job_manifest("result", annotations={MESSAGE: result}))

    _, cond = wait_job_finished(batch_v1, namespace, "result")

    assert cond.type == "Complete"
    (pod,) = job_pods(core_v1, namespace, "result")
    term = terminated(pod)
    assert term is not None
    assert term.message == result
    assert json.loads(term.message)["value"] == 42
    assert term.started_at is not None and term.finished_at is not None


def test_duration_annotation_keeps_the_pod_running(
    batch_v1: client.BatchV1Api, core_v1: client.CoreV1Api, namespace: str
) -> None:
    batch_v1.create_namespaced_job(namespace, job_manifest("slowpod", annotations={DURATION: "6s"}))

    _, cond = wait_job_finished(batch_v1, namespace, "slowpod")

    assert cond.type == "Complete"
    (pod,) = job_pods(core_v1, namespace, "slowpod")
    term = terminated(pod)
    assert term is not None
    ran_for = (term.finished_at - term.started_at).total_seconds()
    assert ran_for >= 5  # 6s, less one for the timestamps' whole-second resolution


def test_deleting_a_running_pod_kills_and_removes_it(
    batch_v1: client.BatchV1Api, core_v1: client.CoreV1Api, namespace: str
) -> None:
    batch_v1.create_namespaced_job(
        namespace, job_manifest("longrun", annotations={DURATION: "1h"}, backoff_limit=3)
    )
    pod = wait_until(
        "the pod to run",
        lambda: next(
            (p for p in job_pods(core_v1, namespace, "longrun") if p.status.phase == "Running"),
            None,
        ),
    )
    assert "batch.kubernetes.io/job-tracking" in (pod.metadata.finalizers or [])

    core_v1.delete_namespaced_pod(pod.metadata.name, namespace)

    def gone() -> bool:
        try:
            core_v1.read_namespaced_pod(pod.metadata.name, namespace)
        except ApiException as e:
            if e.status == 404:
                return True
            raise
        return False

    wait_until(f"pod {pod.metadata.name} to be deleted", gone)
    job = wait_until(
        "the Job controller to count the killed pod",
        lambda: (j := batch_v1.read_namespaced_job("longrun", namespace)).status.failed and j,
    )
    assert job.status.failed == 1


def node_ready(core_v1: client.CoreV1Api, name: str) -> bool:
    conditions = core_v1.read_node(name).status.conditions or []
    return any(c.type == "Ready" and c.status == "True" for c in conditions)


def test_a_node_that_was_not_ready_keeps_its_addresses_and_serves_logs(
    batch_v1: client.BatchV1Api, core_v1: client.CoreV1Api, namespace: str
) -> None:
    """A fake node marked not Ready (what the node lifecycle controller writes after its grace
    period without a heartbeat: a controller-manager frozen by a test, say) is made Ready
    again by kwok with its addresses, and the API server still reaches its kubelet for a
    pod's log (hack/cluster.sh, kwok-controller's --node-ip; once, its addresses were lost
    and every later log read of the session failed)."""
    manifest = job_manifest("logged", annotations={DURATION: "1h"})
    manifest["spec"]["template"]["spec"]["containers"][0]["name"] = "handler"  # ClusterLogs
    batch_v1.create_namespaced_job(namespace, manifest)
    pod = wait_until(
        "the pod to run",
        lambda: next(
            (p for p in job_pods(core_v1, namespace, "logged") if p.status.phase == "Running"),
            None,
        ),
    )
    node = pod.spec.node_name
    core_v1.read_namespaced_pod_log(pod.metadata.name, namespace, container="handler")
    unknown = {
        "type": "Ready",
        "status": "Unknown",
        "reason": "NodeStatusUnknown",
        "message": "Kubelet stopped posting node status.",
    }
    core_v1.patch_node_status(node, {"status": {"conditions": [unknown]}})
    wait_until(f"{node} Ready again", lambda: node_ready(core_v1, node), 60)

    addresses = {a.type: a.address for a in core_v1.read_node(node).status.addresses or []}
    assert addresses.get("InternalIP"), addresses
    log = wait_until(  # the API server's client may take a moment to see the node again
        "the pod's log through the API server",
        lambda: _log_or_none(core_v1, pod.metadata.name, namespace),
        30,
    )
    assert isinstance(log, str)


def _log_or_none(core_v1: client.CoreV1Api, pod: str, namespace: str) -> str | None:
    try:
        return str(core_v1.read_namespaced_pod_log(pod, namespace, container="handler"))
    except ApiException as e:
        if e.status == 500:  # "no preferred addresses found": the node has none
            return None
        raise


def test_garbage_collector_deletes_dependents(core_v1: client.CoreV1Api, namespace: str) -> None:
    owner = core_v1.create_namespaced_config_map(
        namespace, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="owner"))
    )
    ref = client.V1OwnerReference(
        api_version="v1", kind="ConfigMap", name="owner", uid=owner.metadata.uid
    )
    core_v1.create_namespaced_config_map(
        namespace,
        client.V1ConfigMap(metadata=client.V1ObjectMeta(name="dependent", owner_references=[ref])),
    )
    assert core_v1.read_namespaced_config_map("dependent", namespace).metadata.owner_references

    core_v1.delete_namespaced_config_map("owner", namespace, propagation_policy="Background")

    def dependent_gone() -> bool:
        try:
            core_v1.read_namespaced_config_map("dependent", namespace)
        except ApiException as e:
            if e.status == 404:
                return True
            raise
        return False

    wait_until("the garbage collector to delete the dependent ConfigMap", dependent_gone)


def test_crd_cel_rule_rejects_an_invalid_object(
    apiextensions_v1: client.ApiextensionsV1Api,
    custom_objects: client.CustomObjectsApi,
    namespace: str,
) -> None:
    group = f"cel-{uuid.uuid4().hex[:8]}.test.backgroundjobs.dev"
    rule_message = "spec.min must not exceed spec.max"
    crd = {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"ranges.{group}"},
        "spec": {
            "group": group,
            "scope": "Namespaced",
            "names": {"plural": "ranges", "singular": "range", "kind": "Range"},
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "properties": {
                                "spec": {
                                    "type": "object",
                                    "properties": {
                                        "min": {"type": "integer"},
                                        "max": {"type": "integer"},
                                    },
                                    "x-kubernetes-validations": [
                                        {"rule": "self.min <= self.max", "message": rule_message}
                                    ],
                                }
                            },
                        }
                    },
                }
            ],
        },
    }
    apiextensions_v1.create_custom_resource_definition(crd)
    try:

        def established() -> bool:
            got = apiextensions_v1.read_custom_resource_definition(f"ranges.{group}")
            return any(
                c.type == "Established" and c.status == "True"
                for c in (got.status.conditions or [])
            )

        wait_until("the CRD to be established", established)

        def create(name: str, lo: int, hi: int) -> dict[str, Any]:
            body = {
                "apiVersion": f"{group}/v1",
                "kind": "Range",
                "metadata": {"name": name},
                "spec": {"min": lo, "max": hi},
            }
            created = custom_objects.create_namespaced_custom_object(
                group, "v1", namespace, "ranges", body
            )
            assert isinstance(created, dict)
            return created

        def create_valid() -> dict[str, Any] | None:
            try:
                return create("good", 1, 2)
            except ApiException as e:
                if e.status == 404:  # served a moment after Established
                    return None
                raise

        assert wait_until("the valid object to be accepted", create_valid)["spec"]["min"] == 1
        with pytest.raises(ApiException) as rejected:
            create("bad", 3, 2)
        assert rejected.value.status == 422
        assert rule_message in (rejected.value.body or "")
    finally:
        apiextensions_v1.delete_custom_resource_definition(f"ranges.{group}")


@pytest.mark.slow
def test_cronjob_creates_a_job(batch_v1: client.BatchV1Api, namespace: str) -> None:
    job_template = job_manifest("unused")["spec"]
    batch_v1.create_namespaced_cron_job(
        namespace,
        {
            "apiVersion": "batch/v1",
            "kind": "CronJob",
            "metadata": {"name": "every-minute"},
            "spec": {"schedule": "* * * * *", "jobTemplate": {"spec": job_template}},
        },
    )

    def owned_job() -> client.V1Job | None:
        for job in batch_v1.list_namespaced_job(namespace).items:
            if any(r.kind == "CronJob" for r in job.metadata.owner_references or []):
                return job
        return None

    job = wait_until("the CronJob controller to create a Job", owned_job, timeout=180, interval=2)
    assert job.metadata.name.startswith("every-minute-")
    cron = batch_v1.read_namespaced_cron_job("every-minute", namespace)
    assert isinstance(cron.status.last_schedule_time, datetime)
