"""The spec patches of ``suspend`` and ``resume`` (pause until: API.md, spec.suspendUntil)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from backgroundjobs.api.durations import parse_duration
from backgroundjobs.api.times import format_time, parse_time

Until = datetime | timedelta | str | None


def resume_time(until: Until, now: datetime) -> datetime | None:
    """When ``until`` says to resume: an instant (a datetime, an RFC 3339 string), or a
    duration from ``now`` (a timedelta, ``2h``); None: not by itself."""
    if until is None:
        return None
    if isinstance(until, timedelta):
        when = now + until
    elif isinstance(until, datetime):
        when = until if until.tzinfo is not None else until.replace(tzinfo=UTC)
    else:
        text = until.strip()
        parsed = parse_time(text)
        if parsed is not None:
            when = parsed
        else:
            try:
                when = now + parse_duration(text)
            except ValueError:
                raise ValueError(
                    f"until {until!r} is neither an RFC 3339 instant"
                    " (2030-01-02T03:04:05Z) nor a duration (90m, 2h)"
                ) from None
    if when <= now:
        raise ValueError(f"until {format_time(when)} is not in the future")
    return when


def suspend_patch(until: Until, now: datetime) -> dict[str, Any]:
    """The merge patch of ``suspend``: suspended, until ``until`` or until resumed."""
    when = resume_time(until, now)
    return {"spec": {"suspend": True, "suspendUntil": format_time(when) if when else None}}


RESUME_PATCH: dict[str, Any] = {"spec": {"suspend": False, "suspendUntil": None}}
