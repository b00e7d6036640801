"""The pod policy: which fields of a BackgroundJob change who or where its pod runs, or which
Secrets it reads, and who may ask for them (docs/SECURITY.md).

The chart's ValidatingAdmissionPolicy (``templates/_policy.tpl``) checks these rules at
admission, where the requester is known: whoever may create Jobs in the namespace (or, for a
Secret, may get it) passes. The operator checks them with :func:`violations` for jobs that
policy did not admit, where no requester is known: only what the administrator allowed passes.
Rule names, field paths and the allow-lists are the same on both sides.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from backgroundjobs.api.models import BackgroundJobSpec
from backgroundjobs.api.times import parse_time

RULES = (
    "serviceAccount",
    "hostNamespaces",
    "hostPath",
    "privileged",
    "capabilities",
    "nodeName",
    "extraContainers",
    "priorityClass",
    "podLabels",
    "secrets",
)
HANDLER = "handler"
POD = "spec.podTemplate.spec"
_CONTAINER_KINDS = ("containers", "initContainers", "ephemeralContainers")
_HOST_NAMESPACES = ("hostNetwork", "hostPID", "hostIPC")
_HARMLESS_CAPABILITIES = frozenset({"NET_BIND_SERVICE"})
ENV_POD_POLICY = "BACKGROUNDJOBS_POD_POLICY"
# How long after its binding was made the policy is trusted to have checked a new object: the
# API server loads a new policy within a moment, and a job created before was never checked.
ADMISSION_SETTLE = timedelta(seconds=10)
_NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"
_RULE_KEYS = frozenset({"resourceRules", "excludeResourceRules"})

Body = dict[str, Any]


@dataclass(frozen=True)
class AdmissionPolicy:
    """The chart's ValidatingAdmissionPolicy and binding, whose admission the operator trusts."""

    policy: str
    binding: str


@dataclass(frozen=True)
class PodPolicy:
    """The administrator's settings of the rules (the chart's ``podPolicy`` values)."""

    exempt: frozenset[str] = frozenset()
    """Rules enforced for nobody."""
    forbidden: frozenset[str] = frozenset()
    """Rules refused to everyone."""
    trusted_namespaces: frozenset[str] = frozenset()
    """Namespaces whose BackgroundJob creators pass every rule that is not forbidden."""
    service_accounts: Mapping[str, frozenset[str]] = field(default_factory=dict)
    """Per namespace, the ServiceAccounts anyone may give a job there."""
    secrets: Mapping[str, frozenset[str]] = field(default_factory=dict)
    """Per namespace, the Secrets anyone may pass to a job there."""
    admission: AdmissionPolicy | None = None
    """The policy that checked the requester's rights, when the chart installed one."""

    @classmethod
    def from_json(cls, text: str) -> PodPolicy:
        """The policy in ``BACKGROUNDJOBS_POD_POLICY``; a ValueError names what is wrong."""
        if not text.strip():
            return cls()
        try:
            raw = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{ENV_POD_POLICY} is not valid JSON: {exc}") from exc
        if not isinstance(raw, dict):
            raise ValueError(f"{ENV_POD_POLICY} must be a JSON object")
        known = {"exempt", "forbidden", "trustedNamespaces", "serviceAccounts", "secrets"}
        unknown = set(raw) - known - {"admission"}
        if unknown:
            raise ValueError(f"{ENV_POD_POLICY}: unknown keys {sorted(unknown)}")
        admission = raw.get("admission")
        if admission is not None and not (
            isinstance(admission, dict)
            and isinstance(admission.get("policy"), str)
            and isinstance(admission.get("binding"), str)
        ):
            raise ValueError(f'{ENV_POD_POLICY}.admission must be {{"policy": .., "binding": ..}}')
        return cls(
            exempt=_rules(raw, "exempt"),
            forbidden=_rules(raw, "forbidden"),
            trusted_namespaces=frozenset(
                _names(raw.get("trustedNamespaces", []), "trustedNamespaces")
            ),
            service_accounts=_by_namespace(raw, "serviceAccounts"),
            secrets=_by_namespace(raw, "secrets"),
            admission=AdmissionPolicy(admission["policy"], admission["binding"])
            if admission
            else None,
        )


@dataclass(frozen=True)
class AdmissionInForce:
    """Whether the chart's pod policy denies at admission, read from the policy and binding.

    ``since``: when it came in force (the later creation of the two), None when it is not
    (missing, only warning or auditing, failing open, another policy's binding).
    ``namespaces``: the namespaces the binding covers, None for all."""

    since: datetime | None
    namespaces: frozenset[str] | None = None

    def vouches_for(self, namespace: str, created: datetime | None) -> bool:
        """The policy checked the requester of an object of ``namespace`` created then."""
        if self.since is None or created is None:
            return False
        if self.namespaces is not None and namespace not in self.namespaces:
            return False
        return created >= self.since + ADMISSION_SETTLE


def admission_in_force(
    expected: AdmissionPolicy, policy: Body | None, binding: Body | None
) -> AdmissionInForce:
    """Whether the policy ``expected`` names is in force, from the objects as read (None:
    not found)."""
    if policy is None or binding is None:
        return AdmissionInForce(None)
    policy_spec = _dict(policy.get("spec"))
    binding_spec = _dict(binding.get("spec"))
    if (
        binding_spec.get("policyName") != expected.policy
        or "Deny" not in _list(binding_spec.get("validationActions"))
        or policy_spec.get("failurePolicy", "Fail") != "Fail"
        or _dict(binding_spec.get("paramRef"))
    ):
        return AdmissionInForce(None)
    created = [
        parse_time(_dict(obj.get("metadata")).get("creationTimestamp")) for obj in (policy, binding)
    ]
    if None in created:
        return AdmissionInForce(None)
    namespaces = _covered_namespaces(_dict(binding_spec.get("matchResources")))
    if namespaces == frozenset():
        return AdmissionInForce(None)
    return AdmissionInForce(max(t for t in created if t is not None), namespaces)


def _covered_namespaces(match: Body) -> frozenset[str] | None:
    """The namespaces a binding's matchResources lets through: None for all, an empty set
    for what cannot be told (any selector but the chart's list of names, or exclusions)."""
    if (
        _list(match.get("resourceRules"))
        or _list(match.get("excludeResourceRules"))
        or _dict(match.get("objectSelector"))
        or set(match) - {"namespaceSelector", "objectSelector", "matchPolicy"} - _RULE_KEYS
    ):
        return frozenset()
    selector = _dict(match.get("namespaceSelector"))
    if not selector:
        return None
    expressions = _list(selector.get("matchExpressions"))
    if selector.get("matchLabels") or len(expressions) != 1:
        return frozenset()
    only = _dict(expressions[0])
    if only.get("key") != _NAMESPACE_NAME_LABEL or only.get("operator") != "In":
        return frozenset()
    return frozenset(str(v) for v in _list(only.get("values")))


def _names(value: Any, where: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(x, str) for x in value):
        raise ValueError(f"{ENV_POD_POLICY}.{where} must be a list of names")
    return value


def _rules(raw: Body, key: str) -> frozenset[str]:
    names = _names(raw.get(key, []), key)
    unknown = sorted(set(names) - set(RULES))
    if unknown:
        raise ValueError(
            f"{ENV_POD_POLICY}.{key}: unknown rules {unknown}; rules: {', '.join(RULES)}"
        )
    return frozenset(names)


def _by_namespace(raw: Body, key: str) -> dict[str, frozenset[str]]:
    value = raw.get(key, {})
    if not isinstance(value, dict):
        raise ValueError(f"{ENV_POD_POLICY}.{key} must map namespaces to lists of names")
    return {ns: frozenset(_names(names, f"{key}.{ns}")) for ns, names in value.items()}


@dataclass(frozen=True)
class Violation:
    """One rule a job breaks, with the fields that break it."""

    rule: str
    fields: tuple[str, ...]
    forbidden: bool = False

    def where(self) -> str:
        return f"{', '.join(self.fields)} (rule {self.rule})"


def denial_message(found: list[Violation]) -> str:
    """Why the operator refuses a job that breaks the rules ``found``, naming the fields."""
    parts = []
    forbidden = [v.where() for v in found if v.forbidden]
    if forbidden:
        parts.append(
            f"{'; '.join(forbidden)}: refused to everyone by the backgroundjobs policy of this"
            " cluster"
        )
    unvouched = [v.where() for v in found if not v.forbidden]
    if unvouched:
        parts.append(
            f"{'; '.join(unvouched)}: not allowed to a job the pod policy did not admit (the"
            " operator cannot tell who asked for it): create it where the admission policy is"
            " in force as someone who may create Jobs in the namespace, or ask an administrator"
            " (podPolicy in the chart, BACKGROUNDJOBS_POD_POLICY; docs/SECURITY.md)"
        )
    return "; ".join(parts)


def violations(
    spec: BackgroundJobSpec, namespace: str, policy: PodPolicy, queue_class: str | None
) -> list[Violation]:
    """The rules ``spec`` breaks when nobody vouches for its requester: what neither the
    policy's exemptions, its trusted namespaces nor its allow-lists for ``namespace`` allow.
    ``queue_class`` is the PriorityClass of the job's queue."""
    trusted = namespace in policy.trusted_namespaces
    found = offending_fields(
        spec,
        queue_class,
        policy.service_accounts.get(namespace, frozenset()),
        policy.secrets.get(namespace, frozenset()),
    )
    out = []
    for rule in RULES:
        fields = found[rule]
        if not fields or rule in policy.exempt:
            continue
        if rule in policy.forbidden:
            out.append(Violation(rule, tuple(fields), forbidden=True))
        elif not trusted:
            out.append(Violation(rule, tuple(fields)))
    return out


def offending_fields(
    spec: BackgroundJobSpec,
    queue_class: str | None,
    allowed_accounts: frozenset[str] = frozenset(),
    allowed_secrets: frozenset[str] = frozenset(),
) -> dict[str, list[str]]:
    """Rule -> the field paths of ``spec`` it refuses to a requester with no right at all,
    the allow-lists of the job's namespace applied (the admission policy's lists, in order)."""
    template = _dict(spec.pod_template)
    pod = _dict(template.get("spec"))
    labels = _dict(_dict(template.get("metadata")).get("labels"))
    volumes = [v for v in _list(pod.get("volumes")) if isinstance(v, dict)]
    containers = list(_containers(pod))
    by_path = [(where, c) for _, where, c in containers]
    return {
        "serviceAccount": _service_account(pod, volumes, allowed_accounts),
        "hostNamespaces": [f"{POD}.{f}" for f in _HOST_NAMESPACES if pod.get(f) is True],
        "hostPath": [
            f"{POD}.volumes[name={_name(v)}].hostPath" for v in volumes if "hostPath" in v
        ],
        "privileged": _privileged(pod, by_path),
        "capabilities": [
            f"{where}.securityContext.capabilities.add"
            for where, c in by_path
            if set(_list(_dict(_dict(c.get("securityContext")).get("capabilities")).get("add")))
            - _HARMLESS_CAPABILITIES
        ],
        "nodeName": [f"{POD}.nodeName"] if "nodeName" in pod else [],
        "extraContainers": [
            where
            for kind, where, c in containers
            if kind != "containers" or c.get("name") != HANDLER
        ],
        "priorityClass": (
            [f"{POD}.priorityClassName"]
            if "priorityClassName" in pod and pod["priorityClassName"] != queue_class
            else []
        ),
        "podLabels": [f"spec.podTemplate.metadata.labels[{key}]" for key in labels],
        "secrets": [
            f"{where} (Secret {name})"
            for where, name in _secret_references(spec, by_path, volumes)
            if name not in allowed_secrets
        ],
    }


def _service_account(pod: Body, volumes: list[Body], allowed: frozenset[str]) -> list[str]:
    account = pod.get("serviceAccountName", pod.get("serviceAccount", "default"))
    if account in allowed:
        return []
    fields = [f"{POD}.{f}" for f in ("serviceAccountName", "serviceAccount") if f in pod]
    if pod.get("automountServiceAccountToken") is True:
        fields.append(f"{POD}.automountServiceAccountToken")
    for volume in volumes:
        sources = _list(_dict(volume.get("projected")).get("sources"))
        if any(isinstance(s, dict) and "serviceAccountToken" in s for s in sources):
            fields.append(
                f"{POD}.volumes[name={_name(volume)}].projected.sources.serviceAccountToken"
            )
    return fields


def _privileged(pod: Body, containers: list[tuple[str, Body]]) -> list[str]:
    fields = [
        f"{where}.securityContext.privileged"
        for where, c in containers
        if _dict(c.get("securityContext")).get("privileged") is True
    ]
    fields += [
        f"{where}.securityContext.windowsOptions.hostProcess"
        for where, c in containers
        if _host_process(c.get("securityContext"))
    ]
    if _host_process(pod.get("securityContext")):
        fields.append(f"{POD}.securityContext.windowsOptions.hostProcess")
    return fields


def _host_process(security_context: Any) -> bool:
    return _dict(_dict(security_context).get("windowsOptions")).get("hostProcess") is True


def _secret_references(
    spec: BackgroundJobSpec, containers: list[tuple[str, Body]], volumes: list[Body]
) -> Iterator[tuple[str, str]]:
    """(field path, Secret name) of every Secret the job's pod would read."""
    for kwarg in spec.kwargs_from:
        yield f"spec.kwargsFrom[name={kwarg.name}].secretKeyRef", kwarg.secret_key_ref.name
    for where, c in containers:
        for env in map(_dict, _list(c.get("env"))):
            value_from = _dict(env.get("valueFrom"))
            if "secretKeyRef" in value_from:
                ref = _dict(value_from["secretKeyRef"])
                yield f"{where}.env[name={_name(env)}].valueFrom.secretKeyRef", _name(ref)
        for source in map(_dict, _list(c.get("envFrom"))):
            if "secretRef" in source:
                yield f"{where}.envFrom.secretRef", _name(_dict(source["secretRef"]))
    for volume in volumes:
        if "secret" in volume:
            name = str(_dict(volume["secret"]).get("secretName", ""))
            yield f"{POD}.volumes[name={_name(volume)}].secret", name
    for volume in volumes:  # after every secret volume, as the admission policy lists them
        for source in map(_dict, _list(_dict(volume.get("projected")).get("sources"))):
            if "secret" in source:
                where = f"{POD}.volumes[name={_name(volume)}].projected.sources.secret"
                yield where, _name(_dict(source["secret"]))


def _containers(pod: Body) -> Iterator[tuple[str, str, Body]]:
    """(kind, field path, container) of every container of every kind."""
    for kind in _CONTAINER_KINDS:
        for c in _list(pod.get(kind)):
            if isinstance(c, dict):
                yield kind, f"{POD}.{kind}[name={_name(c)}]", c


def _name(obj: Body) -> str:
    return str(obj.get("name", ""))


def _dict(value: Any) -> Body:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []
