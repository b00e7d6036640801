"""A limited queue under load: N jobs into a BackgroundJobQueue with ``maxConcurrency: 20``.

    KUBECONFIG=... python -m bench.bench_queue [--jobs 500] [--limit 20] [--run-for 1s]

Starts its own operator against $KUBECONFIG in a fresh namespace (both removed at the end),
creates the jobs one after the other (so creation order is the queue's order), and watches
the namespace's Jobs from outside the operator. Prints one JSON line: order violations
(adjacent Jobs created against the queue's order, must be 0), the most Jobs running at once
(a Job counts from its ADDED until it is seen Complete or Failed: never above the limit),
the wall time from the first create to the last Succeeded, and the admission rate; against
what the cluster allows: ``limit`` Jobs at once, each taking the mean seen from its ADDED to
its Complete, so ``limit / mean`` Jobs per second at best (``cluster_bound_per_second``);
the operator's CPU time per admission (all its CPU from its start to the last Succeeded over
the Jobs created) and its peak RSS. The suite runs it as ``q1`` (bench/suite.py).

Run no other operator against the cluster meanwhile: two would both act.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

from kubernetes import client, config
from tests.integration.bgj import RUN_FOR, manifest, wait_for
from tests.integration.harness import QUEUE_CRD_FILE, OperatorProcess, apply_crd
from tests.integration.queue_helpers import JobLog, Queues

from backgroundjobs.api import constants as c
from bench import procs
from bench.scratch import delete_namespace_quietly


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=500)
    parser.add_argument("--limit", type=int, default=20)
    parser.add_argument("--run-for", default="1s", help="each pod's run time (kwok)")
    args = parser.parse_args()
    if not os.environ.get("KUBECONFIG"):
        print("set KUBECONFIG to the cluster to measure", file=sys.stderr)
        return 2
    api = config.new_client_from_config(config_file=os.environ["KUBECONFIG"])
    core = client.CoreV1Api(api)
    custom = client.CustomObjectsApi(api)
    apply_crd(api, QUEUE_CRD_FILE)
    apply_crd(api)
    ns = f"bench-queue-{uuid.uuid4().hex[:6]}"
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=ns)))
    operator = OperatorProcess(
        os.environ["KUBECONFIG"],
        Path(tempfile.mkdtemp(prefix="bench-queue-")),
        {"BACKGROUNDJOBS_POD_POLICY_CHECK": "false"},
    )
    try:
        wait_for(
            "the default ServiceAccount", lambda: core.list_namespaced_service_account(ns).items
        )
        operator.start()
        cpu_at_start = procs.cpu_seconds(operator.pid)
        peak_rss = procs.rss_bytes(operator.pid)
        queues = Queues(api, ns)
        queues.create("bulk", maxConcurrency=args.limit)
        # Jobs that arrive before the operator has seen the queue object run under the
        # defaults (no limit, so in no set order): wait for its status first.
        wait_for(
            "the operator to see the queue",
            lambda: (queues.get("bulk").get("status") or {}).get("observedGeneration"),
        )
        names = [f"q-{i:06d}" for i in range(args.jobs)]
        with JobLog(api, ns) as log:
            t0 = time.monotonic()
            for name in names:
                body = manifest(name, queue="bulk", pod_annotations={RUN_FOR: args.run_for})
                custom.create_namespaced_custom_object(c.GROUP, c.VERSION, ns, c.PLURAL, body)
            created_in = time.monotonic() - t0

            def all_jobs_finished() -> bool:
                nonlocal peak_rss
                peak_rss = max(peak_rss, procs.rss_bytes(operator.pid))
                return len(log.finished_at) >= len(names)

            def all_succeeded() -> bool:
                items = custom.list_namespaced_custom_object(c.GROUP, c.VERSION, ns, c.PLURAL)
                phases = [(i.get("status") or {}).get("phase") for i in items["items"]]
                return phases.count("Succeeded") == len(names)

            # The watch says when every Job finished; only then are the BackgroundJobs listed
            # (at 10,000 a list of them every 2 s would be most of the API server's work).
            wait_for("every Job finished", all_jobs_finished, timeout=4 * 3600, interval=2)
            wait_for("every job Succeeded", all_succeeded, timeout=600, interval=2)
            wall = time.monotonic() - t0
            cpu = procs.cpu_seconds(operator.pid) - cpu_at_start
        lifetimes = [
            log.finished_at[n] - log.added_at[n] for n in log.finished_at if n in log.added_at
        ]
        mean_lifetime = sum(lifetimes) / len(lifetimes) if lifetimes else float("nan")
        rank = {name: i for i, name in enumerate(names)}
        order = [rank[n] for n in log.created if n in rank]
        against = [(names[a], names[b]) for a, b in itertools.pairwise(order) if a > b]
        violations = len(against)
        print(
            json.dumps(
                {
                    "jobs": args.jobs,
                    "limit": args.limit,
                    "run_for": args.run_for,
                    "order_violations": violations,
                    "violations_first": against[:5],
                    "jobs_seen": len(order),
                    "max_running_observed": log.max_running,
                    "create_seconds": round(created_in, 1),
                    "wall_seconds": round(wall, 1),
                    "admitted_per_second": round(len(order) / wall, 2),
                    "job_mean_seconds": round(mean_lifetime, 2),
                    "cluster_bound_per_second": round(args.limit / mean_lifetime, 2),
                    "operator_cpu_seconds": round(cpu, 1),
                    "cpu_ms_per_admission": round(1000 * cpu / max(1, len(order)), 2),
                    "operator_peak_rss_mib": round(peak_rss / 2**20, 1),
                    "operator_log": str(operator.log_path),
                }
            )
        )
        return 0 if violations == 0 and log.max_running <= args.limit else 1
    finally:
        operator.stop()
        delete_namespace_quietly(core, ns)
        api.close()


if __name__ == "__main__":
    sys.exit(main())
