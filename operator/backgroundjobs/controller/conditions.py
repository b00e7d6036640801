"""metav1.Condition-style helpers on plain status dicts (pure)."""

from __future__ import annotations

from typing import Any

Condition = dict[str, Any]


def get(conditions: list[Condition], ctype: str) -> Condition | None:
    for cond in conditions:
        if cond.get("type") == ctype:
            return cond
    return None


def is_true(conditions: list[Condition], ctype: str) -> bool:
    cond = get(conditions, ctype)
    return cond is not None and cond.get("status") == "True"


def set_condition(
    conditions: list[Condition],
    ctype: str,
    status: bool | str,
    reason: str,
    message: str,
    now: str,
    generation: int | None,
) -> list[Condition]:
    """Return conditions with ``ctype`` set; lastTransitionTime moves only when status changes."""
    status_text = status if isinstance(status, str) else ("True" if status else "False")
    out: list[Condition] = []
    found = False
    for cond in conditions:
        if cond.get("type") != ctype:
            out.append(cond)
            continue
        found = True
        changed = cond.get("status") != status_text
        new = {
            "type": ctype,
            "status": status_text,
            "reason": reason,
            "message": message,
            "lastTransitionTime": now if changed else cond.get("lastTransitionTime", now),
        }
        if generation is not None:
            new["observedGeneration"] = generation
        out.append(new)
    if not found:
        new = {
            "type": ctype,
            "status": status_text,
            "reason": reason,
            "message": message,
            "lastTransitionTime": now,
        }
        if generation is not None:
            new["observedGeneration"] = generation
        out.append(new)
    return out


def clear(conditions: list[Condition], *ctypes: str) -> list[Condition]:
    """Return conditions without the given types."""
    return [c for c in conditions if c.get("type") not in ctypes]
