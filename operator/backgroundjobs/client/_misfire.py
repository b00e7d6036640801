"""The ``misfire=`` and ``max_catch_up=`` options of ``add_or_update_recurring``."""

from __future__ import annotations

from typing import Any, get_args

from backgroundjobs.api.misfire import MisfirePolicyName
from backgroundjobs.errors import InvalidArguments

POLICIES: tuple[str, ...] = get_args(MisfirePolicyName)


def misfire_spec(policy: str | None, max_catch_up: int | None) -> dict[str, Any]:
    """``{"misfire": {...}}`` for a recurring job's spec, or ``{}`` when neither is given
    (the CRD's default, Latest, then applies)."""
    if policy is None and max_catch_up is None:
        return {}
    if policy is not None and policy not in POLICIES:
        raise InvalidArguments(f"misfire must be one of {', '.join(POLICIES)}, not {policy!r}")
    if max_catch_up is not None and policy != "All":
        raise InvalidArguments("max_catch_up is only for misfire='All'")
    misfire: dict[str, Any] = {"policy": policy}
    if max_catch_up is not None:
        misfire["maxCatchUp"] = max_catch_up
    return {"misfire": misfire}
