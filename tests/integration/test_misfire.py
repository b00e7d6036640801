"""Misfire policy of Recurring jobs on the real control plane: the kube-controller-manager
(home of the CronJob and Job controllers) is frozen (SIGSTOP) across three scheduled minutes
and resumed; the operator is SIGKILLed while it catches up. Afterwards each policy shows its
runs: All exactly one per missed minute, Skip none of them, Latest only the most recent.

One outage serves all three jobs, so the test takes about five minutes (three minutes down,
and the wait for a minute boundary before and after). Every wait is on an outcome.
"""

from __future__ import annotations

import json
import os
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from kubernetes.client.rest import ApiException
from tests.integration.bgj import RUN_FOR, Jobs, manifest, wait_for
from tests.reliability.controlplane import ControlPlane

from backgroundjobs.api import constants as c
from backgroundjobs.api.times import format_time, parse_time

pytestmark = pytest.mark.integration

CONTROLLER_MANAGER = "kube-controller-manager"
POLICIES = {"catch-all": "All", "skip": "Skip", "latest": "Latest"}


def minute_floor(at: datetime) -> datetime:
    return at.replace(second=0, microsecond=0)


def sleep_until(at: datetime) -> None:
    time.sleep(max(0.0, (at - datetime.now(UTC)).total_seconds()))


def scheduled_times(bgjobs: Jobs, name: str) -> list[datetime]:
    """The scheduled time of each of the job's Jobs (a trigger has none), sorted: a time
    twice would be a doubled run."""
    out = []
    for job in bgjobs.jobs(name):
        stamp = (job.metadata.annotations or {}).get(c.ANNOTATION_CRONJOB_SCHEDULED)
        at = parse_time(stamp)
        if at is not None:
            out.append(at)
    return sorted(out)


def misfire_of(bgjobs: Jobs, name: str) -> dict[str, Any]:
    return bgjobs.status(name).get("misfire") or {}


@pytest.mark.slow
def test_outage_all_catches_up_once_skip_runs_none_latest_runs_the_last(  # type: ignore[no-untyped-def]
    bgjobs: Jobs, operator, kubeconfig: str
) -> None:
    plane = ControlPlane(os.environ.get("BGJ_CLUSTER", "backgroundjobs-test"), kubeconfig)
    for name, policy in POLICIES.items():
        bgjobs.create(
            manifest(
                name,
                schedule="* * * * *",
                concurrencyPolicy="Allow",
                history={"succeeded": 10, "failed": 5},
                misfire={"policy": policy, "maxCatchUp": 10},
                pod_annotations={RUN_FOR: "2s"},
            )
        )
    wait_for(
        "the three CronJobs",
        lambda: len(bgjobs.batch.list_namespaced_cron_job(bgjobs.ns).items) == len(POLICIES),
    )

    # Freeze the controller-manager 15 s before a minute boundary M1; keep it so over M1, M2,
    # M3; resume it 35 s after M3 (after Skip's 30 s deadline, before M4). 2 min 50 s in all:
    # frozen longer than its --node-monitor-grace-period (3 min 20 s), it marks every node
    # unknown when it wakes. (The fake nodes then lost their addresses, so later tests of the
    # session read no pod's log: "no preferred addresses found", seen in CI even with this
    # freeze. hack/cluster.sh now gives them an InternalIP, which kwok keeps.)
    now = datetime.now(UTC)
    m0 = minute_floor(now) + timedelta(minutes=1)
    sleep_until(m0 + timedelta(seconds=45))
    missed = [m0 + timedelta(minutes=k) for k in (1, 2, 3)]
    # Frozen, not stopped: a stopped process frees its port, which another cluster on the
    # machine may take meanwhile (seen: another cluster's etcd); resumed, it finds its lease
    # lost, exits and is started again by the cluster's supervisor at once.
    plane.hang(CONTROLLER_MANAGER)
    try:
        # The operator judges M2 missed 10 s after M3 and creates its catch-up then: a
        # SIGKILL right then may fall between its create and its status write.
        sleep_until(missed[2] + timedelta(seconds=10.5))
        operator.kill()
        operator.start()
        # and once more, so that the operator that counts Skip's M3 (judged 40 s after M3)
        # is the one whose metrics are read at the end (counters start at 0 in a process)
        sleep_until(missed[2] + timedelta(seconds=25))
        operator.kill()
        operator.start()
        sleep_until(missed[2] + timedelta(seconds=35))
    finally:
        plane.resume(CONTROLLER_MANAGER)

    def settled() -> bool:
        all_times = scheduled_times(bgjobs, "catch-all")
        return all(t in all_times for t in missed) and missed[2] in scheduled_times(
            bgjobs, "latest"
        )

    wait_for("the late runs", settled, timeout=180)
    m4 = missed[2] + timedelta(minutes=1)
    sleep_until(m4 + timedelta(seconds=15))  # Skip's M3 judged; nothing further may appear

    window = set(missed)
    all_times = [t for t in scheduled_times(bgjobs, "catch-all") if t in window]
    assert all_times == missed, "All: exactly one run per missed minute"
    assert [t for t in scheduled_times(bgjobs, "skip") if t in window] == []
    assert [t for t in scheduled_times(bgjobs, "latest") if t in window] == [missed[2]]

    caught = wait_for(
        "All's catch-ups counted",
        lambda: (m := misfire_of(bgjobs, "catch-all")).get("caughtUp") == 2 and m,
        timeout=120,
    )
    assert caught["lastCaughtUp"][-2:] == [format_time(t) for t in missed[:2]]
    assert not caught.get("pending") and caught.get("skipped", 0) == 0
    catch_up_jobs = [
        j.metadata.name
        for j in bgjobs.jobs("catch-all")
        if (j.metadata.labels or {}).get(c.LABEL_RUN) == "catch-up"
    ]
    assert sorted(catch_up_jobs) == sorted(
        f"catch-all-{int(t.timestamp()) // 60}" for t in missed[:2]
    )
    skip = misfire_of(bgjobs, "skip")
    assert skip["skipped"] == 3 and skip["lastSkipped"] == [format_time(t) for t in missed]
    latest = misfire_of(bgjobs, "latest")
    assert latest["skipped"] == 2 and latest["lastSkipped"] == [format_time(t) for t in missed[:2]]
    assert "MisfireSkipped" in bgjobs.event_reasons("skip")
    assert "MisfireCatchUp" in bgjobs.event_reasons("catch-all")
    metrics = operator.metrics()
    skipped_series = 'backgroundjobs_recurring_misfires_total{action="skipped",queue="default"}'
    assert skipped_series in metrics  # (labels in the exposition are sorted)
    # every run of All finished (the catch-ups ran, late, once)
    for name in catch_up_jobs:
        wait_for(
            f"{name} to finish",
            lambda n=name: (j := bgjobs.job(n)) is not None and (j.status.succeeded or 0) >= 1,
            timeout=120,
        )
    assert parse_time(caught["checkedUntil"]) is not None


@pytest.mark.parametrize(
    ("spec", "named"),
    [
        ({"misfire": {"policy": "All"}}, "spec.misfire is only allowed with spec.schedule"),
        ({"delay": "5m", "misfire": {"policy": "Skip"}}, "spec.misfire is only allowed"),
        ({"schedule": "@daily", "misfire": {"policy": "Strict"}}, "spec.misfire.policy"),
        ({"schedule": "@daily", "misfire": {"maxCatchUp": 0}}, "spec.misfire.maxCatchUp"),
        ({"schedule": "@daily", "misfire": {"maxCatchUp": 101}}, "spec.misfire.maxCatchUp"),
    ],
)
def test_api_server_refuses_a_bad_misfire_naming_the_field(
    bgjobs_no_operator: Jobs, spec: dict[str, Any], named: str
) -> None:
    with pytest.raises(ApiException) as info:
        bgjobs_no_operator.create(manifest("bad-misfire", **spec))
    assert info.value.status == 422
    assert named in json.loads(info.value.body or "{}")["message"]
    assert bgjobs_no_operator.get("bad-misfire") is None
