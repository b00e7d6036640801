"""The Jobs and CronJobs a BackgroundJob becomes: names, labels, owners, env, policies, merge."""

from __future__ import annotations

import copy
import json
import re
from typing import Any

import pytest

from backgroundjobs.api import constants as c
from backgroundjobs.api.models import BackgroundJobSpec
from backgroundjobs.controller import builders
from backgroundjobs.controller.settings import QueueConfig, Settings

pytestmark = pytest.mark.unit

Body = dict[str, Any]
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
SETTINGS = Settings(
    default_image="example.com/handlers:1",
    queues={"critical": QueueConfig(priority_class_name="high", max_concurrency=5)},
)
UID = "1f0e2d3c-0000-4000-8000-000000000001"


def bgj(name: str = "send-mail", namespace: str = "shop", **spec: Any) -> Body:
    return {
        "apiVersion": c.API_VERSION,
        "kind": c.KIND,
        "metadata": {"name": name, "namespace": namespace, "uid": UID, "generation": 1},
        "spec": {"handler": "mail.send", **spec},
    }


def parsed(body: Body) -> BackgroundJobSpec:
    return BackgroundJobSpec.model_validate(body["spec"])


def job_for(body: Body, run: int = 1, settings: Settings = SETTINGS, **kw: Any) -> Body:
    return builders.build_job(body, parsed(body), settings, run, **kw)


def env_of(container: Body) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container.get("env") or []}


def handler_container(job: Body) -> Body:
    containers = job["spec"]["template"]["spec"]["containers"]
    handlers = [x for x in containers if x["name"] == "handler"]
    assert len(handlers) == 1
    return handlers[0]  # type: ignore[no-any-return]


# ------------------------------------------------------------------ names


def test_job_name_is_name_dash_run() -> None:
    assert builders.job_name("send-mail", 1) == "send-mail-1"
    assert builders.job_name("send-mail", 12) == "send-mail-12"


@pytest.mark.parametrize("length", [55, 61, 62, 63, 100, 253])
def test_long_job_names_are_cut_with_a_hash(length: int) -> None:
    name = ("a" * 30 + "-b.c" * 60)[: length - 1] + "z"
    assert DNS_SUBDOMAIN.match(name)
    for run in (1, 9, 10, 12345):
        got = builders.job_name(name, run)
        assert len(got) <= 63
        assert got.endswith(f"-{run}")
        assert DNS_SUBDOMAIN.match(got), got
        assert got == builders.job_name(name, run)  # deterministic
        if len(name) + len(f"-{run}") <= 63:
            assert got == f"{name}-{run}"


def test_long_names_sharing_a_prefix_get_different_job_names() -> None:
    a = "x" * 70 + "-first"
    b = "x" * 70 + "-second"
    assert builders.job_name(a, 1) != builders.job_name(b, 1)
    assert builders.cronjob_name(a) != builders.cronjob_name(b)
    assert builders.job_name(a, 1) != builders.job_name(a, 2)


def test_cronjob_name_leaves_room_for_the_cronjob_controller_suffix() -> None:
    assert builders.cronjob_name("cleanup") == "cleanup"
    long = "c" * 52
    assert builders.cronjob_name(long) == long
    cut = builders.cronjob_name("c" * 53)
    assert len(cut) <= 52
    assert DNS_LABEL.match(cut)
    # the controller names a scheduled Job "<cronjob>-<minutes since epoch>": 11 chars more
    assert len(builders.cronjob_name("z" * 200) + "-1234567890") <= 63


def test_triggered_job_name_is_deterministic_per_value() -> None:
    a1 = builders.triggered_job_name("cleanup", "2030-01-01T00:00:00Z")
    a2 = builders.triggered_job_name("cleanup", "2030-01-01T00:00:00Z")
    b = builders.triggered_job_name("cleanup", "2030-01-01T00:00:01Z")
    assert a1 == a2
    assert a1 != b
    assert a1.startswith("cleanup-t")
    long = builders.triggered_job_name("q" * 253, "v")
    assert len(long) <= 63
    assert DNS_LABEL.match(long)


# ------------------------------------------------------------------ the Job


@pytest.mark.parametrize(
    ("extra", "job_type"),
    [
        ({}, "Immediate"),
        ({"delay": "5m"}, "Delayed"),
        ({"runAt": "2030-01-01T00:00:00Z"}, "Delayed"),
        ({"after": {"name": "parent"}}, "Continuation"),
    ],
)
def test_job_metadata_for_each_type(extra: Body, job_type: str) -> None:
    body = bgj(**extra)
    job = job_for(body, run=3)
    assert job["apiVersion"] == "batch/v1"
    assert job["kind"] == "Job"
    meta = job["metadata"]
    assert meta["name"] == "send-mail-3"
    assert meta["namespace"] == "shop"
    assert meta["labels"] == {
        "backgroundjobs.dev/name": "send-mail",
        "backgroundjobs.dev/type": job_type,
        "backgroundjobs.dev/queue": "default",
        "backgroundjobs.dev/run": "3",
        "app.kubernetes.io/managed-by": "backgroundjobs",
    }
    assert meta["ownerReferences"] == [
        {
            "apiVersion": "backgroundjobs.dev/v1alpha1",
            "kind": "BackgroundJob",
            "name": "send-mail",
            "uid": UID,
            "controller": True,
            "blockOwnerDeletion": True,
        }
    ]
    pod_labels = job["spec"]["template"]["metadata"]["labels"]
    assert pod_labels["backgroundjobs.dev/type"] == job_type
    assert pod_labels["backgroundjobs.dev/run"] == "3"


def test_label_value_of_a_long_name_fits() -> None:
    name = "n" * 100
    job = job_for(bgj(name=name))
    value = job["metadata"]["labels"]["backgroundjobs.dev/name"]
    assert len(value) <= 63
    assert re.match(r"^[a-z0-9A-Z]([-a-zA-Z0-9_.]*[a-zA-Z0-9])?$", value)
    assert value == job_for(bgj(name=name))["metadata"]["labels"]["backgroundjobs.dev/name"]


def test_handler_container_env_and_image() -> None:
    body = bgj(args=["a@b.c", 2], kwargs={"subject": "Hi", "n": [1, None]})
    job = job_for(body, run=2)
    container = handler_container(job)
    assert container["image"] == "example.com/handlers:1"  # settings.defaultImage
    env = env_of(container)
    assert env["BACKGROUNDJOBS_HANDLER"] == "mail.send"
    assert json.loads(env["BACKGROUNDJOBS_ARGS"]) == ["a@b.c", 2]
    assert json.loads(env["BACKGROUNDJOBS_KWARGS"]) == {"subject": "Hi", "n": [1, None]}
    assert env["BACKGROUNDJOBS_NAME"] == "send-mail"
    assert env["BACKGROUNDJOBS_NAMESPACE"] == "shop"
    assert env["BACKGROUNDJOBS_RUN"] == "2"
    assert "BACKGROUNDJOBS_PARENT" not in env
    # The run's Job, from the label the Job controller puts on its pods (the downward API).
    job_ref = env.pop("BACKGROUNDJOBS_JOB")
    assert job_ref == {"fieldRef": {"fieldPath": "metadata.labels['batch.kubernetes.io/job-name']"}}
    assert all(isinstance(v, str) for v in env.values())
    assert container["terminationMessagePolicy"] == "File"


def test_image_from_spec_wins_over_default() -> None:
    assert handler_container(job_for(bgj(image="my/img:3")))["image"] == "my/img:3"


def test_empty_args_and_kwargs_are_json() -> None:
    env = env_of(handler_container(job_for(bgj())))
    assert env["BACKGROUNDJOBS_ARGS"] == "[]"
    assert env["BACKGROUNDJOBS_KWARGS"] == "{}"


def test_continuation_gets_parent_env() -> None:
    body = bgj(after={"name": "parent"})
    job = job_for(body, parent=("parent", {"count": 3, "ok": True}))
    env = env_of(handler_container(job))
    assert env["BACKGROUNDJOBS_PARENT"] == "parent"
    assert json.loads(env["BACKGROUNDJOBS_PARENT_RESULT"]) == {"count": 3, "ok": True}
    none_result = env_of(handler_container(job_for(body, parent=("parent", None))))
    assert none_result["BACKGROUNDJOBS_PARENT_RESULT"] == "null"


def test_retries_failure_policy_and_restart_policy() -> None:
    job = job_for(bgj(retries=7, nonRetryableExitCodes=[5, 2, 5]))
    spec = job["spec"]
    assert spec["backoffLimit"] == 7
    assert spec["template"]["spec"]["restartPolicy"] == "Never"
    rules = spec["podFailurePolicy"]["rules"]
    assert rules[0] == {
        "action": "FailJob",
        "onExitCodes": {"containerName": "handler", "operator": "In", "values": [2, 5]},
    }
    assert {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget"}]} in rules
    assert "activeDeadlineSeconds" not in spec


def test_default_retries_and_exit_codes() -> None:
    spec = job_for(bgj())["spec"]
    assert spec["backoffLimit"] == 3
    fail = [r for r in spec["podFailurePolicy"]["rules"] if r["action"] == "FailJob"]
    assert fail[0]["onExitCodes"]["values"] == [2]


def test_no_non_retryable_codes_keeps_only_the_disruption_rule() -> None:
    rules = job_for(bgj(nonRetryableExitCodes=[]))["spec"]["podFailurePolicy"]["rules"]
    assert rules == [{"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget"}]}]


@pytest.mark.parametrize(("timeout", "seconds"), [("30m", 1800), ("1h30m", 5400), ("1s", 1)])
def test_timeout_is_active_deadline(timeout: str, seconds: int) -> None:
    assert job_for(bgj(timeout=timeout))["spec"]["activeDeadlineSeconds"] == seconds


def test_restart_policy_cannot_be_overridden() -> None:
    body = bgj(podTemplate={"spec": {"restartPolicy": "OnFailure"}})
    assert job_for(body)["spec"]["template"]["spec"]["restartPolicy"] == "Never"


def test_queue_maps_to_priority_class() -> None:
    job = job_for(bgj(queue="critical"))
    assert job["spec"]["template"]["spec"]["priorityClassName"] == "high"
    assert job["metadata"]["labels"]["backgroundjobs.dev/queue"] == "critical"
    plain = job_for(bgj(queue="bulk"))
    assert "priorityClassName" not in plain["spec"]["template"]["spec"]
    own = job_for(bgj(queue="critical", podTemplate={"spec": {"priorityClassName": "mine"}}))
    assert own["spec"]["template"]["spec"]["priorityClassName"] == "mine"


# ------------------------------------------------------------------ podTemplate merge

POD_TEMPLATE: Body = {
    "metadata": {
        "labels": {"team": "shop", "backgroundjobs.dev/name": "spoofed"},
        "annotations": {"prometheus.io/scrape": "false"},
    },
    "spec": {
        "serviceAccountName": "mailer",
        "nodeSelector": {"pool": "batch"},
        "tolerations": [{"key": "batch", "operator": "Exists", "effect": "NoSchedule"}],
        "volumes": [{"name": "cfg", "configMap": {"name": "mail-config"}}],
        "containers": [
            {
                "name": "handler",
                "image": "ignored/image:0",
                "env": [
                    {"name": "SMTP_HOST", "value": "smtp.local"},
                    {"name": "BACKGROUNDJOBS_HANDLER", "value": "evil.handler"},
                    {"name": "BACKGROUNDJOBS_ARGS", "value": "[666]"},
                    {
                        "name": "PASSWORD",
                        "valueFrom": {"secretKeyRef": {"name": "smtp", "key": "password"}},
                    },
                ],
                "resources": {"limits": {"memory": "256Mi"}, "requests": {"cpu": "100m"}},
                "volumeMounts": [{"name": "cfg", "mountPath": "/etc/mail"}],
                "securityContext": {"runAsNonRoot": True, "readOnlyRootFilesystem": True},
            },
            {"name": "sidecar", "image": "proxy:1", "args": ["--port", "15000"]},
        ],
    },
}


def test_pod_template_merge() -> None:
    body = bgj(args=[1], podTemplate=copy.deepcopy(POD_TEMPLATE))
    before = copy.deepcopy(body)
    job = job_for(body)
    tpl = job["spec"]["template"]
    # metadata: user labels and annotations kept; ours win
    assert tpl["metadata"]["labels"]["team"] == "shop"
    assert tpl["metadata"]["labels"]["backgroundjobs.dev/name"] == "send-mail"
    assert tpl["metadata"]["annotations"] == {"prometheus.io/scrape": "false"}
    pod = tpl["spec"]
    assert pod["serviceAccountName"] == "mailer"
    assert pod["nodeSelector"] == {"pool": "batch"}
    assert pod["tolerations"] == POD_TEMPLATE["spec"]["tolerations"]
    assert pod["volumes"] == POD_TEMPLATE["spec"]["volumes"]
    # the handler container first, then the others as given
    assert [x["name"] for x in pod["containers"]] == ["handler", "sidecar"]
    assert pod["containers"][1] == POD_TEMPLATE["spec"]["containers"][1]
    handler = pod["containers"][0]
    assert handler["image"] == "example.com/handlers:1"
    assert handler["resources"] == {"limits": {"memory": "256Mi"}, "requests": {"cpu": "100m"}}
    assert handler["volumeMounts"] == [{"name": "cfg", "mountPath": "/etc/mail"}]
    assert handler["securityContext"] == {"runAsNonRoot": True, "readOnlyRootFilesystem": True}
    env = env_of(handler)
    assert env["SMTP_HOST"] == "smtp.local"
    assert env["PASSWORD"] == {"secretKeyRef": {"name": "smtp", "key": "password"}}
    # ours cannot be overridden, and appear exactly once
    assert env["BACKGROUNDJOBS_HANDLER"] == "mail.send"
    assert env["BACKGROUNDJOBS_ARGS"] == "[1]"
    names = [e["name"] for e in handler["env"]]
    assert len(names) == len(set(names))
    # the BackgroundJob itself is not modified
    assert body == before


def test_pod_template_without_handler_container() -> None:
    body = bgj(podTemplate={"spec": {"containers": [{"name": "sidecar", "image": "s:1"}]}})
    pod = job_for(body)["spec"]["template"]["spec"]
    assert [x["name"] for x in pod["containers"]] == ["handler", "sidecar"]
    assert set(env_of(pod["containers"][0])) == {
        "BACKGROUNDJOBS_HANDLER",
        "BACKGROUNDJOBS_ARGS",
        "BACKGROUNDJOBS_KWARGS",
        "BACKGROUNDJOBS_NAME",
        "BACKGROUNDJOBS_NAMESPACE",
        "BACKGROUNDJOBS_RUN",
        "BACKGROUNDJOBS_JOB",
    }


RESTRICTED = {
    "runAsNonRoot": True,
    "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]},
    "seccompProfile": {"type": "RuntimeDefault"},
}


@pytest.mark.parametrize(
    "pod_template",
    [None, {"spec": {"containers": [{"name": "handler", "resources": {"limits": {"cpu": "1"}}}]}}],
)
def test_the_handler_runs_under_the_restricted_standard_by_default(pod_template: Any) -> None:
    body = bgj(podTemplate=pod_template) if pod_template else bgj()
    assert handler_container(job_for(body))["securityContext"] == RESTRICTED


def test_the_pods_own_security_context_is_not_overridden_by_the_defaults() -> None:
    pod_security = {"runAsNonRoot": False, "seccompProfile": {"type": "Unconfined"}}
    body = bgj(podTemplate={"spec": {"securityContext": pod_security}})
    pod = job_for(body)["spec"]["template"]["spec"]
    assert pod["securityContext"] == pod_security
    assert pod["containers"][0]["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
    }


def test_builders_are_deterministic() -> None:
    body = bgj(podTemplate=copy.deepcopy(POD_TEMPLATE), kwargs={"b": 1, "a": 2})
    assert job_for(body) == job_for(copy.deepcopy(body))


# ------------------------------------------------------------------ the CronJob


def recurring(**spec: Any) -> Body:
    return bgj(name="cleanup", schedule="0 2 * * *", **spec)


def cronjob_for(body: Body, settings: Settings = SETTINGS) -> Body:
    return builders.build_cronjob(body, parsed(body), settings)


def spec_hash(cronjob: Body) -> str:
    return cronjob["metadata"]["annotations"]["backgroundjobs.dev/spec-hash"]  # type: ignore[no-any-return]


def test_cronjob_defaults() -> None:
    cj = cronjob_for(recurring())
    assert cj["apiVersion"] == "batch/v1"
    assert cj["kind"] == "CronJob"
    assert cj["metadata"]["name"] == "cleanup"
    assert cj["metadata"]["namespace"] == "shop"
    assert cj["metadata"]["ownerReferences"][0]["uid"] == UID
    assert cj["metadata"]["ownerReferences"][0]["controller"] is True
    assert cj["metadata"]["labels"]["backgroundjobs.dev/type"] == "Recurring"
    s = cj["spec"]
    assert s["schedule"] == "0 2 * * *"
    assert s["timeZone"] == "UTC"
    assert s["concurrencyPolicy"] == "Forbid"
    assert s["suspend"] is False
    assert s["successfulJobsHistoryLimit"] == 3
    assert s["failedJobsHistoryLimit"] == 1
    assert "startingDeadlineSeconds" not in s
    jt = s["jobTemplate"]
    assert jt["metadata"]["labels"]["backgroundjobs.dev/name"] == "cleanup"
    assert jt["spec"]["backoffLimit"] == 3
    assert jt["spec"]["template"]["spec"]["restartPolicy"] == "Never"
    env = env_of(handler_container({"spec": jt["spec"]}))
    assert env["BACKGROUNDJOBS_NAME"] == "cleanup"
    assert env["BACKGROUNDJOBS_RUN"] == "scheduled"


def test_cronjob_from_spec() -> None:
    cj = cronjob_for(
        recurring(
            timeZone="Europe/Berlin",
            concurrencyPolicy="Replace",
            startingDeadline="5m",
            history={"succeeded": 10, "failed": 0},
            suspend=True,
            retries=0,
            timeout="1h",
        )
    )
    s = cj["spec"]
    assert s["timeZone"] == "Europe/Berlin"
    assert s["concurrencyPolicy"] == "Replace"
    assert s["startingDeadlineSeconds"] == 300
    assert s["successfulJobsHistoryLimit"] == 10
    assert s["failedJobsHistoryLimit"] == 0
    assert s["suspend"] is True
    assert s["jobTemplate"]["spec"]["backoffLimit"] == 0
    assert s["jobTemplate"]["spec"]["activeDeadlineSeconds"] == 3600


def test_long_recurring_name() -> None:
    cj = cronjob_for(bgj(name="r" * 120, schedule="@daily"))
    assert len(cj["metadata"]["name"]) <= 52


@pytest.mark.parametrize(
    "change",
    [
        {"schedule": "0 3 * * *"},
        {"timeZone": "Europe/Berlin"},
        {"concurrencyPolicy": "Allow"},
        {"startingDeadline": "1m"},
        {"history": {"succeeded": 1, "failed": 1}},
        {"suspend": True},
        {"args": [1]},
        {"kwargs": {"x": 1}},
        {"image": "other:2"},
        {"queue": "critical"},
        {"retries": 1},
        {"timeout": "5m"},
        {"nonRetryableExitCodes": [3]},
        {"podTemplate": {"metadata": {"labels": {"x": "y"}}}},
        {"handler": "other.handler"},
    ],
)
def test_spec_hash_changes_when_the_spec_changes(change: Body) -> None:
    base = recurring()
    changed = copy.deepcopy(base)
    changed["spec"].update(change)
    assert spec_hash(cronjob_for(base)) != spec_hash(cronjob_for(changed))


def test_spec_hash_is_stable_otherwise() -> None:
    base = recurring(kwargs={"a": 1, "b": 2})
    same = copy.deepcopy(base)
    same["metadata"]["generation"] = 7
    same["metadata"]["annotations"] = {"backgroundjobs.dev/trigger": "now"}
    same["metadata"]["resourceVersion"] = "999"
    same["status"] = {"phase": "Scheduled", "runs": 4}
    assert spec_hash(cronjob_for(base)) == spec_hash(cronjob_for(same))
    # explicit defaults equal implicit ones
    explicit = recurring(
        timeZone="UTC", concurrencyPolicy="Forbid", history={"succeeded": 3, "failed": 1}
    )
    assert spec_hash(cronjob_for(base)) != spec_hash(cronjob_for(explicit))  # kwargs differ
    assert spec_hash(cronjob_for(recurring())) == spec_hash(cronjob_for(explicit))


def test_triggered_job() -> None:
    body = recurring(args=["x"])
    job = builders.build_triggered_job(body, parsed(body), SETTINGS, "2030-01-01T00:00:00Z")
    again = builders.build_triggered_job(body, parsed(body), SETTINGS, "2030-01-01T00:00:00Z")
    other = builders.build_triggered_job(body, parsed(body), SETTINGS, "2030-01-02T00:00:00Z")
    assert job == again
    assert job["metadata"]["name"] != other["metadata"]["name"]
    assert job["metadata"]["name"] == builders.triggered_job_name("cleanup", "2030-01-01T00:00:00Z")
    assert job["metadata"]["labels"]["backgroundjobs.dev/run"] == "triggered"
    assert job["metadata"]["labels"]["backgroundjobs.dev/type"] == "Recurring"
    assert job["metadata"]["ownerReferences"][0]["uid"] == UID
    assert job["metadata"]["annotations"]["cronjob.kubernetes.io/instantiate"] == "manual"
    assert job["spec"]["ttlSecondsAfterFinished"] == int(SETTINGS.retention.total_seconds())
    env = env_of(handler_container(job))
    assert env["BACKGROUNDJOBS_RUN"] == "triggered"
    assert json.loads(env["BACKGROUNDJOBS_ARGS"]) == ["x"]


# ------------------------------------------------------------------ least privilege


def test_handler_pods_get_no_token_and_no_service_links_unless_asked() -> None:
    pod = job_for(bgj())["spec"]["template"]["spec"]
    assert pod["automountServiceAccountToken"] is False
    assert pod["enableServiceLinks"] is False
    # A job that names an account gets its token; what the podTemplate says stands.
    named = job_for(bgj(podTemplate={"spec": {"serviceAccountName": "mailer"}}))
    assert "automountServiceAccountToken" not in named["spec"]["template"]["spec"]
    asked = job_for(
        bgj(
            podTemplate={"spec": {"automountServiceAccountToken": True, "enableServiceLinks": True}}
        )
    )
    assert asked["spec"]["template"]["spec"]["automountServiceAccountToken"] is True
    assert asked["spec"]["template"]["spec"]["enableServiceLinks"] is True


def test_pod_template_labels_never_claim_a_job_or_a_controller() -> None:
    reserved = {
        "backgroundjobs.dev/name": "other-job",
        "backgroundjobs.dev/run": "7",
        "backgroundjobs.dev/anything": "x",
        "app.kubernetes.io/managed-by": "me",
        "batch.kubernetes.io/job-name": "other-job-1",
        "batch.kubernetes.io/controller-uid": "forged",
        "controller-uid": "forged",
        "job-name": "other-job-1",
    }
    body = bgj(podTemplate={"metadata": {"labels": {"team": "shop", **reserved}}})
    labels = job_for(body, run=2)["spec"]["template"]["metadata"]["labels"]
    assert labels == {
        "team": "shop",
        "backgroundjobs.dev/name": "send-mail",
        "backgroundjobs.dev/type": "Immediate",
        "backgroundjobs.dev/queue": "default",
        "backgroundjobs.dev/run": "2",
        "app.kubernetes.io/managed-by": "backgroundjobs",
    }


def test_kwargs_from_become_secret_references_never_values() -> None:
    body = bgj(
        kwargs={"to": "a@example.com"},
        kwargsFrom=[
            {"name": "body", "secretKeyRef": {"name": "reset-42", "key": "body"}},
            {"name": "token", "secretKeyRef": {"name": "api", "key": "token"}},
        ],
    )
    env = env_of(handler_container(job_for(body)))
    assert env["BACKGROUNDJOBS_SECRET_KWARGS"] == "body,token"
    assert env["BACKGROUNDJOBS_SECRET_KWARG_body"] == {
        "secretKeyRef": {"name": "reset-42", "key": "body"}
    }
    assert env["BACKGROUNDJOBS_SECRET_KWARG_token"] == {
        "secretKeyRef": {"name": "api", "key": "token"}
    }
    assert json.loads(env["BACKGROUNDJOBS_KWARGS"]) == {"to": "a@example.com"}
    assert "BACKGROUNDJOBS_SECRET_KWARGS" not in env_of(handler_container(job_for(bgj())))
