"""The API server hung (SIGSTOP) for 2 minutes, then killed and restarted, then etcd
restarted; delayed jobs fall due inside the fault, and objects are deleted while the
operator's connection is down (a watch gap: the restarted API server no longer has the
history its watch would resume from, so those deletions reach it only by a relist).

No manual step: the cluster's supervisor restarts what exits (kube-controller-manager and
kube-scheduler lose their Leases during the hang and exit), the operator reconnects by
itself. Within 60 s of the end of the fault: every delayed job that fell due has exactly one
Job, none received before its due time, the deleted objects are gone from the operator (its
``backgroundjobs_jobs`` gauge equals what ``kubectl get bgj`` shows) and no Job was created
for them (no ghosts).
"""

from __future__ import annotations

import os
import time
from datetime import timedelta

from kubernetes import client
from tests.integration.bgj import RUN_FOR, Jobs, manifest, wait_for
from tests.reliability.accounts import user_of
from tests.reliability.audit import Audit, created
from tests.reliability.conftest import OperatorFactory, ProxyFactory, scaled
from tests.reliability.controlplane import ControlPlane
from tests.reliability.scenario import gauge_counts, list_bgjs, now, phase_counts

HANG_SECONDS = float(os.environ.get("RELIABILITY_HANG_SECONDS", "120"))
RECOVERY_WITHIN = 60.0


def test_api_server_hung_killed_restarted_and_etcd_restarted(
    operators: OperatorFactory,
    api_proxy: ProxyFactory,
    control_plane: ControlPlane,
    api_client: client.ApiClient,
    custom_objects: client.CustomObjectsApi,
    namespace: str,
    audit: Audit,
) -> None:
    proxy = api_proxy()
    op = operators("faults", proxy=proxy, namespaces=[namespace])
    op.start()
    jobs = Jobs(api_client, namespace)
    t0 = now()

    n_due = scaled(50, 5)
    due = {f"due-{i}": t0 + timedelta(seconds=20 + i * HANG_SECONDS / n_due) for i in range(n_due)}
    for name, at in due.items():
        jobs.create(manifest(name, runAt=at.isoformat(timespec="microseconds")))
    running = [f"running-{i}" for i in range(scaled(20, 2))]
    later = [f"later-{i}" for i in range(scaled(20, 2))]
    done = [f"done-{i}" for i in range(scaled(20, 2))]
    for name in running:
        jobs.create(manifest(name, pod_annotations={RUN_FOR: "900s"}))
    for name in later:
        jobs.create(manifest(name, delay="1h"))
    for name in done:
        jobs.create(manifest(name))
    for name in running:
        jobs.wait_phase(name, "Running", timeout=120)
    for name in later:
        jobs.wait_phase(name, "Scheduled", timeout=120)
    for name in done:
        jobs.wait_phase(name, "Succeeded", timeout=120)
    controllers = {c: control_plane.pid(c) for c in ("kube-controller-manager", "kube-scheduler")}

    # the fault: hung, killed while hung, restarted; the operator cut off meanwhile
    control_plane.hang("kube-apiserver")
    time.sleep(HANG_SECONDS)
    proxy.partition()
    control_plane.kill("kube-apiserver")
    control_plane.wait_ready()
    gone = running + later + done
    deleted_at = now()
    for name in gone:
        jobs.delete(name)
    control_plane.kill("etcd")
    control_plane.wait_ready()
    healed = time.monotonic()
    proxy.heal()

    # recovery, with no manual step
    last: dict[str, object] = {}

    def recovered() -> bool:
        started = {name: jobs.status(name).get("runs") for name in due}
        items = list_bgjs(custom_objects, namespace)
        last.update(runs=started, gauge=gauge_counts(op.metrics()), objects=phase_counts(items))
        return all(r == 1 for r in started.values()) and last["gauge"] == last["objects"]

    try:
        wait_for("the operator to recover", recovered, timeout=RECOVERY_WITHIN + 120, interval=0.5)
    except AssertionError as exc:
        raise AssertionError(f"{exc}; last seen: {last}") from None
    recovery = time.monotonic() - healed
    print(f"\nrecovered {recovery:.1f}s after the fault ended")
    assert recovery <= RECOVERY_WITHIN

    requests = audit.requests(user_of("faults"), namespace)
    creates = created(requests, "jobs")
    for name, at in due.items():
        made = creates.get((namespace, f"{name}-1")) or []
        assert len(made) == 1, (name, made)
        assert made[0].received >= at, (name, made[0].received, at)
    # no ghosts: nothing written for a deleted object (a 404 that tells the operator of the
    # deletion is no ghost), no Job made for one
    ghosts = [
        r
        for r in requests
        if r.is_write
        and 200 <= r.code < 300
        and r.received > deleted_at
        and any(r.name == g or r.name.startswith(f"{g}-") for g in gone)
    ]
    assert ghosts == [], ghosts
    # the controllers exited during the hang and were restarted by the supervisor
    for component, pid in controllers.items():
        assert control_plane.alive(component)
        print(f"{component}: pid {pid} -> {control_plane.pid(component)}")
    assert op.proc is not None and op.proc.poll() is None, op.log_tail()
