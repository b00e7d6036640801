"""A probe of the operator's event loop, for finding where a latency went (issue 13).

Put this directory first on ``PYTHONPATH`` when running the bench
(``PYTHONPATH=bench/loopprobe BGJ_CLUSTER=bench BENCH_ONLY=m3 bash hack/bench.sh``): Python
imports ``sitecustomize`` at start, and in the operator's process only (its command line
names ``backgroundjobs.controller``) this appends to ``/tmp/loopprobe-<pid>.log``, with
the wall-clock time:

- ``gc``: every collection of generation 2, and any over 5 ms, with its duration and (for
  generation 2) the number of objects the collector tracks;
- ``slow``: every asyncio callback that held the event loop over 10 ms, and what it was.

Compare the times with the audit log's (``python -m bench.burst_timeline -v``). It costs two
clock reads per callback; its timings are not the bench's figures.
"""

from __future__ import annotations

import sys

if any("backgroundjobs.controller" in arg for arg in getattr(sys, "orig_argv", [])):
    import asyncio.events
    import gc
    import os
    import time
    from typing import Any

    _out = open(f"/tmp/loopprobe-{os.getpid()}.log", "a", buffering=1)  # noqa: SIM115
    _out.write(f"start {time.time():.3f} {' '.join(sys.orig_argv)}\n")
    _gc_started = [0.0]

    def _on_gc(phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            _gc_started[0] = time.perf_counter()
            return
        took = time.perf_counter() - _gc_started[0]
        generation = info["generation"]
        if took > 0.005 or generation == 2:
            tracked = len(gc.get_objects()) if generation == 2 else 0
            _out.write(
                f"gc {time.time():.3f} gen{generation} {took * 1000:.1f}ms"
                f" collected={info['collected']} tracked={tracked}\n"
            )

    gc.callbacks.append(_on_gc)
    _run = asyncio.events.Handle._run

    def _timed_run(self: asyncio.events.Handle) -> None:
        started = time.perf_counter()
        _run(self)
        took = time.perf_counter() - started
        if took > 0.01:
            _out.write(f"slow {time.time():.3f} {took * 1000:.1f}ms {self._callback!r:.200}\n")

    asyncio.events.Handle._run = _timed_run  # type: ignore[method-assign]
