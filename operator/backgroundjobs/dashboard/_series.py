"""Succeeded and failed runs per minute over the last 24 hours, counted from the watch."""

from __future__ import annotations

from dataclasses import dataclass

MINUTE = 60
WINDOW_MINUTES = 24 * 60
OUTCOMES = ("succeeded", "failed")


@dataclass(frozen=True)
class Point:
    """One minute: its start (epoch seconds) and the runs that finished in it."""

    minute: int
    succeeded: int
    failed: int


class MinuteSeries:
    """Counts by (minute, outcome) for the last ``WINDOW_MINUTES`` minutes.

    A run is counted in the minute of its ``finishedAt``; counts older than the window are
    dropped as time moves on.
    """

    def __init__(self) -> None:
        self._counts: dict[int, list[int]] = {}

    def add(self, finished: float, outcome: str, now: float, delta: int = 1) -> bool:
        """Count one run that finished at ``finished`` with ``outcome`` (or take one back
        with ``delta=-1``); False when it lies outside the window or the outcome is unknown."""
        if outcome not in OUTCOMES:
            return False
        minute = int(finished // MINUTE) * MINUTE
        oldest = self._oldest(now)
        if minute < oldest or minute > now + MINUTE:
            return False
        bucket = self._counts.setdefault(minute, [0, 0])
        bucket[OUTCOMES.index(outcome)] = max(0, bucket[OUTCOMES.index(outcome)] + delta)
        if len(self._counts) > WINDOW_MINUTES + 2:
            self._drop_before(oldest)
        return True

    def points(self, now: float, minutes: int = WINDOW_MINUTES) -> list[Point]:
        """One point per minute, oldest first, ending with the current minute (zeros
        included)."""
        self._drop_before(self._oldest(now))
        last = int(now // MINUTE) * MINUTE
        out = []
        for minute in range(last - (minutes - 1) * MINUTE, last + MINUTE, MINUTE):
            succeeded, failed = self._counts.get(minute, (0, 0))
            out.append(Point(minute, succeeded, failed))
        return out

    def totals(self, now: float, minutes: int = WINDOW_MINUTES) -> tuple[int, int]:
        """(succeeded, failed) over the last ``minutes`` minutes."""
        points = self.points(now, minutes)
        return sum(p.succeeded for p in points), sum(p.failed for p in points)

    @staticmethod
    def _oldest(now: float) -> int:
        return int(now // MINUTE) * MINUTE - (WINDOW_MINUTES - 1) * MINUTE

    def _drop_before(self, oldest: int) -> None:
        for minute in [m for m in self._counts if m < oldest]:
            del self._counts[minute]
