"""``python -m bench.suite``: run the measurements of issue 8 and write bench/RESULTS.md.

Needs KUBECONFIG pointing at the local cluster (hack/bench.sh starts it and applies the CRD).
Environment: BENCH_SCALE (default 1.0) scales the object counts; BENCH_ONLY=probe,direct,m1,
m2,m3,m4,m5,s5 runs a subset (m2: M2 at half M1's rate, and M2s at 10 jobs/s with M7);
BENCH_PROFILE=1 runs the operator under pyinstrument in M1, S5 and M2-M5 (profiles in
bench/profiles/; timings of a profiled run are not comparable); BENCH_WORKERS / BENCH_EVENTS
set the operator's BACKGROUNDJOBS_WORKERS / _EVENTS.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import math
import os
import platform
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import audit, bench_batches, report
from bench import scenarios as sc
from bench.k8s import Kube, api_client
from bench.watcher import Watcher

log = logging.getLogger("bench")
BENCH_DIR = Path(__file__).resolve().parent
ALL = ["probe", "direct", "m1", "m2", "m3", "m4", "m5", "s5", "b1", "r1", "q1"]


def machine() -> dict[str, Any]:
    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return {
        "host": platform.node(),
        "cpus": os.cpu_count(),
        "cpu": cpu,
        "mem_gib": round(mem, 1),
        "python": platform.python_version(),
        "kernel": platform.release(),
        "load_at_start": os.getloadavg(),
    }


def commit() -> str:
    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=BENCH_DIR.parent, capture_output=True, text=True, check=False
        ).stdout.strip()

    sha = git("rev-parse", "--short", "HEAD") or "unknown"
    dirty = git("status", "--porcelain", "--untracked-files=no")
    return sha + (" (+ uncommitted changes)" if dirty else "")


# M4's minute boundaries: another phase may not run from 2 s before one to QUIET_AFTER after
# it (the CronJobs' 200 Jobs and their pods load the cluster for a while).
QUIET_AFTER = 15.0
# Rough durations of the phases run between M4's boundaries, to fit them in (measured:
# m2s 23 s, m5 23-30 s, m3 37-39 s). The window between the two boundaries is 43 s.
ESTIMATES = {"m2s": 26.0, "m5": 31.0, "m3": 40.0}


async def latency_group(ctx: sc.Ctx, only: set[str], phase: Any) -> None:
    """M4's CronJobs first; M2 at a sustained rate (with M7), M5 and M3 between its two minute
    boundaries; M2 at the issue's rate (half of M1's) last, as it leaves minutes of backlog."""
    op = ctx.operator("latency", profile=ctx.profile)
    op.start()
    try:
        # M2s or M3 may come first: not behind the new operator's pass over earlier objects
        log.info("   (operator settled after %.0fs)", await op.settled())
        m4 = await sc.start_m4(ctx) if "m4" in only else None
        if m4 is not None:
            await op.settled()  # its 100 CronJobs created before anything is measured
        m4_done = m4 is None

        def fits(name: str) -> bool:
            if m4 is None:
                return True
            now = time.time()
            nxt = next((b for b in m4.boundaries if b + QUIET_AFTER > now), None)
            return nxt is None or now + ESTIMATES[name] <= nxt - 2

        runs = {
            "m2s": lambda: sc.run_m2(
                ctx, sc.SUSTAINED_RATE, op, "m2s", sc.SUSTAINED_SECONDS, m7=True
            ),
            "m5": lambda: sc.run_m5(ctx),
            "m3": lambda: sc.run_m3(ctx),
        }
        selected_by = {"m2s": "m2", "m5": "m5", "m3": "m3"}
        todo = [name for name, sel in selected_by.items() if sel in only]
        while todo or not m4_done:
            if m4 is not None and not m4_done and time.time() >= m4.boundaries[-1] + QUIET_AFTER:
                await phase("m4", sc.finish_m4(ctx, m4))  # before its CronJobs fire again
                m4_done = True
                # Its 200 CronJobs and their Jobs and pods being deleted load the cluster
                # (M2s right after it: probe p99 184 ms, M2s p99 295 ms in one run).
                await phase("settle m4", sc.wait_quiet(ctx, "m4", 60))
                continue
            # The longest phase that fits before the next boundary: the 43 s between the two
            # takes M3, the shorter ones fit the first window more often.
            name = max((n for n in todo if fits(n)), key=ESTIMATES.__getitem__, default=None)
            if name is None:
                assert m4 is not None
                now = time.time()
                wake = next(b for b in m4.boundaries if b + QUIET_AFTER > now) + QUIET_AFTER
                log.info("   (waiting %.0fs: M4's minute boundary)", wake - now)
                await asyncio.sleep(wake - now)
                continue
            todo.remove(name)
            await phase(name, runs[name]())
        if "m2" in only:
            m1 = (ctx.results.get("m1") or {}).get(ctx.events) or {}
            rate = m1.get("rate", math.nan)
            rate = max(1.0, rate / 2) if not math.isnan(rate) else 2 * sc.SUSTAINED_RATE
            await phase("m2", sc.run_m2(ctx, rate, op))
    finally:
        op.stop()


async def suite(args: argparse.Namespace) -> dict[str, Any]:
    kubeconfig = os.environ.get("KUBECONFIG", "")
    if not kubeconfig:
        raise SystemExit("KUBECONFIG must point at the cluster (hack/bench.sh sets it)")
    run_id = uuid.uuid4().hex[:6]
    work = Path(tempfile.mkdtemp(prefix=f"bgj-bench-{run_id}-"))
    (work / "logs").mkdir()
    kube = Kube(await api_client(kubeconfig))
    await kube.apply_crd()
    # A previous run's namespaces (its last phase, M2, leaves minutes of backlog): deleted and
    # waited out before anything is measured, outside the suite's wall time.
    old = await kube.old_bench_namespaces()
    for ns in old:
        await kube.delete_namespace(ns)
    t_old = time.monotonic()
    for _ in range(150 if old else 0):
        if not await kube.old_bench_namespaces():
            break
        await asyncio.sleep(2)
    if old:
        log.info("previous runs' namespaces gone after %.0fs", time.monotonic() - t_old)
    op_kubeconfig = await kube.operator_kubeconfig(kubeconfig, work / "operator.kubeconfig")
    audit_log = audit.AuditLog(audit.audit_path(kubeconfig))
    if not audit_log.exists():
        log.warning("no audit log at %s: M7 is skipped", audit_log.path)
    watcher = Watcher(kubeconfig)
    ctx = sc.Ctx(
        kube=kube,
        watcher=watcher,
        admin_kubeconfig=kubeconfig,
        operator_kubeconfig=op_kubeconfig,
        run_id=run_id,
        scale=args.scale,
        out_dir=work,
        audit=audit_log,
        workers=args.workers,
        events=args.events,
        profile=args.profile,
    )
    only = set(args.only)
    res: dict[str, Any] = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "commit": commit(),
        "machine": machine(),
        "scale": args.scale,
        "workers": args.workers,
        "events": args.events,
        "workdir": str(work),
        "phase_seconds": {},
    }
    ctx.results = res
    t_suite = time.monotonic()

    async def phase(name: str, coro: Any) -> dict[str, Any]:
        t0 = time.monotonic()
        log.info("== %s", name)
        out: dict[str, Any] = await coro
        res["phase_seconds"][name] = round(time.monotonic() - t0, 1)
        res.update(out)
        log.info("   %s done in %.0fs", name, time.monotonic() - t0)
        return out

    try:
        if "probe" in only:
            await phase("probe", sc.run_probe(ctx))
        if "m1" in only:
            await phase("operator idle", sc.run_operator_idle_rss(ctx))
        if "direct" in only:
            await phase("direct", sc.run_direct(ctx))
        if "m1" in only:
            other = "failures" if args.events == "all" else "all"
            m1_events = os.environ.get("BENCH_M1_EVENTS", f"{args.events},{other}").split(",")
            for events in m1_events:
                await phase(f"m1+m6 events={events}", sc.run_m1(ctx, events))
                # Deleting M1's namespace deletes N BackgroundJobs, Jobs and pods: ~1 min
                # per 2,000 here. The next M1 must not start before it is gone, or its
                # operator spends its first minute on the old namespace's objects (seen at
                # BENCH_SCALE=1: first Job 52 s after the start).
                settle = 60 + ctx.n(10_000, 200) / 20
                await phase(f"settle m1 events={events}", sc.wait_quiet(ctx, "m1", settle))
        if "s5" in only:
            other = "failures" if args.events == "all" else "all"
            op = ctx.operator("s5", events=other, profile=args.profile)
            op.start()
            try:
                await op.settled()
                await phase("s5+m7", sc.run_enqueue_many(ctx, op))
            finally:
                op.stop()
        if "b1" in only:  # issue 16: N calls as one batch against N via enqueue_many
            op = ctx.operator("b1")
            op.start()
            try:
                await op.settled()
                n = ctx.n(10_000, 100)
                await phase("b1", _batches(ctx.admin_kubeconfig, n))
            finally:
                op.stop()
        if "r1" in only:  # issue 17: retryPolicy attempt lateness, with its own operator
            await phase("r1", _retry_lateness(ctx.admin_kubeconfig, ctx.n(100, 20)))
        if "q1" in only:  # issue 15: N jobs into a queue of maxConcurrency 20, own operator
            await phase("q1", _limited_queue(ctx.admin_kubeconfig, ctx.n(10_000, 100)))
        if only & {"m2", "m3", "m4", "m5"}:
            await latency_group(ctx, only, phase)
    finally:
        res["total_seconds"] = round(time.monotonic() - t_suite, 1)
        watcher.stop()
        for ns in ctx.namespaces:
            await kube.delete_namespace(ns)
        await kube.close()
    return res


async def _retry_lateness(kubeconfig: str, jobs: int) -> dict[str, Any]:
    """bench/bench_retry.py as it runs by itself (its own operator and namespace): its
    report lines."""
    done = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "bench.bench_retry", "--jobs", str(jobs)],
        env={**os.environ, "KUBECONFIG": kubeconfig},
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    lines = [line for line in done.stdout.splitlines() if not line.startswith("namespace ")]
    if done.returncode != 0:
        lines.append(f"failed ({done.returncode}): {done.stderr.strip()[-500:]}")
    return {"r1": lines}


async def _limited_queue(kubeconfig: str, jobs: int) -> dict[str, Any]:
    """bench/bench_queue.py as it runs by itself (its own operator and namespace): its
    JSON line."""
    done = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "bench.bench_queue", "--jobs", str(jobs), "--limit", "20"],
        env={**os.environ, "KUBECONFIG": kubeconfig},
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        return {"q1": {"failed": done.returncode, "stderr": done.stderr.strip()[-500:]}}
    return {"q1": json.loads(lines[-1])}


async def _batches(kubeconfig: str, n: int) -> dict[str, Any]:
    # 50, and 200: enqueue_many's jobs run with no limit, the batch only `parallelism` at once
    return {"b1": await bench_batches.compare(kubeconfig, n, parallelisms=(50, 200))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scale", type=float, default=float(os.environ.get("BENCH_SCALE", "1")))
    parser.add_argument("--only", default=os.environ.get("BENCH_ONLY", ",".join(ALL)))
    parser.add_argument(
        "--profile", action="store_true", default=os.environ.get("BENCH_PROFILE") == "1"
    )
    parser.add_argument("--workers", type=int, default=int(os.environ.get("BENCH_WORKERS", "32")))
    parser.add_argument("--events", default=os.environ.get("BENCH_EVENTS", "all"))
    parser.add_argument("--results", default=str(BENCH_DIR / "RESULTS.md"))
    args = parser.parse_args()
    args.only = [x.strip() for x in args.only.split(",") if x.strip()]
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    res = asyncio.run(suite(args))
    raw = Path(args.results).with_suffix(".json")
    raw.parent.mkdir(parents=True, exist_ok=True)  # a run's results are lost if it cannot
    raw.write_text(json.dumps(res, indent=1, default=str) + "\n")
    Path(args.results).write_text(report.render(res))
    log.info("wrote %s and %s (%.0fs)", args.results, raw, res["total_seconds"])


if __name__ == "__main__":
    main()
