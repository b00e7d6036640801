"""RFC 3339 times as the Kubernetes API writes them: the one parser and the formatters.

Every reader of a time (the operator's decisions, the client's ``JobInfo``, the CLI) parses
with ``parse_time``; every writer formats with ``format_time`` or ``micro_time``.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

# The ends of the times a datetime can hold, in UTC: arithmetic on a time near them (runAt
# 9999-12-31T23:00:00-05:00, a delay of 80,000,000 hours) saturates here instead of raising.
LATEST = datetime.max.replace(tzinfo=UTC)
EARLIEST = datetime.min.replace(tzinfo=UTC)


def in_utc(moment: datetime) -> datetime:
    """``moment`` in UTC, the nearest end of the range when UTC cannot hold it."""
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        return LATEST if moment.year > 1 else EARLIEST


def later(moment: datetime, delta: timedelta) -> datetime:
    """``moment + delta``, saturated at the ends of the range."""
    try:
        return moment + delta
    except OverflowError:
        return LATEST if delta > timedelta(0) else EARLIEST


def parse_rfc3339(text: str) -> datetime:
    """``2026-01-02T03:04:05Z``, ``...+02:00``, ``...05.25Z`` as a datetime; ValueError when it
    is not such a time. Without an offset the result is naive: the caller decides what that
    means (``parse_time`` takes it as UTC, the CLI's ``--at`` refuses it)."""
    return datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))


def parse_time(value: object) -> datetime | None:
    """A time read from an object, as an aware datetime: None when it is absent or not an
    RFC 3339 time; a time without an offset is UTC (the API writes UTC with a Z)."""
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = parse_rfc3339(value)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def format_time(value: datetime) -> str:
    """RFC 3339 in UTC with a Z, at the precision kept (microseconds dropped when zero)."""
    value = in_utc(value)
    if value.microsecond:
        return value.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


def micro_time(value: datetime) -> str:
    """A metav1.MicroTime (Lease renewals, Event times): exactly six fractional digits."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
