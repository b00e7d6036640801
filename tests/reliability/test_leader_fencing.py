"""Leader fencing: a leader that cannot renew its Lease stops acting before another replica
may take over. Two cases, each with two operators (A leads, B stands by) and jobs falling
due all along:

- A paused (SIGSTOP) for 20 s: B takes over after the Lease expires; A, resumed, must not
  write anything (its requests queued in the paused process included);
- A's Lease requests black-holed (its other calls work): A steps down within its renew
  deadline, before the Lease can expire.

From the audit log: no write by A received later than 1 s after B acquired the Lease (the
Lease's ``acquireTime``, written by B on this machine's clock). And every job ran once.
"""

from __future__ import annotations

import os
import signal
import time
import uuid
from datetime import datetime, timedelta

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException
from tests.integration.bgj import Jobs, manifest, wait_for
from tests.reliability.accounts import user_of
from tests.reliability.audit import Audit, created, writes_after
from tests.reliability.conftest import OperatorFactory, ProxyFactory, scaled
from tests.reliability.scenario import now

LEASE_DURATION = 15.0  # the chart's default
GRACE = timedelta(seconds=1)


class Lease:
    def __init__(self, api: client.ApiClient, namespace: str) -> None:
        self.coordination = client.CoordinationV1Api(api)
        self.namespace = namespace
        self.name = f"fence-{uuid.uuid4().hex[:6]}"

    def env(self) -> dict[str, str]:
        return {
            "BACKGROUNDJOBS_LEADER_ELECTION": "true",
            "BACKGROUNDJOBS_LEASE_NAME": self.name,
            "BACKGROUNDJOBS_LEASE_NAMESPACE": self.namespace,
            "BACKGROUNDJOBS_LEASE_DURATION": str(LEASE_DURATION),
        }

    def spec(self) -> client.V1LeaseSpec | None:
        try:
            return self.coordination.read_namespaced_lease(self.name, self.namespace).spec
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise

    def held_by(self, pid: int) -> datetime | None:
        """The acquire time when the process ``pid`` holds the Lease."""
        spec = self.spec()
        if spec is not None and (spec.holder_identity or "").endswith(f"_{pid}"):
            return spec.acquire_time  # type: ignore[no-any-return]
        return None


def _jobs_due_throughout(jobs: Jobs, seconds: float) -> list[str]:
    """Delayed jobs falling due every moment of the next ``seconds``: a leader always has
    something to write."""
    start = now()
    count = scaled(200, 20)
    names = []
    for i in range(count):
        at = start + timedelta(seconds=5 + i * seconds / count)
        names.append(f"due-{i}")
        jobs.create(manifest(f"due-{i}", runAt=at.isoformat(timespec="microseconds")))
    return names


@pytest.mark.parametrize("fault", ["paused", "lease-blackholed"])
def test_a_leader_that_cannot_renew_writes_nothing_after_the_new_leader_acquires(
    fault: str,
    operators: OperatorFactory,
    api_proxy: ProxyFactory,
    api_client: client.ApiClient,
    namespace: str,
    audit: Audit,
) -> None:
    lease = Lease(api_client, namespace)
    proxy = api_proxy() if fault == "lease-blackholed" else None
    a = operators("fence-a", proxy=proxy, env=lease.env(), namespaces=[namespace])
    a.start()
    wait_for("A to lead", lambda: lease.held_by(a.pid), timeout=60)
    b = operators("fence-b", env=lease.env(), namespaces=[namespace])
    b.start()
    jobs = Jobs(api_client, namespace)
    names = _jobs_due_throughout(jobs, 60)
    time.sleep(8)  # A is acting

    if fault == "paused":
        os.kill(a.pid, signal.SIGSTOP)
        try:
            acquired = wait_for("B to lead", lambda: lease.held_by(b.pid), timeout=60)
            time.sleep(max(0.0, 20 - LEASE_DURATION))  # 20 s in all
        finally:
            os.kill(a.pid, signal.SIGCONT)
    else:
        assert proxy is not None
        proxy.blackhole(r"/apis/coordination\.k8s\.io/")
        acquired = wait_for("B to lead", lambda: lease.held_by(b.pid), timeout=60)
    time.sleep(15)  # A running after the new leader took over

    for name in names:
        jobs.wait_phase(name, "Succeeded", timeout=300)
    requests = audit.requests()
    late = writes_after(requests, user_of("fence-a"), acquired + GRACE)
    assert late == [], [(r.verb, r.resource, r.name, r.received, acquired) for r in late]
    creates = created(requests, "jobs")
    assert all(len(creates.get((namespace, f"{n}-1")) or []) == 1 for n in names)
    a_writes = [r for r in requests if r.user == user_of("fence-a") and r.is_write]
    b_writes = [r for r in requests if r.user == user_of("fence-b") and r.is_write]
    assert a_writes and b_writes, "both must have acted, A before the fault and B after it"
    last_a = max(r.received for r in a_writes)
    print(f"\n{fault}: A's last write {(last_a - acquired).total_seconds():+.3f}s from B's acquire")
