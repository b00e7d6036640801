"""``RetryPolicy``: the client's form of ``spec.retryPolicy`` (each attempt a Job of its own,
made by the operator when the backoff says; API.md)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from backgroundjobs.api.durations import format_duration
from backgroundjobs.errors import InvalidSpec


@dataclass(frozen=True)
class RetryPolicy:
    """The delay before each next attempt: ``initial`` after the first failure, times
    ``factor`` after each further one, at most ``max``, less up to ``jitter`` (0-1) of it.
    Durations are timedeltas or text (``"10s"``, ``"6m"``); the API server checks the ranges
    (initial and max at least 1s, max at least initial, factor 1-100, jitter 0-1)."""

    initial: timedelta | str = "10s"
    factor: float = 2.0
    max: timedelta | str = "6m"
    jitter: float = 0.0

    def to_spec(self) -> dict[str, Any]:
        """``spec.retryPolicy``."""
        return {
            "backoff": {
                "initial": _text(self.initial, "initial"),
                "factor": self.factor,
                "max": _text(self.max, "max"),
                "jitter": self.jitter,
            }
        }


def _text(value: timedelta | str, field: str) -> str:
    if isinstance(value, str):
        return value  # checked by the API server (the CRD's CEL rule names the field)
    if value < timedelta(0):
        raise InvalidSpec(f"spec.retryPolicy.backoff.{field} must not be negative ({value})")
    return format_duration(value)
