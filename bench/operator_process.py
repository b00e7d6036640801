"""The operator under test: the integration tests' OperatorProcess, profiled on demand."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from tests.integration.harness import OperatorProcess


class Operator(OperatorProcess):
    """The operator under test (the tests' ``OperatorProcess``) with its own identity,
    watching all namespaces, optionally profiled; stopped with SIGINT (kopf stops cleanly,
    and pyinstrument, when profiling, writes its report)."""

    def __init__(
        self,
        kubeconfig: str,
        log_path: Path,
        env: dict[str, str] | None = None,
        profile_to: Path | None = None,
    ) -> None:
        # BENCH_OPERATOR_SRC: another copy of operator/, for before/after comparisons
        super().__init__(
            kubeconfig, log_path.parent, env, source=os.environ.get("BENCH_OPERATOR_SRC")
        )
        self.profile_to = profile_to

    def command(self) -> list[str]:
        command = super().command()
        if self.profile_to is None:
            return command
        # pyinstrument writes its session when the operator exits on SIGINT; render_profile()
        # turns it into text afterwards.
        return [command[0], "-m", "pyinstrument", "-r", "pyisession", "-o", str(self.session),
                *command[1:]]  # fmt: skip

    def start(self, timeout: float = 120) -> float:
        return super().start(timeout)

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

    def stop(self) -> None:  # type: ignore[override]
        super().stop(signal.SIGINT, 120 if self.profile_to else 20)
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
