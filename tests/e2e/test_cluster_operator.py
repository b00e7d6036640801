"""The chart installed on a cluster with real nodes: the operator runs from its image, and a
first job runs in a real container on a namespace that enforces `restricted`."""

from __future__ import annotations

import pytest
from kubernetes import client
from tests.e2e.conftest import OperatorRelease
from tests.e2e.realcluster import Jobs, apply, background_job, kubectl, pod_events, wait_until

# The first test of a session may start the cluster, build the images and install the chart.
pytestmark = [pytest.mark.e2e, pytest.mark.timeout(1800)]


def _ready(pod: client.V1Pod) -> bool:
    conditions = pod.status.conditions or []
    return pod.status.phase == "Running" and any(
        c.type == "Ready" and c.status == "True" for c in conditions
    )


def test_two_operator_pods_ready_through_their_probes_and_one_leader(
    core_v1: client.CoreV1Api, operator_release: OperatorRelease
) -> None:
    selector = "app.kubernetes.io/name=backgroundjobs-operator"

    def ready_pods() -> list[client.V1Pod] | None:
        pods = core_v1.list_namespaced_pod(operator_release.namespace, label_selector=selector)
        ready = [p for p in pods.items if _ready(p) and p.metadata.deletion_timestamp is None]
        return ready if len(ready) == 2 else None

    pods = wait_until("two Ready operator pods", ready_pods, timeout=300)
    for pod in pods:
        container = pod.spec.containers[0]
        assert container.readiness_probe is not None and container.liveness_probe is not None
        assert pod.spec.node_name and not pod.spec.node_name.startswith("kwok-")
    leases = client.CoordinationV1Api(core_v1.api_client).list_namespaced_lease(
        operator_release.namespace
    )
    holders = [lease.spec.holder_identity for lease in leases.items if lease.spec.holder_identity]
    names = {p.metadata.name for p in pods}
    assert len(holders) == 1, holders
    assert any(name in holders[0] for name in names), (holders, names)


def test_metrics_are_scraped_through_the_service_from_another_pod(
    operator_release: OperatorRelease, restricted_namespace: str, cluster_images: dict[str, str]
) -> None:
    url = (
        f"http://{operator_release.metrics_service}.{operator_release.namespace}.svc"
        ".cluster.local:8080/metrics"
    )
    scraper = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "scraper"},
        "spec": {
            "restartPolicy": "Never",
            "containers": [
                {
                    "name": "scrape",
                    "image": cluster_images["base"],
                    "command": ["python3", "-c"],
                    "args": [
                        "import sys, urllib.request; "
                        f"page = urllib.request.urlopen({url!r}, timeout=20); "
                        "sys.stdout.write(page.read().decode())"
                    ],
                    "securityContext": {
                        "allowPrivilegeEscalation": False,
                        "runAsNonRoot": True,
                        "capabilities": {"drop": ["ALL"]},
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                }
            ],
        },
    }
    apply(restricted_namespace, scraper)
    phase = wait_until(
        "the scraper pod to finish",
        lambda: (
            kubectl(
                "get",
                "pod",
                "scraper",
                "-n",
                restricted_namespace,
                "-o",
                "jsonpath={.status.phase}",
            ).stdout
            in ("Succeeded", "Failed")
            and kubectl(
                "get",
                "pod",
                "scraper",
                "-n",
                restricted_namespace,
                "-o",
                "jsonpath={.status.phase}",
            ).stdout
        ),
        timeout=180,
    )
    logs = kubectl("logs", "-n", restricted_namespace, "scraper").stdout
    assert phase == "Succeeded", logs
    assert "backgroundjobs_build_info" in logs


def test_a_job_runs_in_a_real_container_under_restricted(
    jobs: Jobs, core_v1: client.CoreV1Api, operator_release: OperatorRelease
) -> None:
    jobs.create(background_job("hello", "test.echo", ["hello from a real node"], {"sleep": 0}))
    status = jobs.wait_phase("hello", timeout=300)
    assert status["phase"] == "Succeeded", status
    assert status["result"]["message"] == "hello from a real node"
    assert status["result"]["uid"] == 65532
    [pod] = jobs.pods("hello")
    assert not pod.spec.node_name.startswith("kwok-")
    records = jobs.logs(pod.metadata.name)
    assert any(r.get("echo") == "hello from a real node" for r in records), records
    reasons = {e.reason for e in pod_events(core_v1, jobs.namespace, pod.metadata.name)}
    assert {"Scheduled", "Created", "Started"} <= reasons, reasons
