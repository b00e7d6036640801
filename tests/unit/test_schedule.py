"""Due times of Delayed jobs, next runs of Recurring ones, and what a schedule may be."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from backgroundjobs.api.models import BackgroundJobSpec
from backgroundjobs.api.times import format_time, micro_time, parse_time
from backgroundjobs.controller.schedule import (
    InvalidSchedule,
    check_schedule,
    due_at,
    next_run,
    zone,
)

pytestmark = pytest.mark.unit

CREATED = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)


def spec(**fields: object) -> BackgroundJobSpec:
    return BackgroundJobSpec.model_validate({"handler": "h", **fields})


# ------------------------------------------------------------------ api.times: the one parser


def test_parse_time_z_and_offsets() -> None:
    assert parse_time("2030-01-02T03:04:05Z") == CREATED
    assert parse_time("2030-01-02T04:04:05+01:00") == CREATED
    assert parse_time("2030-01-02T03:04:05") == CREATED  # naive means UTC
    assert parse_time("2030-01-02T03:04:05.250000Z") == CREATED + timedelta(milliseconds=250)
    assert parse_time("2030-01-02t03:04:05z") == CREATED
    assert parse_time(None) is None
    assert parse_time("") is None


def test_parse_time_reads_anything_an_object_may_hold_without_raising() -> None:
    # the operator, the client and the CLI read times from objects that anyone can write
    for value in ("soon", "2030-13-45T99:00:00Z", 1767225600, ["2030-01-02T03:04:05Z"], {}):
        assert parse_time(value) is None, value


def test_format_time_is_utc_with_z() -> None:
    assert format_time(CREATED) == "2030-01-02T03:04:05Z"
    berlin = CREATED.astimezone(timezone(timedelta(hours=1)))
    assert format_time(berlin) == "2030-01-02T03:04:05Z"
    assert format_time(CREATED + timedelta(microseconds=5)) == "2030-01-02T03:04:05.000005Z"
    assert parse_time(format_time(CREATED + timedelta(microseconds=5))) == CREATED + timedelta(
        microseconds=5
    )


def test_micro_time_has_six_fractional_digits() -> None:
    assert micro_time(CREATED) == "2030-01-02T03:04:05.000000Z"


# ------------------------------------------------------------------ due_at


def test_due_at_delay_counts_from_creation() -> None:
    assert due_at(spec(delay="1h30m"), CREATED) == CREATED + timedelta(hours=1, minutes=30)
    assert due_at(spec(delay="250ms"), CREATED) == CREATED + timedelta(milliseconds=250)


def test_due_at_run_at_is_the_instant_itself() -> None:
    assert due_at(spec(runAt="2031-05-06T07:08:09Z"), CREATED) == datetime(
        2031, 5, 6, 7, 8, 9, tzinfo=UTC
    )
    # an offset is kept as the same instant
    got = due_at(spec(runAt="2031-05-06T09:08:09+02:00"), CREATED)
    assert got == datetime(2031, 5, 6, 7, 8, 9, tzinfo=UTC)
    assert got is not None and got.utcoffset() is not None


def test_due_at_run_at_in_the_past_is_kept() -> None:
    """A runAt before creation is due at once (the decision starts it; never rejected)."""
    assert due_at(spec(runAt="2000-01-01T00:00:00Z"), CREATED) == datetime(2000, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize("fields", [{}, {"schedule": "* * * * *"}, {"after": {"name": "parent"}}])
def test_due_at_is_none_for_other_types(fields: dict[str, object]) -> None:
    assert due_at(spec(**fields), CREATED) is None


# ------------------------------------------------------------------ next_run


def test_next_run_is_strictly_after() -> None:
    at = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
    assert next_run("0 * * * *", None, at) == datetime(2030, 1, 1, 13, 0, tzinfo=UTC)
    assert next_run("0 * * * *", "UTC", at + timedelta(seconds=1)) == datetime(
        2030, 1, 1, 13, 0, tzinfo=UTC
    )
    assert next_run("*/15 * * * *", None, at + timedelta(minutes=1)) == datetime(
        2030, 1, 1, 12, 15, tzinfo=UTC
    )


@pytest.mark.parametrize(
    ("schedule", "expected"),
    [
        ("@hourly", datetime(2030, 1, 1, 13, 0, tzinfo=UTC)),
        ("@daily", datetime(2030, 1, 2, 0, 0, tzinfo=UTC)),
        ("@midnight", datetime(2030, 1, 2, 0, 0, tzinfo=UTC)),
        ("@weekly", datetime(2030, 1, 6, 0, 0, tzinfo=UTC)),  # Sunday
        ("@monthly", datetime(2030, 2, 1, 0, 0, tzinfo=UTC)),
        ("@yearly", datetime(2031, 1, 1, 0, 0, tzinfo=UTC)),
        ("@annually", datetime(2031, 1, 1, 0, 0, tzinfo=UTC)),
        ("0 2 * * 1-5", datetime(2030, 1, 2, 2, 0, tzinfo=UTC)),
        ("0 0 1 JAN *", datetime(2031, 1, 1, 0, 0, tzinfo=UTC)),
        ("0 0 29 2 *", datetime(2032, 2, 29, 0, 0, tzinfo=UTC)),
    ],
)
def test_next_run_macros_and_expressions(schedule: str, expected: datetime) -> None:
    assert next_run(schedule, None, datetime(2030, 1, 1, 12, 30, tzinfo=UTC)) == expected


def test_next_run_in_a_time_zone_is_returned_in_utc() -> None:
    got = next_run("0 2 * * *", "Europe/Berlin", datetime(2030, 1, 1, 12, tzinfo=UTC))
    assert got == datetime(2030, 1, 2, 1, 0, tzinfo=UTC)  # 02:00 CET = 01:00 UTC
    assert got.utcoffset() == timedelta(0)
    tokyo = next_run("0 9 * * *", "Asia/Tokyo", datetime(2030, 1, 1, 12, tzinfo=UTC))
    assert tokyo == datetime(2030, 1, 2, 0, 0, tzinfo=UTC)  # 09:00 JST


def test_next_run_follows_daylight_saving_time() -> None:
    """09:00 New York is 14:00 UTC in winter and 13:00 UTC from the DST switch on."""
    ny = "America/New_York"
    # before the switch (Sun 2025-03-09): Sat 2025-03-08 09:00 EST
    assert next_run("0 9 * * *", ny, datetime(2025, 3, 8, 0, tzinfo=UTC)) == datetime(
        2025, 3, 8, 14, tzinfo=UTC
    )
    # the switch day itself: 09:00 EDT
    assert next_run("0 9 * * *", ny, datetime(2025, 3, 8, 15, tzinfo=UTC)) == datetime(
        2025, 3, 9, 13, tzinfo=UTC
    )
    # back in the autumn (Sun 2025-11-02): 09:00 EST again
    assert next_run("0 9 * * *", ny, datetime(2025, 11, 1, 14, tzinfo=UTC)) == datetime(
        2025, 11, 2, 14, tzinfo=UTC
    )
    # Europe/Berlin, 02:00 local: CET (UTC+1) in winter, CEST (UTC+2) in summer
    berlin = "Europe/Berlin"
    assert next_run("0 3 * * *", berlin, datetime(2025, 3, 29, 12, tzinfo=UTC)) == datetime(
        2025, 3, 30, 1, tzinfo=UTC
    )
    assert next_run("0 3 * * *", berlin, datetime(2025, 3, 30, 12, tzinfo=UTC)) == datetime(
        2025, 3, 31, 1, tzinfo=UTC
    )
    assert next_run("0 3 * * *", berlin, datetime(2025, 3, 28, 12, tzinfo=UTC)) == datetime(
        2025, 3, 29, 2, tzinfo=UTC
    )


def test_next_run_unknown_zone() -> None:
    with pytest.raises(InvalidSchedule, match=r"unknown time zone 'Mars/Olympus' in spec.timeZone"):
        next_run("* * * * *", "Mars/Olympus", CREATED)


def test_next_run_of_a_schedule_that_never_matches_is_invalid_schedule() -> None:
    """Feb 30 never comes: an InvalidSchedule (InvalidSpec), not a croniter crash."""
    with pytest.raises(InvalidSchedule, match="never matches"):
        next_run("0 0 30 2 *", None, CREATED)


# ------------------------------------------------------------------ check_schedule


@pytest.mark.parametrize(
    "schedule",
    [
        "* * * * *",
        "0 2 * * *",
        "*/15 * * * *",
        "0 0 * * SUN",
        "0 0 * * 7",
        "0 0 1 JAN *",
        "0 9-17 * * 1-5",
        "0 0 29 2 *",
        "@hourly",
        "@daily",
        "@midnight",
        "@weekly",
        "@monthly",
        "@yearly",
        "@annually",
    ],
)
def test_check_schedule_accepts(schedule: str) -> None:
    check_schedule(schedule, None)
    check_schedule(schedule, "Europe/Berlin")


@pytest.mark.parametrize(
    ("schedule", "match"),
    [
        ("61 * * * *", "not a valid cron expression"),
        ("* 24 * * *", "not a valid cron expression"),
        ("* * 32 * *", "not a valid cron expression"),
        ("* * * 13 *", "not a valid cron expression"),
        ("* * * * 8", "not a valid cron expression"),
        ("* * * * * *", "must have 5 fields"),  # 6 fields: croniter's seconds, not a CronJob's
        ("0 0 * * * 2030", "must have 5 fields"),
        ("* * *", "must have 5 fields"),
        ("* * * *", "must have 5 fields"),
        ("@reboot", "not a valid cron expression"),
        ("@every 5m", "must have 5 fields or be a macro"),
        ("foo", "not a valid cron expression"),
        ("0 0 30 2 *", "never matches"),
    ],
)
def test_check_schedule_rejects(schedule: str, match: str) -> None:
    with pytest.raises(InvalidSchedule, match=match) as info:
        check_schedule(schedule, None)
    assert "spec.schedule" in str(info.value)
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize("tz", ["Mars/Olympus", "Europe/Nowhere", "../etc/passwd", "utc"])
def test_check_schedule_rejects_unknown_zone(tz: str) -> None:
    with pytest.raises(InvalidSchedule, match=r"unknown time zone .* in spec.timeZone"):
        check_schedule("* * * * *", tz)


def test_zone_default_is_utc() -> None:
    assert zone(None).key == "UTC"
    assert zone("Europe/Berlin").key == "Europe/Berlin"
