"""How long until all Jobs exist for N immediate BackgroundJobs applied at once.

Usage: KUBECONFIG=... python bench/bench_apply_200.py [N]
Starts its own operator (python -m backgroundjobs.controller), creates N BackgroundJobs with
32 requests in flight, and records with a separate watch when each Job's ADDED event
arrives. Prints the time from the first create to the last Job, and the rate. Cleans up.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

from kubernetes import client, config, watch

from backgroundjobs.api import constants as c


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    config.load_kube_config()
    core, batch, custom = client.CoreV1Api(), client.BatchV1Api(), client.CustomObjectsApi()
    ns = f"bench-apply-{uuid.uuid4().hex[:6]}"
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=ns)))
    op = subprocess.Popen(
        [sys.executable, "-m", "backgroundjobs.controller", "--all-namespaces", "--liveness", ""],
        env={**os.environ, "BACKGROUNDJOBS_METRICS_PORT": "0"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    seen: dict[str, float] = {}
    done = threading.Event()

    def watcher() -> None:
        w = watch.Watch()
        for ev in w.stream(batch.list_namespaced_job, ns, timeout_seconds=300):
            if ev["type"] == "ADDED":
                seen.setdefault(ev["object"].metadata.name, time.monotonic())
                if len(seen) >= n:
                    done.set()
                    w.stop()

    t = threading.Thread(target=watcher, daemon=True)
    t.start()
    time.sleep(3)  # the operator and the watch are up

    def create(i: int) -> None:
        body = {
            "apiVersion": c.API_VERSION,
            "kind": c.KIND,
            "metadata": {"name": f"job-{i}"},
            "spec": {"handler": "test.echo", "args": [i]},
        }
        custom.create_namespaced_custom_object(c.GROUP, c.VERSION, ns, c.PLURAL, body)

    t0 = time.monotonic()
    with ThreadPoolExecutor(32) as pool:
        list(pool.map(create, range(n)))
    t_created = time.monotonic() - t0
    done.wait(300)
    last = max(seen.values()) - t0 if seen else float("nan")
    print("| BackgroundJobs | created in | all Jobs exist after | Jobs/s |")
    print("|---|---|---|---|")
    print(f"| {n} | {t_created:.2f}s | {last:.2f}s | {len(seen) / last:.0f} |")
    op.terminate()
    op.wait(20)
    core.delete_namespace(ns)


if __name__ == "__main__":
    main()
