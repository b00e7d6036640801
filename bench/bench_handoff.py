"""Continuation hand-off latency and cron lateness, measured from outside the operator.

    KUBECONFIG=... python -m bench.bench_handoff [--pairs 50] [--cron 5]

Starts its own operator (``python -m backgroundjobs.controller --all-namespaces``) against
$KUBECONFIG, works in a fresh namespace, and removes both at the end. A separate watch on
Jobs records when each event arrives here (one clock for every measurement):

* hand-off: a parent's Job seen Complete -> its child's Job seen ADDED, over ``--pairs``
  parent->child pairs (parents run ~1s in kwok; all pairs are created at once);
* cron lateness: the first Job of each of ``--cron`` ``* * * * *`` jobs seen ADDED minus the
  minute boundary it was scheduled for.

Run no other operator against the cluster meanwhile: two would both act.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kubernetes import client, config, watch
from kubernetes.client.rest import ApiException
from tests.integration.bgj import manifest, wait_for
from tests.integration.harness import OperatorProcess, apply_crd

from backgroundjobs.api import constants as c
from bench.scratch import delete_namespace_quietly

SCHEDULED = c.ANNOTATION_CRONJOB_SCHEDULED


class JobWatch(threading.Thread):
    """Arrival times (time.time()) of Job ADDED, first-seen-Complete and first-seen-Failed
    events in a namespace. Events are read as plain JSON, not as the client's model objects:
    turning a Job into a V1Job holds the GIL for milliseconds, and in a burst of the Job
    controller's updates that lag, not the operator, was what a late arrival measured."""

    def __init__(self, api: client.ApiClient, namespace: str) -> None:
        super().__init__(daemon=True)
        self.batch = client.BatchV1Api(api)
        self.ns = namespace
        self.added: dict[str, float] = {}
        self.complete: dict[str, float] = {}
        self.failed: dict[str, float] = {}
        self.scheduled: dict[str, str] = {}
        self.owner: dict[str, str] = {}
        self.ready = threading.Event()
        self.stopped = threading.Event()
        self._watch = watch.Watch()

    def run(self) -> None:
        rv = self.batch.list_namespaced_job(self.ns).metadata.resource_version
        self.ready.set()
        while not self.stopped.is_set():
            try:
                for event in self._watch.stream(
                    self.batch.list_namespaced_job,
                    self.ns,
                    resource_version=rv,
                    timeout_seconds=60,
                    allow_watch_bookmarks=True,
                    deserialize=False,
                ):
                    now = time.time()
                    job = event["object"]
                    meta = job.get("metadata") or {}
                    rv = meta.get("resourceVersion") or rv
                    if event["type"] == "BOOKMARK":
                        continue
                    self._seen(event["type"], meta, job.get("status") or {}, now)
            except ApiException as exc:
                if exc.status == 410:  # expired: start over from a fresh list
                    rv = self.batch.list_namespaced_job(self.ns).metadata.resource_version
                    continue
                if not self.stopped.is_set():
                    raise
            except Exception:
                if not self.stopped.is_set():
                    raise
                return  # the stream was closed by stop()

    def _seen(self, kind: str, meta: dict[str, Any], status: dict[str, Any], now: float) -> None:
        name = meta.get("name", "")
        if kind == "ADDED":
            self.added.setdefault(name, now)
            self.owner[name] = (meta.get("labels") or {}).get(c.LABEL_NAME, "")
            stamp = (meta.get("annotations") or {}).get(SCHEDULED)
            if stamp:
                self.scheduled[name] = stamp
        for cond in status.get("conditions") or []:
            if cond.get("status") != "True":
                continue
            if cond.get("type") == "Complete":
                self.complete.setdefault(name, now)
            elif cond.get("type") == "Failed":
                self.failed.setdefault(name, now)

    def stop(self) -> None:
        self.stopped.set()
        self._watch.stop()


def bgj(name: str, **spec: Any) -> dict[str, Any]:
    return manifest(name, handler="bench.noop", **spec)


def describe(values: list[float]) -> str:
    if not values:
        return "no samples"
    q = statistics.quantiles(values, n=10)[-1] if len(values) >= 2 else values[0]
    return (
        f"n={len(values)} median={statistics.median(values):.3f}s "
        f"p90={q:.3f}s max={max(values):.3f}s min={min(values):.3f}s"
    )


def bench_handoff(custom: client.CustomObjectsApi, jw: JobWatch, ns: str, pairs: int) -> None:
    for i in range(pairs):
        custom.create_namespaced_custom_object(
            c.GROUP, c.VERSION, ns, c.PLURAL, bgj(f"p{i}", args=[i])
        )
        custom.create_namespaced_custom_object(
            c.GROUP, c.VERSION, ns, c.PLURAL, bgj(f"k{i}", after={"name": f"p{i}"})
        )
    wait_for(
        f"{pairs} child Jobs",
        lambda: all(f"k{i}-1" in jw.added for i in range(pairs)),
        timeout=120 + 3 * pairs,
    )
    latencies = [jw.added[f"k{i}-1"] - jw.complete[f"p{i}-1"] for i in range(pairs)]
    print(f"hand-off (parent Job Complete -> child Job ADDED), {pairs} pairs:")
    print(f"  {describe(latencies)}")
    if any(x < 0 for x in latencies):
        print("  WARNING: a child Job arrived before its parent's Complete event")


def bench_cron(custom: client.CustomObjectsApi, jw: JobWatch, ns: str, count: int) -> None:
    if 60 - time.time() % 60 < 10:  # too close to a boundary: let it pass first
        time.sleep(60 - time.time() % 60 + 1)
    boundary = (int(time.time()) // 60 + 1) * 60
    for i in range(count):
        custom.create_namespaced_custom_object(
            c.GROUP, c.VERSION, ns, c.PLURAL, bgj(f"cron{i}", schedule="* * * * *")
        )

    def first_jobs() -> dict[str, str] | None:
        firsts: dict[str, str] = {}
        for job, owner in jw.owner.items():
            if owner.startswith("cron") and owner not in firsts:
                firsts[owner] = job
        return firsts if len(firsts) == count else None

    firsts = wait_for(f"a scheduled Job for each of {count} cron jobs", first_jobs, 150)
    lateness = []
    for job in firsts.values():
        stamp = jw.scheduled.get(job)
        due = (
            datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp() if stamp else boundary
        )
        lateness.append(jw.added[job] - due)
    when = datetime.fromtimestamp(boundary, UTC).strftime("%H:%M:%SZ")
    print(f"cron lateness (Job ADDED - minute boundary), {count} jobs at {when}:")
    print(f"  {describe(lateness)}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=int, default=50)
    parser.add_argument("--cron", type=int, default=5)
    args = parser.parse_args()
    if not os.environ.get("KUBECONFIG"):
        print("set KUBECONFIG to the cluster to measure", file=sys.stderr)
        return 2

    api = config.new_client_from_config(config_file=os.environ["KUBECONFIG"])
    core = client.CoreV1Api(api)
    custom = client.CustomObjectsApi(api)
    apply_crd(api)
    ns = f"bench-handoff-{uuid.uuid4().hex[:6]}"
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=ns)))
    log_dir = Path(tempfile.mkdtemp(prefix="bench-handoff-"))
    operator = OperatorProcess(os.environ["KUBECONFIG"], log_dir)
    jw = JobWatch(api, ns)
    try:
        wait_for(
            "the default ServiceAccount",
            lambda: core.list_namespaced_service_account(ns).items,
            120,
        )
        operator.start()
        jw.start()
        jw.ready.wait(30)
        print(f"namespace {ns}; operator log {operator.log_path}")
        if args.pairs:
            bench_handoff(custom, jw, ns, args.pairs)
        if args.cron:
            bench_cron(custom, jw, ns, args.cron)
    finally:
        jw.stop()
        operator.stop()
        delete_namespace_quietly(core, ns)
        api.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
