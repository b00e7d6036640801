"""``Cron``: 5-field cron expressions for common schedules (Hangfire's ``Cron`` class).

``Cron.daily(2)`` is ``"0 2 * * *"``: every day at 02:00 in the recurring job's time zone.
Out-of-range values raise ``ValueError``, non-integers ``TypeError``.
"""

from __future__ import annotations

import calendar

_DAY_NAMES = {
    "sunday": 0,
    "monday": 1,
    "tuesday": 2,
    "wednesday": 3,
    "thursday": 4,
    "friday": 5,
    "saturday": 6,
}
_MONTH_NAMES = {name.lower(): number for number, name in enumerate(calendar.month_name) if name}


def _number(value: object, field: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{field} must be an int from {low} to {high}, got {value!r}")
    if not low <= value <= high:
        raise ValueError(f"{field} must be from {low} to {high}, got {value}")
    return value


def _named(value: int | str, field: str, names: dict[str, int], low: int, high: int) -> int:
    if isinstance(value, str):
        key = value.strip().lower()
        matches = {n for full, n in names.items() if full == key or full[:3] == key}
        if len(matches) != 1 or len(key) < 3:
            raise ValueError(f"{field} {value!r} is not a name like {next(iter(names)).title()}")
        return matches.pop()
    return _number(value, field, low, high)


class Cron:
    """Cron expressions for common schedules; every method returns a string."""

    @staticmethod
    def minutely() -> str:
        """Every minute: ``* * * * *``."""
        return "* * * * *"

    @staticmethod
    def hourly(minute: int = 0) -> str:
        """Every hour at ``minute`` (0-59): ``hourly(15)`` is ``15 * * * *``."""
        return f"{_number(minute, 'minute', 0, 59)} * * * *"

    @staticmethod
    def daily(hour: int = 0, minute: int = 0) -> str:
        """Every day at ``hour``:``minute``: ``daily(2)`` is ``0 2 * * *``."""
        return f"{_number(minute, 'minute', 0, 59)} {_number(hour, 'hour', 0, 23)} * * *"

    @staticmethod
    def weekly(day: int | str = 0, hour: int = 0, minute: int = 0) -> str:
        """Every week on ``day`` (0 = Sunday ... 6 = Saturday, or a name such as ``"monday"``
        or ``"Mon"``) at ``hour``:``minute``: ``weekly("monday", 9)`` is ``0 9 * * 1``."""
        weekday = _named(day, "day", _DAY_NAMES, 0, 6)
        return f"{_number(minute, 'minute', 0, 59)} {_number(hour, 'hour', 0, 23)} * * {weekday}"

    @staticmethod
    def monthly(day: int = 1, hour: int = 0, minute: int = 0) -> str:
        """Every month on ``day`` (1-31; months without that day are skipped) at
        ``hour``:``minute``: ``monthly(15, 3)`` is ``0 3 15 * *``."""
        return (
            f"{_number(minute, 'minute', 0, 59)} {_number(hour, 'hour', 0, 23)}"
            f" {_number(day, 'day', 1, 31)} * *"
        )

    @staticmethod
    def yearly(month: int | str = 1, day: int = 1, hour: int = 0, minute: int = 0) -> str:
        """Every year on ``month`` (1-12 or a name) / ``day`` at ``hour``:``minute``:
        ``yearly(12, 24, 18)`` is ``0 18 24 12 *``. February 29 runs in leap years only."""
        month_number = _named(month, "month", _MONTH_NAMES, 1, 12)
        last_day = 29 if month_number == 2 else calendar.monthrange(2001, month_number)[1]
        return (
            f"{_number(minute, 'minute', 0, 59)} {_number(hour, 'hour', 0, 23)}"
            f" {_number(day, 'day', 1, last_day)} {month_number} *"
        )


__all__ = ["Cron"]
