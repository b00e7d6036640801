"""A cron schedule in words: ``0 2 * * *`` -> ``at 02:00 every day``.

Covers the 5-field syntax the CRD takes (numbers, ``*``, lists, ranges, steps, month and
day names) and the ``@`` macros. An expression it cannot read is returned as it is: the page
always shows the cron text next to the words.
"""

from __future__ import annotations

MACROS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
MONTHS = [
    "January", "February", "March", "April", "May", "June",
    "July", "August", "September", "October", "November", "December",
]  # fmt: skip
DAYS = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"]
MAX_LISTED_TIMES = 6


class _Unreadable(ValueError):
    pass


def _number(text: str, names: list[str], low: int, high: int) -> int:
    lowered = text.lower()
    for index, name in enumerate(names):
        if lowered == name[:3].lower():
            return index + low
    if not text.isdigit():
        raise _Unreadable(text)
    value = int(text)
    if names is DAYS and value == 7:
        value = 0  # both 0 and 7 are Sunday
    if not low <= value <= high:
        raise _Unreadable(text)
    return value


def _values(field: str, low: int, high: int, names: list[str]) -> list[int] | None:
    """The values a field selects, sorted (None for ``*``)."""
    if field in ("*", "?"):
        return None
    out: set[int] = set()
    for part in field.split(","):
        base, _, step_text = part.partition("/")
        step = int(step_text) if step_text.isdigit() and int(step_text) > 0 else None
        if step_text and step is None:
            raise _Unreadable(part)
        if base == "*":
            first, last = low, high
        elif "-" in base:
            a, b = base.split("-", 1)
            first, last = _number(a, names, low, high), _number(b, names, low, high)
        else:
            first = _number(base, names, low, high)
            last = high if step else first
        if names is DAYS and last < first and last == 0:
            last = 6  # 5-7 style ranges ending on Sunday
        if last < first:
            raise _Unreadable(part)
        out.update(range(first, last + 1, step or 1))
    return sorted(out)


def _join(items: list[str]) -> str:
    if len(items) <= 2:
        return " and ".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def _step_of(field: str) -> int | None:
    if field.startswith("*/") and field[2:].isdigit():
        return int(field[2:])
    return None


def _days_of_week(values: list[int]) -> str:
    if values == [1, 2, 3, 4, 5]:
        return "on weekdays"
    if values == [0, 6]:
        return "on weekends"
    if len(values) > 2 and values == list(range(values[0], values[-1] + 1)):
        return f"on {DAYS[values[0]]} to {DAYS[values[-1]]}"
    return "on " + _join([DAYS[v] for v in values])


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def _time_part(minute: str, hour: str) -> tuple[str, bool]:
    """The time of day in words, and whether it names fixed times (then "every day" reads
    well after it)."""
    minutes = _values(minute, 0, 59, [])
    hours = _values(hour, 0, 23, [])
    minute_step, hour_step = _step_of(minute), _step_of(hour)
    if minutes is not None and hours is not None and len(minutes) * len(hours) <= MAX_LISTED_TIMES:
        times = [f"{h:02d}:{m:02d}" for h in hours for m in minutes]
        return "at " + _join(times), True
    if minutes is None:
        every = "every minute"
    elif minute_step:
        every = f"every {minute_step} minutes"
    elif minutes == [0] and hours is None:
        return "every hour, on the hour", False
    elif hours is None:
        return f"every hour at minute {_join([str(m) for m in minutes])}", False
    else:
        every = f"at minute {_join([str(m) for m in minutes])}"
    if hours is None:
        return every, False
    if hour_step and len(hours) > 1:
        return f"{every} of every {_ordinal(hour_step)} hour", False
    if len(hours) != 2 and hours == list(range(hours[0], hours[-1] + 1)):
        return f"{every} from {hours[0]:02d}:00 to {hours[-1]:02d}:59", False
    return f"{every} past {_join([f'{h:02d}:00' for h in hours])}", False


def describe(expression: str) -> str:
    """The schedule in English words, or the expression itself when it cannot be read."""
    text = " ".join(expression.split())
    fields = MACROS.get(text.lower(), text).split(" ")
    if len(fields) != 5:
        return expression
    minute, hour, dom, month, dow = fields
    try:
        when, fixed = _time_part(minute, hour)
        days = _values(dom, 1, 31, [])
        months = _values(month, 1, 12, MONTHS)
        weekdays = _values(dow, 0, 6, DAYS)
    except (_Unreadable, ValueError):
        return expression
    parts = [when]
    if days is None and weekdays is None:
        if fixed:
            parts.append("every day")
    else:
        day_words = []
        if days is not None:
            day_words.append(f"on the {_join([_ordinal(d) for d in days])} of the month")
        if weekdays is not None:
            day_words.append(_days_of_week(weekdays))
        parts.append(" or ".join(day_words))
    if months is not None:
        parts.append("in " + _join([MONTHS[m - 1] for m in months]))
    return " ".join(p for p in parts if p)
