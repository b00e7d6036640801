"""The pod policy's cases, shared by the chart's admission tests, the operator's own check and
their unit tests: each asks a BackgroundJob for one thing that changes who or where its pod
runs, or which Secret it reads, and names the field (and rule) a refusal must name."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

Body = dict[str, Any]

# The ServiceAccount and the Secrets the cases name; a test may allow some of them.
ACCOUNT = "powerful"
SECRET = "database"


@dataclass(frozen=True)
class Case:
    name: str
    rule: str
    field: str  # a part of the refusal message: the field path
    spec: Body  # merged into the BackgroundJob's spec


POD = "spec.podTemplate.spec"
TOKEN_SOURCE = {"serviceAccountToken": {"path": "token"}}
SECRET_KEY = {"name": SECRET, "key": "password"}


def _pod(**pod_spec: Any) -> Body:
    return {"podTemplate": {"spec": pod_spec}}


def _handler(**container: Any) -> Body:
    return _pod(containers=[{"name": "handler", **container}])


CASES = [
    Case(
        "service-account",
        "serviceAccount",
        f"{POD}.serviceAccountName",
        _pod(serviceAccountName=ACCOUNT),
    ),
    Case(
        "token",
        "serviceAccount",
        f"{POD}.automountServiceAccountToken",
        _pod(automountServiceAccountToken=True),
    ),
    Case(
        "token-volume",
        "serviceAccount",
        f"{POD}.volumes[name=token].projected.sources.serviceAccountToken",
        _pod(volumes=[{"name": "token", "projected": {"sources": [TOKEN_SOURCE]}}]),
    ),
    Case("host-network", "hostNamespaces", f"{POD}.hostNetwork", _pod(hostNetwork=True)),
    Case("host-pid", "hostNamespaces", f"{POD}.hostPID", _pod(hostPID=True)),
    Case("host-ipc", "hostNamespaces", f"{POD}.hostIPC", _pod(hostIPC=True)),
    Case(
        "host-path",
        "hostPath",
        f"{POD}.volumes[name=root].hostPath",
        _pod(volumes=[{"name": "root", "hostPath": {"path": "/"}}]),
    ),
    Case(
        "privileged",
        "privileged",
        f"{POD}.containers[name=handler].securityContext.privileged",
        _handler(securityContext={"privileged": True}),
    ),
    Case(
        "capabilities",
        "capabilities",
        f"{POD}.containers[name=handler].securityContext.capabilities.add",
        _handler(securityContext={"capabilities": {"add": ["SYS_ADMIN"]}}),
    ),
    Case("node-name", "nodeName", f"{POD}.nodeName", _pod(nodeName="kwok-node-0")),
    Case(
        "sidecar",
        "extraContainers",
        f"{POD}.containers[name=sidecar]",
        _pod(containers=[{"name": "handler"}, {"name": "sidecar", "image": "busybox"}]),
    ),
    Case(
        "init-container",
        "extraContainers",
        f"{POD}.initContainers[name=setup]",
        _pod(initContainers=[{"name": "setup", "image": "busybox"}]),
    ),
    Case(
        "priority-class",
        "priorityClass",
        f"{POD}.priorityClassName",
        _pod(priorityClassName="system-cluster-critical"),
    ),
    Case(
        "pod-labels",
        "podLabels",
        "spec.podTemplate.metadata.labels[app]",
        {"podTemplate": {"metadata": {"labels": {"app": "frontend"}}}},
    ),
    Case(
        "secret-env",
        "secrets",
        f"{POD}.containers[name=handler].env[name=DB_PASSWORD].valueFrom.secretKeyRef"
        f" (Secret {SECRET})",
        _handler(env=[{"name": "DB_PASSWORD", "valueFrom": {"secretKeyRef": SECRET_KEY}}]),
    ),
    Case(
        "secret-env-from",
        "secrets",
        f"{POD}.containers[name=handler].envFrom.secretRef (Secret {SECRET})",
        _handler(envFrom=[{"secretRef": {"name": SECRET}}]),
    ),
    Case(
        "secret-kwarg",
        "secrets",
        f"spec.kwargsFrom[name=password].secretKeyRef (Secret {SECRET})",
        {"kwargsFrom": [{"name": "password", "secretKeyRef": SECRET_KEY}]},
    ),
    Case(
        "secret-volume",
        "secrets",
        f"{POD}.volumes[name=creds].secret (Secret {SECRET})",
        _pod(volumes=[{"name": "creds", "secret": {"secretName": SECRET}}]),
    ),
]


def with_case(body: Body, case: Case) -> Body:
    """``body`` (a BackgroundJob) with the case's spec merged in (a copy: a test may change
    what it gets without changing the case)."""
    spec = copy.deepcopy(body["spec"])
    for key, value in copy.deepcopy(case.spec).items():
        if key == "podTemplate" and "podTemplate" in spec:
            merged = dict(spec["podTemplate"])
            for part, fields in value.items():
                merged[part] = {**merged.get(part, {}), **fields}
            spec["podTemplate"] = merged
        else:
            spec[key] = value
    return {**body, "spec": spec}
