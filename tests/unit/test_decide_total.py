"""``decide`` is total: for any object the API server can store (any spec, status and
metadata the CRD lets through, and older or hand-written ones it would not), any observed
Jobs, any termination message and any instant, it returns a plan and never raises.

Property tests (hypothesis) over random specs, pod templates, times and results:

- a spec that cannot be used ends ``Failed``/``InvalidSpec``;
- the status written is one the API server takes: it fits the CRD's status schema and is
  strict JSON (no NaN), nested no deeper than the API server and the operator can carry; a
  result that is not (NaN, too deep, too large) is stored as text with a Warning;
- the Jobs and CronJobs created are strict JSON.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from backgroundjobs._json import deeper_than
from backgroundjobs.api import crd
from backgroundjobs.api.times import format_time
from backgroundjobs.controller.decisions import Observed, ObservedJob, Plan, decide
from backgroundjobs.controller.decisions.workload import WorkloadCondition, WorkloadState
from backgroundjobs.controller.settings import QueueConfig, Settings

pytestmark = pytest.mark.unit

Body = dict[str, Any]
UID = "11111111-0000-4000-8000-000000000001"
SETTINGS = Settings(
    default_image="example.com/handlers:1",
    retention=timedelta(hours=168),
    queues={"limited": QueueConfig(max_concurrency=1), "high": QueueConfig("high", 5)},
)
STATUS_SCHEMA = crd.openapi_schema()["properties"]["status"]
MAX_STATUS_DEPTH = 64  # result nesting the operator writes, far below the API server's 10,000

# ------------------------------------------------------------------ strategies

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=20)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)
instants = st.datetimes(
    min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.just(UTC)
)
rfc3339 = st.one_of(
    instants.map(format_time),
    st.sampled_from(
        [
            "9999-12-31T23:00:00-05:00",
            "0001-01-01T00:30:00+01:00",
            "2030-01-02T03:04:05Z",
            "2030-01-02T03:04:05.123456+14:00",
            "not a time",
            "",
        ]
    ),
)
durations = st.one_of(
    st.sampled_from(["90s", "1h30m", "0s", "876000h", "80000000h", "1ms", "abc", "-5s", "5d"]),
    st.integers(min_value=0, max_value=10**12).map(lambda n: f"{n}s"),
)
names = st.sampled_from(["job", "parent", "other", "a", "x" * 253, "Bad_Name", ""])
crons = st.sampled_from(
    ["* * * * *", "0 2 * * *", "@daily", "@every 5m", "61 * * * *", "0 0 30 2 *", "x", ""]
)
zones = st.sampled_from([None, "UTC", "Europe/Berlin", "Mars/Olympus", "../etc/passwd", ""])
containers = st.lists(
    st.one_of(
        st.fixed_dictionaries(
            {"name": st.sampled_from(["handler", "side", "", "Bad_Name"])},
            optional={
                "env": st.one_of(
                    st.lists(
                        st.one_of(
                            st.fixed_dictionaries(
                                {"name": st.text(max_size=5)},
                                optional={"value": json_scalars},
                            ),
                            json_values,
                        ),
                        max_size=3,
                    ),
                    json_values,
                ),
                "image": json_scalars,
                "resources": json_values,
                "securityContext": json_values,
                "volumeMounts": json_values,
            },
        ),
        json_values,
    ),
    max_size=3,
)
pod_templates = st.one_of(
    json_values,
    st.fixed_dictionaries(
        {},
        optional={
            "metadata": st.one_of(
                json_values,
                st.fixed_dictionaries(
                    {},
                    optional={
                        "labels": st.one_of(
                            json_values, st.dictionaries(st.text(max_size=8), json_scalars)
                        ),
                        "annotations": st.one_of(
                            json_values, st.dictionaries(st.text(max_size=8), json_scalars)
                        ),
                    },
                ),
            ),
            "spec": st.one_of(
                json_values,
                st.fixed_dictionaries(
                    {},
                    optional={
                        "containers": st.one_of(containers, json_values),
                        "serviceAccountName": json_scalars,
                        "securityContext": json_values,
                        "volumes": json_values,
                    },
                ),
            ),
        },
    ),
)
when_fields = st.one_of(
    st.just({}),
    st.fixed_dictionaries({"delay": durations}),
    st.fixed_dictionaries({"runAt": rfc3339}),
    st.fixed_dictionaries(
        {"schedule": crons},
        optional={
            "timeZone": zones,
            "concurrencyPolicy": st.sampled_from(["Allow", "Forbid", "Replace", "Never"]),
            "startingDeadline": durations,
            "history": st.one_of(
                json_values, st.fixed_dictionaries({"succeeded": st.integers(-1, 200)})
            ),
            "misfire": st.one_of(
                json_values,
                st.fixed_dictionaries(
                    {},
                    optional={
                        "policy": st.sampled_from(["Latest", "Skip", "All", "Strict"]),
                        "maxCatchUp": st.one_of(st.integers(-1, 200), json_scalars),
                    },
                ),
            ),
        },
    ),
    st.fixed_dictionaries(
        {
            "after": st.one_of(
                json_values,
                st.fixed_dictionaries(
                    {"name": names},
                    optional={"when": st.sampled_from(["Succeeded", "Failed", "Finished", "x"])},
                ),
            )
        }
    ),
)
# interval lists as a Job's status writes them (the Job controller's own, well-formed)
job_intervals = st.sampled_from(["", "0", "1", "0,2", "1,3-4", "0-2", "0-9"])
# and as a status written by hand may hold them
status_intervals = job_intervals | st.sampled_from(["5-1", "x", "0-99999999999", "1,..."])
batch_items = st.one_of(
    st.lists(
        st.fixed_dictionaries(
            {},
            optional={
                "args": st.one_of(st.lists(json_values, max_size=2), json_values),
                "kwargs": st.one_of(st.dictionaries(st.text(max_size=5), json_values), json_values),
            },
        ),
        max_size=5,
    ),
    json_values,
)
specs = st.builds(
    lambda base, when, extra: {**base, **when, **extra},
    st.fixed_dictionaries(
        {"handler": st.one_of(st.sampled_from(["mail.send", "m:f"]), json_scalars)}
    ),
    when_fields,
    st.fixed_dictionaries(
        {},
        optional={
            "args": st.one_of(st.lists(json_values, max_size=3), json_values),
            "kwargs": st.one_of(st.dictionaries(st.text(max_size=5), json_values), json_values),
            "image": json_scalars,
            "queue": st.sampled_from(["default", "limited", "high", "Bad_Queue", ""]),
            "retries": st.one_of(st.integers(-5, 200), json_scalars),
            "nonRetryableExitCodes": st.one_of(st.lists(st.integers(-1, 300)), json_values),
            "timeout": durations,
            "ttlAfterFinished": durations,
            "suspend": st.one_of(st.booleans(), json_scalars),
            "podTemplate": pod_templates,
            "items": batch_items,
            "maxFailed": st.one_of(st.integers(-1, 5), json_scalars),
            "parallelism": st.one_of(st.integers(-1, 5), json_scalars),
            "retryPolicy": st.one_of(
                json_values,
                st.fixed_dictionaries(
                    {},
                    optional={
                        "backoff": st.one_of(
                            json_values,
                            st.fixed_dictionaries(
                                {},
                                optional={
                                    "initial": durations,
                                    "factor": st.one_of(st.floats(allow_nan=True), json_scalars),
                                    "max": durations,
                                    "jitter": st.one_of(st.floats(allow_nan=True), json_scalars),
                                },
                            ),
                        )
                    },
                ),
            ),
        },
    ),
)
phases = st.sampled_from(
    [
        None,
        "Pending",
        "Scheduled",
        "Waiting",
        "Queued",
        "Running",
        "Succeeded",
        "Failed",
        "Cancelled",
        "Suspended",
        "Bogus",
    ]
)
conditions = st.lists(
    st.fixed_dictionaries(
        {
            "type": st.sampled_from(["Scheduled", "Running", "Succeeded", "Failed", "Queued", "X"]),
            "status": st.sampled_from(["True", "False", "Unknown"]),
            "reason": st.sampled_from(["InvalidSpec", "Created", "Triggered", "QueueFull"]),
            "lastTransitionTime": rfc3339,
        },
        optional={"message": st.text(max_size=10), "observedGeneration": st.integers(0, 5)},
    ),
    max_size=4,
)
statuses = st.one_of(
    st.none(),
    st.fixed_dictionaries(
        {},
        optional={
            "phase": phases,
            "runs": st.integers(-2, 5),
            "jobName": st.text(max_size=10),
            "startedAt": rfc3339,
            "finishedAt": rfc3339,
            "dueAt": rfc3339,
            "lastRunAt": rfc3339,
            "failedAttempts": st.integers(-1, 5),
            "conditions": conditions,
            "result": json_values,
            "handledActions": st.fixed_dictionaries(
                {}, optional={"requeue": st.text(max_size=5), "trigger": st.text(max_size=5)}
            ),
            "observedGeneration": st.integers(0, 5),
            "type": st.sampled_from(["Immediate", "Delayed", "Recurring", "Continuation"]),
            "parentUid": st.text(max_size=5),
            "attempt": st.integers(-2, 200),
            "nextAttemptAt": rfc3339,
            "batch": st.one_of(
                json_values,
                st.fixed_dictionaries(
                    {"total": st.integers(-1, 6)},
                    optional={
                        "succeeded": st.integers(-1, 6),
                        "failed": st.integers(-1, 6),
                        "failedIndexes": status_intervals,
                        "rerun": st.one_of(
                            json_values,
                            st.fixed_dictionaries(
                                {
                                    "fromRun": st.integers(0, 4),
                                    "items": st.integers(0, 6),
                                    "indexes": status_intervals,
                                }
                            ),
                        ),
                    },
                ),
            ),
            "misfire": st.one_of(
                json_values,
                st.fixed_dictionaries(
                    {},
                    optional={
                        "checkedUntil": rfc3339,
                        "skipped": st.integers(-1, 5),
                        "caughtUp": st.integers(-1, 5),
                        "pending": st.lists(rfc3339, max_size=3),
                        "lastSkipped": st.lists(rfc3339, max_size=6),
                    },
                ),
            ),
        },
    ),
)
annotations = st.dictionaries(
    st.sampled_from(
        ["backgroundjobs.dev/requeue", "backgroundjobs.dev/trigger", "backgroundjobs.dev/cancel"]
    ),
    st.text(min_size=1, max_size=10) | st.sampled_from(["failed-only", "failed-only by bob"]),
)
termination_messages = st.one_of(
    st.none(),
    st.text(max_size=50),
    st.sampled_from(["NaN", "[NaN]", "Infinity", "-Infinity", "1e999", '{"error": "x"}', "null"]),
    st.integers(1, 3000).map(lambda n: "[" * n + "]" * n),
    json_values.map(lambda v: json.dumps(v)),
    st.just("x" * 5000),
)


workload_conditions = st.dictionaries(
    st.sampled_from(["QuotaReserved", "Admitted", "Evicted", "Preempted", "Finished"]),
    st.builds(WorkloadCondition, st.booleans(), st.text(max_size=8), st.text(max_size=20)),
    max_size=4,
)
workload_states = st.builds(
    WorkloadState,
    installed=st.booleans(),
    found=st.booleans(),
    cluster_queue=st.none() | st.just("cq"),
    conditions=workload_conditions,
)


@st.composite
def observed_jobs(draw: st.DrawFn, bgj_name: str) -> ObservedJob:
    run = draw(st.integers(1, 3))
    finished = draw(st.sampled_from(["running", "complete", "failed"]))
    return ObservedJob(
        name=draw(
            st.sampled_from(
                [
                    f"{bgj_name}-{run}",
                    f"{bgj_name}-{run}-a2",
                    f"{bgj_name}-cron-1",
                    f"{bgj_name}-31557600{run}",  # a scheduled or catch-up run's minute
                    "stray",
                ]
            )
        ),
        uid=f"uid-{run}",
        owner_uid=draw(st.sampled_from([UID, None, "other"])),
        created=draw(st.none() | instants),
        start_time=draw(st.none() | instants),
        completion_time=draw(st.none() | instants),
        active_pods=draw(st.integers(0, 2)),
        succeeded=draw(st.integers(0, 2)),
        failed=draw(st.integers(0, 5)),
        complete=finished == "complete",
        failure_reason=draw(
            st.sampled_from(
                [
                    "BackoffLimitExceeded",
                    "PodFailurePolicy",
                    "FailedIndexes",
                    "MaxFailedIndexesExceeded",
                ]
            )
        )
        if finished == "failed"
        else None,
        failure_message=draw(st.text(max_size=10)),
        failure_time=draw(st.none() | instants),
        scheduled_time=draw(st.none() | instants),
        suspended=draw(st.booleans()),
        completed_indexes=draw(job_intervals),
        failed_indexes=draw(job_intervals),
    )


cronjobs = st.fixed_dictionaries(
    {
        "metadata": st.fixed_dictionaries({}, optional={"creationTimestamp": rfc3339}),
        "spec": st.fixed_dictionaries({}, optional={"suspend": st.booleans()}),
        "status": st.fixed_dictionaries({}, optional={"lastScheduleTime": rfc3339}),
    }
)


@st.composite
def observations(draw: st.DrawFn) -> Observed:
    name = draw(st.sampled_from(["job", "parent"]))
    meta: Body = {
        "name": name,
        "namespace": "shop",
        "uid": UID,
        "generation": draw(st.integers(1, 5)),
        "creationTimestamp": draw(rfc3339),
    }
    if draw(st.booleans()):
        meta["annotations"] = draw(annotations)
    body: Body = {
        "apiVersion": "backgroundjobs.dev/v1alpha1",
        "kind": "BackgroundJob",
        "metadata": meta,
        "spec": draw(specs),
    }
    status = draw(statuses)
    if status is not None:
        body["status"] = status
    jobs = draw(st.lists(observed_jobs(name), max_size=3))
    obs = Observed(
        bgj=body,
        now=draw(instants),
        jobs={j.name: j for j in jobs},
        parent=draw(
            st.none()
            | st.builds(
                lambda s: {
                    **body,
                    "status": s,
                    "metadata": {**meta, "name": "parent", "uid": "22222222"},
                },
                statuses,
            )
        ),
        termination={j.name: draw(termination_messages) for j in jobs if draw(st.booleans())},
        admitted=draw(st.sampled_from([None, True, False])),
        cronjob=draw(st.none() | cronjobs),
        kueue_local_queue=draw(st.sampled_from([None, "team-a"])),
        workload=draw(st.none() | workload_states),
    )
    return obs


# ------------------------------------------------------------------ properties


def strict_json(value: Any) -> Any:
    """``value`` through strict JSON (ValueError on NaN or Infinity)."""
    return json.loads(json.dumps(value, allow_nan=False))


def check_plan(plan: Plan) -> None:
    status = strict_json(plan.status)
    jsonschema.validate(status, STATUS_SCHEMA)
    assert not deeper_than(status.get("result"), MAX_STATUS_DEPTH)
    for obj in plan.create:
        strict_json(obj)
    if plan.replace_cronjob is not None:
        strict_json(plan.replace_cronjob)


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(observations())
def test_decide_never_raises_and_writes_what_the_api_server_takes(obs: Observed) -> None:
    plan = decide(obs, SETTINGS)
    check_plan(plan)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(observations())
def test_decide_again_on_its_own_status_never_raises(obs: Observed) -> None:
    """The status written becomes the next observation: deciding on it is total too."""
    plan = decide(obs, SETTINGS)
    obs.bgj = {**obs.bgj, "status": plan.status}
    check_plan(decide(obs, SETTINGS))
