"""Text for people: ages and due times like kubectl's, clock times, cut and one-line text."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

ELLIPSIS = "…"


def human_duration(delta: timedelta) -> str:
    """A short age like kubectl's: ``45s``, ``3m20s``, ``2h``, ``5d``, ``2y30d``."""
    seconds = int(delta.total_seconds())
    if seconds < -1:
        return "<invalid>"
    if seconds < 0:
        return "0s"
    if seconds < 120:
        return f"{seconds}s"
    minutes = seconds // 60
    if minutes < 10:
        rest = seconds % 60
        return f"{minutes}m{rest}s" if rest else f"{minutes}m"
    if minutes < 180:
        return f"{minutes}m"
    hours = minutes // 60
    if hours < 8:
        rest = minutes % 60
        return f"{hours}h{rest}m" if rest else f"{hours}h"
    if hours < 48:
        return f"{hours}h"
    days = hours // 24
    if hours < 24 * 8:
        rest = hours % 24
        return f"{days}d{rest}h" if rest else f"{days}d"
    if days < 365 * 2:
        return f"{days}d"
    if days < 365 * 8:
        rest = days % 365
        return f"{days // 365}y{rest}d" if rest else f"{days // 365}y"
    return f"{days // 365}y"


def age(moment: datetime | None, now: datetime) -> str:
    """How long ago ``moment`` was (empty when unknown)."""
    return human_duration(now - moment) if moment else ""


def due(moment: datetime | None, now: datetime) -> str:
    """A due time relative to now: ``in 5m``, or ``5m ago`` once passed."""
    if moment is None:
        return ""
    if moment > now:
        return f"in {human_duration(moment - now)}"
    return f"{human_duration(now - moment)} ago"


def clock(moment: datetime) -> str:
    """``2026-11-28 16:30:29`` in UTC."""
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def cut(text: str, width: int) -> str:
    """``text`` cut to ``width`` characters, the last one an ellipsis when cut."""
    if len(text) <= width:
        return text
    return text[: max(width - 1, 0)] + ELLIPSIS if width > 0 else ""


def one_line(text: str) -> str:
    """Text on one line (newlines and tabs become spaces)."""
    return " ".join(text.split())
