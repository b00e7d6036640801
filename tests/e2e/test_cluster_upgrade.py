"""`helm upgrade` of the operator while jobs run: the Lease goes to a pod of the new release,
and every job runs exactly once."""

from __future__ import annotations

import pytest
from kubernetes import client
from tests.e2e.conftest import OperatorRelease, helm_install
from tests.e2e.realcluster import Jobs, background_job, wait_until

# The first test of a session may start the cluster, build the images and install the chart.
pytestmark = [pytest.mark.e2e, pytest.mark.timeout(1800)]

JOBS = 100


def _holder(core_v1: client.CoreV1Api, namespace: str) -> str:
    leases = client.CoordinationV1Api(core_v1.api_client).list_namespaced_lease(namespace)
    holders = [lease.spec.holder_identity for lease in leases.items if lease.spec.holder_identity]
    assert len(holders) == 1, holders
    return str(holders[0])


def _operator_pods(core_v1: client.CoreV1Api, namespace: str) -> set[str]:
    selector = "app.kubernetes.io/name=backgroundjobs-operator"
    pods = core_v1.list_namespaced_pod(namespace, label_selector=selector).items
    return {p.metadata.name for p in pods if p.metadata.deletion_timestamp is None}


def test_helm_upgrade_while_jobs_run_hands_the_lease_over_and_loses_none(
    jobs: Jobs,
    core_v1: client.CoreV1Api,
    operator_release: OperatorRelease,
    cluster_images: dict[str, str],
) -> None:
    before_pods = _operator_pods(core_v1, operator_release.namespace)
    before_holder = _holder(core_v1, operator_release.namespace)
    names = [f"upgrade-{i:03d}" for i in range(JOBS)]
    jobs.create(*(background_job(n, "test.echo", [n], {"sleep": 15}) for n in names))
    wait_until(
        "some jobs Running",
        lambda: (
            sum(1 for j in jobs.list() if (j.get("status") or {}).get("phase") == "Running") >= 10
        ),
        timeout=300,
    )
    # A changed value rolls the Deployment: new pods, the old leader stops, another leads.
    helm_install(cluster_images, "--set", "workers=24")
    after_pods = _operator_pods(core_v1, operator_release.namespace)
    assert after_pods and not after_pods & before_pods, (before_pods, after_pods)

    def all_finished() -> list[dict[str, object]] | None:
        items = jobs.list()
        done = [j for j in items if (j.get("status") or {}).get("phase") in ("Succeeded", "Failed")]
        return items if len(done) == JOBS else None

    finished = wait_until(f"{JOBS} jobs finished", all_finished, timeout=1500, every=5)
    phases = {j["metadata"]["name"]: j["status"]["phase"] for j in finished}
    assert set(phases.values()) == {"Succeeded"}, phases
    assert all(j["status"].get("runs") == 1 for j in finished)
    twice = [n for n in names if jobs.handler_exit_codes(n) != [0]]
    assert twice == [], "ran more than once or not at all"
    holder = _holder(core_v1, operator_release.namespace)
    assert holder != before_holder
    assert any(pod in holder for pod in after_pods), (holder, after_pods)
