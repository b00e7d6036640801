"""CPU and RSS readings of processes from /proc (bench/bare_watcher.py imports this: keep
it light, or M6's baseline grows)."""

from __future__ import annotations

import os
import time
from pathlib import Path

CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


def rss_bytes(pid: int) -> int:
    """Resident set size (VmRSS) of ``pid``."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of ``pid`` (its threads included)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def cluster_pids(kubeconfig: str) -> dict[str, int]:
    """The cluster's components (kwokctl's pids/ directory next to the kubeconfig)."""
    pids: dict[str, int] = {}
    for f in sorted((Path(kubeconfig).resolve().parent / "pids").glob("*.pid")):
        try:
            pid = int(f.read_text().strip())
            os.kill(pid, 0)
            pids[f.stem] = pid
        except (OSError, ValueError):
            continue
    return pids


class CpuMeter:
    """CPU seconds used by a set of processes between ``start()`` and ``stop()``."""

    def __init__(self, pids: dict[str, int]) -> None:
        self.pids = pids
        self.before: dict[str, float] = {}
        self.used: dict[str, float] = {}
        self.wall = 0.0
        self._t0 = 0.0

    def start(self) -> CpuMeter:
        self.before = {k: cpu_seconds(p) for k, p in self.pids.items()}
        self._t0 = time.monotonic()
        return self

    def stop(self) -> dict[str, float]:
        self.wall = time.monotonic() - self._t0
        self.used = {k: cpu_seconds(p) - self.before.get(k, 0.0) for k, p in self.pids.items()}
        return self.used

    def share(self) -> str:
        """'apiserver 0.9 cores, ...' over the measured wall time."""
        if not self.wall:
            return ""
        parts = sorted(self.used.items(), key=lambda kv: -kv[1])
        return ", ".join(f"{k} {v / self.wall:.2f}" for k, v in parts if v / self.wall >= 0.02)
