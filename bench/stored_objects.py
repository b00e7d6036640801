"""Issue 13's line for many stored objects: an operator starting on a cluster that holds N
finished BackgroundJobs (their Jobs gone, kept by retention), as after months of use.

For each N (default 10,000, 30,000 and 100,000, spread over 100 namespaces):

1. the objects are written straight into the cluster's etcd, in transactions of 128 (the
   API server stores a custom object as its JSON under /registry/<group>/<plural>/<ns>/<name>;
   creating 100,000 through the API server, with the status write each needs, would take
   more than half an hour on this machine; what the operator then reads is the same), and
   the API server is waited for until its list holds them all;
2. a new operator starts (the tests' OperatorProcess, all namespaces); a job due at once is
   created as soon as its health endpoint answers, and the bench records when the process
   started, when its queue admission opened (its log), and when that job's Job was created:
   the issue asks for at most 2 minutes;
3. the operator's RSS once nothing is pending, against the chart's default memory limit
   (512 MiB); the slope over the sizes is the memory per stored object.

Needs a cluster of its own (it writes to etcd directly): ``BGJ_CLUSTER=bench-stored`` is
started with hack/cluster.sh, and deleted afterwards unless ``--keep``.

    python -m bench.stored_objects [--sizes 10000,30000,100000] [--keep]
"""

from __future__ import annotations

import argparse
import base64
import http.client
import json
import os
import re
import subprocess
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from kubernetes import client, config
from kubernetes.client.rest import ApiException
from tests.integration.harness import REPO_ROOT, apply_crd

from backgroundjobs.api import constants as c
from backgroundjobs.controller.decisions import Observed, decide
from backgroundjobs.controller.settings import Settings
from bench.operator_process import Operator
from bench.procs import rss_bytes

CLUSTER = os.environ.get("BGJ_CLUSTER", "bench-stored")
NAMESPACES = 100
TXN_OPS = 128  # etcd's default --max-txn-ops
CHART_LIMIT = 512 * 1024 * 1024
ADMISSION_OPEN = re.compile(r"^(\S+ \S+,\d+) INFO .*queues: admission open after")


def cluster(*args: str) -> str:
    env = {**os.environ, "BGJ_CLUSTER": CLUSTER}
    out = subprocess.run(
        ["bash", str(REPO_ROOT / "hack" / "cluster.sh"), *args],
        check=True,
        capture_output=True,
        text=True,
        timeout=900,
        env=env,
    )
    return out.stdout.strip()


def etcd_endpoint() -> tuple[str, int]:
    """The cluster's etcd client address (plain HTTP on localhost), from its process."""
    workdir = Path(cluster("kubeconfig")).parent
    out = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True, check=True)
    for line in out.stdout.splitlines():
        if "etcd" in line and str(workdir) in line and "--listen-client-urls=" in line:
            url = line.split("--listen-client-urls=", 1)[1].split()[0].split(",")[0]
            host, port = url.removeprefix("http://").rsplit(":", 1)
            return host, int(port)
    raise RuntimeError(f"no etcd process of {workdir}")


def stored_object(ns: str, name: str, finished: datetime, i: int) -> dict[str, Any]:
    """A BackgroundJob as the API server stores it once the operator finished it."""
    at = finished.strftime("%Y-%m-%dT%H:%M:%SZ")
    started = (finished - timedelta(seconds=3)).strftime("%Y-%m-%dT%H:%M:%SZ")
    created = (finished - timedelta(seconds=5)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "apiVersion": c.API_VERSION,
        "kind": c.KIND,
        "metadata": {
            "name": name,
            "namespace": ns,
            "uid": str(uuid.uuid4()),
            "generation": 1,
            "creationTimestamp": created,
            "labels": {"app": "shop"},
        },
        "spec": {
            "handler": "mail.send",
            "args": [f"user-{i}@example.com"],
            "kwargs": {"subject": "Your order shipped", "order": i},
            "queue": "default",
            "retries": 3,
        },
        "status": {
            "observedGeneration": 1,
            "type": "Immediate",
            "phase": "Succeeded",
            "runs": 1,
            "startedAt": started,
            "finishedAt": at,
            "message": "succeeded",
            "result": {"status": "sent", "messageId": f"<{i}@shop.example>"},
            "conditions": [
                {
                    "type": "Succeeded",
                    "status": "True",
                    "reason": "Completed",
                    "message": "succeeded",
                    "lastTransitionTime": at,
                },
                {
                    "type": "Reconciling",
                    "status": "False",
                    "reason": "Succeeded",
                    "message": "",
                    "lastTransitionTime": at,
                    "observedGeneration": 1,
                },
                {
                    "type": "Stalled",
                    "status": "False",
                    "reason": "Succeeded",
                    "message": "",
                    "lastTransitionTime": at,
                    "observedGeneration": 1,
                },
            ],
        },
    }


def check_as_written() -> None:
    """Stop unless the operator, deciding on a stored object, would write back the status it
    has: a status of another shape (one the operator wrote before a change of its status)
    makes it patch every object at start, which this bench does not mean to measure."""
    body = stored_object("ns", "probe", datetime.now(UTC) - timedelta(hours=1), 0)
    body["metadata"]["resourceVersion"] = "1"
    plan = decide(Observed(bgj=body, now=datetime.now(UTC), jobs={}), Settings())
    if plan.status is not None and plan.status != body["status"]:
        raise SystemExit(
            "stored_object() no longer matches the status the operator writes; update it:"
            f"\n{json.dumps(plan.status, indent=1)}"
        )


def seed(etcd: tuple[str, int], namespaces: list[str], start: int, stop: int) -> float:
    """Objects ``start``..``stop``-1 written into etcd; the seconds it took."""
    t0 = time.monotonic()
    conn = http.client.HTTPConnection(*etcd, timeout=60)
    finished = datetime.now(UTC) - timedelta(minutes=10)  # well inside the retention
    ops: list[dict[str, Any]] = []

    def flush() -> None:
        conn.request("POST", "/v3/kv/txn", json.dumps({"success": ops}))
        reply = conn.getresponse()
        body = reply.read()
        if reply.status != 200:
            raise RuntimeError(f"etcd txn: {reply.status} {body[:300]!r}")
        ops.clear()

    for i in range(start, stop):
        ns = namespaces[i % len(namespaces)]
        name = f"order-{i:06d}"
        key = f"/registry/{c.GROUP}/{c.PLURAL}/{ns}/{name}"
        value = json.dumps(stored_object(ns, name, finished, i), separators=(",", ":"))
        ops.append(
            {
                "requestPut": {
                    "key": base64.b64encode(key.encode()).decode(),
                    "value": base64.b64encode(value.encode()).decode(),
                }
            }
        )
        if len(ops) == TXN_OPS:
            flush()
    if ops:
        flush()
    conn.close()
    return time.monotonic() - t0


def watch_ready(custom: client.CustomObjectsApi) -> bool:
    """Whether the API server serves watches of BackgroundJobs: after etcd changed under it
    (clear, seed) its watch cache initialises again and answers 429 meanwhile, which would
    be measured as the operator's start."""
    try:
        resp = custom.list_cluster_custom_object(
            c.GROUP, c.VERSION, c.PLURAL, watch=True, timeout_seconds=1, _preload_content=False
        )
    except ApiException:
        return False
    resp.release_conn()
    return True


def clear(etcd: tuple[str, int]) -> None:
    """Remove every stored BackgroundJob from etcd: a kept cluster (``--keep``) starts again
    from none, so that a run of smaller sizes after a larger one measures what it says."""
    prefix = f"/registry/{c.GROUP}/{c.PLURAL}/".encode()
    end = prefix[:-1] + bytes([prefix[-1] + 1])
    conn = http.client.HTTPConnection(*etcd, timeout=60)
    request = {
        "key": base64.b64encode(prefix).decode(),
        "range_end": base64.b64encode(end).decode(),
    }
    conn.request("POST", "/v3/kv/deleterange", json.dumps(request))
    reply = conn.getresponse()
    body = reply.read()
    conn.close()
    if reply.status != 200:
        raise RuntimeError(f"etcd deleterange: {reply.status} {body[:300]!r}")


def listed(custom: client.CustomObjectsApi) -> int:
    """How many BackgroundJobs the API server lists (paged, as a client would); -1 while
    its watch cache has not caught up with etcd (a 504 "Too large resource version" for a
    page: seen at 100,000 objects written straight into etcd)."""
    total, token = 0, None
    while True:
        try:
            page = custom.list_cluster_custom_object(
                c.GROUP, c.VERSION, c.PLURAL, limit=5000, _continue=token
            )
        except ApiException as exc:
            if exc.status in (500, 503, 504):
                return -1
            raise
        total += len(page["items"])
        token = page["metadata"].get("continue")
        if not token:
            return total


def admission_opened(log_text: str) -> float | None:
    for line in log_text.splitlines():
        m = ADMISSION_OPEN.match(line)
        if m:
            return datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S,%f").timestamp()
    return None


def measure(
    kubeconfig: str,
    api: client.ApiClient,
    n: int,
    work: Path,
    settle_max: float = 900,
    profile: bool = False,
) -> dict[str, Any]:
    """Start an operator on the cluster's N stored objects; what it took."""
    custom, batch = client.CustomObjectsApi(api), client.BatchV1Api(api)
    probe_ns = "stored-probe"
    run_dir = work / f"operator-{n}"
    run_dir.mkdir(exist_ok=True)
    op = Operator(
        kubeconfig, run_dir / "operator.log", profile_to=run_dir / "profile" if profile else None
    )
    launched = time.time()
    op.start(timeout=600)
    healthy = time.time()
    name = f"due-{n}-{int(time.time())}"
    custom.create_namespaced_custom_object(
        c.GROUP,
        c.VERSION,
        probe_ns,
        c.PLURAL,
        {
            "apiVersion": c.API_VERSION,
            "kind": c.KIND,
            "metadata": {"name": name},
            "spec": {"handler": "test.echo"},
        },
    )
    job_at = None
    deadline = time.time() + 900
    while time.time() < deadline:
        jobs = batch.list_namespaced_job(probe_ns, label_selector=f"{c.LABEL_NAME}={name}").items
        if jobs:
            job_at = jobs[0].metadata.creation_timestamp.timestamp()
            break
        time.sleep(0.5)
    settle_started = time.monotonic()
    quiet = 0
    while quiet < 8 and time.monotonic() - settle_started < settle_max:
        quiet = quiet + 1 if op.pending() == 0 else 0
        time.sleep(0.5)
    rss = rss_bytes(op.pid)
    opened = admission_opened(op.log_path.read_text())
    op.stop()
    return {
        "objects": n,
        "healthy_s": round(healthy - launched, 1),
        "admission_open_s": None if opened is None else round(opened - launched, 1),
        "first_job_s": None if job_at is None else round(job_at - launched, 1),
        "settled_s": round(time.time() - launched, 1) if quiet >= 8 else None,
        "rss_mib": round(rss / 2**20, 1),
    }


def slope(rows: list[dict[str, Any]]) -> float:
    """Least-squares MiB per 1,000 objects over the sizes measured."""
    xs = [r["objects"] / 1000 for r in rows]
    ys = [r["rss_mib"] for r in rows]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    den = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / den if den else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10000,30000,100000")
    parser.add_argument("--keep", action="store_true", help="leave the cluster running")
    parser.add_argument(
        "--settle-max",
        type=float,
        default=900,
        help="seconds to wait for nothing pending before the RSS is read (settled_s None: cut)",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="run the operator under pyinstrument (a slower start; profile.txt in its log dir)",
    )
    args = parser.parse_args()
    sizes = sorted(int(s) for s in args.sizes.split(","))
    check_as_written()
    cluster("up")
    kubeconfig = cluster("kubeconfig")
    work = Path(tempfile.mkdtemp(prefix="bench-stored-"))
    try:
        config.load_kube_config(kubeconfig)
        api = client.ApiClient()
        apply_crd(api)
        core, custom = client.CoreV1Api(api), client.CustomObjectsApi(api)
        namespaces = [f"stored-{k:03d}" for k in range(NAMESPACES)]
        for ns in [*namespaces, "stored-probe"]:
            try:
                core.create_namespace({"metadata": {"name": ns}})
            except ApiException as exc:
                if exc.status != 409:
                    raise
        etcd = etcd_endpoint()
        clear(etcd)
        while listed(custom) != 0:
            time.sleep(1)
        rows: list[dict[str, Any]] = []
        have = 0
        for n in sizes:
            took = seed(etcd, namespaces, have, n)
            have = n
            t0 = time.monotonic()
            ready = 0  # checks in a row: after a clear the cache lags etcd for a while
            while ready < 3:
                ok = listed(custom) >= n + len(rows) and watch_ready(custom)  # + the probes
                ready = ready + 1 if ok else 0
                time.sleep(1)
            print(
                f"{n} objects stored ({took:.0f} s into etcd, listed after"
                f" {time.monotonic() - t0:.0f} s more)",
                flush=True,
            )
            row = measure(kubeconfig, api, n, work, args.settle_max, args.profile)
            row["seed_s"] = round(took, 1)
            rows.append(row)
            print(json.dumps(row), flush=True)
        print()
        print("| stored objects | healthy s | admission open s | first due Job s | RSS MiB |")
        print("|---|---|---|---|---|")
        for r in rows:
            print(
                f"| {r['objects']:,} | {r['healthy_s']} | {r['admission_open_s']} |"
                f" {r['first_job_s']} | {r['rss_mib']} |"
            )
        print(
            f"\nslope: {slope(rows):.2f} MiB per 1,000 stored objects; chart limit"
            f" {CHART_LIMIT // 2**20} MiB; largest RSS {max(r['rss_mib'] for r in rows)} MiB"
        )
        (work / "results.json").write_text(json.dumps(rows, indent=1))
        print(f"logs and results: {work}")
    finally:
        if not args.keep:
            cluster("down")


if __name__ == "__main__":
    main()
