"""The BackgroundJob manifests the client sends, pinned by golden YAML files; job names."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone

import pytest
import yaml
from tests.unit.golden import assert_golden

from backgroundjobs import InvalidSpec, SecretKey
from backgroundjobs.api.models import BackgroundJob
from backgroundjobs.client._arguments import PreparedCall, prepare_call
from backgroundjobs.client._info import JobInfo
from backgroundjobs.client._manifests import (
    MAX_NAME_LENGTH,
    build_manifest,
    check_name,
    duration_text,
    generate_name,
    rfc3339,
    slug,
)
from backgroundjobs.cron import Cron

pytestmark = pytest.mark.unit

MAIL = prepare_call("mail.send", ["a@b.c"], {"subject": "Welcome", "body": "<p>Hi</p>"})


def dump(manifest: dict) -> str:
    # The model must accept what the client sends (the CRD is generated from it).
    BackgroundJob.model_validate(manifest)
    return yaml.safe_dump(manifest, sort_keys=False)


def test_immediate() -> None:
    manifest = build_manifest(name="welcome-x7k2m", namespace="shop", call=MAIL)
    assert_golden("manifest_immediate.yaml", dump(manifest))


def test_immediate_with_every_option() -> None:
    manifest = build_manifest(
        name="welcome-x7k2m",
        namespace="shop",
        call=MAIL,
        queue="critical",
        retries=5,
        timeout=timedelta(minutes=30),
        image="registry.example/handlers:1.2",
        labels={"team": "growth"},
        pod_template={"metadata": {"annotations": {"kwok.backgroundjobs.dev/exit-code": "1"}}},
    )
    assert_golden("manifest_immediate_options.yaml", dump(manifest))


def test_secret_keys_become_kwargs_from() -> None:
    call = prepare_call("shop.reset_mail", ["a@b.c"], {"body": SecretKey("reset-42", "body")})
    manifest = build_manifest(name="reset-x7k2m", namespace="shop", call=call)
    BackgroundJob.model_validate(manifest)
    assert "kwargs" not in manifest["spec"]
    assert manifest["spec"]["kwargsFrom"] == [
        {"name": "body", "secretKeyRef": {"name": "reset-42", "key": "body"}}
    ]


def test_delayed_by_a_duration() -> None:
    call = prepare_call("mail.send", ["a@b.c"], {"subject": "Reminder", "body": "..."})
    manifest = build_manifest(
        name="reminder",
        namespace="shop",
        call=call,
        when={"delay": duration_text(timedelta(hours=1), "delay")},
    )
    assert manifest["spec"]["delay"] == "1h"
    assert_golden("manifest_delayed.yaml", dump(manifest))


def test_delayed_at_a_time_is_utc() -> None:
    at = datetime(2030, 1, 2, 5, 4, 5, tzinfo=timezone(timedelta(hours=2)))
    manifest = build_manifest(
        name="reminder", namespace="shop", call=MAIL, when={"runAt": rfc3339(at)}
    )
    assert manifest["spec"]["runAt"] == "2030-01-02T03:04:05Z"
    assert_golden("manifest_delayed_at.yaml", dump(manifest))


def test_recurring() -> None:
    call = PreparedCall("cleanup.temp_files", [], {"older_than_hours": 24})
    manifest = build_manifest(
        name="cleanup-temp-files",
        namespace="ops",
        call=call,
        when={"schedule": Cron.daily(2), "timeZone": "UTC"},
    )
    assert_golden("manifest_recurring.yaml", dump(manifest))


def test_continuation() -> None:
    call = PreparedCall("mail.send", ["a@b.c"], {"subject": "Report ready", "body": "..."})
    manifest = build_manifest(
        name="report-mail",
        namespace="shop",
        call=call,
        when={"after": {"name": "report-1", "when": "Succeeded"}},
    )
    assert_golden("manifest_continuation.yaml", dump(manifest))


def test_model_limits_are_checked_locally() -> None:
    with pytest.raises(
        InvalidSpec, match=r"spec.retries: Input should be less than or equal to 100"
    ):
        build_manifest(name="x", namespace="n", call=MAIL, retries=101)
    with pytest.raises(
        InvalidSpec, match=r"spec.after.when: Input should be 'Succeeded', 'Failed' or 'Finished'"
    ):
        build_manifest(
            name="x", namespace="n", call=MAIL, when={"after": {"name": "p", "when": "Later"}}
        )


def test_duration_strings_pass_through_for_the_api_server() -> None:
    # "0s" is refused by the API server's CEL rule (tested in integration), not here.
    manifest = build_manifest(name="x", namespace="n", call=MAIL, timeout="0s")
    assert manifest["spec"]["timeout"] == "0s"
    assert duration_text(timedelta(seconds=90), "delay") == "1m30s"
    with pytest.raises(InvalidSpec, match="must not be negative"):
        duration_text(timedelta(seconds=-1), "delay")


def test_naive_datetime_is_refused() -> None:
    with pytest.raises(InvalidSpec, match="aware datetime"):
        rfc3339(datetime(2030, 1, 1))
    assert rfc3339(datetime(2030, 1, 1, tzinfo=UTC)) == "2030-01-01T00:00:00Z"


@pytest.mark.parametrize(
    ("handler", "expected"),
    [
        ("mail.send", "mail-send"),
        ("notifications.send_to_user", "notifications-send-to-user"),
        ("pkg.module:Class.method", "pkg-module-class-method"),
        ("a_very_long_module_name.with_a_long_function_name", "a-very-long-module-name-with"),
        ("_", "job"),
        ("x" * 80, "x" * 30),
    ],
)
def test_slug(handler: str, expected: str) -> None:
    assert slug(handler) == expected
    assert len(slug(handler)) <= 30


def test_generated_names_are_valid_and_leave_room_for_runs() -> None:
    names = {generate_name("notifications.send_to_user_with_a_long_name") for _ in range(200)}
    # 27^5 suffixes: two of 200 names coincide in about one run of 400, as generateName's
    # would; the API server's AlreadyExists tells the client to draw again.
    assert len(names) >= 198
    for name in names:
        assert re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", name)
        assert len(name) <= MAX_NAME_LENGTH
        # the operator's Job names: <name>-<run>, and a CronJob's Jobs: <name>-<11 digits>
        assert len(f"{name}-99999") <= 63 and len(f"{name}-{'9' * 11}") <= 63
    assert re.fullmatch(r"mail-send-[bcdfghjklmnpqrstvwxz2456789]{5}", generate_name("mail.send"))


@pytest.mark.parametrize("name", ["Bad_Name", "-x", "x-", "a" * 53, "", "a.b"])
def test_invalid_names_are_refused(name: str) -> None:
    with pytest.raises(InvalidSpec, match="is not valid"):
        check_name(name)


def test_job_info_reads_an_object() -> None:
    obj = {
        "apiVersion": "backgroundjobs.dev/v1alpha1",
        "kind": "BackgroundJob",
        "metadata": {
            "name": "r",
            "namespace": "shop",
            "creationTimestamp": "2026-01-01T00:00:00Z",
            "uid": "u1",
        },
        "spec": {"handler": "report.generate", "args": [7], "after": {"name": "p"}},
        "status": {
            "type": "Continuation",
            "phase": "Succeeded",
            "runs": 2,
            "jobName": "r-2",
            "result": {"path": "/r.pdf"},
            "finishedAt": "2026-01-01T00:00:03Z",
            "conditions": [
                {
                    "type": "Succeeded",
                    "status": "True",
                    "reason": "Completed",
                    "lastTransitionTime": "2026-01-01T00:00:03Z",
                },
                {"type": "Broken"},
            ],
        },
    }
    info = JobInfo.from_object(obj)
    assert (info.name, info.namespace, info.type, info.phase) == (
        "r",
        "shop",
        "Continuation",
        "Succeeded",
    )
    assert (info.parent, info.parent_when, info.runs, info.job_name) == ("p", "Succeeded", 2, "r-2")
    assert info.result == {"path": "/r.pdf"} and info.finished and info.succeeded
    assert info.finished_at == datetime(2026, 1, 1, 0, 0, 3, tzinfo=UTC)
    assert [c.type for c in info.conditions] == ["Succeeded"]
    cond = info.condition("Succeeded")
    assert cond is not None and cond.reason == "Completed"
    assert info.raw is obj


def test_job_info_before_the_operator_saw_it() -> None:
    info = JobInfo.from_object(
        {"metadata": {"name": "x"}, "spec": {"handler": "h", "schedule": "@daily"}}
    )
    assert info.type == "Recurring" and info.phase is None and not info.finished and info.runs == 0
