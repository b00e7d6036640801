"""The chart's dashboard in the cluster (issue 18, "the chart installs it in-cluster"): with
``dashboard.enabled`` its pod becomes Ready through its probes (the cache synced), another
pod reaches it through its ClusterIP Service and reads a job the operator ran, and an action
through that Service is refused (read-only: no authenticating proxy in front)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from kubernetes import client
from tests.e2e.conftest import OperatorRelease, helm_install
from tests.e2e.realcluster import Jobs, apply, background_job, kubectl, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(1800)]

DASHBOARD = "bgj-backgroundjobs-operator-dashboard"
# What the probe pod prints: the jobs API's answer for the namespace, then the status of a
# POST of an action (with the CSRF header the dashboard asks for).
PROBE = """
import json, sys, urllib.request, urllib.error
base, ns = sys.argv[1], sys.argv[2]
page = json.load(urllib.request.urlopen(f"{base}/api/jobs?namespace={ns}", timeout=30))
print(json.dumps({"names": {i["name"]: i["phase"] for i in page["items"]}}))
request = urllib.request.Request(
    f"{base}/api/jobs/{ns}/hello-dashboard/requeue", data=b"", method="POST",
    headers={"X-Requested-With": "bgjobs-dashboard"},
)
try:
    urllib.request.urlopen(request, timeout=30)
    print(json.dumps({"action": 200}))
except urllib.error.HTTPError as exc:
    print(json.dumps({"action": exc.code, "body": json.load(exc)}))
"""


@pytest.fixture
def dashboard_release(
    operator_release: OperatorRelease, cluster_images: dict[str, str]
) -> Iterator[OperatorRelease]:
    """The chart again with ``dashboard.enabled=true`` (defaults: read-only, every
    namespace); afterwards as it was, without the dashboard."""
    helm_install(cluster_images, "--set", "dashboard.enabled=true")
    yield operator_release
    helm_install(cluster_images)


def test_the_chart_s_dashboard_runs_in_the_cluster_read_only_behind_its_service(
    dashboard_release: OperatorRelease,
    jobs: Jobs,
    core_v1: client.CoreV1Api,
    cluster_images: dict[str, str],
) -> None:
    ns = dashboard_release.namespace
    selector = "app.kubernetes.io/component=dashboard"

    def ready() -> bool:
        pods = core_v1.list_namespaced_pod(ns, label_selector=selector).items
        return any(
            any(c.type == "Ready" and c.status == "True" for c in p.status.conditions or [])
            for p in pods
        )

    wait_until("the dashboard pod Ready (its cache synced)", ready, timeout=300)
    service = core_v1.read_namespaced_service(DASHBOARD, ns)
    assert service.spec.type == "ClusterIP"

    jobs.create(background_job("hello-dashboard", "test.echo", ["hi"], {"sleep": 0}))
    assert jobs.wait_phase("hello-dashboard", timeout=300)["phase"] == "Succeeded"
    base = f"http://{DASHBOARD}.{ns}.svc.cluster.local:{service.spec.ports[0].port}"
    probe = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "dashboard-probe"},
        "spec": {
            "restartPolicy": "Never",
            "containers": [
                {
                    "name": "probe",
                    "image": cluster_images["base"],
                    "command": ["python3", "-c", PROBE, base, jobs.namespace],
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
    apply(jobs.namespace, probe)

    def finished() -> str | None:
        phase = kubectl(
            "get", "pod", "dashboard-probe", "-n", jobs.namespace,
            "-o", "jsonpath={.status.phase}",
        ).stdout  # fmt: skip
        return phase if phase in ("Succeeded", "Failed") else None

    phase = wait_until("the probe pod to finish", finished, timeout=180)
    logs = kubectl("logs", "-n", jobs.namespace, "dashboard-probe").stdout
    assert phase == "Succeeded", logs
    page, action = (json.loads(line) for line in logs.strip().splitlines()[-2:])
    assert page["names"] == {"hello-dashboard": "Succeeded"}
    assert action["action"] == 403 and "read-only" in action["body"]["message"], action
