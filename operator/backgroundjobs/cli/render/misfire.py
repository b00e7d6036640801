"""``describe`` lines of a Recurring job's misfire policy and what it did (status.misfire)."""

from __future__ import annotations

from typing import Any

from backgroundjobs.cli.render.text import cut

_INDENT = " " * 12


def misfire_lines(spec: dict[str, Any], status: dict[str, Any], width: int = 80) -> list[str]:
    """Nothing for a job with neither spec.misfire nor status.misfire."""
    policy = spec.get("misfire") if isinstance(spec.get("misfire"), dict) else None
    done = status.get("misfire") if isinstance(status.get("misfire"), dict) else None
    if policy is None and done is None:
        return []
    name = str((policy or {}).get("policy") or "Latest")
    head = name
    if name == "All":
        head += f" (at most {(policy or {}).get('maxCatchUp', 10)} catch-ups waiting)"
    done = done or {}
    head += f"; {done.get('caughtUp', 0)} caught up, {done.get('skipped', 0)} skipped"
    lines = [cut(f"{'Misfire:':<12}{head}", width)]
    for label, key in (
        ("pending", "pending"),
        ("caught up", "lastCaughtUp"),
        ("skipped", "lastSkipped"),
    ):
        times = done.get(key)
        if isinstance(times, list) and times:
            text = ", ".join(str(t) for t in times)
            lines.append(cut(f"{_INDENT}{label}: {text}", width))
    return lines
