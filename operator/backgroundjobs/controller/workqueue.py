"""The work queue of BackgroundJob keys (not a user's queue: those are ``spec.queue``).

Keys are deduplicated, handed to one worker at a time, and can be scheduled for a wall-clock
time (one asyncio timer per key, the earliest wins), like client-go's workqueue.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

Key = tuple[str, str]


class WorkQueue:
    """Keys to reconcile: deduplicated, one worker per key at a time, plus due-time timers."""

    def __init__(self) -> None:
        self._queue: asyncio.Queue[Key] = asyncio.Queue()
        self._dirty: set[Key] = set()
        self._processing: set[Key] = set()
        self._timers: dict[Key, tuple[float, asyncio.TimerHandle]] = {}
        self.empty = asyncio.Event()  # set while no key waits for a worker
        self.empty.set()

    def _put(self, key: Key) -> None:
        self._queue.put_nowait(key)
        self.empty.clear()

    def add(self, key: Key) -> None:
        """Reconcile ``key`` (again): once, after its current worker is done with it."""
        if key in self._dirty:
            return
        self._dirty.add(key)
        if key not in self._processing:
            self._put(key)

    def add_all(self, keys: list[Key]) -> None:
        for key in keys:
            self.add(key)

    def add_at(self, key: Key, when: datetime) -> None:
        """Reconcile ``key`` at wall-clock ``when`` (one asyncio timer per key, earliest wins)."""
        loop = asyncio.get_running_loop()
        delay = max(0.0, (when - datetime.now(UTC)).total_seconds())
        at = loop.time() + delay
        current = self._timers.get(key)
        if (
            current is not None
            and not current[1].cancelled()
            and current[0] <= at
            and current[0] >= loop.time()
        ):
            return
        if current is not None:
            current[1].cancel()
        self._timers[key] = (at, loop.call_at(at, self._fire, key))

    def _fire(self, key: Key) -> None:
        self._timers.pop(key, None)
        self.add(key)

    def forget(self, key: Key) -> None:
        """Drop ``key``'s timer (the object is gone)."""
        timer = self._timers.pop(key, None)
        if timer is not None:
            timer[1].cancel()

    async def get(self) -> Key:
        """The next key for a worker, which must call ``done`` with it."""
        key = await self._queue.get()
        if self._queue.empty():
            self.empty.set()
        self._dirty.discard(key)
        self._processing.add(key)
        return key

    def done(self, key: Key) -> None:
        """The worker is done with ``key``; it goes back in line if it was added meanwhile."""
        self._processing.discard(key)
        if key in self._dirty:
            self._put(key)

    def __len__(self) -> int:
        return self._queue.qsize()
