"""The backoff arithmetic of a retry policy (decisions.retry): growth, the cap, jitter within
bounds, restart-safe (deterministic) due times, never before the failure plus the shortest
delay allowed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from backgroundjobs.controller.decisions.retry import Backoff

pytestmark = pytest.mark.unit

T0 = datetime(2030, 1, 1, tzinfo=UTC)
S = timedelta(seconds=1)


def test_delays_grow_by_the_factor_up_to_max() -> None:
    backoff = Backoff.parse("10s", factor=3, max="5m")
    delays = [backoff.base_delay(n) for n in range(1, 7)]
    assert delays == [10 * S, 30 * S, 90 * S, 270 * S, 300 * S, 300 * S]


def test_factor_one_is_a_constant_delay_and_no_jitter_is_exact() -> None:
    backoff = Backoff.parse("45s", factor=1, max="1h")
    assert {backoff.delay(n, "uid") for n in range(1, 50)} == {45 * S}


def test_huge_attempt_numbers_stay_at_max() -> None:
    backoff = Backoff.parse("1s", factor=10, max="876000h")
    assert backoff.base_delay(10_000) == timedelta(hours=876000)


@pytest.mark.parametrize(
    ("kwargs", "says"),
    [
        ({"initial": "0s"}, "initial"),
        ({"initial": "10s", "factor": 0.5}, "factor"),
        ({"initial": "10s", "factor": float("nan")}, "factor"),
        ({"initial": "1h", "max": "1m"}, "max"),
        ({"initial": "10s", "jitter": 1.5}, "jitter"),
    ],
)
def test_bad_policies_are_refused(kwargs: dict[str, object], says: str) -> None:
    with pytest.raises(ValueError, match=says):
        Backoff.parse(**kwargs)  # type: ignore[arg-type]


policies = st.builds(
    Backoff,
    initial=st.timedeltas(min_value=timedelta(milliseconds=1), max_value=timedelta(hours=1)),
    factor=st.floats(min_value=1, max_value=100),
    max=st.just(timedelta(hours=2)),
    jitter=st.floats(min_value=0, max_value=1),
)


@given(policy=policies, attempt=st.integers(1, 101), key=st.text(max_size=40))
def test_jitter_stays_within_its_bounds_and_never_above_max(
    policy: Backoff, attempt: int, key: str
) -> None:
    base = policy.base_delay(attempt)
    delay = policy.delay(attempt, key)
    assert base * (1 - policy.jitter) - timedelta(microseconds=1) <= delay <= base <= policy.max
    assert delay >= timedelta(0)


@given(policy=policies, attempt=st.integers(1, 101), key=st.text(max_size=40))
def test_the_due_time_is_never_early_and_the_same_after_a_restart(
    policy: Backoff, attempt: int, key: str
) -> None:
    due = policy.next_due(T0, attempt, key)
    assert due >= T0 + policy.base_delay(attempt) * (1 - policy.jitter) - timedelta(microseconds=1)
    assert due > T0 or policy.base_delay(attempt) * (1 - policy.jitter) < timedelta(microseconds=1)
    assert (
        Backoff(policy.initial, policy.factor, policy.max, policy.jitter).next_due(T0, attempt, key)
        == due
    )  # a fresh process (a restarted operator) computes the same instant


@given(policy=policies, key=st.text(max_size=40))
def test_base_delays_never_shrink(policy: Backoff, key: str) -> None:
    delays = [policy.base_delay(n) for n in range(1, 40)]
    assert delays == sorted(delays)


def test_jitter_spreads_jobs_that_failed_together() -> None:
    backoff = Backoff.parse("60s", factor=2, max="10m", jitter=0.5)
    dues = {backoff.next_due(T0, 1, f"uid-{i}") for i in range(100)}
    assert len(dues) > 90  # not one instant for all
    assert min(dues) >= T0 + 30 * S and max(dues) <= T0 + 60 * S
