"""Bulk enqueue throughput: ``enqueue_many`` against a plain loop of ``enqueue`` calls.

    KUBECONFIG=... python -m bench.bench_enqueue_many [--n 10000] [--single 1000]
                                                      [--concurrency 8,32,64]

Creates BackgroundJobs (``test.echo``) in a fresh namespace of the cluster in $KUBECONFIG
and prints a markdown table of wall time and creates per second:

* ``enqueue_many`` of ``--n`` jobs, once per ``--concurrency`` value;
* a loop of ``--single`` awaited ``AsyncClient.enqueue`` calls, one at a time;
* a loop of ``--single`` ``Client.enqueue`` calls (the blocking facade), one at a time.

Only the API server is measured: run it with the operator stopped (or not watching the
namespace), otherwise it reconciles every job meanwhile. The namespace, and with it every
job created, is deleted at the end (``--keep`` keeps it).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import yaml
from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes.client.rest import ApiException

from backgroundjobs.api.constants import CRD_NAME
from backgroundjobs.client import LABEL_BATCH, AsyncClient, Client
from backgroundjobs.errors import BackgroundJobsError

HANDLER = "test.echo"
CRD_FILE = Path(__file__).resolve().parents[1] / "crds" / "backgroundjobs.dev_backgroundjobs.yaml"


@dataclass
class Row:
    """One measurement."""

    method: str
    jobs: int
    concurrency: int
    seconds: float
    failed: int

    @property
    def rate(self) -> float:
        return self.jobs / self.seconds if self.seconds else 0.0


async def bulk(namespace: str, n: int, concurrency: int) -> Row:
    async with AsyncClient(namespace=namespace) as jobs:
        items = [((f"user-{i}",), {}) for i in range(n)]
        start = time.perf_counter()
        results = await jobs.enqueue_many(HANDLER, items, concurrency=concurrency)
        seconds = time.perf_counter() - start
        failed = [r for r in results if isinstance(r, BackgroundJobsError)]
        if failed:
            print(f"  {len(failed)} failed, e.g. {failed[0]}", file=sys.stderr)
        prefix = next((str(r).rsplit("-", 1)[0] for r in results if isinstance(r, str)), "")
        stored = len(await jobs.list(labels={LABEL_BATCH: prefix})) if prefix else 0
        if stored != n - len(failed):
            print(f"  warning: {stored} stored for {n - len(failed)} created", file=sys.stderr)
    return Row("enqueue_many", n, concurrency, seconds, len(failed))


async def async_loop(namespace: str, n: int) -> Row:
    async with AsyncClient(namespace=namespace) as jobs:
        await jobs.list(labels={"bench": "warm-up"})  # connect before the clock starts
        start = time.perf_counter()
        for i in range(n):
            await jobs.enqueue(HANDLER, f"user-{i}")
        return Row("loop of AsyncClient.enqueue", n, 1, time.perf_counter() - start, 0)


def sync_loop(namespace: str, n: int) -> Row:
    with Client(namespace=namespace) as jobs:
        jobs.list(labels={"bench": "warm-up"})
        start = time.perf_counter()
        for i in range(n):
            jobs.enqueue(HANDLER, f"user-{i}")
        return Row("loop of Client.enqueue", n, 1, time.perf_counter() - start, 0)


def install_crd() -> bool:
    """Create the CRD when the cluster lacks it; True when this run created it."""
    ext = k8s.ApiextensionsV1Api()
    for _ in range(600):  # a CRD still being deleted (by an earlier run) must go first
        try:
            crd = ext.read_custom_resource_definition(CRD_NAME)
        except ApiException as exc:
            if exc.status != 404:
                raise
            break
        if crd.metadata.deletion_timestamp is None:
            return False
        time.sleep(0.5)
    ext.create_custom_resource_definition(yaml.safe_load(CRD_FILE.read_text()))
    for _ in range(120):
        crd = ext.read_custom_resource_definition(CRD_NAME)
        if any(c.type == "Established" and c.status == "True" for c in crd.status.conditions or []):
            time.sleep(1)  # discovery catches up
            return True
        time.sleep(0.5)
    raise RuntimeError("the CRD did not become Established")


def table(rows: list[Row]) -> str:
    lines = [
        "| method | jobs | concurrency | wall time (s) | creates/s | failed |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        cells = [r.method, r.jobs, r.concurrency, f"{r.seconds:.1f}", f"{r.rate:.0f}", r.failed]
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=10_000, help="jobs per enqueue_many run (10000)")
    parser.add_argument(
        "--single", type=int, default=1000, help="jobs of each single-call loop (1000)"
    )
    parser.add_argument("--concurrency", default="32", help="comma-separated values (32)")
    parser.add_argument("--namespace", help="default: a fresh bench-enqueue-<random> namespace")
    parser.add_argument("--keep", action="store_true", help="keep the namespace and its jobs")
    args = parser.parse_args()

    k8s_config.load_kube_config()
    core = k8s.CoreV1Api()
    installed_crd = install_crd()
    namespace = args.namespace or f"bench-enqueue-{uuid.uuid4().hex[:6]}"
    try:
        core.create_namespace(k8s.V1Namespace(metadata=k8s.V1ObjectMeta(name=namespace)))
    except ApiException as exc:
        if exc.status != 409:
            raise
    print(f"namespace {namespace}", file=sys.stderr)
    rows: list[Row] = []
    try:
        for value in (int(v) for v in args.concurrency.split(",")):
            print(f"enqueue_many n={args.n} concurrency={value} ...", file=sys.stderr)
            rows.append(asyncio.run(bulk(namespace, args.n, value)))
        print(f"loop of AsyncClient.enqueue n={args.single} ...", file=sys.stderr)
        rows.append(asyncio.run(async_loop(namespace, args.single)))
        print(f"loop of Client.enqueue n={args.single} ...", file=sys.stderr)
        rows.append(sync_loop(namespace, args.single))
    finally:
        print(table(rows), flush=True)
        if not args.keep:
            core.delete_namespace(namespace, propagation_policy="Background")
            if installed_crd:
                k8s.ApiextensionsV1Api().delete_custom_resource_definition(CRD_NAME)
    return 0


if __name__ == "__main__":
    sys.exit(main())
