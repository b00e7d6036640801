"""Backoff arithmetic for a retry policy of its own (issue 17, item 1): when attempt n + 1 of
a run is due after attempt n failed. Pure.

Used by ``retrypolicy`` (``spec.retryPolicy``; without one the Job controller's
``backoffLimit``, 10 s doubling at most 6 minutes, stays the retry path). What it gives that
path: a due time that a restart computes again identically (the jitter is derived from the
job's uid and the attempt, never random), that never precedes the failure plus the shortest
delay the policy allows, and never exceeds ``max``.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from backgroundjobs.api.durations import parse_duration


@dataclass(frozen=True)
class Backoff:
    """``initial`` before the 2nd attempt, times ``factor`` for each next one, at most
    ``max``; ``jitter`` (0 to 1) takes up to that fraction off each delay, spreading the
    retries of many jobs that failed at once (a relay down) instead of all at one instant."""

    initial: timedelta
    factor: float = 2.0
    max: timedelta = timedelta(hours=1)
    jitter: float = 0.0

    def __post_init__(self) -> None:
        if self.initial <= timedelta(0):
            raise ValueError("backoff.initial must be a positive duration")
        if not (math.isfinite(self.factor) and self.factor >= 1):
            raise ValueError("backoff.factor must be a number >= 1")
        if self.max < self.initial:
            raise ValueError("backoff.max must be at least backoff.initial")
        if not (0 <= self.jitter <= 1):
            raise ValueError("backoff.jitter must be between 0 and 1")

    @classmethod
    def parse(
        cls, initial: str, factor: float = 2.0, max: str = "1h", jitter: float = 0.0
    ) -> Backoff:
        """From the spec's texts (``10s``, ``1h``)."""
        return cls(parse_duration(initial), float(factor), parse_duration(max), float(jitter))

    def base_delay(self, failed_attempt: int) -> timedelta:
        """The delay after attempt ``failed_attempt`` (1 = the first) failed, before jitter:
        ``initial * factor ** (failed_attempt - 1)``, at most ``max``."""
        if failed_attempt < 1:
            raise ValueError("attempts are counted from 1")
        initial_s = self.initial.total_seconds()
        max_s = self.max.total_seconds()
        steps = failed_attempt - 1
        # compared in logarithms: factor ** steps overflows a float long before steps runs out
        if self.factor > 1 and steps * math.log(self.factor) >= math.log(max_s / initial_s):
            return self.max
        return min(self.max, timedelta(seconds=initial_s * self.factor**steps))

    def delay(self, failed_attempt: int, key: str) -> timedelta:
        """The delay with its jitter: within ``[base * (1 - jitter), base]``, the same for the
        same ``key`` (the job's uid) and attempt on every computation."""
        base = self.base_delay(failed_attempt)
        cut = base * (self.jitter * _unit(key, failed_attempt))
        return base - cut

    def next_due(self, failed_at: datetime, failed_attempt: int, key: str) -> datetime:
        """When attempt ``failed_attempt + 1`` is due: the failure plus its delay."""
        return failed_at + self.delay(failed_attempt, key)


def _unit(key: str, attempt: int) -> float:
    """A number in [0, 1) fixed by ``key`` and ``attempt`` (restart-safe jitter)."""
    digest = hashlib.sha256(f"{key}\0{attempt}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64
