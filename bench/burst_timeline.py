"""Where M3's burst went, from the API server's audit log: for each M3 phase in the log
and its kept rotations (oldest first), when the operator's 200 Job creates of the burst
reached the API server relative to the due instant, and with ``-v`` every component's
requests per time step.

    python -m bench.burst_timeline [--step 0.05] [-v] [AUDIT_LOG]

The due instant is not in the audit log (Metadata level); it is taken as the first spread
job's create plus 32 s (bench/scenarios.py's run_m3: the spread starts at the start, the
burst 32 s later; the spread's first Job is a few ms late, which this then is too). A gap
with no create means the operator sent nothing then (issue 13: a 150 ms gap was a full
garbage collection, see bench/README.md item 9).
"""

from __future__ import annotations

import argparse
import os
from collections import Counter, defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.audit import AuditLog, component, resource_of, stamp

BURST_AFTER = 32.0  # s after the spread's first job (run_m3)


def _phases(path: Path) -> dict[str, list[dict[str, Any]]]:
    by_ns: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for event in AuditLog(path).kept(b'-m3"'):
        ns = (event.get("objectRef") or {}).get("namespace") or ""
        if ns.endswith("-m3"):
            by_ns[ns].append(event)
    return by_ns


def _job_creates(events: list[dict[str, Any]], part: str) -> list[float]:
    return sorted(
        stamp(e["requestReceivedTimestamp"])
        for e in events
        if e.get("verb") == "create"
        and resource_of(e) == "jobs"
        and part in ((e.get("objectRef") or {}).get("name") or "")
    )


def report(ns: str, events: list[dict[str, Any]], step: float, verbose: bool) -> None:
    spread = _job_creates(events, "m3-s-0-")
    burst = _job_creates(events, "-b-")
    if not spread or not burst:
        print(f"== {ns}: no burst in the log")
        return
    due = spread[0] + BURST_AFTER
    rel = [t - due for t in burst]
    n = len(rel)
    at = datetime.fromtimestamp(due, UTC)
    print(
        f"== {ns}, burst due ~{at:%H:%M:%S}: {n} Job creates received first {rel[0]:.3f} s,"
        f" p50 {rel[n // 2]:.3f} s, last {rel[-1]:.3f} s"
    )
    if not verbose:
        return
    steps: dict[int, Counter[str]] = defaultdict(Counter)
    for e in events:
        t = stamp(e["requestReceivedTimestamp"]) - due
        if -0.5 <= t < 1.5:
            steps[int((t + 0.5) / step)][
                f"{component(e)[:14]} {e.get('verb')} {resource_of(e)}"
            ] += 1
    kinds = sorted({k for c in steps.values() for k in c})
    for i, kind in enumerate(kinds):
        print(f"   [{i}] {kind}")
    print("   t (s) " + "".join(f"{f'[{i}]':>6}" for i in range(len(kinds))))
    for k in sorted(steps):
        print(f"  {k * step - 0.5:+.2f} " + "".join(f"{steps[k][kind]:6d}" for kind in kinds))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    default = os.path.expanduser("~/.cache/backgroundjobs/kwok/clusters/bench/logs/audit.log")
    parser.add_argument("audit_log", nargs="?", default=default)
    parser.add_argument("--step", type=float, default=0.05, help="seconds per row (-v)")
    parser.add_argument("-v", "--verbose", action="store_true", help="requests per step")
    args = parser.parse_args()
    phases = _phases(Path(args.audit_log))
    for ns in sorted(
        phases, key=lambda n: min(stamp(e["requestReceivedTimestamp"]) for e in phases[n])
    ):
        report(ns, phases[ns], args.step, args.verbose)


if __name__ == "__main__":
    main()
