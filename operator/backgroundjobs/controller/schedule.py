"""Time arithmetic: due times of Delayed jobs and next runs of Recurring ones (pure)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterBadDateError, croniter

from backgroundjobs.api.durations import parse_duration
from backgroundjobs.api.models import BackgroundJobSpec
from backgroundjobs.api.times import in_utc, later


def due_at(spec: BackgroundJobSpec, created: datetime) -> datetime | None:
    """When a Delayed job is due; None for other types."""
    if spec.run_at is not None:
        run_at = spec.run_at
        return in_utc(run_at) if run_at.tzinfo else run_at.replace(tzinfo=UTC)
    if spec.delay:
        return later(created, parse_duration(spec.delay))
    return None


class InvalidSchedule(ValueError):
    """The cron expression or time zone cannot be used."""


def zone(name: str | None) -> ZoneInfo:
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise InvalidSchedule(f"unknown time zone {name!r} in spec.timeZone") from exc


def check_schedule(schedule: str, time_zone: str | None) -> None:
    """Raise InvalidSchedule if croniter rejects the expression or the zone is unknown."""
    zone(time_zone)
    if len(schedule.split()) not in (1, 5) or (schedule.startswith("@") and " " in schedule):
        raise InvalidSchedule(f"spec.schedule {schedule!r} must have 5 fields or be a macro")
    if not croniter.is_valid(schedule):
        raise InvalidSchedule(f"spec.schedule {schedule!r} is not a valid cron expression")
    # A valid expression may still never match (0 0 30 2 *): next_run would raise.
    next_run(schedule, "UTC", _REFERENCE)


_REFERENCE = datetime(2000, 1, 1, tzinfo=UTC)


def next_run(schedule: str, time_zone: str | None, after: datetime) -> datetime:
    """The next run strictly after ``after``, computed in the job's time zone, returned in UTC."""
    tz = zone(time_zone)
    try:
        it = croniter(schedule, after.astimezone(tz))
        nxt: datetime = it.get_next(datetime)
    except CroniterBadDateError as exc:
        raise InvalidSchedule(f"spec.schedule {schedule!r} never matches a date") from exc
    return nxt.astimezone(UTC)


def previous_run(schedule: str, time_zone: str | None, at: datetime) -> datetime:
    """The latest scheduled run at or before ``at`` (in the job's time zone), in UTC."""
    tz = zone(time_zone)
    try:
        it = croniter(schedule, (at + timedelta(microseconds=1)).astimezone(tz))
        prev: datetime = it.get_prev(datetime)
    except CroniterBadDateError as exc:
        raise InvalidSchedule(f"spec.schedule {schedule!r} never matches a date") from exc
    return prev.astimezone(UTC)
