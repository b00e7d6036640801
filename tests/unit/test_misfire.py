"""Misfire policy of Recurring jobs: the arithmetic (which times were missed, DST-correct,
never a future time, never more than maxCatchUp) and the decisions made on it."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from backgroundjobs.api.models import BackgroundJobSpec, BackgroundJobStatus
from backgroundjobs.api.times import format_time
from backgroundjobs.controller import builders
from backgroundjobs.controller import misfire as arithmetic
from backgroundjobs.controller.decisions import Observed, ObservedJob, Plan, decide
from backgroundjobs.controller.schedule import next_run
from backgroundjobs.controller.settings import Settings

pytestmark = pytest.mark.unit

Body = dict[str, Any]
T0 = datetime(2030, 1, 1, 12, 0, 0, tzinfo=UTC)
UID = "11111111-0000-4000-8000-000000000001"
SETTINGS = Settings(default_image="example.com/handlers:1", retention=timedelta(hours=168))
EVERY_MINUTE = "* * * * *"


# ------------------------------------------------------------------ arithmetic


def test_scan_finds_each_missed_minute_once_oldest_first() -> None:
    found = arithmetic.scan(EVERY_MINUTE, None, T0, T0 + timedelta(minutes=5, seconds=30), (), None)
    # 12:01 .. 12:04 can no longer start (their next time has passed by 10s); 12:05 still can
    assert found.missed == [T0 + timedelta(minutes=m) for m in (1, 2, 3, 4)]
    assert found.checked_until == T0 + timedelta(minutes=4)
    assert not found.more


def test_scan_leaves_out_the_times_that_ran() -> None:
    ran = {arithmetic.minute_of(T0 + timedelta(minutes=2))}
    found = arithmetic.scan(
        EVERY_MINUTE, None, T0, T0 + timedelta(minutes=5, seconds=30), ran, None
    )
    assert found.missed == [T0 + timedelta(minutes=m) for m in (1, 3, 4)]


def test_scan_with_a_starting_deadline_judges_after_the_deadline() -> None:
    now = T0 + timedelta(minutes=1, seconds=45)
    with_deadline = arithmetic.scan(EVERY_MINUTE, None, T0, now, (), timedelta(seconds=30))
    assert with_deadline.missed == [T0 + timedelta(minutes=1)]  # 12:01 + 30s + 10s margin
    assert arithmetic.scan(EVERY_MINUTE, None, T0, now, (), None).missed == []


def test_scan_stops_at_its_limit_and_says_so() -> None:
    found = arithmetic.scan(EVERY_MINUTE, None, T0, T0 + timedelta(days=1), (), None, limit=7)
    assert len(found.missed) == 7 and found.more
    again = arithmetic.scan(
        EVERY_MINUTE, None, found.checked_until or T0, T0 + timedelta(days=1), (), None, limit=7
    )
    assert again.missed[0] == found.missed[-1] + timedelta(minutes=1)


def test_catch_up_times_follow_daylight_saving_time() -> None:
    """09:30 in Berlin is 08:30 UTC in winter and 07:30 UTC in summer (spring 2030: 31 March)."""
    after = datetime(2030, 3, 29, 12, 0, tzinfo=UTC)
    now = datetime(2030, 4, 2, 12, 0, tzinfo=UTC)
    found = arithmetic.scan("30 9 * * *", "Europe/Berlin", after, now, (), None)
    berlin = ZoneInfo("Europe/Berlin")
    assert [t.astimezone(berlin).strftime("%d %H:%M") for t in found.missed] == [
        "30 09:30",
        "31 09:30",
        "01 09:30",
    ]
    assert [t.hour for t in found.missed] == [8, 7, 7]


def test_a_time_in_the_skipped_hour_is_one_time_not_two() -> None:
    """02:30 does not exist on the spring-forward day; it is never counted twice."""
    after = datetime(2030, 3, 30, 0, 0, tzinfo=UTC)
    now = datetime(2030, 4, 2, 0, 0, tzinfo=UTC)
    found = arithmetic.scan("30 2 * * *", "Europe/Berlin", after, now, (), None)
    assert len({arithmetic.minute_of(t) for t in found.missed}) == len(found.missed)
    assert found.missed == sorted(found.missed)


def test_split_all_catches_up_the_oldest_up_to_max() -> None:
    times = [T0 + timedelta(minutes=m) for m in range(5)]
    parts = arithmetic.split("All", times, outstanding=1, max_catch_up=3)
    assert parts.catch_up == times[:2] and parts.skipped == times[2:]
    assert arithmetic.split("Skip", times, 0, 3).skipped == times
    assert arithmetic.split("Latest", times, 0, 3).catch_up == []


def test_skip_gives_the_cronjob_a_deadline_only_when_none_is_set() -> None:
    assert arithmetic.skip_deadline_seconds("Skip", None) == 30
    assert arithmetic.skip_deadline_seconds("Skip", "5m") is None
    assert arithmetic.skip_deadline_seconds("All", None) is None
    assert arithmetic.grace("90s", None) == timedelta(seconds=90)
    assert arithmetic.grace(None, 30) == timedelta(seconds=30)
    assert arithmetic.grace(None, None) is None


schedules = st.sampled_from(
    ["* * * * *", "*/7 * * * *", "30 2 * * *", "0 */3 * * 1-5", "15 1,2,3 * * *", "@hourly"]
)
zones = st.sampled_from([None, "UTC", "Europe/Berlin", "America/New_York", "Australia/Lord_Howe"])
instants = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2090, 1, 1), timezones=st.just(UTC)
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    schedules,
    zones,
    instants,
    st.integers(0, 3 * 24 * 60),
    st.none() | st.integers(1, 7200),
    st.sets(st.integers(0, 40)),
    st.integers(1, 50),
)
def test_scan_properties(
    schedule: str,
    zone: str | None,
    after: datetime,
    minutes: int,
    deadline: int | None,
    ran_offsets: set[int],
    limit: int,
) -> None:
    now = after + timedelta(minutes=minutes)
    grace = timedelta(seconds=deadline) if deadline else None
    first = next_run(schedule, zone, after)
    ran = {arithmetic.minute_of(first) + k for k in ran_offsets}
    found = arithmetic.scan(schedule, zone, after, now, ran, grace, limit=limit)
    assert len(found.missed) <= limit
    assert found.missed == sorted(set(found.missed))  # oldest first, each once
    for at in found.missed:
        assert after < at <= now  # never a time in the future
        assert arithmetic.last_chance(schedule, zone, at, grace) + arithmetic.DEFAULT_MARGIN <= now
        assert arithmetic.minute_of(at) not in ran
        assert next_run(schedule, zone, at - timedelta(microseconds=1)) == at  # a real time
    if found.checked_until is not None:
        assert found.missed == [] or found.missed[-1] <= found.checked_until <= now


@given(
    st.sampled_from(["All", "Skip", "Latest"]),
    st.integers(0, 30),
    st.integers(0, 120),
    st.integers(1, 100),
)
def test_split_never_more_than_max_catch_up(
    policy: str, count: int, outstanding: int, max_catch_up: int
) -> None:
    times = [T0 + timedelta(minutes=m) for m in range(count)]
    parts = arithmetic.split(policy, times, outstanding, max_catch_up)
    assert parts.catch_up + parts.skipped == times
    assert outstanding + len(parts.catch_up) <= max(max_catch_up, outstanding)


# ------------------------------------------------------------------ decisions


def recurring(status: Body | None = None, **spec: Any) -> Body:
    body: Body = {
        "apiVersion": "backgroundjobs.dev/v1alpha1",
        "kind": "BackgroundJob",
        "metadata": {
            "name": "nightly",
            "namespace": "shop",
            "uid": UID,
            "generation": 1,
            "creationTimestamp": format_time(T0),
        },
        "spec": {"handler": "mail.send", "schedule": EVERY_MINUTE, **spec},
    }
    if status is not None:
        body["status"] = status
    return body


def cronjob_of(body: Body, last: datetime | None = None, suspend: bool = False) -> Body:
    plan = decide(Observed(bgj=copy.deepcopy(body), now=T0), SETTINGS)
    cj = copy.deepcopy(plan.create[0])
    assert cj["kind"] == "CronJob"
    cj["metadata"]["creationTimestamp"] = format_time(T0)
    cj["metadata"]["uid"] = "cron-uid"
    cj["spec"]["suspend"] = suspend
    if last is not None:
        cj["status"] = {"lastScheduleTime": format_time(last)}
    return cj


def decide_at(body: Body, now: datetime, jobs: list[ObservedJob] = (), **kw: Any) -> Plan:  # type: ignore[assignment]
    plan = decide(
        Observed(bgj=copy.deepcopy(body), now=now, jobs={j.name: j for j in jobs}, **kw), SETTINGS
    )
    BackgroundJobStatus.model_validate(plan.status)
    return plan


def applied(body: Body, plan: Plan) -> Body:
    out = copy.deepcopy(body)
    out["status"] = copy.deepcopy(plan.status)
    return out


def scheduled_job(minutes: int, owner: str = "cron-uid", finished: bool = True) -> ObservedJob:
    at = T0 + timedelta(minutes=minutes)
    return ObservedJob(
        name=f"nightly-{arithmetic.minute_of(at)}",
        uid=f"uid-{minutes}",
        owner_uid=owner,
        created=at + timedelta(seconds=1),
        complete=finished,
        completion_time=at + timedelta(seconds=5) if finished else None,
        scheduled_time=at,
    )


def catch_ups(plan: Plan) -> list[str]:
    return [o["metadata"]["name"] for o in plan.create if o["kind"] == "Job"]


OUTAGE_END = T0 + timedelta(minutes=4, seconds=20)  # 12:01 .. 12:03 judged missed; 12:04 not yet


def test_latest_records_the_older_missed_times_as_skipped_and_creates_nothing() -> None:
    body = recurring()
    plan = decide_at(body, OUTAGE_END, cronjob=cronjob_of(body, last=T0))
    assert catch_ups(plan) == []
    misfire = plan.status["misfire"]
    assert misfire["skipped"] == 3
    assert misfire["lastSkipped"] == [format_time(T0 + timedelta(minutes=m)) for m in (1, 2, 3)]
    assert [(r, "3 missed" in m) for _, r, m in plan.events] == [("MisfireSkipped", True)]
    assert [(m.labels, m.value) for m in plan.metrics if m.name == "misfires"] == [
        ({"queue": "default", "action": "skipped"}, 3)
    ]
    again = decide_at(applied(body, plan), OUTAGE_END, cronjob=cronjob_of(body, last=T0))
    assert again.status["misfire"] == misfire and again.events == []  # recorded once


def test_all_creates_one_catch_up_per_missed_time_named_like_the_cronjob_controller() -> None:
    body = recurring(misfire={"policy": "All"}, concurrencyPolicy="Allow")
    cj = cronjob_of(body, last=T0)
    plan = decide_at(body, OUTAGE_END, cronjob=cj)
    expected = [f"nightly-{arithmetic.minute_of(T0 + timedelta(minutes=m))}" for m in (1, 2, 3)]
    assert catch_ups(plan) == expected
    job = plan.create[0]
    assert job["metadata"]["ownerReferences"][0]["uid"] == UID
    assert job["metadata"]["labels"]["backgroundjobs.dev/run"] == "catch-up"
    assert job["metadata"]["annotations"] == {
        "batch.kubernetes.io/cronjob-scheduled-timestamp": format_time(T0 + timedelta(minutes=1)),
        "backgroundjobs.dev/generation": "1",  # for status.runHistory
    }
    assert plan.status["misfire"]["pending"] == [
        format_time(T0 + timedelta(minutes=m)) for m in (1, 2, 3)
    ]
    assert "MisfireCatchUp" in [r for _, r, _ in plan.events]
    # restarted before its status was written: the same Jobs again (AlreadyExists is fine)
    assert catch_ups(decide_at(body, OUTAGE_END, cronjob=cj)) == expected
    # restarted after: the pending ones again, nothing new decided
    after = decide_at(applied(body, plan), OUTAGE_END + timedelta(seconds=5), cronjob=cj)
    assert catch_ups(after) == expected and after.events == []
    # seen: counted caught up once, never created again
    seen = [scheduled_job(m, owner=UID, finished=False) for m in (1, 2, 3)]
    done = decide_at(applied(body, plan), OUTAGE_END + timedelta(seconds=6), seen, cronjob=cj)
    assert catch_ups(done) == []
    assert done.status["misfire"]["caughtUp"] == 3 and not done.status["misfire"].get("pending")
    later = decide_at(applied(body, done), OUTAGE_END + timedelta(seconds=7), seen, cronjob=cj)
    assert later.status["misfire"] == done.status["misfire"]


def test_all_under_forbid_runs_catch_ups_one_at_a_time() -> None:
    body = recurring(misfire={"policy": "All"})
    cj = cronjob_of(body, last=T0)
    plan = decide_at(body, OUTAGE_END, cronjob=cj)
    assert catch_ups(plan) == [f"nightly-{arithmetic.minute_of(T0 + timedelta(minutes=1))}"]
    running = [scheduled_job(1, owner=UID, finished=False)]
    nxt = decide_at(applied(body, plan), OUTAGE_END + timedelta(seconds=5), running, cronjob=cj)
    assert catch_ups(nxt) == []  # the first still runs
    finished = [scheduled_job(1, owner=UID, finished=True)]
    last = decide_at(applied(body, nxt), OUTAGE_END + timedelta(seconds=9), finished, cronjob=cj)
    assert catch_ups(last) == [f"nightly-{arithmetic.minute_of(T0 + timedelta(minutes=2))}"]


def test_all_catches_up_at_most_max_catch_up_and_skips_the_rest() -> None:
    body = recurring(misfire={"policy": "All", "maxCatchUp": 2}, concurrencyPolicy="Allow")
    plan = decide_at(body, OUTAGE_END, cronjob=cronjob_of(body, last=T0))
    assert len(catch_ups(plan)) == 2
    assert plan.status["misfire"]["skipped"] == 1
    assert plan.status["misfire"]["lastSkipped"] == [format_time(T0 + timedelta(minutes=3))]


def test_the_times_that_ran_are_not_missed() -> None:
    body = recurring(misfire={"policy": "All"})
    jobs = [scheduled_job(m) for m in (1, 2, 3)]
    plan = decide_at(
        body, OUTAGE_END, jobs, cronjob=cronjob_of(body, last=T0 + timedelta(minutes=3))
    )
    assert catch_ups(plan) == [] and "misfire" not in plan.status


def test_never_a_catch_up_before_its_last_chance() -> None:
    body = recurring(misfire={"policy": "All"})
    plan = decide_at(body, T0 + timedelta(minutes=2, seconds=9), cronjob=cronjob_of(body, last=T0))
    assert catch_ups(plan) == [] and "misfire" not in plan.status
    assert plan.requeue_at is not None
    assert plan.requeue_at <= T0 + timedelta(minutes=2, seconds=10)  # comes back to judge 12:01


def test_skip_sets_the_cronjob_deadline_and_skips() -> None:
    body = recurring(misfire={"policy": "Skip"})
    cj = cronjob_of(body, last=T0)
    assert cj["spec"]["startingDeadlineSeconds"] == 30
    plan = decide_at(body, T0 + timedelta(minutes=1, seconds=41), cronjob=cj)
    assert plan.status["misfire"]["skipped"] == 1 and catch_ups(plan) == []


def test_a_suspended_job_misses_nothing() -> None:
    body = recurring(misfire={"policy": "All"}, suspend=True)
    plan = decide_at(body, OUTAGE_END, cronjob=cronjob_of(body, last=T0, suspend=True))
    assert catch_ups(plan) == []
    assert plan.status["misfire"] == {"checkedUntil": format_time(T0 + timedelta(minutes=4))}
    resumed = recurring(status=plan.status, misfire={"policy": "All"})
    later = decide_at(
        resumed, OUTAGE_END + timedelta(seconds=30), cronjob=cronjob_of(resumed, last=T0)
    )
    assert catch_ups(later) == [] and later.status["misfire"].get("skipped", 0) == 0


def test_a_long_outage_is_accounted_in_bounded_steps() -> None:
    body = recurring(misfire={"policy": "Skip"})
    now = T0 + timedelta(days=2)
    cj = cronjob_of(body, last=T0)
    plan = decide_at(body, now, cronjob=cj)
    assert plan.status["misfire"]["skipped"] == arithmetic.MAX_SCAN
    assert plan.requeue_at == now  # and at once again for the rest
    assert len(plan.events) == 1 and f"and {arithmetic.MAX_SCAN - 5} more" in plan.events[0][2]
    total = plan.status["misfire"]["skipped"]
    for _ in range(20):
        plan = decide_at(applied(body, plan), now, cronjob=cj)
        if plan.status["misfire"]["skipped"] == total:
            break
        total = plan.status["misfire"]["skipped"]
    assert total == 2 * 24 * 60 - 1  # every minute but the last, which may still start


def test_misfire_out_of_range_or_unknown_is_refused_by_the_model() -> None:
    with pytest.raises(ValidationError, match=r"max_catch_up|maxCatchUp"):
        BackgroundJobSpec.model_validate(
            {"handler": "h", "schedule": EVERY_MINUTE, "misfire": {"maxCatchUp": 101}}
        )
    with pytest.raises(ValidationError):
        BackgroundJobSpec.model_validate(
            {"handler": "h", "schedule": EVERY_MINUTE, "misfire": {"policy": "Strict"}}
        )


def test_cronjob_name_is_the_job_name_prefix() -> None:
    assert builders.cronjob_name("nightly") == "nightly"


def test_pending_catch_ups_are_skipped_when_the_policy_is_no_longer_all() -> None:
    body = recurring(misfire={"policy": "All"}, concurrencyPolicy="Allow")
    cj = cronjob_of(body, last=T0)
    plan = decide_at(body, OUTAGE_END, cronjob=cj)
    changed = applied(body, plan)
    changed["spec"]["misfire"] = {"policy": "Skip"}
    replaced = decide_at(changed, OUTAGE_END + timedelta(seconds=1), cronjob=cj)
    assert replaced.replace_cronjob is not None  # Skip's deadline: times from now on count
    after = decide_at(
        applied(changed, replaced), OUTAGE_END + timedelta(seconds=2), cronjob=cronjob_of(changed)
    )
    assert catch_ups(after) == []
    assert after.status["misfire"]["skipped"] == 3 and not after.status["misfire"]["pending"]
    assert [(m.labels["action"], m.value) for m in after.metrics if m.name == "misfires"] == [
        ("skipped", 3)
    ]


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(schedules, zones, instants)
def test_walked_times_are_next_run_step_by_step(
    schedule: str, zone: str | None, after: datetime
) -> None:
    """The scan's one croniter walked on gives exactly the times next_run gives one by one,
    across DST changes too."""
    walked = arithmetic.scheduled_after(schedule, zone, after)
    at = after
    for _ in range(30):
        at = next_run(schedule, zone, at)
        assert next(walked) == at
