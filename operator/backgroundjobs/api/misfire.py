"""The misfire policy of a Recurring job and what it records (spec.misfire, status.misfire)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

MisfirePolicyName = Literal["Latest", "Skip", "All"]
DEFAULT_MAX_CATCH_UP = 10
MAX_MAX_CATCH_UP = 100
MAX_TIMES_KEPT = 5


class _Model(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")


class Misfire(_Model):
    """What happens to the scheduled times a Recurring job missed (controller-manager down,
    cluster down, a run still active under Forbid)."""

    policy: MisfirePolicyName = Field(
        "Latest",
        description=(
            "Latest (default): after an outage one run, for the most recent missed time (the"
            " CronJob controller's behaviour); the older missed times are recorded as skipped."
            " Skip: no missed time runs; a run not started within startingDeadline (default"
            " 30s) is skipped and recorded. All: every missed time runs once, oldest first, at"
            " most maxCatchUp outstanding; the rest are recorded as skipped."
        ),
    )
    max_catch_up: int = Field(
        DEFAULT_MAX_CATCH_UP,
        ge=1,
        le=MAX_MAX_CATCH_UP,
        description=(
            f"policy All: at most this many catch-up runs waiting or running at once (1-"
            f"{MAX_MAX_CATCH_UP}, default {DEFAULT_MAX_CATCH_UP}); further missed times are"
            " skipped."
        ),
    )


class MisfireStatus(_Model):
    """What the misfire policy did: totals and the last few scheduled times of each kind."""

    checked_until: str | None = Field(
        None,
        description="Every scheduled time up to this one has been accounted for.",
        json_schema_extra={"format": "date-time"},
    )
    skipped: int = Field(0, ge=0, description="Missed scheduled times not run.")
    caught_up: int = Field(0, ge=0, description="Missed scheduled times run late (policy All).")
    pending: list[str] = Field(
        default_factory=list,
        max_length=MAX_MAX_CATCH_UP,
        description="policy All: missed times whose catch-up Job is not created yet, oldest first.",
    )
    last_skipped: list[str] = Field(
        default_factory=list,
        max_length=MAX_TIMES_KEPT,
        description=f"The last {MAX_TIMES_KEPT} skipped scheduled times, oldest first.",
    )
    last_caught_up: list[str] = Field(
        default_factory=list,
        max_length=MAX_TIMES_KEPT,
        description=f"The last {MAX_TIMES_KEPT} caught-up scheduled times, oldest first.",
    )
