"""N notifications as one batch against N via ``enqueue_many`` (issue 16), side by side.

    KUBECONFIG=... python -m bench.bench_batches [--n 500] [--parallelism 50 [200 ...]]

Needs the operator running against the cluster in $KUBECONFIG (all namespaces). Each way
runs in a fresh namespace: the client submits N calls of ``bench.noop`` (``enqueue_many``:
N BackgroundJobs; ``enqueue_batch``: one), and the clock stops when every call ran (N
BackgroundJobs Succeeded; the batch Succeeded). Measured per way: wall time to all done,
objects stored in the namespace (BackgroundJobs, Jobs, ConfigMaps, pods, Events) and their
JSON bytes as listed (what etcd holds, roughly), and the API requests in that namespace from
the cluster's audit log (hack/cluster.sh writes one) by anyone: client, operator, the Job
controller, kwok. Prints a markdown table; ``--json`` writes the numbers too. The suite runs
the same comparison as ``BENCH_ONLY=b1`` (bench/suite.py).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from kubernetes_asyncio import client as k8s
from kubernetes_asyncio import config as k8s_config

from backgroundjobs.api import constants as c
from backgroundjobs.client import AsyncClient
from bench import audit

HANDLER = "bench.noop"
IN_FLIGHT = 32


async def _stored(api: k8s.ApiClient, ns: str) -> dict[str, int]:
    """Objects and their JSON bytes in ``ns``, by kind (the namespace's own ConfigMap aside)."""
    core, batch = k8s.CoreV1Api(api), k8s.BatchV1Api(api)
    custom = k8s.CustomObjectsApi(api)
    lists = {
        "BackgroundJob": custom.list_namespaced_custom_object(c.GROUP, c.VERSION, ns, c.PLURAL),
        "Job": batch.list_namespaced_job(ns, _preload_content=False),
        "ConfigMap": core.list_namespaced_config_map(ns, _preload_content=False),
        "Pod": core.list_namespaced_pod(ns, _preload_content=False),
        "Event": core.list_namespaced_event(ns, _preload_content=False),
    }
    out: dict[str, int] = {}
    for kind, call in lists.items():
        resp = await call
        body = resp if isinstance(resp, dict) else json.loads(await resp.read())
        items = [i for i in body.get("items") or [] if i["metadata"]["name"] != "kube-root-ca.crt"]
        out[kind] = len(items)
        out[f"{kind} bytes"] = sum(len(json.dumps(i, separators=(",", ":"))) for i in items)
    out["objects"] = sum(v for k, v in out.items() if not k.endswith("bytes"))
    out["bytes"] = sum(v for k, v in out.items() if k.endswith("bytes"))
    return out


async def _wait(jobs: AsyncClient, done: Any, timeout: float) -> None:  # noqa: ASYNC109
    deadline = time.monotonic() + timeout
    while not done(await jobs.list()):
        if time.monotonic() > deadline:
            raise TimeoutError("the calls did not all run in time")
        await asyncio.sleep(1)


async def measure(kubeconfig: str, way: str, n: int, parallelism: int = 0) -> dict[str, Any]:
    """One way (``many`` or ``batch``) of running ``n`` calls, in a namespace of its own."""
    ns = f"bench-batches-{way}-{uuid.uuid4().hex[:6]}"
    api = await k8s_config.new_client_from_config(config_file=kubeconfig)
    core = k8s.CoreV1Api(api)
    await core.create_namespace({"metadata": {"name": ns}})
    log = audit.AuditLog(audit.audit_path(kubeconfig))
    mark = log.mark() if log.exists() else None
    items = [((f"user-{i}",), {}) for i in range(n)]
    try:
        async with AsyncClient(kubeconfig=kubeconfig, namespace=ns) as jobs:
            t0 = time.monotonic()
            if way == "many":
                await jobs.enqueue_many(HANDLER, items, concurrency=IN_FLIGHT, name_prefix="s")
                await _wait(jobs, lambda js: sum(j.phase == "Succeeded" for j in js) >= n, 120 + n)
            else:
                await jobs.enqueue_batch(
                    HANDLER, items, parallelism=parallelism, retries=0, name="notify"
                )
                await _wait(jobs, lambda js: js and js[0].phase == "Succeeded", 120 + n)
            seconds = time.monotonic() - t0
        await asyncio.sleep(3)  # the last status writes and Events land
        out: dict[str, Any] = {"way": way, "n": n, "seconds": round(seconds, 1)}
        if way == "batch":
            out["parallelism"] = parallelism
        out.update(await _stored(api, ns))
        if mark is None:
            pass
        elif not log.covers(mark):
            out["requests_lost"] = "the audit log rotated away part of this run"
        else:
            cost = audit.cost(log.since(mark, None, ns))
            out.update(requests=cost.writes + cost.reads, writes=cost.writes, reads=cost.reads)
        return out
    finally:
        await core.delete_namespace(ns)
        await api.close()


def table(rows: list[dict[str, Any]]) -> str:
    head = "| way | N | wall time to all done | objects stored | bytes stored | API requests |"
    lines = [head, "|---|---|---|---|---|---|"]
    for r in rows:
        kinds = ", ".join(f"{r[k]} {k}" for k in ("BackgroundJob", "Job", "ConfigMap", "Pod"))
        way = r["way"] + (f" (parallelism {r['parallelism']})" if r.get("parallelism") else "")
        lines.append(
            f"| {way} | {r['n']} | {r['seconds']} s | {r['objects']} ({kinds},"
            f" {r['Event']} Event) | {r['bytes'] / 1e6:.2f} MB |"
            + (
                f" {r['requests']} ({r['writes']} writes) |"
                if "requests" in r
                else f" n/a ({r.get('requests_lost', 'no audit log')}) |"
            )
        )
    many = next((r for r in rows if r["way"] == "many"), None)
    ratios = [_ratios(r, many) for r in rows if many and r["way"] == "batch" and r["seconds"]]
    if ratios:
        lines += ["", *ratios]
    return "\n".join(lines) + "\n"


def _ratios(batch: dict[str, Any], many: dict[str, Any]) -> str:
    """How much better one batch row did than the enqueue_many row."""
    line = (
        f"- batch at parallelism {batch['parallelism']}: "
        f"{many['seconds'] / batch['seconds']:.1f}x faster to all done than enqueue_many,"
        f" {many['objects'] / batch['objects']:.1f}x fewer objects stored"
    )
    if batch.get("requests") and many.get("requests"):
        line += f", {many['requests'] / batch['requests']:.1f}x fewer API requests"
    return line


async def compare(
    kubeconfig: str, n: int, parallelisms: Sequence[int] = (50,)
) -> list[dict[str, Any]]:
    """Both ways, one after the other (the batch first: the other leaves more to clean up);
    the batch once per parallelism. The batch runs at most ``parallelism`` items at once
    (24 items/s at 50 and 33 at 200 on the kwok cluster at 10,000, RESULTS-batches.md),
    while enqueue_many's jobs are not limited at all: a second parallelism shows what that
    limit, not the batch, costs."""
    rows = [await measure(kubeconfig, "batch", n, p) for p in parallelisms]
    rows.append(await measure(kubeconfig, "many", n))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=500)
    parser.add_argument("--parallelism", type=int, nargs="+", default=[50])
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    kubeconfig = os.environ["KUBECONFIG"]
    rows = asyncio.run(compare(kubeconfig, args.n, args.parallelism))
    print(table(rows))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
