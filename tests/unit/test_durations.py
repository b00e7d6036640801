"""Go-style duration strings: what the CRD's CEL rules accept, the operator parses alike."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from backgroundjobs.api.durations import DURATION_PATTERN, format_duration, parse_duration

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("90s", timedelta(seconds=90)),
        ("1h30m", timedelta(hours=1, minutes=30)),
        ("1h30m15s", timedelta(hours=1, minutes=30, seconds=15)),
        ("250ms", timedelta(milliseconds=250)),
        ("1.5h", timedelta(minutes=90)),
        ("0.5s", timedelta(milliseconds=500)),
        ("168h", timedelta(days=7)),
        ("0s", timedelta(0)),
        ("2m2m", timedelta(minutes=4)),  # Go adds repeated units up, like CEL duration()
        ("1s500ms", timedelta(milliseconds=1500)),
    ],
)
def test_parse_duration(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize(
    "text", ["", "abc", "5", "5d", "-5s", "+5s", "1h 30m", " 5s", "5s ", "5S", "1.s", ".5s", "5us"]
)
def test_parse_duration_rejects_with_a_clear_message(text: str) -> None:
    with pytest.raises(ValueError, match=r"invalid duration .*ms, s, m or h.*90s or 1h30m"):
        parse_duration(text)


def test_parse_duration_rejects_non_strings() -> None:
    with pytest.raises(ValueError, match="invalid duration"):
        parse_duration(90)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("delta", "text"),
    [
        (timedelta(0), "0s"),
        (timedelta(seconds=5400), "1h30m"),
        (timedelta(seconds=90), "1m30s"),
        (timedelta(milliseconds=1500), "1s500ms"),
        (timedelta(hours=168), "168h"),
        (timedelta(hours=1, seconds=1), "1h1s"),
        (timedelta(milliseconds=250), "250ms"),
    ],
)
def test_format_duration(delta: timedelta, text: str) -> None:
    assert format_duration(delta) == text


@pytest.mark.parametrize(
    "delta",
    [timedelta(seconds=s) for s in (1, 59, 60, 61, 3599, 3600, 3661, 86400, 90061)]
    + [timedelta(milliseconds=1), timedelta(milliseconds=12345)],
)
def test_format_then_parse_round_trips(delta: timedelta) -> None:
    text = format_duration(delta)
    assert re.fullmatch(DURATION_PATTERN, text), text
    assert parse_duration(text) == delta


def test_pattern_is_anchored() -> None:
    """The CRD uses the same pattern in CEL `matches`, which is unanchored unless ^...$."""
    assert DURATION_PATTERN.startswith("^")
    assert DURATION_PATTERN.endswith("$")
    assert re.search(DURATION_PATTERN, "x5s") is None
    assert re.search(DURATION_PATTERN, "5sx") is None
