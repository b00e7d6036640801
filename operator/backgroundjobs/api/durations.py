"""Go-style duration strings (``90s``, ``1h30m``, ``250ms``), as Kubernetes CEL parses them."""

from __future__ import annotations

import re
from datetime import timedelta

DURATION_PATTERN = r"^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$"
_PART = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ms|s|m|h)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
_FULL = re.compile(DURATION_PATTERN)


def parse_duration(text: str) -> timedelta:
    """Parse ``1h30m`` into a timedelta; ValueError names the accepted form."""
    if not isinstance(text, str) or not _FULL.match(text):
        raise ValueError(
            f"invalid duration {text!r}: use a number with a unit ms, s, m or h, e.g. 90s or 1h30m"
        )
    seconds = sum(float(n) * _UNIT_SECONDS[u] for n, u in _PART.findall(text))
    return timedelta(seconds=seconds)


def format_duration(delta: timedelta) -> str:
    """The shortest Go-style string for a timedelta (``5400s`` -> ``1h30m``)."""
    total_ms = round(delta.total_seconds() * 1000)
    if total_ms == 0:
        return "0s"
    out = []
    hours, rest = divmod(total_ms, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    seconds, ms = divmod(rest, 1000)
    if hours:
        out.append(f"{hours}h")
    if minutes:
        out.append(f"{minutes}m")
    if seconds:
        out.append(f"{seconds}s")
    if ms:
        out.append(f"{ms}ms")
    return "".join(out)
