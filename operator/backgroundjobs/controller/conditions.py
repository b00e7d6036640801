"""metav1.Condition-style helpers on the status model's conditions (pure)."""

from __future__ import annotations

from typing import Literal

from backgroundjobs.api.constants import ConditionType
from backgroundjobs.api.models import Condition


def get(conditions: list[Condition], ctype: ConditionType) -> Condition | None:
    """The condition of type ``ctype``, if present."""
    return next((cond for cond in conditions if cond.type == ctype), None)


def set_condition(
    conditions: list[Condition],
    ctype: ConditionType,
    status: bool,
    reason: str,
    message: str,
    now: str,
    generation: int | None,
) -> list[Condition]:
    """Return conditions with ``ctype`` set; lastTransitionTime moves only when status changes.

    A new condition goes last; one already present keeps its place."""
    status_text: Literal["True", "False"] = "True" if status else "False"
    old = get(conditions, ctype)
    new = Condition(
        type=ctype,
        status=status_text,
        reason=reason,
        message=message,
        last_transition_time=(
            old.last_transition_time if old is not None and old.status == status_text else now
        ),
        observed_generation=generation,
    )
    if old is None:
        return [*conditions, new]
    return [new if cond is old else cond for cond in conditions]
