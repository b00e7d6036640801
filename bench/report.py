"""bench/RESULTS.md from the suite's results dict (bench/RESULTS.json holds all of it)."""

from __future__ import annotations

import math
from typing import Any

from bench.bench_batches import table as batches_table
from bench.stats import fmt, ms

Row = tuple[str, str, str, str]


def _ok(cond: bool | None) -> str:
    if cond is None:
        return "n/a"
    return "met" if cond else "**missed**"


def _num(v: Any) -> float:
    return float(v) if isinstance(v, int | float) else math.nan


def _lat(s: dict[str, float] | None) -> str:
    if not s or not s.get("n"):
        return "-"
    return f"p50 {ms(s['p50'])}, p99 {ms(s['p99'])}, max {ms(s['max'])} (n={int(s['n'])})"


def _mib(v: float) -> str:
    return f"{v / 2**20:.0f} MiB"


def _rows(r: dict[str, Any]) -> list[Row]:
    rows: list[Row] = []
    direct = _num(r.get("direct_rate"))
    if r.get("probe_idle"):
        rows.append(("Probe: ConfigMap create → watcher, idle", _lat(r["probe_idle"]), "floor", ""))
    for key, label in (("m2s", "M2 at a sustained rate"), ("m2", "M2 at half of M1")):
        if r.get(f"{key}_probe"):
            rows.append((f"Probe during {label}", _lat(r[f"{key}_probe"]), "floor", ""))
    if "direct_rate" in r:
        rows.append(
            (
                f"Direct: {r['direct_n']} suspended Jobs, 32 in flight",
                f"{direct:.0f} Jobs/s (client side {r['direct_client_rate']:.0f}/s)",
                "reference",
                "",
            )
        )
    for events, m in (r.get("m1") or {}).items():
        rel = _num(m["rate"]) / direct
        rows.append(
            (
                f"M1 throughput, {m['n']} Immediate jobs, BACKGROUNDJOBS_EVENTS={events}",
                f"{m['rate']:.0f} Jobs/s = **{fmt(rel)} x direct**; first Job "
                f"{fmt(m['first_job_after_start'], 1)} s and last "
                f"{fmt(m['all_jobs_after_start'], 1)} s after the operator started; operator "
                f"CPU {fmt(m['operator_cpu_ms_per_job'], 1)} ms per job",
                "≥ 0.5 (stretch 0.8)",
                _ok(None if math.isnan(rel) else rel >= 0.5),
            )
        )
    for key, label in (
        ("m2", "half of M1: the issue's M2; more than this cluster runs to completion"),
        ("m2s", "below the 15-19 jobs/s this cluster runs to completion (scenario 5)"),
    ):
        if f"{key}_latency" not in r:
            continue
        lat = r[f"{key}_latency"]
        rows.append(
            (
                f"M2 submit → Job, {r[f'{key}_rate']:.0f}/s for "
                f"{r.get(f'{key}_seconds', 30):.0f} s ({label})",
                f"{_lat(lat)}; **p50 ÷ probe = {fmt(r[f'{key}_p50_over_probe'], 1)}**; the "
                "operator's part (BackgroundJob seen → Job seen): "
                f"{_lat(r.get(f'{key}_operator_part'))}",
                "p99 ≤ 250 ms",
                _ok(lat["p99"] <= 0.25),
            )
        )
    if "m3_spread" in r:
        floor = 200 / direct if direct else math.nan
        for key, label, extra in (
            ("m3_spread", "200 due over 30 s", ""),
            (
                "m3_burst",
                "200 due at one instant",
                f"; floor (200 creates by the direct client): {ms(floor)}",
            ),
        ):
            s = r[key]
            rows.append(
                (
                    f"M3 delayed-job lateness, {label}",
                    _lat(s) + extra,
                    "p99 ≤ 200 ms",
                    _ok(s["p99"] <= 0.2),
                )
            )
        rows.append(
            (
                "M3 early starts",
                f"{r['m3_early']} (no Job: {r['m3_missing']}; created after their due time by the "
                f"load generator, left out: {r.get('m3_created_after_due', 0)})",
                "none",
                _ok(r["m3_early"] == 0 and r["m3_missing"] == 0),
            )
        )
    if "m4_recurring" in r:
        rec, pl = r["m4_recurring"], r["m4_plain"]
        rows.append(
            (
                "M4 Recurring BackgroundJobs: Job - minute boundary",
                _lat(rec),
                "p99 ≤ 1 s",
                _ok(rec["p99"] <= 1.0),
            )
        )
        rows.append(("M4 plain CronJobs: Job - minute boundary", _lat(pl), "reference", ""))
        ratio = _num(r["m4_p99_ratio"])
        rows.append(
            (
                "M4 p99 ratio, Recurring ÷ plain",
                fmt(ratio),
                "≤ 1",
                _ok(None if math.isnan(ratio) else ratio <= 1.0),
            )
        )
    if "m5_all" in r:
        s = r["m5_all"]
        m2p50 = {k: _num((r.get(f"{k}_latency") or {}).get("p50")) for k in ("m2", "m2s")}
        rows.append(
            (
                "M5 hand-off: parent's Job finished → child's Job",
                f"{_lat(s)}; 20-deep chain: {_lat(r['m5_chain'])}; 100 pairs (5/s): "
                f"{_lat(r['m5_pairs'])}; p50 ÷ M2 p50 = "
                + ", ".join(
                    f"{fmt(s['p50'] / v if v else math.nan, 1)} ({k})" for k, v in m2p50.items()
                ),
                "p50 ≤ 100 ms, p99 ≤ 300 ms",
                _ok(s["p50"] <= 0.1 and s["p99"] <= 0.3),
            )
        )
    idle = _num(r.get("m6_operator_idle_rss"))
    for events, m in (r.get("m1") or {}).items():
        if "m6_per_object" not in m:
            continue
        at_10k = m["m6_marginal_per_object"] + (idle - m["m6_bare_empty_rss"]) / 10_000
        literal = m["m6_per_object"] if m["n"] >= 10_000 else at_10k
        rows.append(
            (
                f"M6 memory, {m['n']} BackgroundJobs and their Jobs, EVENTS={events}",
                f"operator {_mib(m['m6_operator_rss'])} (idle {_mib(idle)}), bare watcher "
                f"{_mib(m['m6_bare_rss'])} (empty {_mib(m['m6_bare_empty_rss'])}): "
                f"{m['m6_per_object'] / 1024:.1f} KB per object at this N; each object costs "
                f"{m['m6_marginal_per_object'] / 1024:.1f} KB more than in the bare process, "
                f"**≈ {at_10k / 1024:.1f} KB per object at N = 10,000**",
                "≤ 10 KB",
                _ok(literal <= 10 * 1024),
            )
        )
    for events in ("all", "failures"):
        m7 = r.get(f"m7_events_{events}")
        if m7:
            rows.append(
                (
                    f"M7 API cost per successful Immediate job, EVENTS={events} ({m7['n']} jobs)",
                    f"{m7['writes_per_job']:.2f} writes, {m7['reads_per_job']:.2f} reads"
                    + ("" if m7["all_succeeded"] else " (not all succeeded in time)"),
                    "≤ 3 writes, ≤ 1 read",
                    _ok(m7["writes_per_job"] <= 3.005 and m7["reads_per_job"] <= 1.005),
                )
            )
    if "s5_total_s" in r:
        rows.append(
            (
                f"Scenario 5: enqueue_many {r['s5_n']} → all Succeeded, EVENTS={r['s5_events']}",
                f"{r['s5_total_s']:.0f} s = {r['s5_rate']:.0f} jobs/s (submitting took "
                f"{r['s5_submit_s']:.0f} s; {r['s5_succeeded']} succeeded, "
                f"{r['s5_errors']} errors)",
                "reference",
                "",
            )
        )
    return rows


def render(r: dict[str, Any]) -> str:
    m = r["machine"]
    out = [
        "# Benchmark results",
        "",
        "Written by `make bench` (`hack/bench.sh` → `python -m bench.suite`); bench/README.md says",
        "what each line measures and what the findings were. Everything, the cluster included,",
        "shares the same 2 cores: compare the ratios measured in this run, not absolute numbers",
        "across runs.",
        "",
        f"- Date: {r['date']}",
        f"- Commit: {r['commit']}",
        f"- Machine: {m['cpus']} x {m['cpu']}, {m['mem_gib']} GiB, Python {m['python']}, "
        f"kernel {m['kernel']}; load average at start "
        + ", ".join(f"{x:.1f}" for x in m["load_at_start"]),
        f"- Scale: BENCH_SCALE={r['scale']}: M1/M6 and scenario 5 use 10,000 x scale objects; the "
        "direct client 2,000 Jobs; M2 (30 s), M3 (200 + 200), M4 (100 + 100, two boundaries) and "
        "M5 (20-deep chain, 100 pairs) are never scaled",
        f"- Operator: BACKGROUNDJOBS_WORKERS={r['workers']}; "
        f"BACKGROUNDJOBS_EVENTS={r['events']} for M2-M5, M1/M6 run once per setting, "
        "scenario 5 with the other one",
        "- Cluster: kube-controller-manager and kube-scheduler at --kube-api-qps=1000 "
        "(hack/bench.sh)",
        f"- Suite wall time: {r.get('total_seconds', 0):.0f} s ("
        + ", ".join(f"{k} {v:.0f} s" for k, v in r.get("phase_seconds", {}).items())
        + ")",
        "",
        "| Measurement | Result | Target | |",
        "|---|---|---|---|",
    ]
    out += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in _rows(r)]
    out += ["", "## Where the 2 cores went (cores used during the phase)", ""]
    cpu = [("Direct client", r.get("direct_cpu"))]
    cpu += [(f"M1 EVENTS={e}", m.get("cpu")) for e, m in (r.get("m1") or {}).items()]
    cpu += [("M2 sustained", r.get("m2s_cpu")), ("M2 half of M1", r.get("m2_cpu"))]
    cpu += [("Scenario 5", r.get("s5_cpu"))]
    out += [f"- {label}: {value}" for label, value in cpu if value]
    out += ["", "## API requests in the scenario's namespace, by sender (audit log)", ""]
    reqs = [(f"M1 EVENTS={e}", m.get("requests")) for e, m in (r.get("m1") or {}).items()]
    reqs += [("M2 sustained", r.get("m2s_requests")), ("M2 half of M1", r.get("m2_requests"))]
    for label, value in reqs:
        if value:
            out.append(f"- {label}: " + ", ".join(f"{k} {v}" for k, v in value.items()))
    if r.get("b1"):
        out += ["", "## B1: N calls as one batch against N via enqueue_many (issue 16)", ""]
        out.append(batches_table(r["b1"]))
    if r.get("q1"):
        out += [
            "",
            "## Q1: N jobs into a queue of maxConcurrency 20 (bench/bench_queue.py, issue 15)",
            "",
        ]
        out += [f"    {k}: {v}" for k, v in r["q1"].items()]
    if r.get("r1"):
        out += ["", "## R1: retryPolicy attempt lateness (bench/bench_retry.py, issue 17)", ""]
        out += [f"    {line}" for line in r["r1"]]
    out += ["", "## The operator's requests per kind (count, mean time in the API server)", ""]
    for events in ("all", "failures"):
        m7 = r.get(f"m7_events_{events}")
        if m7:
            out.append(f"- EVENTS={events}: {m7['top']}")
    out.append("")
    return "\n".join(out)
