"""The Kueue hand-off on a cluster with a real node: the chart's operator (its RBAC on
Kueue's Workloads included) hands a queue's runs to Kueue's manager (hack/kueue.sh: built
from Go modules, run as a local process against the cluster), and the jobs run in real
containers as Kueue admits them, never more at once than the ClusterQueue's CPU quota."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client
from tests.e2e.conftest import OperatorRelease
from tests.e2e.realcluster import Jobs, apply, background_job, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.kueue, pytest.mark.timeout(1800)]

ROOT = Path(__file__).resolve().parents[2]
CLUSTER_QUEUE = "bgj-e2e"


@pytest.fixture(scope="module")
def kueue(kubeconfig: str) -> Iterator[str]:
    env = {
        **os.environ,
        "KUBECONFIG": kubeconfig,
        "VENV": os.environ.get("VENV", str(Path(sys.executable).parent.parent)),
        "KUEUE_CLUSTER_QUEUE": CLUSTER_QUEUE,
        "KUEUE_CPU": "200m",
    }
    script = str(ROOT / "hack" / "kueue.sh")
    up = subprocess.run(["bash", script, "up"], env=env, capture_output=True, text=True)
    if up.returncode != 0:
        pytest.fail(f"hack/kueue.sh up failed:\n{up.stdout}\n{up.stderr}")
    yield CLUSTER_QUEUE
    subprocess.run(["bash", script, "down"], env=env, check=False)


def test_kueue_admits_real_pods_within_its_quota(
    kueue: str,
    operator_release: OperatorRelease,
    jobs: Jobs,
    restricted_namespace: str,
    batch_v1: client.BatchV1Api,
) -> None:
    ns = restricted_namespace
    apply(
        ns,
        {
            "apiVersion": "kueue.x-k8s.io/v1beta2",
            "kind": "LocalQueue",
            "metadata": {"name": "team"},
            "spec": {"clusterQueue": kueue},
        },
        {
            "apiVersion": "backgroundjobs.dev/v1alpha1",
            "kind": "BackgroundJobQueue",
            "metadata": {"name": "kueued"},
            "spec": {"kueue": {"localQueue": "team"}},
        },
    )
    handler = {"name": "handler", "resources": {"requests": {"cpu": "100m"}}}
    names = [f"kq-{i}" for i in range(4)]
    for name in names:
        jobs.create(
            background_job(
                name,
                "test.echo",
                [name],
                queue="kueued",
                podTemplate={"spec": {"containers": [handler]}},
            )
        )
    most = 0

    def all_done() -> bool | None:
        nonlocal most
        running = [
            j
            for j in batch_v1.list_namespaced_job(ns).items
            if not j.spec.suspend and not (j.status.succeeded or j.status.failed)
        ]
        most = max(most, len(running))
        phases = [jobs.status(n).get("phase") for n in names]
        return all(p == "Succeeded" for p in phases) or None

    wait_until("every job Succeeded through Kueue", all_done, timeout=600, every=0.5)
    assert most <= 2  # 200m of quota, 100m per job
    for name in names:
        admitted = jobs.condition(name, "Admitted")
        assert admitted is not None and admitted["status"] == "True", name
