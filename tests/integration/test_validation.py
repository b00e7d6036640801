"""The API server validates BackgroundJobs (OpenAPI schema + CEL rules of the generated CRD).

No operator runs: a bad manifest is refused at create with 422 and a message naming the field,
nothing is stored; a good one is stored with the CRD's defaults; the job type cannot change on
update; ``kubectl explain`` and ``kubectl apply`` show the same to a user.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes.client.rest import ApiException
from tests.integration.bgj import Jobs, manifest

from backgroundjobs.api import constants as c

pytestmark = pytest.mark.integration

Body = dict[str, Any]
KUBECTL = Path.home() / ".cache" / "backgroundjobs" / "venv" / "bin" / "kubectl"
ONE_OF = "at most one of spec.delay, spec.runAt, spec.schedule and spec.after may be set"
RUN_AT = "2030-01-02T03:04:05Z"


def name_for(case: str) -> str:
    return f"v-{case.lower()}-{uuid.uuid4().hex[:5]}"[:63].strip("-")


def message_of(exc: ApiException) -> str:
    return str(json.loads(exc.body or "{}").get("message", ""))


def refused(jobs: Jobs, body: Body) -> tuple[str, list[str]]:
    """Create ``body``; assert 422; return the message and the fields of the causes."""
    with pytest.raises(ApiException) as info:
        jobs.create(body)
    exc = info.value
    assert exc.status == 422, f"expected 422, got {exc.status}: {exc.body}"
    status = json.loads(exc.body or "{}")
    assert status["reason"] == "Invalid"
    causes = (status.get("details") or {}).get("causes") or []
    return status["message"], [cause.get("field", "") for cause in causes]


# (id, spec fields (without handler unless given), substrings the message must contain)
INVALID: list[tuple[str, Body, list[str]]] = [
    ("delay-and-runat", {"delay": "5m", "runAt": RUN_AT}, [ONE_OF]),
    ("delay-and-schedule", {"delay": "5m", "schedule": "@daily"}, [ONE_OF]),
    ("schedule-and-after", {"schedule": "@daily", "after": {"name": "p"}}, [ONE_OF]),
    ("three-when-fields", {"delay": "5m", "runAt": RUN_AT, "after": {"name": "p"}}, [ONE_OF]),
    (
        "timezone-without-schedule",
        {"timeZone": "Europe/Berlin"},
        ["spec.timeZone", "spec.timeZone is only allowed with spec.schedule"],
    ),
    (
        "concurrency-without-schedule",
        {"concurrencyPolicy": "Allow"},
        ["spec.concurrencyPolicy", "only allowed with spec.schedule"],
    ),
    (
        "deadline-without-schedule",
        {"delay": "1m", "startingDeadline": "5m"},
        ["spec.startingDeadline", "only allowed with spec.schedule"],
    ),
    (
        "history-without-schedule",
        {"history": {"succeeded": 1}},
        ["spec.history", "only allowed with spec.schedule"],
    ),
    ("delay-abc", {"delay": "abc"}, ["spec.delay", "delay must be a positive duration"]),
    ("delay-zero", {"delay": "0s"}, ["spec.delay", "delay must be a positive duration"]),
    ("delay-negative", {"delay": "-5s"}, ["spec.delay", "delay must be a positive duration"]),
    ("delay-days", {"delay": "5d"}, ["spec.delay", "delay must be a positive duration"]),
    ("delay-overflow", {"delay": "3000000h"}, ["spec.delay", "delay must be a positive duration"]),
    ("runat-word", {"runAt": "tomorrow"}, ["spec.runAt", "date-time"]),
    ("runat-impossible-date", {"runAt": "2030-13-45T99:00:00Z"}, ["spec.runAt", "date-time"]),
    ("retries-101", {"retries": 101}, ["spec.retries", "less than or equal to 100"]),
    ("retries-negative", {"retries": -1}, ["spec.retries", "greater than or equal to 0"]),
    ("exit-code-0", {"nonRetryableExitCodes": [0]}, ["spec.nonRetryableExitCodes"]),
    ("exit-code-256", {"nonRetryableExitCodes": [2, 256]}, ["spec.nonRetryableExitCodes"]),
    ("exit-codes-duplicate", {"nonRetryableExitCodes": [2, 2]}, ["spec.nonRetryableExitCodes"]),
    ("handler-digit", {"handler": "9abc"}, ["spec.handler", "handler must be a registered name"]),
    ("handler-space", {"handler": "a b"}, ["spec.handler", "handler must be a registered name"]),
    ("handler-empty", {"handler": ""}, ["spec.handler"]),
    ("handler-too-long", {"handler": "h" * 254}, ["spec.handler", "253"]),
    ("queue-underscore", {"queue": "Bad_Queue"}, ["spec.queue", "queue must be a DNS label"]),
    ("schedule-three-fields", {"schedule": "* * *"}, ["spec.schedule", "5-field cron"]),
    ("schedule-six-fields", {"schedule": "0 * * * * *"}, ["spec.schedule", "5-field cron"]),
    ("schedule-every", {"schedule": "@every 5m"}, ["spec.schedule", "5-field cron"]),
    ("after-name", {"after": {"name": "Bad_Name"}}, ["spec.after.name", "after.name must be"]),
    ("after-when", {"after": {"name": "p", "when": "Sometimes"}}, ["spec.after.when"]),
    ("after-no-name", {"after": {"when": "Failed"}}, ["spec.after", "exactly one of after.name"]),
    (
        "after-name-and-selector",
        {"after": {"name": "p", "selector": {"matchLabels": {"a": "b"}}, "count": 2}},
        ["spec.after", "exactly one of after.name"],
    ),
    (
        "after-selector-without-count",
        {"after": {"selector": {"matchLabels": {"a": "b"}}}},
        ["spec.after.count", "is required with after.selector"],
    ),
    (
        "after-count-zero",
        {"after": {"selector": {"matchLabels": {"a": "b"}}, "count": 0}},
        ["spec.after.count"],
    ),
    (
        "after-selector-empty",
        {"after": {"selector": {"matchLabels": {}}, "count": 1}},
        ["spec.after.selector.matchLabels", "one or more labels"],
    ),
    (
        "after-selector-bad-value",
        {"after": {"selector": {"matchLabels": {"a": "not a label!"}}, "count": 1}},
        ["spec.after.selector.matchLabels", "label values"],
    ),
    ("missing-handler", {"handler": None}, ["spec.handler", "Required value"]),
    (
        "concurrency-policy",
        {"schedule": "@daily", "concurrencyPolicy": "Sometimes"},
        ["spec.concurrencyPolicy", "Unsupported value"],
    ),
    (
        "timezone-pattern",
        {"schedule": "@daily", "timeZone": "Europe Berlin"},
        ["spec.timeZone", "timeZone must be an IANA zone"],
    ),
    (
        "starting-deadline-zero",
        {"schedule": "@daily", "startingDeadline": "0s"},
        ["spec.startingDeadline", "startingDeadline must be a 1s or longer duration"],
    ),
    ("timeout-500ms", {"timeout": "500ms"}, ["spec.timeout", "timeout must be a 1s or longer"]),
    ("timeout-days", {"timeout": "1d"}, ["spec.timeout"]),
    ("ttl-negative", {"ttlAfterFinished": "-1h"}, ["spec.ttlAfterFinished"]),
    ("image-space", {"image": "bad image:1"}, ["spec.image", "image must not contain whitespace"]),
    ("image-empty", {"image": ""}, ["spec.image"]),
    (
        "history-negative",
        {"schedule": "@daily", "history": {"succeeded": -1}},
        ["spec.history.succeeded", "greater than or equal to 0"],
    ),
    ("args-not-a-list", {"args": "x"}, ["spec.args"]),
    ("kwargs-not-an-object", {"kwargs": [1]}, ["spec.kwargs"]),
    ("suspend-not-bool", {"suspend": "yes"}, ["spec.suspend"]),
    # bounds against hostile objects (issue 13): instants and durations a datetime can hold,
    # sizes, and the podTemplate's shape where the operator merges it
    (
        "runat-year-9999-minus-5",
        {"runAt": "9999-12-31T23:00:00-05:00"},
        ["spec.runAt", "between the years 1900 and 9000"],
    ),
    (
        "runat-year-1-plus-1",
        {"runAt": "0001-01-01T00:30:00+01:00"},
        ["spec.runAt", "between the years 1900 and 9000"],
    ),
    ("delay-over-100-years", {"delay": "876001h"}, ["spec.delay", "at most 876000h"]),
    ("timeout-over-100-years", {"timeout": "900000h"}, ["spec.timeout", "at most 876000h"]),
    ("args-257", {"args": list(range(257))}, ["spec.args", "256"]),
    ("kwargs-257", {"kwargs": {f"k{i}": i for i in range(257)}}, ["spec.kwargs", "256"]),
    ("pod-metadata-string", {"podTemplate": {"metadata": "x"}}, ["spec.podTemplate.metadata"]),
    (
        "pod-label-number",
        {"podTemplate": {"metadata": {"labels": {"team": 1}}}},
        ["spec.podTemplate.metadata.labels.team", "string"],
    ),
    (
        "pod-containers-object",
        {"podTemplate": {"spec": {"containers": {"name": "handler"}}}},
        ["spec.podTemplate.spec.containers", "array"],
    ),
    (
        "pod-env-string",
        {"podTemplate": {"spec": {"containers": [{"name": "handler", "env": ["A=1"]}]}}},
        ["spec.podTemplate.spec.containers[0].env[0]", "object"],
    ),
    (
        "kwargs-from-name",
        {"kwargsFrom": [{"name": "pass word", "secretKeyRef": {"name": "s", "key": "k"}}]},
        ["spec.kwargsFrom[0].name", "must be a Python identifier"],
    ),
    (
        "kwargs-from-secret",
        {"kwargsFrom": [{"name": "p", "secretKeyRef": {"name": "Bad_Secret", "key": "k/x"}}]},
        ["spec.kwargsFrom[0].secretKeyRef.name", "spec.kwargsFrom[0].secretKeyRef.key"],
    ),
    ("kwargs-from-no-ref", {"kwargsFrom": [{"name": "p"}]}, ["spec.kwargsFrom[0].secretKeyRef"]),
    (
        "kwargs-from-twice",
        {
            "kwargsFrom": [
                {"name": "p", "secretKeyRef": {"name": "s", "key": "a"}},
                {"name": "p", "secretKeyRef": {"name": "s", "key": "b"}},
            ]
        },
        ["spec.kwargsFrom[1]", "Duplicate value"],
    ),
]


@pytest.mark.parametrize(("spec", "expected"), [pytest.param(s, e, id=i) for i, s, e in INVALID])
def test_invalid_manifest_is_refused(
    bgjobs_no_operator: Jobs, request: pytest.FixtureRequest, spec: Body, expected: list[str]
) -> None:
    jobs = bgjobs_no_operator
    name = name_for(request.node.callspec.id)
    fields = dict(spec)
    handler = fields.pop("handler", "test.echo")
    body = manifest(name, **fields)
    if handler is None:
        del body["spec"]["handler"]
    else:
        body["spec"]["handler"] = handler
    message, _causes = refused(jobs, body)
    for text in expected:
        assert text in message, f"{text!r} not in {message!r}"
    assert jobs.get(name) is None, "a refused manifest must not be stored"


def test_after_cannot_name_the_job_itself(bgjobs_no_operator: Jobs) -> None:
    jobs = bgjobs_no_operator
    body = manifest("selfish", after={"name": "selfish"})
    message, causes = refused(jobs, body)
    assert "spec.after.name cannot name the job itself" in message
    assert "spec.after.name" in causes
    assert jobs.get("selfish") is None


def test_a_refusal_names_every_bad_field(bgjobs_no_operator: Jobs) -> None:
    body = manifest("many", retries=101, nonRetryableExitCodes=[0], runAt="soon")
    message, causes = refused(bgjobs_no_operator, body)
    for field in ("spec.retries", "spec.nonRetryableExitCodes[0]", "spec.runAt"):
        assert field in message
        assert field in causes


# ------------------------------------------------------------------ valid manifests

VALID: list[tuple[str, Body, str]] = [
    ("immediate", {"args": [1, "a", {"b": None}], "kwargs": {"x": [1, 2]}}, "Immediate"),
    ("delayed-delay", {"delay": "1h30m", "ttlAfterFinished": "0s"}, "Delayed"),
    ("delayed-run-at", {"runAt": RUN_AT, "timeout": "1s"}, "Delayed"),
    (
        "recurring",
        {
            "schedule": "0 2 * * 1-5",
            "timeZone": "Europe/Berlin",
            "concurrencyPolicy": "Replace",
            "startingDeadline": "5m",
            "history": {},
            "suspend": True,
        },
        "Recurring",
    ),
    ("recurring-macro", {"schedule": "@daily"}, "Recurring"),
    ("continuation", {"after": {"name": "parent-job"}, "queue": "critical"}, "Continuation"),
    (
        "secret-kwargs",
        {"kwargsFrom": [{"name": "token", "secretKeyRef": {"name": "reset-42", "key": "token"}}]},
        "Immediate",
    ),
]


@pytest.mark.parametrize(("spec", "job_type"), [pytest.param(s, t, id=i) for i, s, t in VALID])
def test_valid_manifest_is_stored_with_defaults(
    bgjobs_no_operator: Jobs, request: pytest.FixtureRequest, spec: Body, job_type: str
) -> None:
    jobs = bgjobs_no_operator
    name = name_for(request.node.callspec.id)
    body = manifest(
        name,
        handler="mail.send",
        podTemplate={
            "metadata": {"labels": {"team": "mail"}},
            "spec": {
                "containers": [{"name": "handler", "env": [{"name": "A"}], "resources": {}}],
                "nodeSelector": {"disk": "ssd"},
            },
        },
        **spec,
    )
    created = jobs.create(body)
    assert created["metadata"]["name"] == name
    stored = jobs.get(name)
    assert stored is not None
    s = stored["spec"]
    assert s["handler"] == "mail.send"
    assert s["queue"] == spec.get("queue", "default")
    assert s["retries"] == 3
    assert s["suspend"] is spec.get("suspend", False)
    for key, value in spec.items():
        if key not in ("history", "after"):
            assert s[key] == value, key
    # podTemplate is kept as given: the CRD checks only the shape the operator merges
    assert s["podTemplate"]["spec"]["containers"][0] == {
        "name": "handler",
        "env": [{"name": "A"}],
        "resources": {},
    }
    assert s["podTemplate"]["spec"]["nodeSelector"] == {"disk": "ssd"}
    assert s["podTemplate"]["metadata"] == {"labels": {"team": "mail"}}
    if job_type == "Recurring" and "history" in spec:
        assert s["history"] == {"succeeded": 3, "failed": 1}
    if job_type == "Continuation":
        assert s["after"] == {"name": "parent-job", "when": "Succeeded"}
    # the API server sets no status on create (the session's operator may be running and
    # write one a moment later, so this is read from the create response, not from `stored`)
    assert "status" not in created or not created["status"]


def test_generate_name_is_accepted(bgjobs_no_operator: Jobs) -> None:
    body = manifest("unused")
    body["metadata"] = {"generateName": "gen-"}
    created = bgjobs_no_operator.create(body)
    assert created["metadata"]["name"].startswith("gen-")


# ------------------------------------------------------------------ updates


def test_job_type_cannot_change_on_update(bgjobs_no_operator: Jobs) -> None:
    jobs = bgjobs_no_operator
    jobs.create(manifest("delayed", delay="1h"))
    with pytest.raises(ApiException) as info:
        jobs.patch("delayed", {"spec": {"delay": None, "schedule": "@daily"}})
    assert info.value.status == 422
    assert "the job type cannot change on update" in message_of(info.value)
    stored = jobs.get("delayed")
    assert stored is not None
    assert stored["spec"]["delay"] == "1h"
    assert "schedule" not in stored["spec"]

    jobs.create(manifest("immediate"))
    for change in ({"after": {"name": "other"}}, {"delay": "5m"}, {"schedule": "@hourly"}):
        with pytest.raises(ApiException) as info:
            jobs.patch("immediate", {"spec": change})
        assert info.value.status == 422, change
        assert "the job type cannot change" in message_of(info.value)

    jobs.create(manifest("recurring", schedule="@daily"))
    with pytest.raises(ApiException) as info:
        jobs.patch("recurring", {"spec": {"schedule": None}})
    assert info.value.status == 422


def test_updates_within_a_type_are_allowed(bgjobs_no_operator: Jobs) -> None:
    jobs = bgjobs_no_operator
    jobs.create(manifest("delayed", delay="1h"))
    # reschedule: delay -> runAt stays Delayed
    jobs.patch("delayed", {"spec": {"delay": None, "runAt": RUN_AT}})
    stored = jobs.get("delayed")
    assert stored is not None and stored["spec"]["runAt"] == RUN_AT
    assert stored["metadata"]["generation"] == 2
    jobs.create(manifest("recurring", schedule="@daily"))
    jobs.patch("recurring", {"spec": {"schedule": "0 3 * * *", "timeZone": "Asia/Tokyo"}})
    stored = jobs.get("recurring")
    assert stored is not None and stored["spec"]["timeZone"] == "Asia/Tokyo"
    # and a bad update is refused like a bad create
    with pytest.raises(ApiException) as info:
        jobs.patch("recurring", {"spec": {"schedule": "* *"}})
    assert info.value.status == 422
    assert "spec.schedule" in message_of(info.value)


# ------------------------------------------------------------------ kubectl


def kubectl(kubeconfig: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(KUBECTL), *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "KUBECONFIG": kubeconfig},
    )


def test_kubectl_explain(kubeconfig: str, crd: Body) -> None:
    deadline = time.monotonic() + 60
    while True:  # the OpenAPI v3 document of a new CRD is published shortly after Established
        out = kubectl(kubeconfig, "explain", "bgj.spec.delay")
        if out.returncode == 0 or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert out.returncode == 0, out.stderr
    assert "BackgroundJob" in out.stdout
    assert "Delayed job: due this long after the object's creation" in out.stdout
    spec = kubectl(kubeconfig, "explain", "backgroundjobs.spec")
    assert spec.returncode == 0, spec.stderr
    for field in ("handler", "runAt", "schedule", "after", "nonRetryableExitCodes"):
        assert field in spec.stdout


def test_kubectl_apply_of_a_bad_manifest_names_the_field(
    kubeconfig: str, bgjobs_no_operator: Jobs, tmp_path: Path
) -> None:
    jobs = bgjobs_no_operator
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(manifest("bad-delay", delay="5d")))
    out = kubectl(kubeconfig, "apply", "-n", jobs.ns, "-f", str(path))
    assert out.returncode != 0
    assert "spec.delay" in out.stderr
    assert "delay must be a positive duration" in out.stderr
    assert jobs.get("bad-delay") is None
    # server-side apply says the same
    out = kubectl(kubeconfig, "apply", "--server-side", "-n", jobs.ns, "-f", str(path))
    assert out.returncode != 0
    assert "spec.delay" in out.stderr
    # and a good one goes through, visible by short name with the printer columns
    path.write_text(yaml.safe_dump(manifest("good", delay="5m")))
    out = kubectl(kubeconfig, "apply", "-n", jobs.ns, "-f", str(path))
    assert out.returncode == 0, out.stderr
    out = kubectl(kubeconfig, "get", "bgj", "-n", jobs.ns, "-o", "wide")
    assert out.returncode == 0, out.stderr
    header = out.stdout.splitlines()[0].split()
    assert header == [
        "NAME",
        "TYPE",
        "HANDLER",
        "PHASE",
        "DUE",
        "PROGRESS",
        "AGE",
        "QUEUE",
        "JOB",
        "RUNS",
        "MESSAGE",
    ]
    assert "good" in out.stdout
    out = kubectl(kubeconfig, "get", "backgroundjobs", "-n", jobs.ns, "-o", "name")
    assert out.stdout.strip() == f"{c.KIND.lower()}.{c.GROUP}/good"
