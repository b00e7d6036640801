"""How long until all Jobs exist for N immediate BackgroundJobs applied at once.

Usage: KUBECONFIG=... python -m bench.bench_apply_200 [N]
Starts its own operator (python -m backgroundjobs.controller), creates N BackgroundJobs with
32 requests in flight, and records with a separate watch when each Job's ADDED event
arrives. Prints the time from the first create to the last Job, and the rate. Cleans up.
"""

from __future__ import annotations

import os
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from kubernetes import client, config, watch
from tests.integration.bgj import manifest
from tests.integration.harness import OperatorProcess

from backgroundjobs.api import constants as c


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    config.load_kube_config()
    core, batch, custom = client.CoreV1Api(), client.BatchV1Api(), client.CustomObjectsApi()
    ns = f"bench-apply-{uuid.uuid4().hex[:6]}"
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=ns)))
    op = OperatorProcess(os.environ["KUBECONFIG"], Path(tempfile.mkdtemp(prefix="bench-apply-")))
    op.start()
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
    time.sleep(3)  # the watch is up

    def create(i: int) -> None:
        body = manifest(f"job-{i}", args=[i])
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
    op.stop()
    core.delete_namespace(ns)


if __name__ == "__main__":
    main()
