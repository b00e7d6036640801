"""Cron helpers return the 5-field expressions the CRD accepts, and check their ranges."""

from __future__ import annotations

import re

import pytest

from backgroundjobs.api.models import CRON_PATTERN
from backgroundjobs.cron import Cron

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        (Cron.minutely(), "* * * * *"),
        (Cron.hourly(), "0 * * * *"),
        (Cron.hourly(15), "15 * * * *"),
        (Cron.daily(), "0 0 * * *"),
        (Cron.daily(2), "0 2 * * *"),
        (Cron.daily(23, 59), "59 23 * * *"),
        (Cron.weekly(), "0 0 * * 0"),
        (Cron.weekly(1, 9), "0 9 * * 1"),
        (Cron.weekly("monday", 9, 30), "30 9 * * 1"),
        (Cron.weekly("Sat"), "0 0 * * 6"),
        (Cron.weekly("SUNDAY"), "0 0 * * 0"),
        (Cron.monthly(), "0 0 1 * *"),
        (Cron.monthly(15, 3), "0 3 15 * *"),
        (Cron.monthly(31), "0 0 31 * *"),
        (Cron.yearly(), "0 0 1 1 *"),
        (Cron.yearly(12, 24, 18), "0 18 24 12 *"),
        (Cron.yearly("feb", 29), "0 0 29 2 *"),
        (Cron.yearly("March", 1, 0, 5), "5 0 1 3 *"),
    ],
)
def test_expressions(expression: str, expected: str) -> None:
    assert expression == expected
    assert re.match(CRON_PATTERN, expression)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: Cron.hourly(60), "minute must be from 0 to 59, got 60"),
        (lambda: Cron.hourly(-1), "minute must be from 0 to 59"),
        (lambda: Cron.daily(24), "hour must be from 0 to 23, got 24"),
        (lambda: Cron.daily(0, 60), "minute must be from 0 to 59"),
        (lambda: Cron.weekly(7), "day must be from 0 to 6, got 7"),
        (lambda: Cron.weekly("funday"), "day 'funday' is not a name like Sunday"),
        (lambda: Cron.weekly("mo"), "is not a name"),
        (lambda: Cron.monthly(0), "day must be from 1 to 31, got 0"),
        (lambda: Cron.monthly(32), "day must be from 1 to 31"),
        (lambda: Cron.yearly(13), "month must be from 1 to 12, got 13"),
        (lambda: Cron.yearly(2, 30), "day must be from 1 to 29, got 30"),
        (lambda: Cron.yearly("april", 31), "day must be from 1 to 30, got 31"),
        (lambda: Cron.yearly("smarch"), "month 'smarch' is not a name like January"),
    ],
)
def test_out_of_range_values_raise_value_error(call, message: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match=re.escape(message)):
        call()


@pytest.mark.parametrize("value", [1.5, "3", True, None])
def test_non_integers_raise_type_error(value: object) -> None:
    with pytest.raises(TypeError, match="must be an int"):
        Cron.daily(value)  # type: ignore[arg-type]
