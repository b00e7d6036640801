"""The Kueue hand-off on the cluster: Kueue's manager (built from Go modules by
hack/kueue.sh, run as a local process) admits the Jobs of a queue with ``spec.kueue``, and
the operator follows its admission. Kueue missing or failing to start fails this module: it
is never skipped."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from kubernetes import client, watch
from tests.integration.bgj import RUN_FOR, Jobs, manifest, wait_for
from tests.integration.harness import REPO_ROOT
from tests.integration.queue_helpers import Queues

from backgroundjobs.api import constants as c

pytestmark = pytest.mark.integration
Body = dict[str, Any]

CLUSTER_QUEUE = "bgj-test"
CPU_QUOTA = 2  # each test job asks for 1 CPU: at most 2 run at once


@pytest.fixture(scope="module")
def kueue(kubeconfig: str) -> Iterator[str]:
    """Kueue's CRDs, a ClusterQueue of ``CPU_QUOTA`` CPUs and its manager running."""
    env = {
        **os.environ,
        "KUBECONFIG": kubeconfig,
        "VENV": os.environ.get("VENV", str(os.path.dirname(os.path.dirname(sys.executable)))),
        "KUEUE_CLUSTER_QUEUE": CLUSTER_QUEUE,
        "KUEUE_CPU": str(CPU_QUOTA),
    }
    script = str(REPO_ROOT / "hack" / "kueue.sh")
    up = subprocess.run(["bash", script, "up"], env=env, capture_output=True, text=True)
    if up.returncode != 0:
        pytest.fail(f"hack/kueue.sh up failed:\n{up.stdout}\n{up.stderr}")
    yield CLUSTER_QUEUE
    subprocess.run(["bash", script, "down"], env=env, check=False)


class Admissions:
    """The namespace's Jobs as a watch shows them: the most running at once (unsuspended and
    not finished), and the order Kueue unsuspended them in."""

    def __init__(self, api: client.ApiClient, namespace: str) -> None:
        self.batch = client.BatchV1Api(api)
        self.ns = namespace
        self.running: set[str] = set()
        self.max_running = 0
        self.unsuspended: list[str] = []
        self.created_suspended: set[str] = set()
        self._watch = watch.Watch()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._ready = threading.Event()

    def __enter__(self) -> Admissions:
        self._thread.start()
        self._ready.wait(10)
        return self

    def __exit__(self, *_: object) -> None:
        self._watch.stop()

    def _run(self) -> None:
        version = self.batch.list_namespaced_job(self.ns).metadata.resource_version
        self._ready.set()
        while not self._watch._stop:
            try:
                for event in self._watch.stream(
                    self.batch.list_namespaced_job, self.ns, resource_version=version
                ):
                    self._seen(event["type"], event["object"])
                    version = event["object"].metadata.resource_version
            except Exception:  # a dropped watch: go on from where it was
                continue

    def _seen(self, kind: str, job: Any) -> None:
        name = job.metadata.name
        if kind == "ADDED" and job.spec.suspend:
            self.created_suspended.add(name)
        finished = {cnd.type for cnd in job.status.conditions or [] if cnd.status == "True"} & {
            "Complete",
            "Failed",
        }
        if kind != "DELETED" and not job.spec.suspend and not finished:
            if name not in self.unsuspended:
                self.unsuspended.append(name)
            self.running.add(name)
        else:
            self.running.discard(name)
        self.max_running = max(self.max_running, len(self.running))


@pytest.fixture(scope="module")
def kueue_crds(kubeconfig: str) -> None:
    """Kueue's CRDs (from its module source: no build) applied to the cluster."""
    env = {**os.environ, "KUBECONFIG": kubeconfig}
    crds = subprocess.run(
        ["bash", str(REPO_ROOT / "hack" / "kueue.sh"), "crds"],
        env=env,
        capture_output=True,
        text=True,
    )
    if crds.returncode != 0:
        pytest.fail(f"hack/kueue.sh crds failed:\n{crds.stderr}")
    kubectl = os.path.join(os.path.dirname(sys.executable), "kubectl")
    for args in (
        ["apply", "--server-side", "--force-conflicts", "-f", crds.stdout.strip()],
        ["wait", "--for=condition=Established", "--timeout=60s", "-f", crds.stdout.strip()],
    ):
        done = subprocess.run([kubectl, *args], env=env, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _condition(ctype: str, status: bool, reason: str, message: str) -> Body:
    return {
        "type": ctype,
        "status": "True" if status else "False",
        "reason": reason,
        "message": message,
        "lastTransitionTime": _now(),
    }


class FakeKueue:
    """Plays Kueue's part for one namespace: a Workload for each suspended Job of the
    LocalQueue, admitted (Workload conditions, Job unsuspended) at most ``quota`` at a time
    in the Jobs' creation order; and a preemption on demand."""

    def __init__(self, api: client.ApiClient, namespace: str, quota: int) -> None:
        self.batch = client.BatchV1Api(api)
        self.custom = client.CustomObjectsApi(api)
        self.ns = namespace
        self.quota = quota
        self.workload_of: dict[str, str] = {}  # Job name -> its Workload's name
        self.admitted: set[str] = set()
        self.max_running = 0
        self.admitting = False  # until set: Workloads made, nothing admitted

    def _status(self, workload: str, *conditions: Body) -> None:
        self.custom.patch_namespaced_custom_object_status(
            "kueue.x-k8s.io",
            "v1beta2",
            self.ns,
            "workloads",
            workload,
            {"status": {"conditions": list(conditions)}},
        )

    def step(self) -> None:
        jobs = sorted(
            self.batch.list_namespaced_job(self.ns).items,
            key=lambda j: (j.metadata.creation_timestamp, j.metadata.name),
        )
        running = 0
        for job in jobs:
            done = job.status.succeeded or job.status.failed
            if not job.spec.suspend and not done:
                running += 1
            if job.metadata.name in self.workload_of or not job.spec.suspend:
                continue
            name = f"job-{job.metadata.name}"
            self.custom.create_namespaced_custom_object(
                "kueue.x-k8s.io",
                "v1beta2",
                self.ns,
                "workloads",
                {
                    "apiVersion": "kueue.x-k8s.io/v1beta2",
                    "kind": "Workload",
                    "metadata": {"name": name, "labels": {c.KUEUE_JOB_UID_LABEL: job.metadata.uid}},
                    "spec": {
                        "queueName": "team",
                        "podSets": [
                            {
                                "name": "main",
                                "count": 1,
                                "template": {"spec": {"containers": [{"name": "h", "image": "x"}]}},
                            }
                        ],
                    },
                },
            )
            self._status(
                name,
                _condition("QuotaReserved", False, "Pending", "insufficient unused quota for cpu"),
            )
            self.workload_of[job.metadata.name] = name
        self.max_running = max(self.max_running, running)
        for job in jobs:
            if running >= self.quota or not self.admitting:
                break
            name = job.metadata.name
            if not job.spec.suspend or name not in self.workload_of or name in self.admitted:
                continue
            self._status(
                self.workload_of[name],
                _condition("QuotaReserved", True, "QuotaReserved", "quota reserved"),
                _condition("Admitted", True, "Admitted", "admitted by ClusterQueue fake-cq"),
            )
            self.batch.patch_namespaced_job(name, self.ns, {"spec": {"suspend": False}})
            self.admitted.add(name)
            running += 1

    def preempt(self, job: str) -> None:
        """Kueue's preemption: the Job suspended again, its Workload Evicted and Preempted."""
        self.batch.patch_namespaced_job(job, self.ns, {"spec": {"suspend": True}})
        self._status(
            self.workload_of[job],
            _condition("QuotaReserved", False, "Pending", "preempted"),
            _condition("Evicted", True, "Preempted", "preempted to fit another workload"),
            _condition("Preempted", True, "InClusterQueue", "to fit ns/urgent"),
        )
        self.admitted.discard(job)


def test_a_fake_kueue_admission_is_what_the_operator_follows(
    kueue_crds: None, bgjobs: Jobs, api_client: client.ApiClient
) -> None:
    """Kueue's part played by the test: the operator's side of the hand-off on the real API
    server, whatever the Kueue build (its Workload API served from Kueue's own CRDs)."""
    Queues(api_client, bgjobs.ns).create("fake", kueue={"localQueue": "team"})
    names = [f"f-{i}" for i in range(4)]
    for name in names:  # the first runs long enough to be preempted while it runs
        run_for = "20s" if name == names[0] else "3s"
        bgjobs.create(manifest(name, queue="fake", pod_annotations={RUN_FOR: run_for}))
    fake = FakeKueue(api_client, bgjobs.ns, quota=2)

    def waits_for_quota(name: str) -> Body | None:
        fake.step()
        cnd = bgjobs.condition(name, "Queued")
        ok = (
            cnd and cnd["reason"] == c.Reason.WAITING_FOR_QUOTA and "insufficient" in cnd["message"]
        )
        return cnd if ok else None

    wait_for("the last job waiting for quota", lambda: waits_for_quota(names[-1]), timeout=120)
    fake.admitting = True
    # the first admitted runs; preempted, it waits again with Kueue's reason
    wait_for("f-0 running", lambda: fake.step() or bgjobs.status("f-0").get("phase") == "Running")
    fake.preempt("f-0-1")
    preempted = wait_for(
        "f-0 preempted",
        lambda: (cnd := bgjobs.condition("f-0", "Queued")) and cnd["reason"] == "Preempted" and cnd,
        timeout=120,
    )
    assert "to fit ns/urgent" in preempted["message"]
    assert bgjobs.status("f-0")["phase"] == "Queued"

    def all_succeeded() -> bool:
        fake.step()
        return all(bgjobs.status(n).get("phase") == "Succeeded" for n in names)

    wait_for("every job Succeeded", all_succeeded, timeout=300, interval=1)
    assert fake.max_running <= 2
    for name in names:
        assert bgjobs.status(name)["runs"] == 1  # a preempted run is the same run, resumed
        admitted = bgjobs.condition(name, "Admitted")
        assert admitted is not None and admitted["status"] == "True", name


@pytest.mark.kueue  # make test-kueue: Kueue's manager must be built (hack/kueue.sh build)
def test_kueue_admits_the_queue_and_the_operator_follows(
    kueue: str, bgjobs: Jobs, api_client: client.ApiClient
) -> None:
    custom = client.CustomObjectsApi(api_client)
    custom.create_namespaced_custom_object(
        "kueue.x-k8s.io",
        "v1beta2",
        bgjobs.ns,
        "localqueues",
        {
            "apiVersion": "kueue.x-k8s.io/v1beta2",
            "kind": "LocalQueue",
            "metadata": {"name": "team"},
            "spec": {"clusterQueue": kueue},
        },
    )
    # maxConcurrency 1 is Kueue's business now: the quota (2 CPUs) is the only limit.
    Queues(api_client, bgjobs.ns).create("batch", kueue={"localQueue": "team"}, maxConcurrency=1)
    names = [f"k-{i}" for i in range(6)]
    handler = {"name": c.HANDLER_CONTAINER, "resources": {"requests": {"cpu": "1"}}}
    with Admissions(api_client, bgjobs.ns) as seen:
        for name in names:
            body = manifest(name, queue="batch", pod_annotations={RUN_FOR: "8s"})
            body["spec"]["podTemplate"]["spec"] = {"containers": [handler]}
            bgjobs.create(body)
        waiting = wait_for(
            "a job waiting for Kueue's quota",
            lambda: next(
                (
                    (n, cnd)
                    for n in names
                    if (cnd := bgjobs.condition(n, "Queued"))
                    and cnd["status"] == "True"
                    and cnd["reason"] == c.Reason.WAITING_FOR_QUOTA
                    and "insufficient" in cnd["message"]
                ),
                None,
            ),
            timeout=120,
        )
        assert bgjobs.status(waiting[0])["phase"] == "Queued"
        for name in names:
            bgjobs.wait_phase(name, "Succeeded", timeout=300)
    jobs = {f"{n}-1" for n in names}
    assert seen.created_suspended == jobs  # every Job was made for Kueue to admit
    assert set(seen.unsuspended) == jobs  # and Kueue admitted every one
    assert seen.max_running <= CPU_QUOTA  # never more than the ClusterQueue's quota
    for name in names:
        admitted = bgjobs.condition(name, "Admitted")
        assert admitted is not None and admitted["status"] == "True", name
        assert admitted["reason"] == c.Reason.ADMITTED and kueue in admitted["message"]
        job = bgjobs.batch.read_namespaced_job(f"{name}-1", bgjobs.ns)
        assert job.metadata.labels[c.KUEUE_QUEUE_LABEL] == "team"
