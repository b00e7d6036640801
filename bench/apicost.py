"""What one request of each kind the operator makes costs the API server and etcd, in CPU.

    BGJ_CLUSTER=bench hack/cluster.sh up
    KUBECONFIG=$(BGJ_CLUSTER=bench hack/cluster.sh kubeconfig) python -m bench.apicost [N]

For each kind, N requests (default 1000) are made 32 at a time by a tight client with no
operator running, and the CPU seconds kube-apiserver and etcd used meanwhile (from /proc)
are divided by N. The kinds are the operator's requests for one Immediate job (the Job it
creates, its status patches of the BackgroundJob, an Event) next to the direct client's
suspended Job, so that M1's ratio can be read as a sum of per-request costs.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from backgroundjobs.api import constants as c
from backgroundjobs.controller import builders
from backgroundjobs.controller.decisions import parse_spec
from backgroundjobs.controller.kube import Kube as OperatorKube
from backgroundjobs.controller.settings import Settings
from bench import procs
from bench.k8s import Kube, api_client
from bench.scenarios import IN_FLIGHT, bgj, bounded, direct_job

Body = dict[str, Any]


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def running_status(name: str) -> Body:
    """The operator's first status patch of an Immediate job (as the reconciler writes it)."""
    now = _now()
    return {
        "type": "Immediate",
        "phase": "Running",
        "runs": 1,
        "jobName": builders.job_name(name, 1),
        "startedAt": now,
        "observedGeneration": 1,
        "message": "run 1 started",
        "conditions": [
            {
                "type": "Running",
                "status": "True",
                "reason": "JobCreated",
                "message": f"Job {builders.job_name(name, 1)} created",
                "lastTransitionTime": now,
                "observedGeneration": 1,
            }
        ],
    }


async def measure(
    label: str, n: int, make: Callable[[int], Awaitable[None]], pids: dict[str, int]
) -> dict[str, float]:
    meter = procs.CpuMeter(pids).start()
    wall = await bounded(n, make, IN_FLIGHT)
    used = meter.stop()
    out = {
        "rate": n / wall,
        "apiserver_ms": 1000 * used.get("kube-apiserver", 0.0) / n,
        "etcd_ms": 1000 * used.get("etcd", 0.0) / n,
        "kcm_ms": 1000 * used.get("kube-controller-manager", 0.0) / n,
    }
    print(
        f"{label:42s} {out['rate']:7.0f}/s  apiserver {out['apiserver_ms']:5.2f} ms"
        f"  etcd {out['etcd_ms']:5.2f} ms  controller-manager {out['kcm_ms']:5.2f} ms",
        flush=True,
    )
    return out


async def main(n: int) -> None:
    kubeconfig = os.environ["KUBECONFIG"]
    pids = {
        k: v
        for k, v in procs.cluster_pids(kubeconfig).items()
        if k in ("kube-apiserver", "etcd", "kube-controller-manager")
    }
    api = await api_client(kubeconfig)
    kube = Kube(api)
    op = OperatorKube(api)
    run_id = str(int(time.time()))
    ns = await kube.namespace(f"apicost-{run_id}", run_id)
    await asyncio.sleep(2)
    settings = Settings()
    try:
        await measure(
            "Job, suspended (the direct client's)",
            n,
            lambda i: kube.create_job(ns, direct_job(f"s-{i}", ns)),
            pids,
        )
        await measure(
            "BackgroundJob create (Immediate)",
            n,
            lambda i: kube.create_bgj(ns, bgj(f"b-{i}")),
            pids,
        )
        bodies = {b["metadata"]["name"]: b for b in await kube.list_bgjs(ns)}

        async def job_of(i: int) -> None:
            parent = bodies[f"b-{i}"]
            job = builders.build_job(parent, parse_spec(parent), settings, 1)
            job["spec"]["suspend"] = True  # the same body; no pods, so only the create counts
            await kube.create_job(ns, job)

        await measure("Job the operator builds (suspended here)", n, job_of, pids)
        await measure(
            "BackgroundJob status patch: Running",
            n,
            lambda i: _discard(op.patch_status(ns, f"b-{i}", running_status(f"b-{i}"))),
            pids,
        )
        await measure(
            "BackgroundJob status patch: one field",
            n,
            lambda i: _discard(op.patch_status(ns, f"b-{i}", {"message": "x"})),
            pids,
        )
        await measure(
            "Event (involvedObject the BackgroundJob)",
            n,
            lambda i: op.post_event(bodies[f"b-{i}"], "Normal", "Started", "run 1 started"),
            pids,
        )
    finally:
        await kube.delete_namespace(ns)
        await api.close()


async def _discard(aw: Awaitable[Any]) -> None:
    await aw


if __name__ == "__main__":
    assert c.KIND
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 1000))
