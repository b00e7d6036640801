"""Misfire arithmetic (pure): which scheduled times of a Recurring job were missed.

A scheduled time is *missed* when the CronJob controller can no longer start it and no Job
for it exists. The controller starts only the most recent unmet time, and with
``startingDeadlineSeconds`` only within that many seconds: so its last chance for a time is
the next scheduled time, or the deadline if that comes first. The operator judges a time
``margin`` after its last chance, so that a Job created at the edge is seen first.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from croniter import CroniterBadDateError, croniter

from backgroundjobs.api.durations import parse_duration
from backgroundjobs.controller.schedule import InvalidSchedule, next_run, zone

SKIP_GRACE = timedelta(seconds=30)  # policy Skip without startingDeadline: the CronJob's deadline
MAX_SCAN = 200  # times looked at per decision (about 40 ms): a long outage takes several
DEFAULT_MARGIN = timedelta(seconds=10)


def skip_deadline_seconds(policy: str | None, starting_deadline: str | None) -> int | None:
    """The startingDeadlineSeconds policy Skip gives the CronJob when spec.startingDeadline
    is not set: without one the CronJob controller would run a late time after an outage."""
    if policy == "Skip" and not starting_deadline:
        return int(SKIP_GRACE.total_seconds())
    return None


def minute_of(at: datetime) -> int:
    """Unix minutes: the suffix the CronJob controller gives the Job of a scheduled time."""
    return int(at.timestamp()) // 60


@dataclass(frozen=True)
class Scan:
    """The outcome of one look at the schedule."""

    missed: list[datetime]  # oldest first, every one before ``now`` and not run
    checked_until: datetime | None  # every time up to here is accounted for (None: none looked)
    more: bool  # stopped at MAX_SCAN before reaching now: look again at once


def last_chance(
    schedule: str, time_zone: str | None, at: datetime, grace: timedelta | None
) -> datetime:
    """The latest instant the CronJob controller may still start the run of ``at``."""
    nxt = next_run(schedule, time_zone, at)
    return min(nxt, at + grace) if grace is not None else nxt


def scan(
    schedule: str,
    time_zone: str | None,
    after: datetime,
    now: datetime,
    ran: Collection[int],
    grace: timedelta | None,
    margin: timedelta = DEFAULT_MARGIN,
    limit: int = MAX_SCAN,
) -> Scan:
    """The missed times after ``after`` (exclusive) that can no longer start by ``now``.

    ``ran`` holds the unix minutes (:func:`minute_of`) of the scheduled times that have a Job.
    Times in the job's time zone (croniter: DST-correct), returned in UTC.
    """
    missed: list[datetime] = []
    checked: datetime | None = None
    times = scheduled_after(schedule, time_zone, after)
    at = next(times)
    for _ in range(limit):
        following = next(times)
        chance = min(following, at + grace) if grace is not None else following
        if at > now or chance + margin > now:
            return Scan(missed, checked, more=False)
        if minute_of(at) not in ran:
            missed.append(at)
        checked, at = at, following
    return Scan(missed, checked, more=True)


def scheduled_after(schedule: str, time_zone: str | None, after: datetime) -> Iterator[datetime]:
    """The scheduled times strictly after ``after``, in UTC: one croniter walked on (a new
    one per time, as ``next_run`` makes, costs ten times more on a long outage)."""
    it = croniter(schedule, after.astimezone(zone(time_zone)))
    while True:
        try:
            at: datetime = it.get_next(datetime)
        except CroniterBadDateError as exc:
            raise InvalidSchedule(f"spec.schedule {schedule!r} never matches a date") from exc
        yield at.astimezone(UTC)


def judgement_time(
    schedule: str,
    time_zone: str | None,
    after: datetime,
    grace: timedelta | None,
    margin: timedelta = DEFAULT_MARGIN,
) -> datetime:
    """When the first scheduled time after ``after`` can be judged run or missed."""
    return last_chance(schedule, time_zone, next_run(schedule, time_zone, after), grace) + margin


def grace(starting_deadline: str | None, default_seconds: int | None) -> timedelta | None:
    """The CronJob's startingDeadlineSeconds as a timedelta (None: no deadline)."""
    if starting_deadline:  # as the CronJob has it: whole seconds, at least 1
        return timedelta(seconds=max(1, int(parse_duration(starting_deadline).total_seconds())))
    return timedelta(seconds=default_seconds) if default_seconds is not None else None


@dataclass(frozen=True)
class Split:
    """Missed times divided by the policy."""

    catch_up: list[datetime]
    skipped: list[datetime]


def split(policy: str, missed: list[datetime], outstanding: int, max_catch_up: int) -> Split:
    """policy All: the oldest missed times run while fewer than ``max_catch_up`` catch-ups
    are outstanding; everything else (and every time under Latest or Skip) is skipped."""
    if policy != "All":
        return Split([], list(missed))
    room = max(0, max_catch_up - outstanding)
    return Split(missed[:room], missed[room:])
