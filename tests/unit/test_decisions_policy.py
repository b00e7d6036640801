"""The operator's check of the pod policy in ``decide``: Failed/PolicyDenied, nothing created,
unless the administrator allowed it or the admission policy vouched for the job."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from tests.unit.test_decisions import SETTINGS, T0, applied, bgj, decide_at

from backgroundjobs.api.podpolicy import AdmissionInForce, AdmissionPolicy, PodPolicy
from backgroundjobs.controller.decisions import Plan
from backgroundjobs.controller.settings import Settings

pytestmark = pytest.mark.unit

AS_MAILER = {"spec": {"serviceAccountName": "mailer", "hostNetwork": True}}
ADMISSION = AdmissionPolicy("bgj", "bgj")


def settings(**policy: Any) -> Settings:
    return Settings(default_image=SETTINGS.default_image, pod_policy=PodPolicy(**policy))


def failed(plan: Plan) -> dict[str, Any]:
    return next(x for x in plan.status["conditions"] if x["type"] == "Failed")


def test_a_job_asking_for_another_identity_is_denied_and_nothing_created() -> None:
    plan = decide_at(bgj(podTemplate=AS_MAILER))
    assert plan.create == [] and plan.admission is None
    assert plan.status["phase"] == "Failed"
    condition = failed(plan)
    assert condition["reason"] == "PolicyDenied"
    for field in ("spec.podTemplate.spec.serviceAccountName", "spec.podTemplate.spec.hostNetwork"):
        assert field in condition["message"]
    assert "(rule serviceAccount)" in condition["message"]
    assert [(e.type, e.reason) for e in plan.events] == [("Warning", "PolicyDenied")]
    assert plan.requeue_at == T0 + SETTINGS.retention  # a finished job: retention applies


def test_a_denied_job_stays_denied_quietly_until_its_spec_changes() -> None:
    body = bgj(podTemplate=AS_MAILER)
    denied = applied(body, decide_at(body))
    again = decide_at(denied, now=T0 + timedelta(minutes=1))
    assert again.create == [] and again.events == []
    assert failed(again)["reason"] == "PolicyDenied"
    # A requeue does not run the same spec either.
    requeued = decide_at(
        applied(denied, again, annotations={"backgroundjobs.dev/requeue": "1"}),
        now=T0 + timedelta(minutes=2),
    )
    assert requeued.create == []
    # The spec fixed (a new generation): the job runs.
    fixed = applied(denied, again, generation=2)
    fixed["spec"].pop("podTemplate")
    assert [o["kind"] for o in decide_at(fixed, now=T0 + timedelta(minutes=3)).create] == ["Job"]


def test_the_allow_lists_and_the_switch_let_it_run() -> None:
    mailer = {"spec": {"serviceAccountName": "mailer"}}
    listed = settings(service_accounts={"shop": frozenset({"mailer"})})
    assert [o["kind"] for o in decide_at(bgj(podTemplate=mailer), settings=listed).create] == [
        "Job"
    ]
    # The list is per namespace.
    elsewhere = settings(service_accounts={"other": frozenset({"mailer"})})
    assert decide_at(bgj(podTemplate=mailer), settings=elsewhere).create == []
    off = Settings(default_image=SETTINGS.default_image, pod_policy_check=False)
    assert decide_at(bgj(podTemplate=AS_MAILER), settings=off).create != []


def test_a_recurring_job_gets_no_cronjob() -> None:
    plan = decide_at(bgj(schedule="0 2 * * *", podTemplate=AS_MAILER))
    assert plan.create == [] and failed(plan)["reason"] == "PolicyDenied"
    assert "finishedAt" not in plan.status


def test_a_recurring_job_whose_update_is_denied_holds_its_cronjob_until_fixed() -> None:
    """The earlier spec's CronJob must not go on running while the status says Failed."""
    allowed = bgj(schedule="0 2 * * *")
    cronjob = decide_at(allowed).create[0]
    assert cronjob["kind"] == "CronJob" and not cronjob["spec"].get("suspend")
    denied = bgj(schedule="0 2 * * *", podTemplate=AS_MAILER, generation=2)
    plan = decide_at(denied, cronjob=cronjob)
    assert failed(plan)["reason"] == "PolicyDenied"
    held = plan.replace_cronjob
    assert held is not None and held["spec"]["suspend"] is True
    assert held["spec"]["schedule"] == cronjob["spec"]["schedule"]
    # Held: asked once, not again.
    assert decide_at(applied(denied, plan), cronjob=held).replace_cronjob is None
    # The earlier spec back (a new generation): the CronJob runs it again, unsuspended.
    back = applied(denied, plan, generation=3)
    back["spec"].pop("podTemplate")
    resumed = decide_at(back, T0 + timedelta(minutes=1), cronjob=held).replace_cronjob
    assert resumed is not None and not resumed["spec"].get("suspend")


def test_the_admission_policy_vouches_for_jobs_created_while_it_denied() -> None:
    trusting = settings(admission=ADMISSION)
    body = bgj(podTemplate=AS_MAILER)
    asks = decide_at(body, settings=trusting)
    assert asks.need_pod_policy_admission and asks.create == [] and asks.status == {}
    in_force = AdmissionInForce(T0 - timedelta(minutes=5))
    plan = decide_at(body, settings=trusting, pod_policy_admission=in_force)
    assert [o["kind"] for o in plan.create] == ["Job"]
    # Created before the binding settled, or in a namespace it does not cover: not vouched.
    for late in (
        AdmissionInForce(T0 - timedelta(seconds=5)),
        AdmissionInForce(T0 - timedelta(minutes=5), frozenset({"other"})),
        AdmissionInForce(None),
    ):
        plan = decide_at(body, settings=trusting, pod_policy_admission=late)
        assert plan.create == [] and failed(plan)["reason"] == "PolicyDenied"


def test_what_is_forbidden_to_everyone_is_denied_even_when_vouched_for() -> None:
    strict = settings(admission=ADMISSION, forbidden=frozenset({"hostNamespaces"}))
    in_force = AdmissionInForce(T0 - timedelta(minutes=5))
    plan = decide_at(bgj(podTemplate=AS_MAILER), settings=strict, pod_policy_admission=in_force)
    message = failed(plan)["message"]
    assert plan.create == [] and "hostNetwork (rule hostNamespaces)" in message
    assert "serviceAccount" not in message  # vouched for
    # Only forbidden fields: the policy is not even read.
    alone = decide_at(bgj(podTemplate={"spec": {"hostNetwork": True}}), settings=strict)
    assert not alone.need_pod_policy_admission and alone.create == []


def test_a_plain_job_never_asks_for_the_admission_policy() -> None:
    plan = decide_at(bgj(), settings=settings(admission=ADMISSION))
    assert not plan.need_pod_policy_admission
    assert [o["kind"] for o in plan.create] == ["Job"]
