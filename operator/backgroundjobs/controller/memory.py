"""Give memory freed after a burst back to the operating system.

CPython keeps freed memory for reuse: after thousands of jobs at once (a backlog at start,
a bulk enqueue) the operator's RSS, which is what a container's memory limit and the bench's
M6 see, stays at the burst's high-water mark. Once the operator is idle again, glibc's
``malloc_trim`` returns the free pages (well under a millisecond). No ``gc.collect()`` then: on a
heap of tens of thousands of objects a full collection stalls the event loop for hundreds
of milliseconds, which a delayed job due at that instant would feel (bench M3: p99 1.5 s).
Elsewhere (musl) this does nothing.

The automatic collections still run, and a full one (generation 2) scans every object
the operator holds: about 95,000 of its 110,000 are its modules, classes and clients,
made at start and never freed. Scanned each time, they made a full collection take 50-125
ms, and the allocations of a burst (bench M3: 200 delayed jobs due at one instant) set one
off within it, every Job create waiting behind it. ``freeze_start_up`` moves them out of
the collector's sight once the operator has started (``gc.freeze``): a full collection
then scans only what came later.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import gc
import logging
from collections.abc import Callable

log = logging.getLogger("backgroundjobs.operator")


def _malloc_trim() -> Callable[[int], int] | None:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        trim: Callable[[int], int] = libc.malloc_trim
    except (OSError, AttributeError):
        return None
    return trim


_TRIM = _malloc_trim()


def release() -> bool:
    """Return free heap pages to the OS; whether glibc released anything."""
    return bool(_TRIM(0)) if _TRIM is not None else False


def freeze_start_up() -> int:
    """Collect once, then leave every object alive now out of later collections (they live
    as long as the process; objects freed later are still freed by their reference count,
    only a reference cycle among them would never be). The number frozen."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()


async def release_when_idle(
    activity: Callable[[], int],
    idle: Callable[[], bool],
    period: float = 1.0,
    burst: int = 1000,
) -> None:
    """Every ``period`` s: once ``burst`` units of work (reconciles) were done since the last
    release and nothing is pending now, release memory."""
    seen = activity()
    while True:
        await asyncio.sleep(period)
        now = activity()
        if now - seen >= burst and idle():
            seen = now
            released = release()
            log.debug("idle after %d reconciles: memory released=%s", now, released)
