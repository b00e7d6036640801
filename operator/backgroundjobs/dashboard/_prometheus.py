"""The 24-hour graph from Prometheus, when one is configured: the operator's
``backgroundjobs_jobs_finished_total`` (API.md §5) per minute, by outcome."""

from __future__ import annotations

import math
from typing import Any

import aiohttp

from backgroundjobs.dashboard._series import MINUTE, WINDOW_MINUTES, Point

QUERY = "sum by (outcome) (increase(backgroundjobs_jobs_finished_total[1m]))"


class PrometheusError(Exception):
    """Prometheus did not answer the query."""


def points_from_matrix(answer: dict[str, Any], now: float) -> list[Point]:
    """The per-minute points of a ``query_range`` answer for ``QUERY`` (one per minute of
    the last 24 h, zeros where Prometheus has no sample)."""
    if answer.get("status") != "success":
        raise PrometheusError(str(answer.get("error") or answer.get("status") or answer))
    last = int(now // MINUTE) * MINUTE
    first = last - (WINDOW_MINUTES - 1) * MINUTE
    counts: dict[int, list[float]] = {}
    for series in (answer.get("data") or {}).get("result") or []:
        outcome = (series.get("metric") or {}).get("outcome")
        if outcome not in ("succeeded", "failed"):
            continue
        index = 0 if outcome == "succeeded" else 1
        for stamp, value in series.get("values") or []:
            minute = int(float(stamp) // MINUTE) * MINUTE
            number = float(value)
            if first <= minute <= last and math.isfinite(number):
                counts.setdefault(minute, [0.0, 0.0])[index] += number
    return [
        Point(m, round(counts.get(m, [0.0, 0.0])[0]), round(counts.get(m, [0.0, 0.0])[1]))
        for m in range(first, last + MINUTE, MINUTE)
    ]


async def fetch_day(session: aiohttp.ClientSession, base_url: str, now: float) -> list[Point]:
    """The last 24 h per minute from Prometheus at ``base_url``."""
    end = int(now // MINUTE) * MINUTE
    params = {
        "query": QUERY,
        "start": str(end - (WINDOW_MINUTES - 1) * MINUTE),
        "end": str(end),
        "step": str(MINUTE),
    }
    url = base_url.rstrip("/") + "/api/v1/query_range"
    try:
        async with session.get(
            url, params=params, timeout=aiohttp.ClientTimeout(total=20)
        ) as response:
            answer = await response.json(content_type=None)
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        raise PrometheusError(f"{url}: {exc}") from exc
    if not isinstance(answer, dict):
        raise PrometheusError(f"{url}: unexpected answer")
    return points_from_matrix(answer, now)
