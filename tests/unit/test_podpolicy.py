"""The pod policy's rules as the operator checks them (no requester known): every case of
tests/policy_cases.py is refused naming the field the admission policy names; exemptions,
forbidden rules, trusted namespaces and the allow-lists act as the chart's values say."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from tests.policy_cases import ACCOUNT, CASES, SECRET, Case, with_case

from backgroundjobs.api.models import BackgroundJobSpec
from backgroundjobs.api.podpolicy import (
    RULES,
    AdmissionInForce,
    AdmissionPolicy,
    PodPolicy,
    Violation,
    admission_in_force,
    denial_message,
    offending_fields,
    violations,
)

pytestmark = pytest.mark.unit

Body = dict[str, Any]
NS = "shop"


def spec_of(case: Case | None = None, **extra: Any) -> BackgroundJobSpec:
    body: Body = {"spec": {"handler": "mail.send", **extra}}
    if case is not None:
        body = with_case(body, case)
    return BackgroundJobSpec.model_validate(body["spec"])


def test_the_cases_cover_every_rule() -> None:
    assert {case.rule for case in CASES} == set(RULES)


@pytest.mark.parametrize("case", CASES, ids=[x.name for x in CASES])
def test_each_case_is_refused_naming_its_field(case: Case) -> None:
    found = violations(spec_of(case), NS, PodPolicy(), queue_class=None)
    assert [v.rule for v in found] == [case.rule]
    (violation,) = found
    assert any(case.field in f for f in violation.fields), violation.fields
    message = denial_message(found)
    assert case.field in message and f"(rule {case.rule})" in message
    assert "docs/SECURITY.md" in message


def test_a_plain_job_breaks_no_rule() -> None:
    spec = spec_of(
        podTemplate={
            "metadata": {"annotations": {"example.com/team": "a"}},
            "spec": {
                "containers": [
                    {
                        "name": "handler",
                        "env": [{"name": "MODE", "value": "fast"}],
                        "envFrom": [{"configMapRef": {"name": "settings"}}],
                        "securityContext": {
                            "capabilities": {"add": ["NET_BIND_SERVICE"], "drop": ["ALL"]},
                            "privileged": False,
                        },
                    }
                ],
                "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": "d"}}],
                "hostNetwork": False,
                "automountServiceAccountToken": False,
                "nodeSelector": {"disk": "ssd"},
            },
        }
    )
    assert violations(spec, NS, PodPolicy(), queue_class=None) == []


def test_the_queues_priority_class_is_allowed_and_no_other() -> None:
    spec = spec_of(queue="critical", podTemplate={"spec": {"priorityClassName": "high"}})
    assert violations(spec, NS, PodPolicy(), queue_class="high") == []
    assert [v.rule for v in violations(spec, NS, PodPolicy(), queue_class="low")] == [
        "priorityClass"
    ]


def test_allow_lists_of_the_namespace() -> None:
    policy = PodPolicy(
        service_accounts={NS: frozenset({ACCOUNT})}, secrets={NS: frozenset({SECRET})}
    )
    by_name = {case.name: case for case in CASES}
    for name in ("service-account", "secret-env", "secret-env-from", "secret-volume"):
        assert violations(spec_of(by_name[name]), NS, policy, None) == [], name
        assert violations(spec_of(by_name[name]), "other", policy, None) != [], name
    # A token of the default account is asked for, and default is not listed.
    assert [v.rule for v in violations(spec_of(by_name["token"]), NS, policy, None)] == [
        "serviceAccount"
    ]
    with_default = PodPolicy(service_accounts={NS: frozenset({"default"})})
    assert violations(spec_of(by_name["token"]), NS, with_default, None) == []


def test_exempt_forbidden_and_trusted_namespaces() -> None:
    spec = spec_of(
        podTemplate={
            "spec": {
                "nodeName": "n1",
                "containers": [{"name": "handler", "securityContext": {"privileged": True}}],
            }
        },
    )
    assert {v.rule for v in violations(spec, NS, PodPolicy(), None)} == {"nodeName", "privileged"}
    exempt = PodPolicy(exempt=frozenset({"nodeName"}))
    assert [v.rule for v in violations(spec, NS, exempt, None)] == ["privileged"]
    trusted = PodPolicy(trusted_namespaces=frozenset({NS}), forbidden=frozenset({"privileged"}))
    (left,) = violations(spec, NS, trusted, None)
    assert left == Violation(
        "privileged",
        ("spec.podTemplate.spec.containers[name=handler].securityContext.privileged",),
        forbidden=True,
    )
    assert "refused to everyone" in denial_message([left])
    assert {v.rule for v in violations(spec, "elsewhere", trusted, None)} == {
        "nodeName",
        "privileged",
    }


def test_every_offending_field_is_named_across_containers() -> None:
    spec = spec_of(
        podTemplate={
            "spec": {
                "initContainers": [
                    {"name": "setup", "securityContext": {"privileged": True}},
                ],
                "containers": [
                    {
                        "name": "handler",
                        "securityContext": {"capabilities": {"add": ["SYS_ADMIN"]}},
                    },
                    {"name": "side", "envFrom": [{"secretRef": {"name": "a"}}]},
                ],
                "volumes": [
                    {"name": "p", "projected": {"sources": [{"secret": {"name": "b"}}]}},
                    {"name": "h", "hostPath": {"path": "/"}},
                ],
            }
        },
        kwargsFrom=[{"name": "token", "secretKeyRef": {"name": "c", "key": "k"}}],
    )
    found = offending_fields(spec, None)
    pod = "spec.podTemplate.spec"
    assert found["privileged"] == [f"{pod}.initContainers[name=setup].securityContext.privileged"]
    assert found["capabilities"] == [
        f"{pod}.containers[name=handler].securityContext.capabilities.add"
    ]
    assert found["extraContainers"] == [
        f"{pod}.containers[name=side]",
        f"{pod}.initContainers[name=setup]",
    ]
    assert found["hostPath"] == [f"{pod}.volumes[name=h].hostPath"]
    assert found["secrets"] == [
        "spec.kwargsFrom[name=token].secretKeyRef (Secret c)",
        f"{pod}.containers[name=side].envFrom.secretRef (Secret a)",
        f"{pod}.volumes[name=p].projected.sources.secret (Secret b)",
    ]


def test_settings_from_the_charts_json() -> None:
    text = json.dumps(
        {
            "admission": {"policy": "p", "binding": "b"},
            "exempt": ["podLabels"],
            "forbidden": ["privileged"],
            "trustedNamespaces": ["ci"],
            "serviceAccounts": {"shop": ["mailer"]},
            "secrets": {"shop": ["smtp"]},
        }
    )
    assert PodPolicy.from_json(text) == PodPolicy(
        exempt=frozenset({"podLabels"}),
        forbidden=frozenset({"privileged"}),
        trusted_namespaces=frozenset({"ci"}),
        service_accounts={"shop": frozenset({"mailer"})},
        secrets={"shop": frozenset({"smtp"})},
        admission=AdmissionPolicy("p", "b"),
    )
    assert PodPolicy.from_json("") == PodPolicy()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{", "BACKGROUNDJOBS_POD_POLICY is not valid JSON"),
        ("[]", "must be a JSON object"),
        ('{"exempt": ["root"]}', "BACKGROUNDJOBS_POD_POLICY.exempt: unknown rules ['root']"),
        ('{"forbidden": "privileged"}', ".forbidden must be a list of names"),
        ('{"secrets": ["smtp"]}', ".secrets must map namespaces to lists of names"),
        ('{"secrets": {"shop": "smtp"}}', ".secrets.shop must be a list of names"),
        ('{"admission": {"policy": "p"}}', ".admission must be"),
        ('{"trusted": []}', "unknown keys ['trusted']"),
    ],
)
def test_bad_settings_are_refused_naming_them(text: str, message: str) -> None:
    with pytest.raises(ValueError, match="BACKGROUNDJOBS_POD_POLICY") as refused:
        PodPolicy.from_json(text)
    assert message in str(refused.value)


def vap(created: str = "2030-01-01T10:00:00Z", **spec: Any) -> Body:
    return {"metadata": {"creationTimestamp": created}, "spec": {"failurePolicy": "Fail", **spec}}


def binding(created: str = "2030-01-01T11:00:00Z", **spec: Any) -> Body:
    out = {"policyName": "bgj", "validationActions": ["Deny"], **spec}
    return {"metadata": {"creationTimestamp": created}, "spec": out}


def test_the_admission_policy_is_in_force_only_when_it_denies_and_fails_closed() -> None:
    expected = AdmissionPolicy("bgj", "bgj")
    in_force = admission_in_force(expected, vap(), binding())
    assert in_force.since is not None and in_force.since.hour == 11  # the later of the two
    assert in_force.namespaces is None
    since = in_force.since
    assert in_force.vouches_for(NS, since + timedelta(seconds=10))
    assert not in_force.vouches_for(NS, since + timedelta(seconds=9))
    assert not in_force.vouches_for(NS, None)
    for policy, bound in [
        (None, binding()),
        (vap(), None),
        (vap(failurePolicy="Ignore"), binding()),
        (vap(), binding(validationActions=["Warn", "Audit"])),
        (vap(), binding(policyName="another")),
        (vap(), binding(paramRef={"name": "x"})),
        (vap(), binding(matchResources={"objectSelector": {"matchLabels": {"a": "b"}}})),
        (vap(), binding(matchResources={"namespaceSelector": {"matchLabels": {"a": "b"}}})),
    ]:
        assert admission_in_force(expected, policy, bound) == AdmissionInForce(None)


def test_the_namespaces_a_binding_covers() -> None:
    selector = {
        "matchExpressions": [
            {"key": "kubernetes.io/metadata.name", "operator": "In", "values": ["a", "b"]}
        ]
    }
    bound = binding(matchResources={"namespaceSelector": selector, "matchPolicy": "Equivalent"})
    in_force = admission_in_force(AdmissionPolicy("bgj", "bgj"), vap(), bound)
    assert in_force.namespaces == frozenset({"a", "b"})
    assert in_force.since is not None
    late = in_force.since + timedelta(minutes=1)
    assert in_force.vouches_for("a", late) and not in_force.vouches_for("c", late)
