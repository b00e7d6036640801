"""High availability: two operators with leader election (a 4s Lease); only the leader acts,
a standby takes over when the leader is killed (SIGKILL) or stopped (SIGTERM: it releases the
Lease), and jobs submitted around the failover all end Succeeded with exactly one Job each.

The failover time printed here (kill -> the first Job created by the new leader, for a job
submitted right after the kill) is a measurement, not a goal: the bound asserted is generous.
"""

from __future__ import annotations

import os
import re
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException
from tests.integration.bgj import RUN_FOR, Jobs, manifest, wait_for
from tests.integration.harness import OperatorProcess

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("session_operator_paused")]

# Short, so the tests are quick; BGJ_FAILOVER_LEASE_DURATION=15 measures the chart's default.
LEASE_DURATION = float(os.environ.get("BGJ_FAILOVER_LEASE_DURATION", "4"))
# Expiry (one lease duration after the last renewal it saw) plus a retry period, plus the
# watch and the reconciliation: a correct elector is well within this on a loaded machine.
FAILOVER_BOUND = 4 * LEASE_DURATION + 10


class Pair:
    """Two operator replicas campaigning for one Lease."""

    def __init__(self, kubeconfig: str, lease_ns: str, tmp: Path, api: client.ApiClient) -> None:
        self.coordination = client.CoordinationV1Api(api)
        self.lease_ns = lease_ns
        self.lease_name = f"failover-{uuid.uuid4().hex[:6]}"
        env = {
            "BACKGROUNDJOBS_LEADER_ELECTION": "true",
            "BACKGROUNDJOBS_LEASE_NAME": self.lease_name,
            "BACKGROUNDJOBS_LEASE_NAMESPACE": lease_ns,
            "BACKGROUNDJOBS_LEASE_DURATION": str(LEASE_DURATION),
        }
        self.ops = []
        for name in ("a", "b"):
            (tmp / name).mkdir()
            self.ops.append(OperatorProcess(kubeconfig, tmp / name, env))

    def holder(self) -> str | None:
        try:
            lease = self.coordination.read_namespaced_lease(self.lease_name, self.lease_ns)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
        return lease.spec.holder_identity  # type: ignore[no-any-return]

    def leader(self) -> OperatorProcess | None:
        """The running replica that holds the Lease."""
        holder = self.holder() or ""
        for op in self.ops:
            if (
                op.proc is not None
                and op.proc.poll() is None
                and holder.endswith(f"_{op.proc.pid}")
            ):
                return op
        return None

    def other(self, op: OperatorProcess) -> OperatorProcess:
        return self.ops[1] if op is self.ops[0] else self.ops[0]

    def stop(self) -> None:
        for op in self.ops:
            op.stop()


@pytest.fixture
def pair(
    kubeconfig: str, namespace: str, api_client: client.ApiClient, crd: dict, tmp_path: Path
) -> Iterator[Pair]:
    p = Pair(kubeconfig, namespace, tmp_path, api_client)
    try:
        yield p
    finally:
        p.stop()


def leader_gauge(op: OperatorProcess) -> float:
    """backgroundjobs_leader of ``op``: 1 while it leads, 0 on a standby."""
    found = re.search(r"^backgroundjobs_leader (\S+)$", op.metrics(), re.M)
    assert found, "backgroundjobs_leader is not exported"
    return float(found.group(1))


def started_total(op: OperatorProcess) -> float:
    """backgroundjobs_jobs_started_total summed over its labels (0 when never incremented)."""
    return sum(
        float(m.group(1))
        for m in re.finditer(
            r"^backgroundjobs_jobs_started_total\{[^}]*\} (\S+)$", op.metrics(), re.M
        )
    )


def leader_lines(op: OperatorProcess) -> int:
    return op.log_tail(10_000).count("became the leader")


def one_job_each(jobs: Jobs, names: list[str]) -> None:
    for name in names:
        st = jobs.wait_phase(name, "Succeeded", timeout=120)
        assert st["runs"] == 1, name
        assert [j.metadata.name for j in jobs.jobs(name)] == [f"{name}-1"], name


def measure_failover(jobs: Jobs, pair: Pair, leader: OperatorProcess, name: str) -> float:
    """SIGKILL ``leader``, submit ``name`` at once; seconds until its Job exists."""
    t0 = time.monotonic()
    leader.kill()
    jobs.create(manifest(name))
    wait_for(f"Job {name}-1", lambda: jobs.job(f"{name}-1"), timeout=FAILOVER_BOUND, interval=0.05)
    return time.monotonic() - t0


def test_one_leader_acts_and_a_standby_takes_over_a_killed_one(
    pair: Pair, api_client: client.ApiClient, namespace: str
) -> None:
    a, b = pair.ops
    a.start()
    wait_for("a to lead", lambda: pair.leader() is a, timeout=30)
    b.start()
    jobs = Jobs(api_client, namespace)

    before = [f"before-{i}" for i in range(4)]
    for name in before:
        jobs.create(manifest(name))
    one_job_each(jobs, before)
    assert pair.leader() is a
    assert leader_lines(b) == 0, "the standby claims to lead"
    assert started_total(a) >= len(before)
    assert started_total(b) == 0, "the standby started Jobs"
    assert leader_gauge(a) == 1 and leader_gauge(b) == 0

    # In flight at the kill: a running job, and jobs just submitted.
    jobs.create(manifest("running", pod_annotations={RUN_FOR: "5s"}))
    wait_for("running to run", lambda: jobs.status("running").get("phase") == "Running")
    around = [f"around-{i}" for i in range(3)]
    for name in around:
        jobs.create(manifest(name))
    took = measure_failover(jobs, pair, a, "after-kill")
    print(f"\nfailover after SIGKILL (lease {LEASE_DURATION:g}s): {took:.2f}s")
    assert took < FAILOVER_BOUND

    assert pair.leader() is b
    assert leader_lines(b) == 1
    assert leader_gauge(b) == 1
    one_job_each(jobs, ["running", *around, "after-kill"])
    assert started_total(b) >= 1


def test_sigterm_releases_the_lease_for_a_fast_handover(
    pair: Pair, api_client: client.ApiClient, namespace: str
) -> None:
    a, b = pair.ops
    a.start()
    wait_for("a to lead", lambda: pair.leader() is a, timeout=30)
    b.start()
    jobs = Jobs(api_client, namespace)
    time.sleep(LEASE_DURATION)  # b has seen a renew: without the release it would wait it out

    t0 = time.monotonic()
    a.stop()  # SIGTERM: a rolling update or a drain
    assert "released the Lease" in a.log_tail(50)
    jobs.create(manifest("handed-over"))
    wait_for("Job handed-over-1", lambda: jobs.job("handed-over-1"), FAILOVER_BOUND, 0.05)
    took = time.monotonic() - t0
    print(f"\nhandover after SIGTERM (lease {LEASE_DURATION:g}s): {took:.2f}s")
    assert pair.leader() is b
    one_job_each(jobs, ["handed-over"])


def test_failover_time_over_several_kills(
    pair: Pair, api_client: client.ApiClient, namespace: str
) -> None:
    """Kill whichever replica leads, three times; the killed one comes back as the standby."""
    jobs = Jobs(api_client, namespace)
    a, _ = pair.ops
    a.start()
    wait_for("a to lead", lambda: pair.leader() is a, timeout=30)
    pair.other(a).start()
    times = []
    for i in range(3):
        time.sleep(LEASE_DURATION)  # a steady state: the standby has seen renewals
        leader = pair.leader()
        assert leader is not None
        times.append(measure_failover(jobs, pair, leader, f"kill-{i}"))
        leader.start()  # back as the standby
        wait_for("a new leader", lambda old=leader: pair.leader() not in (None, old), timeout=30)
    print(
        f"\nfailover after SIGKILL (lease {LEASE_DURATION:g}s), {len(times)} runs: "
        + ", ".join(f"{t:.2f}s" for t in times)
        + f"; mean {sum(times) / len(times):.2f}s"
    )
    assert max(times) < FAILOVER_BOUND
    one_job_each(jobs, [f"kill-{i}" for i in range(3)])
