"""The measurements of issue 8. Each ``run_*`` coroutine returns a dict that lands in the
results table (bench/RESULTS.md) and in bench/results.json.

Conventions: every scenario uses fresh namespaces ``bench-<run>-<scenario>``; latencies are
watcher arrival times minus either the client's submit time or the due time; rates are
counted from the watcher's arrivals, first to last.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from tests.integration.bgj import RUN_FOR, manifest

from backgroundjobs.controller import builders
from backgroundjobs.controller.decisions import parse_spec
from backgroundjobs.controller.settings import Settings
from bench import audit
from bench.k8s import OPERATOR_USER, REPO, Kube
from bench.operator_process import Operator
from bench.procs import CpuMeter, cluster_pids, rss_bytes
from bench.stats import ratio, summary
from bench.watcher import Watcher

Body = dict[str, Any]
log = logging.getLogger("bench")

PROFILES = Path(__file__).resolve().parent / "profiles"
IN_FLIGHT = 32


@dataclass
class Ctx:
    """What every scenario needs."""

    kube: Kube
    watcher: Watcher
    admin_kubeconfig: str
    operator_kubeconfig: str
    run_id: str
    scale: float
    out_dir: Path
    audit: audit.AuditLog
    workers: int = 32
    events: str = "all"
    profile: bool = False
    results: dict[str, Any] = field(default_factory=dict)
    namespaces: list[str] = field(default_factory=list)

    def n(self, full: int, minimum: int = 1) -> int:
        """``full`` scaled by BENCH_SCALE (only the 10,000-object scenarios and direct scale)."""
        return max(minimum, round(full * self.scale))

    async def namespace(self, scenario: str) -> str:
        name = f"bench-{self.run_id}-{scenario}"
        await self.kube.namespace(name, self.run_id)
        self.namespaces.append(name)
        return name

    def operator(self, tag: str, events: str | None = None, profile: bool = False) -> Operator:
        env = {
            "BACKGROUNDJOBS_WORKERS": str(self.workers),
            "BACKGROUNDJOBS_EVENTS": events or self.events,
        }
        prof = None
        if profile:
            PROFILES.mkdir(parents=True, exist_ok=True)
            prof = PROFILES / f"operator-{tag}"
        return Operator(self.operator_kubeconfig, self.out_dir / "logs" / "operator.log", env, prof)

    def cpu_meter(self, operator: Operator | None = None) -> CpuMeter:
        pids = cluster_pids(self.admin_kubeconfig)
        if operator is not None:
            pids["operator"] = operator.pid
        pids["watcher"] = self.watcher.proc.pid
        pids["bench"] = os.getpid()
        return CpuMeter(pids)


# ---------------------------------------------------------------------------- manifests


def bgj(name: str, run_for: str | None = None, **spec: Any) -> Body:
    """A BackgroundJob; ``run_for`` sets how long kwok lets its pod run (default 1s)."""
    pod_annotations = {RUN_FOR: run_for} if run_for is not None else None
    return manifest(name, "bench.noop", pod_annotations=pod_annotations, **spec)


def _fake_parent(name: str, ns: str, spec: Body) -> Body:
    return {"metadata": {"name": name, "namespace": ns, "uid": "0"}, "spec": spec}


def direct_job(name: str, ns: str) -> Body:
    """The Job the operator would build for an Immediate job, suspended, without an owner."""
    parent = _fake_parent(name, ns, bgj(name)["spec"])
    job = builders.build_job(parent, parse_spec(parent), Settings(), 1)
    job["metadata"].pop("ownerReferences")
    job["metadata"]["name"] = name
    job["metadata"]["labels"] = {"bench": "direct"}
    job["spec"]["suspend"] = True
    return job


def plain_cronjob(name: str, ns: str, schedule: str) -> Body:
    """The CronJob the operator would build for a Recurring job, without our labels/owner."""
    parent = _fake_parent(name, ns, bgj(name, schedule=schedule)["spec"])
    cj = builders.build_cronjob(parent, parse_spec(parent), Settings())
    cj["metadata"].pop("ownerReferences")
    cj["metadata"]["labels"] = {"bench": "plain"}
    cj["spec"]["jobTemplate"]["metadata"]["labels"] = {"bench": "plain"}
    cj["spec"]["jobTemplate"]["spec"]["template"]["metadata"]["labels"] = {"bench": "plain"}
    return cj


# ---------------------------------------------------------------------------- helpers


async def bounded(
    count: int, make: Callable[[int], Awaitable[None]], inflight: int = IN_FLIGHT
) -> float:
    """Run ``make(i)`` for i in range(count), ``inflight`` at a time; returns the wall time."""
    it = iter(range(count))
    errors: list[BaseException] = []

    async def worker() -> None:
        for i in it:
            try:
                await make(i)
            except Exception as exc:  # keep going; report the first few
                errors.append(exc)
                if len(errors) <= 3:
                    log.warning("create %d failed: %s", i, exc)

    t0 = time.monotonic()
    await asyncio.gather(*(worker() for _ in range(min(inflight, count))))
    if errors:
        log.warning("%d of %d creates failed", len(errors), count)
    return time.monotonic() - t0


def arrival_rate(times: list[float]) -> float:
    """Objects per second from first to last arrival."""
    if len(times) < 2:
        return math.nan
    times = sorted(times)
    return (len(times) - 1) / (times[-1] - times[0])


def stage(msg: str, *args: Any) -> None:
    log.info(msg, *args)


async def wait_quiet(ctx: Ctx, what: str, timeout: float) -> dict[str, Any]:  # noqa: ASYNC109
    """Wait until the namespaces deleted so far are gone (bounded), so phases do not overlap."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if await ctx.kube.namespaces_gone(ctx.run_id):
            stage("  cluster quiet after %.0fs (%s)", time.monotonic() - t0, what)
            return {f"settle_{what}_s": time.monotonic() - t0}
        await asyncio.sleep(1)
    stage("  namespaces of %s still terminating after %.0fs; going on", what, timeout)
    return {f"settle_{what}_s": math.inf}


async def drop(ctx: Ctx, ns: str, now: bool = False) -> None:
    """Delete a scenario's namespace now (its objects would go on working: M1's unstarted
    pods, M4's CronJobs), or leave it to the end of the suite: deleting thousands of finished
    Jobs, pods and Events takes the cluster a minute, which the next phase would feel."""
    if now:
        await ctx.kube.delete_namespace(ns)


# ---------------------------------------------------------------------------- probe


async def probe(ctx: Ctx, ns: str, count: int, gap: float, tag: str) -> list[float]:
    """ConfigMap round trips: client create -> watcher arrival."""
    sent: dict[str, float] = {}
    for i in range(count):
        name = f"probe-{tag}-{i}"
        body_ = {
            "metadata": {"name": name, "labels": {"bench.backgroundjobs.dev/probe": "1"}},
            "data": {"i": str(i)},
        }
        sent[name] = time.time()
        await ctx.kube.create_configmap(ns, body_)
        await asyncio.sleep(gap)
    await ctx.watcher.await_(lambda: all((ns, n) in ctx.watcher.cm_added for n in sent), 30)
    return [
        ctx.watcher.cm_added[(ns, n)] - t
        for n, t in sent.items()
        if (ns, n) in ctx.watcher.cm_added
    ]


async def run_probe(ctx: Ctx) -> dict[str, Any]:
    ns = await ctx.namespace("probe")
    rtts = await probe(ctx, ns, 100, 0.02, "idle")
    await drop(ctx, ns)
    return {"probe_idle": summary(rtts)}


# ---------------------------------------------------------------------------- direct client


async def run_direct(ctx: Ctx) -> dict[str, Any]:
    """A tight client creating suspended Jobs, 32 in flight: the API server's Job create rate."""
    ns = await ctx.namespace("direct")
    n = 2000
    jobs = [direct_job(f"d-{i}", ns) for i in range(n)]
    meter = ctx.cpu_meter().start()
    wall = await bounded(n, lambda i: ctx.kube.create_job(ns, jobs[i]))
    await ctx.watcher.await_(lambda: ctx.watcher.jobs_per_ns[ns] >= n, 60)
    meter.stop()
    arrivals = list(ctx.watcher.jobs_in(ns).values())
    await drop(ctx, ns)
    return {
        "direct_n": n,
        "direct_rate": arrival_rate(arrivals),
        "direct_client_rate": n / wall,
        "direct_cpu": meter.share(),
    }


# ---------------------------------------------------------------------------- M1 + M6


async def run_m1(ctx: Ctx, events: str) -> dict[str, Any]:
    """N Immediate jobs created with the operator stopped, then the operator started.

    Returns ``{"m1": {events: {...}}}``: M1 runs once per Events setting, M6 is read at its end.
    """
    ns = await ctx.namespace(f"m1-{events}")
    n = ctx.n(10_000, 200)
    stage("M1 (events=%s): creating %d BackgroundJobs, operator stopped", events, n)
    wall = await bounded(n, lambda i: ctx.kube.create_bgj(ns, bgj(f"m1-{i}")))
    stage("  created in %.1fs (%.0f/s)", wall, n / wall)
    op = ctx.operator(f"m1-{events}", events=events, profile=ctx.profile)
    mark = ctx.audit.mark() if ctx.audit.exists() else None
    launched = op.start()
    meter = ctx.cpu_meter(op).start()
    ok = await ctx.watcher.await_(lambda: ctx.watcher.jobs_per_ns[ns] >= n, 60 + n / 5)
    meter.stop()
    arrivals = sorted(ctx.watcher.jobs_in(ns).values())
    stage("  %d Jobs seen%s", len(arrivals), "" if ok else " (timed out)")
    out: dict[str, Any] = {
        "n": n,
        "bgj_create_rate": n / wall,
        "jobs_seen": len(arrivals),
        "rate": arrival_rate(arrivals),
        "first_job_after_start": arrivals[0] - launched if arrivals else math.nan,
        "all_jobs_after_start": arrivals[-1] - launched if arrivals else math.nan,
        "cpu": meter.share(),
        "operator_cpu_ms_per_job": 1000
        * meter.used.get("operator", math.nan)
        / max(1, len(arrivals)),
    }
    if _audited(ctx, mark):  # who loaded the API server while the operator created the Jobs
        out["requests"] = audit.shares(ctx.audit.since(mark, None, ns))
    # M6: let the status writes of the last reconciliations land, then weigh the operator.
    await ctx.watcher.await_(
        lambda: (
            ctx.watcher.phase_counts[ns].get("Running", 0)
            + ctx.watcher.phase_counts[ns].get("Succeeded", 0)
            >= n
        ),
        60,
    )
    await asyncio.sleep(3)
    out["m6_operator_rss"] = rss_bytes(op.pid)
    out["m6_bare_empty_rss"], out["m6_bare_rss"] = bare_watcher_rss(ctx, ns)
    out["m6_per_object"] = (out["m6_operator_rss"] - out["m6_bare_rss"]) / n
    # What each object adds, whatever N: the operator's growth over its idle RSS minus the
    # bare process's growth. The figure at N=10,000 is this plus
    # (operator idle - bare empty) / 10,000.
    out["m6_marginal_per_object"] = (
        out["m6_operator_rss"]
        - ctx.results.get("m6_operator_idle_rss", out["m6_operator_rss"])
        - (out["m6_bare_rss"] - out["m6_bare_empty_rss"])
    ) / n
    op.stop()
    await drop(ctx, ns, now=True)
    results = dict(ctx.results.get("m1") or {})
    results[events] = out
    return {"m1": results}


def bare_watcher_rss(ctx: Ctx, ns: str) -> tuple[int, int]:
    """RSS of a bare Python process before and after listing the namespace's BackgroundJobs."""
    out = subprocess.run(
        [sys.executable, "-m", "bench.bare_watcher", ctx.admin_kubeconfig, ns],
        capture_output=True, text=True, timeout=300, check=True, cwd=REPO,
    )  # fmt: skip
    fields = out.stdout.split()
    return int(fields[1]), int(fields[2])


async def run_operator_idle_rss(ctx: Ctx) -> dict[str, Any]:
    """The operator's RSS with nothing to hold (imports, kopf, the watch tasks)."""
    op = ctx.operator("idle")
    op.start()
    await asyncio.sleep(3)
    rss = rss_bytes(op.pid)
    op.stop()
    return {"m6_operator_idle_rss": rss}


# ---------------------------------------------------------------------------- M2 + M7


async def open_loop(
    count: int, rate: float, make: Callable[[int], Awaitable[None]], sent: dict[int, float]
) -> None:
    """Submit ``make(i)`` at ``rate`` per second whatever the responses do; stamps ``sent``."""
    tasks: list[asyncio.Task[None]] = []
    t0 = time.monotonic() + 0.2

    async def one(i: int) -> None:
        sent[i] = time.time()
        try:
            await make(i)
        except Exception as exc:
            sent.pop(i, None)
            log.warning("submit %d failed: %s", i, exc)

    for i in range(count):
        delay = t0 + i / rate - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(i)))
    await asyncio.gather(*tasks)


# M2 at a rate this cluster runs to completion (scenario 5: 15-19 jobs/s), beside the issue's
# "half of M1's rate", which is now more than the cluster completes (an overload test here).
SUSTAINED_RATE = 10.0
SUSTAINED_SECONDS = 20.0


async def run_m2(
    ctx: Ctx, rate: float, op: Operator, key: str = "m2", seconds: float = 30.0, m7: bool = False
) -> dict[str, Any]:
    """Submit -> Job latency: open-loop submits at ``rate`` for ``seconds``, probes alongside.

    With ``m7`` every job then runs to Succeeded and the operator's requests for them are
    counted (M7). Without, the suite goes on as soon as every Job exists: at the issue's rate
    (half of M1's) draining the backlog took this cluster 3-4 minutes.
    """
    ns = await ctx.namespace(key)
    count = int(rate * seconds)
    stage("%s: %d jobs at %.1f/s for %.0fs", key.upper(), count, rate, seconds)
    sent: dict[int, float] = {}
    mark = ctx.audit.mark() if ctx.audit.exists() else None
    meter = ctx.cpu_meter(op).start()
    probes_task = asyncio.create_task(probe(ctx, ns, int(seconds / 0.25), 0.25, key))
    await open_loop(
        count, rate, lambda i: ctx.kube.create_bgj(ns, bgj(f"{key}-{i}", "100ms")), sent
    )
    probe_rtts = await probes_task
    names = {i: builders.job_name(f"{key}-{i}", 1) for i in sent}
    await ctx.watcher.await_(
        lambda: all((ns, j) in ctx.watcher.job_added for j in names.values()), 60
    )
    meter.stop()
    lat = [
        ctx.watcher.job_added[(ns, names[i])] - t
        for i, t in sent.items()
        if (ns, names[i]) in ctx.watcher.job_added
    ]
    # The operator's part alone: BackgroundJob seen by the watcher -> its Job seen.
    own = [
        ctx.watcher.job_added[(ns, names[i])] - ctx.watcher.bgj_added[(ns, f"{key}-{i}")]
        for i in sent
        if (ns, names[i]) in ctx.watcher.job_added and (ns, f"{key}-{i}") in ctx.watcher.bgj_added
    ]
    out: dict[str, Any] = {
        f"{key}_rate": rate,
        f"{key}_seconds": seconds,
        f"{key}_n": len(sent),
        f"{key}_seen": len(lat),
        f"{key}_latency": summary(lat),
        f"{key}_operator_part": summary(own),
        f"{key}_probe": summary(probe_rtts),
        f"{key}_cpu": meter.share(),
    }
    out[f"{key}_p50_over_probe"] = ratio(out[f"{key}_latency"]["p50"], out[f"{key}_probe"]["p50"])
    done = False
    if m7:
        # M7 (the operator's configuration as started): every job to Succeeded, then count.
        done = await ctx.watcher.await_(
            lambda: ctx.watcher.phase_counts[ns].get("Succeeded", 0) >= len(sent),
            60 + len(sent) / 5,
        )
        out[f"{key}_all_succeeded_after_s"] = time.time() - min(sent.values()) if sent else math.nan
        await asyncio.sleep(2)
    if _audited(ctx, mark):
        if m7:
            cost = audit.cost(ctx.audit.since(mark, OPERATOR_USER, ns))
            out["m7_events_" + ctx.events] = _per_job(cost, len(sent), done)
        out[f"{key}_requests"] = audit.shares(ctx.audit.since(mark, None, ns))
    await drop(ctx, ns)
    return out


def _audited(ctx: Ctx, mark: audit.Mark | None) -> bool:
    """Whether the audit log holds every request since ``mark`` (a phase that outlived its
    kept rotations has its request counts left out, not counted from the tail)."""
    if mark is None:
        return False
    if ctx.audit.covers(mark):
        return True
    stage("   the audit log rotated past this phase's start: its request counts are left out")
    return False


def _per_job(cost: audit.Cost, n: int, complete: bool) -> dict[str, Any]:
    return {
        "n": n,
        "all_succeeded": complete,
        "writes_per_job": cost.writes / n,
        "reads_per_job": cost.reads / n,
        "watches": cost.watches,
        "top": cost.top(),
    }


# ---------------------------------------------------------------------------- M3


async def run_m3(ctx: Ctx) -> dict[str, Any]:
    """Delayed jobs: 200 due over 30 s and 200 due at one instant; lateness of their Jobs."""
    ns = await ctx.namespace("m3")
    spread_n = burst_n = 200
    # Created in order of due time, 32 in flight: each exists well before it is due.
    start = datetime.now(UTC) + timedelta(seconds=4)
    due: dict[str, datetime] = {}
    for i in range(spread_n):
        due[f"m3-s-{i}"] = start + timedelta(seconds=30 * i / spread_n)
    burst_at = start + timedelta(seconds=32)
    for i in range(burst_n):
        due[f"m3-b-{i}"] = burst_at
    names = list(due)
    created: dict[str, float] = {}

    async def make(i: int) -> None:
        name = names[i]
        at = due[name].strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        await ctx.kube.create_bgj(ns, bgj(name, "100ms", runAt=at))
        created[name] = time.time()

    stage("M3: %d + %d delayed jobs, first due in 4s", spread_n, burst_n)
    await bounded(len(names), make)
    jobs = {builders.job_name(n, 1): n for n in names}
    await ctx.watcher.await_(
        lambda: all((ns, j) in ctx.watcher.job_added for j in jobs),
        burst_at.timestamp() - time.time() + 30,
    )
    late: dict[str, list[float]] = {"s": [], "b": []}
    early: list[str] = []
    created_late = 0
    for job, name in jobs.items():
        t = ctx.watcher.job_added.get((ns, job))
        d = due[name].timestamp()
        if created.get(name, math.inf) > d:
            created_late += 1  # the load generator was too slow: not the operator's lateness
            continue
        if t is None:
            continue
        late[name.split("-")[1]].append(t - d)
        stamp = ctx.watcher.job_created_ts.get((ns, job)) or ""
        created_s = datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp() if stamp else d
        if t < d or created_s < math.floor(d):
            early.append(job)
    await drop(ctx, ns)
    return {
        "m3_spread": summary(late["s"]),
        "m3_burst": summary(late["b"]),
        "m3_early": len(early),
        "m3_missing": len(names) - created_late - len(late["s"]) - len(late["b"]),
        "m3_created_after_due": created_late,
    }


# ---------------------------------------------------------------------------- M4


@dataclass
class M4Run:
    ns: str
    boundaries: list[float]
    recurring: list[str]
    plain: list[str]


async def start_m4(ctx: Ctx, not_before: float = 0.0) -> M4Run:
    """100 Recurring BackgroundJobs and 100 plain CronJobs, all ``* * * * *``.

    Measured at the first two minute boundaries after ``not_before`` (wall time).
    """
    ns = await ctx.namespace("m4")
    n = 100
    now = time.time()
    # The CronJobs must exist before the first boundary.
    first = math.ceil(max(now + 8, not_before) / 60) * 60
    recurring = [f"m4-r-{i}" for i in range(n)]
    plain = [f"m4-p-{i}" for i in range(n)]
    stage(
        "M4: %d recurring + %d CronJobs; boundaries in %.0fs and %.0fs",
        n,
        n,
        first - now,
        first + 60 - now,
    )

    def make(i: int) -> Awaitable[None]:  # interleaved, so neither kind is queued first
        if i % 2:
            return ctx.kube.create_cronjob(ns, plain_cronjob(plain[i // 2], ns, "* * * * *"))
        return ctx.kube.create_bgj(ns, bgj(recurring[i // 2], "100ms", schedule="* * * * *"))

    await bounded(2 * n, make)
    return M4Run(ns, [first, first + 60], recurring, plain)


async def finish_m4(ctx: Ctx, run: M4Run) -> dict[str, Any]:
    """Lateness of the Jobs fired at the two boundaries; then the CronJobs are deleted.

    The CronJob controller names a Job ``<cronjob>-<scheduled minute since the epoch>``, so
    each Job is matched to the boundary it was fired for, whatever the watcher saw when.
    """
    minutes = {int(b // 60) for b in run.boundaries}
    want = 2 * len(run.recurring) * len(minutes)

    def fired() -> list[tuple[str, str, float]]:
        out = []
        for (s, job), t in ctx.watcher.job_added.items():
            if s != run.ns:
                continue
            stem, _, suffix = job.rpartition("-")
            if suffix.isdigit() and int(suffix) in minutes:
                out.append(("plain" if stem.startswith("m4-p-") else "recurring", suffix, t))
        return out

    await ctx.watcher.await_(
        lambda: len(fired()) >= want, max(1.0, run.boundaries[-1] + 45 - time.time())
    )
    with ctx.watcher.cond:
        jobs = fired()
    await drop(ctx, run.ns, now=True)
    late: dict[str, list[float]] = {"recurring": [], "plain": []}
    for kind, suffix, t in jobs:
        late[kind].append(t - int(suffix) * 60)
    rec, pl = summary(late["recurring"]), summary(late["plain"])
    return {
        "m4_recurring": rec,
        "m4_plain": pl,
        "m4_p99_ratio": ratio(rec["p99"], pl["p99"]),
        "m4_expected_per_kind": len(run.recurring) * len(minutes),
    }


# ---------------------------------------------------------------------------- M5


async def run_m5(ctx: Ctx) -> dict[str, Any]:
    """Continuations: a 20-deep chain and 100 parent/child pairs; Job complete -> child Job."""
    ns = await ctx.namespace("m5")
    depth, pairs = 20, 100
    objs: list[Body] = []
    parent_of: dict[str, str] = {}
    for i in range(depth):
        name = f"m5-c-{i}"
        if i == 0:
            objs.append(bgj(name, "100ms"))
        else:
            objs.append(bgj(name, "100ms", after={"name": f"m5-c-{i - 1}"}))
            parent_of[name] = f"m5-c-{i - 1}"
    pair_objs: list[Body] = []
    for i in range(pairs):
        child = bgj(f"m5-k-{i}", "100ms", after={"name": f"m5-p-{i}"})
        parent_of[f"m5-k-{i}"] = f"m5-p-{i}"
        pair_objs += [child, bgj(f"m5-p-{i}", "100ms")]  # the child first: it waits
    stage("M5: chain of %d and %d pairs (5 pairs/s)", depth, pairs)
    await bounded(len(objs), lambda i: ctx.kube.create_bgj(ns, objs[i]))
    # Pairs at a steady 5 per second (10 jobs/s, about half of what this cluster runs to
    # completion), alongside the chain: hand-off latency, not a burst (M3 measures bursts).
    await open_loop(len(pair_objs), 10.0, lambda i: ctx.kube.create_bgj(ns, pair_objs[i]), {})
    child_jobs = {builders.job_name(ch, 1): builders.job_name(p, 1) for ch, p in parent_of.items()}
    await ctx.watcher.await_(
        lambda: all((ns, j) in ctx.watcher.job_added for j in child_jobs), 60 + depth * 10
    )
    hand: dict[str, list[float]] = {"chain": [], "pairs": []}
    for child_job, parent_job in child_jobs.items():
        created = ctx.watcher.job_added.get((ns, child_job))
        finished = ctx.watcher.job_finished.get((ns, parent_job))
        if created is None or finished is None:
            continue
        kind = "chain" if child_job.startswith("m5-c-") else "pairs"
        hand[kind].append(created - finished[0])
    await drop(ctx, ns)
    both = hand["chain"] + hand["pairs"]
    return {
        "m5_chain": summary(hand["chain"]),
        "m5_pairs": summary(hand["pairs"]),
        "m5_all": summary(both),
    }


# ---------------------------------------------------------------------------- scenario 5


async def run_enqueue_many(ctx: Ctx, op: Operator) -> dict[str, Any]:
    """Reference scenario 5: enqueue_many of N through the client, to all Succeeded."""
    from backgroundjobs.client import AsyncClient

    ns = await ctx.namespace("s5")
    n = ctx.n(5_000, 100)  # half M1's N: every job runs to completion, ~15 jobs/s here
    mark = ctx.audit.mark() if ctx.audit.exists() else None
    meter = ctx.cpu_meter(op).start()
    stage("S5: enqueue_many of %d", n)
    t0 = time.time()
    async with AsyncClient(kubeconfig=ctx.admin_kubeconfig, namespace=ns) as jobs:
        results = await jobs.enqueue_many(
            "bench.noop", [((i,), {}) for i in range(n)], concurrency=IN_FLIGHT, name_prefix="s5"
        )
    submitted = time.time()
    errors = [r for r in results if not isinstance(r, str)]
    ok = n - len(errors)
    done = await ctx.watcher.await_(
        lambda: ctx.watcher.phase_counts[ns].get("Succeeded", 0) >= ok, 60 + n / 2
    )
    finished = time.time()
    meter.stop()
    await asyncio.sleep(2)
    out: dict[str, Any] = {
        "s5_n": n,
        "s5_errors": len(errors),
        "s5_submit_s": submitted - t0,
        "s5_total_s": finished - t0,
        "s5_succeeded": ctx.watcher.phase_counts[ns].get("Succeeded", 0),
        "s5_rate": ctx.watcher.phase_counts[ns].get("Succeeded", 0) / (finished - t0),
        "s5_cpu": meter.share(),
        "s5_events": op.extra_env.get("BACKGROUNDJOBS_EVENTS", ""),
    }
    if _audited(ctx, mark):
        cost = audit.cost(ctx.audit.since(mark, OPERATOR_USER, ns))
        out["m7_events_" + out["s5_events"]] = _per_job(cost, ok, done)
    await drop(ctx, ns)
    return out
