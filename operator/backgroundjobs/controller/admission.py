"""Queue slots: which runs hold a slot of their queue (``spec.queue``), which jobs wait for
one. The one place where slots are taken and released, on every path: a run admitted, its
Job seen running, finished or deleted, its BackgroundJob deleted.

A queue without ``maxConcurrency`` admits every run; its running Jobs are still counted.
"""

from __future__ import annotations

Key = tuple[str, str]


class QueueSlots:
    """The holders of each queue's slots and the jobs waiting for one."""

    def __init__(self) -> None:
        self._holders: dict[str, set[Key]] = {}
        self._waiting: dict[str, set[Key]] = {}
        self._waits_in: dict[Key, str] = {}

    def admit(self, key: Key, queue: str, limit: int | None) -> bool:
        """Take a slot of ``queue`` for ``key`` if one is free (or it holds one); call it
        before any await, so that two workers cannot both take the last slot."""
        if limit is None:
            return True
        holders = self._holders.setdefault(queue, set())
        if len(holders - {key}) >= limit:
            return False
        holders.add(key)
        return True

    def holds(self, key: Key, queue: str) -> bool:
        return key in self._holders.get(queue, ())

    def hold(self, key: Key, queue: str) -> None:
        """``key``'s run is running in ``queue`` (its Job was seen)."""
        self._holders.setdefault(queue, set()).add(key)

    def release(self, key: Key, queue: str) -> list[Key]:
        """``key``'s run no longer holds a slot of ``queue``: the jobs to wake that wait for one
        (every one of them; none when it held no slot)."""
        holders = self._holders.get(queue)
        if not holders or key not in holders:
            return []
        holders.discard(key)
        if not holders:
            del self._holders[queue]
        return list(self._waiting.get(queue, ()))

    def set_waiting(self, key: Key, queue: str | None) -> None:
        """``key`` waits for a slot of ``queue`` (None: it waits for none)."""
        old = self._waits_in.get(key)
        if old == queue:
            return
        if old is not None:
            waiting = self._waiting[old]
            waiting.discard(key)
            if not waiting:
                del self._waiting[old]
            del self._waits_in[key]
        if queue is not None:
            self._waiting.setdefault(queue, set()).add(key)
            self._waits_in[key] = queue

    def forget(self, key: Key) -> list[Key]:
        """``key`` is gone: its slots are released; the jobs to wake."""
        self.set_waiting(key, None)
        woken: list[Key] = []
        for queue in [q for q, holders in self._holders.items() if key in holders]:
            woken += self.release(key, queue)
        return woken
