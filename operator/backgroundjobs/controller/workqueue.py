"""The work queue of BackgroundJob keys (not a user's queue: those are ``spec.queue``).

Keys are deduplicated, handed to one worker at a time, and can be scheduled for a wall-clock
time (one asyncio timer per key, the earliest wins), like client-go's workqueue.

Two lanes: what may be urgent (a new job, a change, a Job's event, a timer) and routine
visits (a finished job seen again after a start or a relist: only its retention to plan).
Workers take the urgent lane first and one routine key after every ``ROUTINE_EVERY`` urgent
ones, so thousands of finished jobs listed at a start never stand in front of a job that is
due, and are not starved either. The routine lane can be held (``hold_routine``) while the
operator warms up, leaving the event loop to the watches.
"""

from __future__ import annotations

import asyncio
from collections import deque
from datetime import UTC, datetime

Key = tuple[str, str]

ROUTINE_EVERY = 8


class WorkQueue:
    """Keys to reconcile: deduplicated, one worker per key at a time, plus due-time timers."""

    def __init__(self) -> None:
        self._urgent: deque[Key] = deque()
        self._routine: deque[Key] = deque()
        # key -> whether it is urgent; a key in both lanes (made urgent later) is taken from
        # the urgent one and its routine entry skipped
        self._dirty: dict[Key, bool] = {}
        self._processing: set[Key] = set()
        self._timers: dict[Key, tuple[float, asyncio.TimerHandle]] = {}
        self._ready = asyncio.Event()
        self._urgent_waiting = 0
        self._since_routine = 0
        self._routine_held = False
        self.empty = asyncio.Event()  # set while no urgent key waits for a worker
        self.empty.set()

    def _put(self, key: Key, urgent: bool) -> None:
        (self._urgent if urgent else self._routine).append(key)
        if urgent:
            self._urgent_waiting += 1
            self.empty.clear()
        self._ready.set()

    def add(self, key: Key, routine: bool = False) -> None:
        """Reconcile ``key`` (again): once, after its current worker is done with it.
        ``routine``: nothing about it is urgent (it waits behind every urgent key)."""
        urgent = not routine
        if key in self._dirty:
            if urgent and not self._dirty[key]:  # a routine key became urgent
                self._dirty[key] = True
                if key not in self._processing:
                    self._put(key, True)
            return
        self._dirty[key] = urgent
        if key not in self._processing:
            self._put(key, urgent)

    def add_all(self, keys: list[Key], routine: bool = False) -> None:
        for key in keys:
            self.add(key, routine)

    def hold_routine(self, held: bool) -> None:
        """Hold routine keys back (they wait, urgent keys go on), or let them go again."""
        self._routine_held = held
        if not held and self._routine:
            self._ready.set()

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

    def _take(self, lane: deque[Key], urgent: bool) -> Key | None:
        """The first key of ``lane`` still waiting in it (stale entries dropped)."""
        while lane:
            key = lane.popleft()
            if self._dirty.get(key) is urgent and key not in self._processing:
                return key
        return None

    def _next(self) -> Key | None:
        routine_turn = not self._routine_held and (
            self._since_routine >= ROUTINE_EVERY or not self._urgent_waiting
        )
        if routine_turn:
            key = self._take(self._routine, False)
            if key is not None:
                self._since_routine = 0
                return key
        key = self._take(self._urgent, True)
        if key is not None:
            self._urgent_waiting -= 1
            self._since_routine += 1
            if not self._urgent_waiting:
                self.empty.set()
        return key

    async def get(self) -> Key:
        """The next key for a worker, which must call ``done`` with it."""
        while (key := self._next()) is None:
            self._ready.clear()
            await self._ready.wait()
        del self._dirty[key]
        self._processing.add(key)
        return key

    def done(self, key: Key) -> None:
        """The worker is done with ``key``; it goes back in line if it was added meanwhile."""
        self._processing.discard(key)
        if key in self._dirty:
            self._put(key, self._dirty[key])

    def __len__(self) -> int:
        """Keys waiting for a worker (not those being worked on), both lanes."""
        return len(self._dirty) - sum(1 for key in self._processing if key in self._dirty)
