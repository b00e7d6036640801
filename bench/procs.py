"""Processes: the operator under test, and CPU/RSS readings from /proc."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

from bench.k8s import REPO

CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


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


class Operator:
    """``python -m backgroundjobs.controller`` as a subprocess with its own identity."""

    def __init__(
        self,
        kubeconfig: str,
        log_path: Path,
        env: dict[str, str] | None = None,
        profile_to: Path | None = None,
    ) -> None:
        self.kubeconfig = kubeconfig
        self.log_path = log_path
        self.env = env or {}
        self.profile_to = profile_to
        self.proc: subprocess.Popen[bytes] | None = None
        self.health_port = 0
        self.metrics_port = 0
        self.started_at = 0.0

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self, timeout: float = 120) -> float:
        """Start and wait for /healthz; returns the wall time at which it was launched."""
        self.health_port = free_port()
        self.metrics_port = free_port()
        env = {
            **os.environ,
            "KUBECONFIG": self.kubeconfig,
            "BACKGROUNDJOBS_METRICS_PORT": str(self.metrics_port),
            "PYTHONUNBUFFERED": "1",
            # this checkout's code, whichever checkout the venv's editable install points at
            # (BENCH_OPERATOR_SRC: another copy of operator/, for before/after comparisons)
            "PYTHONPATH": os.pathsep.join(
                x
                for x in (
                    os.environ.get("BENCH_OPERATOR_SRC") or str(REPO / "operator"),
                    str(REPO),
                    os.environ.get("PYTHONPATH"),
                )
                if x
            ),
            **self.env,
        }
        cmd = [sys.executable]
        if self.profile_to is not None:
            # pyinstrument writes its session when the operator exits on SIGINT; render()
            # turns it into text (and html) afterwards.
            cmd += ["-m", "pyinstrument", "-r", "pyisession", "-o", str(self.session)]
        cmd += [
            "-m",
            "backgroundjobs.controller",
            "--all-namespaces",
            "--liveness",
            f"http://127.0.0.1:{self.health_port}/healthz",
        ]
        log = self.log_path.open("ab")
        log.write(f"\n===== start {time.strftime('%H:%M:%S')} {self.env} =====\n".encode())
        log.flush()
        self.started_at = time.time()
        self.proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=REPO)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"the operator exited with {self.proc.returncode}; see {log.name}"
                )
            try:
                url = f"http://127.0.0.1:{self.health_port}/healthz"
                with urllib.request.urlopen(url, timeout=1) as r:
                    if r.status == 200:
                        return self.started_at
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"the operator did not answer /healthz in {timeout}s")

    def pending(self) -> float:
        """Objects waiting in the operator (its pending gauge, both stages); -1 if unknown."""
        try:
            text = self.metrics()
        except OSError:
            return -1
        values = [
            float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith("backgroundjobs_operator_pending{")
        ]
        return sum(values) if values else -1

    async def settled(self, timeout: float = 120) -> float:  # noqa: ASYNC109
        """Wait for a new operator's first pass over what the earlier phases left (thousands
        of finished objects): at least 3 s for its lists to arrive, then nothing pending for
        a second. Returns the seconds waited."""
        t0 = time.monotonic()
        await asyncio.sleep(3)
        quiet = 0
        while time.monotonic() - t0 < timeout and quiet < 4:
            quiet = quiet + 1 if self.pending() == 0 else 0
            await asyncio.sleep(0.25)
        return time.monotonic() - t0

    @property
    def session(self) -> Path:
        assert self.profile_to is not None
        return self.profile_to.with_suffix(".pyisession")

    def render_profile(self) -> list[Path]:
        """The saved profile as a text tree (library frames collapsed) and a table of the
        functions by inclusive time (kopf's and aiohttp's frames too); the raw session, which
        is large, is removed. Returns the files written."""
        if self.profile_to is None or not self.session.exists():
            return []
        tree = self.profile_to.with_suffix(".txt")
        raw = self.profile_to.with_suffix(".json")
        for renderer, target in (("text", tree), ("json", raw)):
            subprocess.run(
                [sys.executable, "-m", "pyinstrument", "--load", str(self.session), "-r", renderer,
                 "--no-color", "--unicode", "-o", str(target)],
                check=False, timeout=300,
            )  # fmt: skip
        table = self.profile_to.with_name(self.profile_to.name + "-functions.txt")
        table.write_text(inclusive_table(json.loads(raw.read_text())))
        raw.unlink()
        self.session.unlink()
        return [tree, table]

    def metrics(self) -> str:
        url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as r:
            return str(r.read().decode())

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        # SIGINT: kopf stops cleanly, and pyinstrument (when profiling) writes its report.
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(120 if self.profile_to else 20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
        self.render_profile()


def inclusive_table(profile: dict[str, Any], top: int = 60) -> str:
    """Functions by inclusive wall time (each counted once per stack) from pyinstrument's json."""
    inclusive: Counter[str] = Counter()

    def walk(frame: dict[str, Any], on_stack: frozenset[str]) -> None:
        key = f"{frame['function']}  {frame.get('file_path_short', '')}:{frame.get('line_no', '')}"
        if key not in on_stack:
            inclusive[key] += frame["time"]
        for child in frame.get("children") or []:
            walk(child, on_stack | {key})

    walk(profile["root_frame"], frozenset())
    lines = [
        f"Duration {profile.get('duration', 0):.1f} s wall, {profile.get('cpu_time', 0):.1f} s CPU."
        " Inclusive wall time per function (the event loop's idle time is under select/epoll).",
        "",
    ]
    lines += [f"{t:8.2f} s  {k}" for k, t in inclusive.most_common(top)]
    return "\n".join(lines) + "\n"
