"""Retention per outcome: how long a finished one-off job is kept (pure).

``ttlAfterSucceeded`` for a success, ``ttlAfterFailed`` for a failure or a cancel, either
winning over ``ttlAfterFinished``, which wins over the operator's ``BACKGROUNDJOBS_RETENTION``.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from backgroundjobs.api.constants import Phase
from backgroundjobs.api.durations import parse_duration


def keep_for(spec: dict[str, Any], phase: Phase | str | None, default: timedelta) -> timedelta:
    """How long a job that ended in ``phase`` is kept, from its spec (raw: a spec the model
    refused still has a retention); a duration that does not parse counts as absent."""
    by_outcome = "ttlAfterSucceeded" if phase == Phase.SUCCEEDED else "ttlAfterFailed"
    for field in (by_outcome, "ttlAfterFinished"):
        text = spec.get(field)
        if isinstance(text, str) and text:
            try:
                return parse_duration(text)
            except ValueError:
                continue
    return default
