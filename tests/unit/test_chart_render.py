"""The Helm chart, rendered with ``helm template`` for the value sets that matter: lint-clean,
the objects each set must produce, the operator settings it maps to, least-privilege RBAC,
and values the schema refuses with a message naming the value."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from backgroundjobs.controller import settings as config

pytestmark = pytest.mark.unit

REPO_ROOT = Path(__file__).resolve().parents[2]
CHART = REPO_ROOT / "charts" / "backgroundjobs-operator"
CRD_FILE = REPO_ROOT / "crds" / "backgroundjobs.dev_backgroundjobs.yaml"
RELEASE, NAMESPACE = "bgj", "bgj-system"
FULLNAME = f"{RELEASE}-backgroundjobs-operator"

Body = dict[str, Any]

VALUE_SETS: dict[str, list[str]] = {
    "default": [],
    "namespaced": ["--set-json", 'namespaces=["team-a","team-b"]'],
    "monitoring": [
        "--set", "serviceMonitor.enabled=true",
        "--set", "prometheusRule.enabled=true",
        "--set", "grafanaDashboard.enabled=true",
    ],
    "ha-off": ["--set", "replicaCount=1", "--set", "leaderElection.enabled=false"],
    "configured": [
        "--set", "defaultImage=registry.local/jobs:2",
        "--set", "retention=24h",
        "--set-json", 'queues={"critical":{"priorityClassName":"high","maxConcurrency":5},'
                      '"reports":{"maxConcurrency":1}}',
        "--set", "metricsPort=9090",
        "--set", "logFormat=text",
        "--set", "workers=8",
        "--set", "events=failures",
        "--set", "statusHold=2.5",
        "--set", "podStartGrace=2m",
        "--set", "unschedulableTimeout=1h",
        "--set", "leaderElection.leaseDuration=6",
    ],
    "extended": [
        "--set", "global.imageRegistry=registry.example.com/mirror",
        "--set", f"image.digest=sha256:{'ab' * 32}",
        "--set-json", 'envFrom=[{"configMapRef":{"name":"bgj-proxy"}}]',
        "--set-json", 'extraVolumes=[{"name":"ca","configMap":{"name":"ca-bundle"}}]',
        "--set-json", 'extraVolumeMounts=[{"name":"ca","mountPath":"/etc/ssl/extra",'
                      '"readOnly":true}]',
        "--set", "networkPolicy.enabled=true",
        "--set-json", 'networkPolicy.metricsFrom=[{"namespaceSelector":'
                      '{"matchLabels":{"kubernetes.io/metadata.name":"monitoring"}}}]',
    ],
    "policy": [
        "--set-json", 'podPolicy.exempt=["podLabels"]',
        "--set-json", 'podPolicy.forbidden=["privileged","hostPath"]',
        "--set-json", 'podPolicy.trustedNamespaces=["ci"]',
        "--set-json", 'podPolicy.serviceAccounts={"shop":["mailer","default"]}',
        "--set-json", 'podPolicy.secrets={"shop":["smtp"]}',
        "--set-json", 'queues={"critical":{"priorityClassName":"high"}}',
        "--set-json", 'excludeNamespaces=["kube-system","kube-public"]',
    ],
    "policy-off": [
        "--set", "podPolicy.enabled=false",
        "--set", "operatorPolicy.enabled=false",
        "--set", "requesterPolicy.enabled=false",
    ],
}  # fmt: skip
POLICY_RULES = [
    "serviceAccount", "hostNamespaces", "hostPath", "privileged", "capabilities", "nodeName",
    "extraContainers", "priorityClass", "podLabels", "secrets",
]  # fmt: skip
CLUSTER_SCOPED = {
    "ClusterRole", "ClusterRoleBinding",
    "ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding",
}  # fmt: skip
DIGEST = f"sha256:{'ab' * 32}"


def helm_binary() -> str | None:
    cache = Path(os.environ.get("BACKGROUNDJOBS_CACHE", Path.home() / ".cache/backgroundjobs"))
    cached = cache / "bin" / "helm"
    return str(cached) if cached.is_file() else shutil.which("helm")


HELM = helm_binary()
needs_helm = pytest.mark.skipif(HELM is None, reason="helm not built (make cluster-tools)")


# `helm template` checks Chart.yaml's kubeVersion against the Kubernetes version it assumes
# (the project's helm: its client-go's, test_helm_assumes_a_current_kubernetes_version); the
# renders here pin the local cluster's, so they do not change with helm. (An install asks
# the cluster itself.)
KUBE_VERSION = re.search(
    r"^K8S_VERSION=(\S+)", (REPO_ROOT / "hack" / "versions.env").read_text(), re.M
).group(1)  # type: ignore[union-attr]


def helm(*args: str) -> subprocess.CompletedProcess[str]:
    """Run helm; `template` assumes the local cluster's Kubernetes version unless told one."""
    assert HELM is not None
    if args[:1] == ("template",):
        args = ("template", "--kube-version", KUBE_VERSION, *args[1:])
    return subprocess.run([HELM, *args], capture_output=True, text=True, timeout=120)


def render(*values: str, namespace: str = NAMESPACE, release: str = RELEASE) -> list[Body]:
    """The chart's objects for these ``helm template`` value flags."""
    out = helm("template", release, str(CHART), "-n", namespace, *values)
    assert out.returncode == 0, out.stderr
    return [d for d in yaml.safe_load_all(out.stdout) if d]


def find(objs: list[Body], kind: str, name: str | None = None) -> list[Body]:
    return [
        o for o in objs if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)
    ]


def one(objs: list[Body], kind: str, name: str | None = None) -> Body:
    found = find(objs, kind, name)
    assert len(found) == 1, f"{len(found)} {kind} {name or ''} in {[o['kind'] for o in objs]}"
    return found[0]


def container(objs: list[Body]) -> Body:
    pod = one(objs, "Deployment")["spec"]["template"]["spec"]
    assert [c["name"] for c in pod["containers"]] == ["operator"]
    return pod["containers"][0]  # type: ignore[no-any-return]


def env_of(objs: list[Body]) -> dict[str, Body]:
    return {e["name"]: e for e in container(objs)["env"]}


def plain_env(objs: list[Body]) -> dict[str, str]:
    """The literal env values, and the downward-API ones as a pod in NAMESPACE would see them."""
    out: dict[str, str] = {}
    for name, e in env_of(objs).items():
        if "value" in e:
            out[name] = e["value"]
        elif e["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.namespace":
            out[name] = NAMESPACE
    return out


def rules_of(objs: list[Body], kind: str, name: str) -> list[Body]:
    return one(objs, kind, name)["rules"]  # type: ignore[no-any-return]


def verbs(rules: list[Body]) -> dict[tuple[str, str], set[str]]:
    out: dict[tuple[str, str], set[str]] = {}
    for rule in rules:
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                out.setdefault((group, resource), set()).update(rule["verbs"])
    return out


@pytest.fixture(scope="module", params=sorted(VALUE_SETS))
def rendered(request: pytest.FixtureRequest) -> Iterator[tuple[str, list[Body]]]:
    if HELM is None:
        pytest.skip("helm not built (make cluster-tools)")
    yield request.param, render(*VALUE_SETS[request.param])


# The operator's permissions, derived from controller/kube.py and kopf (see _helpers.tpl).
OPERATOR_VERBS = {
    ("backgroundjobs.dev", "backgroundjobs"): {"get", "list", "watch", "patch", "delete"},
    ("backgroundjobs.dev", "backgroundjobs/status"): {"patch"},
    ("backgroundjobs.dev", "backgroundjobs/finalizers"): {"update"},
    ("backgroundjobs.dev", "backgroundjobqueues"): {"get", "list", "watch"},
    ("backgroundjobs.dev", "backgroundjobqueues/status"): {"patch"},
    ("batch", "jobs"): {"get", "list", "watch", "create", "delete", "patch"},
    ("batch", "cronjobs"): {"get", "list", "watch", "create", "update"},
    ("", "pods"): {"list"},
    ("", "pods/log"): {"get"},
    ("", "events"): {"create", "list"},
    ("", "configmaps"): {"create", "get"},
    ("kueue.x-k8s.io", "workloads"): {"get", "list"},
}


# ------------------------------------------------------------------ every value set
@needs_helm
@pytest.mark.parametrize("name", sorted(VALUE_SETS))
def test_lint_is_clean(name: str) -> None:
    out = helm("lint", "--strict", str(CHART), *VALUE_SETS[name])
    assert out.returncode == 0, out.stdout + out.stderr
    assert "0 chart(s) failed" in out.stdout


def test_every_object_carries_the_recommended_labels(rendered: tuple[str, list[Body]]) -> None:
    _, objs = rendered
    for obj in objs:
        labels = obj["metadata"].get("labels") or {}
        where = f"{obj['kind']}/{obj['metadata']['name']}"
        assert labels.get("app.kubernetes.io/name") == "backgroundjobs-operator", where
        assert labels.get("app.kubernetes.io/instance") == RELEASE, where
        assert labels.get("app.kubernetes.io/version") == "0.1.0", where
        assert labels.get("app.kubernetes.io/managed-by") == "Helm", where
        assert labels.get("app.kubernetes.io/part-of") == "backgroundjobs", where
        assert labels.get("app.kubernetes.io/component"), where
        if obj["metadata"].get("namespace") is None:
            assert obj["kind"] in CLUSTER_SCOPED, where


def test_no_rule_grants_wildcards_secrets_or_pod_creation(
    rendered: tuple[str, list[Body]],
) -> None:
    _, objs = rendered
    for obj in find(objs, "ClusterRole") + find(objs, "Role"):
        for rule in obj["rules"]:
            where = f"{obj['kind']}/{obj['metadata']['name']}: {rule}"
            assert "*" not in rule["verbs"] + rule["resources"] + rule["apiGroups"], where
            assert "secrets" not in rule["resources"], where
            if "pods" in rule["resources"]:
                assert set(rule["verbs"]) <= {"get", "list", "watch"}, where
            assert not {"escalate", "bind", "impersonate"} & set(rule["verbs"]), where


def test_settings_load_the_rendered_environment(rendered: tuple[str, list[Body]]) -> None:
    """Whatever the values, the operator accepts the env the chart gives it."""
    _, objs = rendered
    cfg = config.load(plain_env(objs))
    if cfg.leader_election:
        assert cfg.lease_namespace == NAMESPACE


@needs_helm
def test_the_requester_policy_comes_with_the_operator_setting_that_trusts_it() -> None:
    objs = render()
    names = {o["metadata"]["name"] for o in find(objs, "ValidatingAdmissionPolicy")}
    assert f"{RELEASE}-backgroundjobs-operator-requester"[:63] in names or any(
        n.endswith("-requester") for n in names
    )
    assert config.load(plain_env(objs)).requester_checked is True
    off = render("--set", "requesterPolicy.enabled=false")
    assert not any(
        o["metadata"]["name"].endswith("-requester") for o in find(off, "ValidatingAdmissionPolicy")
    )
    assert config.load(plain_env(off)).requester_checked is False


@needs_helm
def test_progress_values_reach_the_operator_settings() -> None:
    """progressInterval and progressMaxReads become the operator's progress settings
    (the defaults are the operator's own)."""
    default = config.load(plain_env(render()))
    assert (default.progress_interval, default.progress_max_reads) == (5.0, 100)
    objs = render("--set", "progressInterval=2.5", "--set", "progressMaxReads=7")
    cfg = config.load(plain_env(objs))
    assert (cfg.progress_interval, cfg.progress_max_reads) == (2.5, 7)
    assert config.load(plain_env(render("--set", "progressInterval=0"))).progress_interval == 0


def test_pod_is_restricted(rendered: tuple[str, list[Body]]) -> None:
    """Pod Security Standard "restricted", a read-only root filesystem and a writable /tmp."""
    _, objs = rendered
    pod = one(objs, "Deployment")["spec"]["template"]["spec"]
    psc = pod["securityContext"]
    assert psc["runAsNonRoot"] is True
    assert psc["runAsUser"] == 65532
    assert psc["seccompProfile"] == {"type": "RuntimeDefault"}
    csc = container(objs)["securityContext"]
    assert csc["allowPrivilegeEscalation"] is False
    assert csc["readOnlyRootFilesystem"] is True
    assert csc["capabilities"] == {"drop": ["ALL"]}
    assert csc["runAsNonRoot"] is True
    mounts = {m["mountPath"]: m["name"] for m in container(objs)["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert "emptyDir" in volumes[mounts["/tmp"]]
    assert pod["serviceAccountName"] == FULLNAME
    assert not pod.get("hostNetwork") and not pod.get("hostPID")


# ------------------------------------------------------------------ default values
@needs_helm
def test_default_install_is_ha_clusterwide_with_probes_and_resources() -> None:
    objs = render()
    kinds = sorted(o["kind"] for o in objs)
    assert kinds == sorted(
        [
            "ServiceAccount",
            "ClusterRole",  # the operator
            "ClusterRole",  # backgroundjobs-edit
            "ClusterRole",  # backgroundjobs-view
            "ClusterRoleBinding",
            "ClusterRole",  # the operator reads the pod policy and its binding
            "ClusterRoleBinding",
            "ValidatingAdmissionPolicy",  # the pod policy
            "ValidatingAdmissionPolicyBinding",
            "ValidatingAdmissionPolicy",  # the operator's own writes
            "ValidatingAdmissionPolicyBinding",
            "ValidatingAdmissionPolicy",  # who asked for a requeue
            "ValidatingAdmissionPolicyBinding",
            "Role",  # the Lease
            "RoleBinding",
            "Service",
            "Deployment",
            "PodDisruptionBudget",
            "Pod",  # the `helm test` hook
        ]
    )
    deploy = one(objs, "Deployment", FULLNAME)
    assert deploy["metadata"]["namespace"] == NAMESPACE
    assert deploy["spec"]["replicas"] == 2
    assert deploy["spec"]["strategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
    }
    c = container(objs)
    assert c["image"] == "backgroundjobs/operator:0.1.0"
    assert c["args"] == ["--liveness", "http://0.0.0.0:8081/healthz"]
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    assert ports == {"metrics": 8080, "health": 8081}
    for probe in ("livenessProbe", "readinessProbe"):
        assert c[probe]["httpGet"] == {"path": "/healthz", "port": "health"}
    assert c["resources"]["requests"] and c["resources"]["limits"]["memory"]

    env = plain_env(objs)
    assert env["BACKGROUNDJOBS_NAMESPACES"] == ""
    assert env["BACKGROUNDJOBS_LEADER_ELECTION"] == "true"
    assert env["BACKGROUNDJOBS_LEASE_NAME"] == FULLNAME
    assert env_of(objs)["POD_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
    cfg = config.load(env)
    assert cfg.clusterwide and cfg.leader_election
    assert cfg.retention == timedelta(hours=168)
    assert cfg.log_format == "json"
    assert cfg.metrics_port == 8080
    assert cfg.lease_duration == 15
    assert cfg.default_image == config.DEFAULT_IMAGE

    svc = one(objs, "Service", f"{FULLNAME}-metrics")
    assert svc["spec"]["ports"] == [
        {"name": "metrics", "port": 8080, "targetPort": "metrics", "protocol": "TCP"}
    ]
    pod_labels = deploy["spec"]["template"]["metadata"]["labels"]
    assert svc["spec"]["selector"].items() <= pod_labels.items()
    assert deploy["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    pdb = one(objs, "PodDisruptionBudget")
    assert pdb["spec"]["minAvailable"] == 1


@needs_helm
def test_default_rbac_is_clusterwide_and_exactly_what_the_operator_uses() -> None:
    objs = render()
    granted = verbs(rules_of(objs, "ClusterRole", FULLNAME))
    assert granted == {
        **OPERATOR_VERBS,
        ("apiextensions.k8s.io", "customresourcedefinitions"): {"list", "watch"},
    }
    binding = one(objs, "ClusterRoleBinding", FULLNAME)
    assert binding["roleRef"]["name"] == FULLNAME
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": FULLNAME, "namespace": NAMESPACE}
    ]
    lease_role = one(objs, "Role", f"{FULLNAME}-leader-election")
    assert lease_role["metadata"]["namespace"] == NAMESPACE
    assert lease_role["rules"] == [
        {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["create"]},
        {
            "apiGroups": ["coordination.k8s.io"],
            "resources": ["leases"],
            "resourceNames": [FULLNAME],
            "verbs": ["get", "update"],
        },
    ]
    assert one(objs, "RoleBinding")["roleRef"]["name"] == f"{FULLNAME}-leader-election"
    reader = one(objs, "ClusterRole", f"{FULLNAME}-policy-reader")
    assert reader["rules"] == POLICY_READER_RULES
    reader_binding = one(objs, "ClusterRoleBinding", f"{FULLNAME}-policy-reader")
    assert reader_binding["subjects"] == binding["subjects"]
    assert find(render(*VALUE_SETS["policy-off"]), "ClusterRole", f"{FULLNAME}-policy-reader") == []


POLICY_READER_RULES = [
    {
        "apiGroups": ["admissionregistration.k8s.io"],
        "resources": ["validatingadmissionpolicies", "validatingadmissionpolicybindings"],
        "resourceNames": [FULLNAME],
        "verbs": ["get"],
    }
]


@needs_helm
def test_user_roles_aggregate_into_edit_admin_and_view() -> None:
    objs = render()
    edit = one(objs, "ClusterRole", "backgroundjobs-edit")
    labels = edit["metadata"]["labels"]
    assert labels["rbac.authorization.k8s.io/aggregate-to-edit"] == "true"
    assert labels["rbac.authorization.k8s.io/aggregate-to-admin"] == "true"
    assert verbs(edit["rules"]) == {
        ("backgroundjobs.dev", resource): {
            "create", "update", "patch", "delete", "get", "list", "watch",
        }
        for resource in ("backgroundjobs", "backgroundjobqueues")
    }  # fmt: skip
    view = one(objs, "ClusterRole", "backgroundjobs-view")
    assert view["metadata"]["labels"]["rbac.authorization.k8s.io/aggregate-to-view"] == "true"
    assert verbs(view["rules"]) == {
        ("backgroundjobs.dev", resource): {"get", "list", "watch"}
        for resource in ("backgroundjobs", "backgroundjobqueues")
    }
    assert not find(render("--set", "userRoles.create=false"), "ClusterRole", "backgroundjobs-edit")


# ------------------------------------------------------------------ other value sets
@needs_helm
def test_namespaced_mode_has_roles_per_namespace_and_nothing_clusterwide() -> None:
    """Cluster-wide, the operator may only get the pod policy and its binding (by name)."""
    objs = render(*VALUE_SETS["namespaced"])
    operator_cluster_roles = [
        o
        for o in find(objs, "ClusterRole")
        if not o["metadata"]["name"].startswith("backgroundjobs-")
    ]
    assert [o["metadata"]["name"] for o in operator_cluster_roles] == [f"{FULLNAME}-policy-reader"]
    assert operator_cluster_roles[0]["rules"] == POLICY_READER_RULES
    assert [b["roleRef"]["name"] for b in find(objs, "ClusterRoleBinding")] == [
        f"{FULLNAME}-policy-reader"
    ]
    for ns in ("team-a", "team-b"):
        role = [r for r in find(objs, "Role", FULLNAME) if r["metadata"]["namespace"] == ns]
        assert len(role) == 1, ns
        assert verbs(role[0]["rules"]) == OPERATOR_VERBS
        binding = [
            b for b in find(objs, "RoleBinding", FULLNAME) if b["metadata"]["namespace"] == ns
        ]
        assert len(binding) == 1, ns
        assert binding[0]["roleRef"] == {
            "apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": FULLNAME,
        }  # fmt: skip
        assert binding[0]["subjects"][0]["namespace"] == NAMESPACE
    namespaces = {r["metadata"]["namespace"] for r in find(objs, "Role")}
    assert namespaces == {"team-a", "team-b", NAMESPACE}  # NAMESPACE: only the Lease
    cfg = config.load(plain_env(objs))
    assert cfg.namespaces == ("team-a", "team-b")
    assert not cfg.clusterwide


@needs_helm
def test_ha_off_is_one_replica_recreated_without_a_lease() -> None:
    objs = render(*VALUE_SETS["ha-off"])
    deploy = one(objs, "Deployment")
    assert deploy["spec"]["replicas"] == 1
    assert deploy["spec"]["strategy"] == {"type": "Recreate"}
    assert "affinity" not in deploy["spec"]["template"]["spec"]
    assert find(objs, "PodDisruptionBudget") == []
    assert [r["metadata"]["name"] for r in find(objs, "Role")] == []
    env = plain_env(objs)
    assert env["BACKGROUNDJOBS_LEADER_ELECTION"] == "false"
    assert not any(k.startswith("BACKGROUNDJOBS_LEASE_") for k in env)
    assert config.load(env).leader_election is False


@needs_helm
def test_values_map_to_operator_settings() -> None:
    objs = render(*VALUE_SETS["configured"])
    cfg = config.load(plain_env(objs))
    assert cfg.default_image == "registry.local/jobs:2"
    assert cfg.retention == timedelta(hours=24)
    assert dict(cfg.queues) == {
        "critical": config.QueueConfig("high", 5),
        "reports": config.QueueConfig(None, 1),
    }
    assert cfg.metrics_port == 9090
    assert cfg.log_format == "text"
    assert cfg.workers == 8
    assert cfg.events == "failures"
    assert cfg.status_hold == 2.5
    assert cfg.pod_start_grace == timedelta(minutes=2)
    assert cfg.unschedulable_timeout == timedelta(hours=1)
    assert cfg.lease_duration == 6
    ports = {p["name"]: p["containerPort"] for p in container(objs)["ports"]}
    assert ports["metrics"] == 9090
    assert one(objs, "Service")["spec"]["ports"][0]["port"] == 9090


@needs_helm
def test_monitoring_objects() -> None:
    objs = render(*VALUE_SETS["monitoring"])
    sm = one(objs, "ServiceMonitor")
    assert sm["apiVersion"] == "monitoring.coreos.com/v1"
    svc = one(objs, "Service")
    assert sm["spec"]["selector"]["matchLabels"].items() <= svc["metadata"]["labels"].items()
    assert sm["spec"]["endpoints"][0]["port"] == "metrics"
    assert sm["spec"]["namespaceSelector"] == {"matchNames": [NAMESPACE]}

    rule = one(objs, "PrometheusRule")
    alerts = {r["alert"]: r for g in rule["spec"]["groups"] for r in g["rules"]}
    assert set(alerts) == {
        "BackgroundJobsFailureRatioHigh",
        "BackgroundJobsStartLatenessHigh",
        "BackgroundJobsReconcileErrors",
        "BackgroundJobsOperatorDown",
        "BackgroundJobsNoLeader",
        "BackgroundJobsRecurringRunMissed",
    }
    for name, alert in alerts.items():
        assert alert["labels"]["severity"] in {"warning", "critical"}, name
        for key in ("summary", "description", "runbook"):
            assert alert["annotations"].get(key), f"{name} has no {key}"
        assert "job=" not in alert["expr"] and NAMESPACE not in alert["expr"], name
        assert "by (namespace" in alert["expr"] or "absent(" in alert["expr"], name
    assert (
        "backgroundjobs_start_lateness_seconds_bucket"
        in alerts["BackgroundJobsStartLatenessHigh"]["expr"]
    )
    assert 'outcome="failed"' in alerts["BackgroundJobsFailureRatioHigh"]["expr"]
    assert alerts["BackgroundJobsOperatorDown"]["expr"].strip().startswith("absent(")

    cm = one(objs, "ConfigMap", f"{FULLNAME}-dashboard")
    assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
    dashboard = json.loads(cm["data"]["backgroundjobs.json"])
    assert dashboard["uid"] == "backgroundjobs"
    assert json.loads((CHART / "files" / "dashboard.json").read_text()) == dashboard


@needs_helm
def test_monitoring_is_off_by_default() -> None:
    kinds = {o["kind"] for o in render()}
    assert not kinds & {"ServiceMonitor", "PrometheusRule", "ConfigMap"}


@needs_helm
def test_alert_selector_narrows_every_selector() -> None:
    selector = json.dumps('namespace="bgj-system", env="prod"')  # --set would split at ","
    objs = render(
        "--set", "prometheusRule.enabled=true", "--set-json", f"prometheusRule.selector={selector}"
    )
    exprs = [r["expr"] for g in one(objs, "PrometheusRule")["spec"]["groups"] for r in g["rules"]]
    for expr in exprs:
        selectors = re.findall(r"backgroundjobs_\w+(\{[^}]*\})", expr)
        assert selectors and len(selectors) == len(re.findall(r"backgroundjobs_\w+", expr))
        for selector in selectors:
            assert 'namespace="bgj-system", env="prod"}' in selector, expr
    assert 'outcome="failed", namespace="bgj-system", env="prod"}' in exprs[0]


# ------------------------------------------------------------------ images, extras
@needs_helm
def test_image_registry_digest_and_global_registry() -> None:
    assert container(render())["image"] == "backgroundjobs/operator:0.1.0"
    assert container(render("--set", "image.tag=2.0"))["image"] == "backgroundjobs/operator:2.0"
    assert (
        container(render("--set", "image.registry=reg.local:5000"))["image"]
        == "reg.local:5000/backgroundjobs/operator:0.1.0"
    )
    assert (
        container(render("--set", f"image.digest={DIGEST}", "--set", "image.tag=2.0"))["image"]
        == f"backgroundjobs/operator@{DIGEST}"
    )
    objs = render(*VALUE_SETS["extended"])
    assert (
        container(objs)["image"] == f"registry.example.com/mirror/backgroundjobs/operator@{DIGEST}"
    )
    # The registry of everything the chart names: the test pod and the default job image.
    test_pod = one(objs, "Pod")
    assert test_pod["spec"]["containers"][0]["image"] == container(objs)["image"]
    env = plain_env(objs)
    assert (
        env["BACKGROUNDJOBS_DEFAULT_IMAGE"]
        == "registry.example.com/mirror/backgroundjobs/examples:0.1.0"
    )
    assert config.load(env).default_image == env["BACKGROUNDJOBS_DEFAULT_IMAGE"]
    # global.imageRegistry wins over image.registry; an explicit defaultImage is kept as given.
    objs = render("--set", "global.imageRegistry=mirror.local/", "--set", "image.registry=other",
                  "--set", "defaultImage=jobs.local/mine:1")  # fmt: skip
    assert container(objs)["image"] == "mirror.local/backgroundjobs/operator:0.1.0"
    assert plain_env(objs)["BACKGROUNDJOBS_DEFAULT_IMAGE"] == "jobs.local/mine:1"
    assert "BACKGROUNDJOBS_DEFAULT_IMAGE" not in plain_env(render())


@needs_helm
def test_env_from_and_extra_volumes() -> None:
    objs = render(*VALUE_SETS["extended"])
    c = container(objs)
    assert c["envFrom"] == [{"configMapRef": {"name": "bgj-proxy"}}]
    mounts = {m["name"]: m for m in c["volumeMounts"]}
    assert mounts["ca"] == {"name": "ca", "mountPath": "/etc/ssl/extra", "readOnly": True}
    assert mounts["tmp"]["mountPath"] == "/tmp"  # still there
    volumes = {v["name"]: v for v in one(objs, "Deployment")["spec"]["template"]["spec"]["volumes"]}
    assert volumes["ca"] == {"name": "ca", "configMap": {"name": "ca-bundle"}}
    assert "emptyDir" in volumes["tmp"]
    assert "envFrom" not in container(render())


@needs_helm
def test_network_policy() -> None:
    assert find(render(), "NetworkPolicy") == []
    objs = render(*VALUE_SETS["extended"])
    policy = one(objs, "NetworkPolicy", FULLNAME)["spec"]
    pod_labels = one(objs, "Deployment")["spec"]["template"]["metadata"]["labels"]
    assert policy["podSelector"]["matchLabels"].items() <= pod_labels.items()
    assert policy["policyTypes"] == ["Ingress", "Egress"]
    (ingress,) = policy["ingress"]
    assert ingress["ports"] == [{"port": "metrics", "protocol": "TCP"}]
    monitoring, test_pod = ingress["from"]
    assert monitoring == {
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}
    }
    test_labels = one(objs, "Pod")["metadata"]["labels"]
    assert test_pod["podSelector"]["matchLabels"].items() <= test_labels.items()
    assert not test_pod["podSelector"]["matchLabels"].items() <= pod_labels.items()
    api, dns = policy["egress"]
    assert [p["port"] for p in api["ports"]] == [443, 6443] and "to" not in api
    assert {(p["port"], p["protocol"]) for p in dns["ports"]} == {(53, "UDP"), (53, "TCP")}
    # No metricsFrom: any source may scrape; peers for the API server and more egress rules.
    objs = render(
        "--set", "networkPolicy.enabled=true", "--set-json", "networkPolicy.apiServerPorts=[6443]",
        "--set-json", 'networkPolicy.apiServerPeers=[{"ipBlock":{"cidr":"10.0.0.1/32"}}]',
        "--set-json", 'networkPolicy.extraEgress=[{"ports":[{"port":3128}]}]',
    )  # fmt: skip
    policy = one(objs, "NetworkPolicy")["spec"]
    assert "from" not in policy["ingress"][0]
    assert policy["egress"][0] == {
        "ports": [{"port": 6443, "protocol": "TCP"}], "to": [{"ipBlock": {"cidr": "10.0.0.1/32"}}],
    }  # fmt: skip
    assert policy["egress"][2] == {"ports": [{"port": 3128}]}


@needs_helm
def test_helm_test_pod_checks_the_metrics_service() -> None:
    objs = render()
    pod = one(objs, "Pod")
    meta, spec = pod["metadata"], pod["spec"]
    assert meta["annotations"]["helm.sh/hook"] == "test"
    assert "before-hook-creation" in meta["annotations"]["helm.sh/hook-delete-policy"]
    assert spec["restartPolicy"] == "Never"
    assert spec["automountServiceAccountToken"] is False
    (check,) = spec["containers"]
    assert check["image"] == container(objs)["image"]
    python, flag, script, url, timeout = check["command"]
    assert (python, flag) == ("python3", "-c")
    assert script == (CHART / "files" / "check-metrics.py").read_text()
    svc = one(objs, "Service")
    port = svc["spec"]["ports"][0]["port"]
    assert url == f"http://{svc['metadata']['name']}.{NAMESPACE}.svc:{port}/metrics"
    assert timeout == "60"
    assert check["securityContext"]["readOnlyRootFilesystem"] is True
    assert spec["securityContext"]["runAsNonRoot"] is True
    # a long release name still gives a valid pod name
    long = render(release="r" * 53)
    assert len(one(long, "Pod")["metadata"]["name"]) <= 63
    assert one(render("--set", "metricsPort=9100"), "Pod")["spec"]["containers"][0]["command"][
        3
    ].endswith(":9100/metrics")


# ------------------------------------------------------------------ admission policies
def policy_of(objs: list[Body], name: str = FULLNAME) -> Body:
    return one(objs, "ValidatingAdmissionPolicy", name)["spec"]  # type: ignore[no-any-return]


def variables(policy: Body) -> dict[str, str]:
    return {v["name"]: v["expression"] for v in policy["variables"]}


def validation_of(policy: Body, rule: str) -> Body:
    found = [v for v in policy["validations"] if f"size(variables.{rule})" in v["expression"]]
    assert len(found) == 1, f"{len(found)} validations of rule {rule}"
    return found[0]  # type: ignore[no-any-return]


@needs_helm
def test_pod_policy_checks_every_rule_against_the_requesters_right_to_create_jobs() -> None:
    objs = render()
    policy = policy_of(objs)
    assert policy["failurePolicy"] == "Fail"
    (resource_rule,) = policy["matchConstraints"]["resourceRules"]
    assert resource_rule["resources"] == ["backgroundjobs"]
    assert resource_rule["operations"] == ["CREATE", "UPDATE"]
    (changed,) = policy["matchConditions"]
    assert changed["expression"] == "request.operation == 'CREATE' || object.spec != oldObject.spec"
    found = variables(policy)
    assert "authorizer.group('batch').resource('jobs')" in found["mayCreateJobs"]
    assert ".check('create').allowed()" in found["mayCreateJobs"]
    for rule in POLICY_RULES:
        assert rule in found, rule
        if rule == "secrets":
            continue
        check = validation_of(policy, rule)
        assert "variables.mayCreateJobs" in check["expression"], rule
        assert check["messageExpression"].startswith(f"variables.{rule}.join(', ')"), rule
        assert f"(rule {rule})" in check["messageExpression"], rule
        assert check["reason"] == "Forbidden"
    # Secrets: one authorizer check (get on that Secret) per validation, for 8 distinct ones.
    assert "authorizer" not in found["secrets"]  # messageExpression has no authorizer
    slots = [v for v in policy["validations"] if "resource('secrets')" in v["expression"]]
    assert len(slots) == 8
    for i, slot in enumerate(slots):
        assert f"name(variables.secretNames[{i}]).check('get')" in slot["expression"]
        assert slot["expression"].count("check(") == 1
        assert "(rule secrets)" in slot["messageExpression"]
    (too_many,) = [v for v in policy["validations"] if "indexOf(n) < 8" in v["expression"]]
    assert "variables.mayCreateJobs" in too_many["expression"]
    assert json.loads(found["excludedNamespaces"]) == [NAMESPACE, "kube-system"]
    binding = one(objs, "ValidatingAdmissionPolicyBinding", FULLNAME)["spec"]
    assert binding == {"policyName": FULLNAME, "validationActions": ["Deny"]}


@needs_helm
def test_pod_policy_values_relax_tighten_and_allow() -> None:
    objs = render(*VALUE_SETS["policy"])
    policy = policy_of(objs)
    found = variables(policy)
    assert "podLabels" not in found  # exempt
    for rule in ("privileged", "hostPath"):  # forbidden: no way around it
        assert validation_of(policy, rule)["expression"] == f"size(variables.{rule}) == 0"
    forbid_secrets = policy_of(render("--set-json", 'podPolicy.forbidden=["secrets"]'))
    assert validation_of(forbid_secrets, "secrets")["expression"] == "size(variables.secrets) == 0"
    assert not [v for v in forbid_secrets["validations"] if "check('get')" in v["expression"]]
    assert "variables.mayCreateJobs" in validation_of(policy, "nodeName")["expression"]
    assert json.loads(found["trustedNamespaces"]) == ["ci"]
    assert found["allowedServiceAccounts"] == (
        'request.namespace in {"shop":["mailer","default"]} ? '
        '{"shop":["mailer","default"]}[request.namespace] : []'
    )
    assert '{"shop":["smtp"]}' in found["allowedSecrets"]
    assert json.loads(found["queueClasses"]) == {"critical": "high"}
    assert json.loads(found["excludedNamespaces"]) == ["kube-system", "kube-public"]
    # The operator applies the same rules where the policy did not admit a job.
    settings = json.loads(plain_env(objs)["BACKGROUNDJOBS_POD_POLICY"])
    assert settings == {
        "admission": {"policy": FULLNAME, "binding": FULLNAME},
        "exempt": ["podLabels"],
        "forbidden": ["privileged", "hostPath"],
        "trustedNamespaces": ["ci"],
        "serviceAccounts": {"shop": ["mailer", "default"]},
        "secrets": {"shop": ["smtp"]},
    }
    assert plain_env(objs)["BACKGROUNDJOBS_EXCLUDE_NAMESPACES"] == "kube-system,kube-public"
    assert plain_env(objs)["BACKGROUNDJOBS_POD_POLICY_CHECK"] == "true"
    unchecked = render("--set", "podPolicy.operatorCheck=false")
    assert plain_env(unchecked)["BACKGROUNDJOBS_POD_POLICY_CHECK"] == "false"


@needs_helm
def test_pod_policy_only_warning_or_off_leaves_the_operator_to_check() -> None:
    warned = render("--set-json", 'podPolicy.validationActions=["Warn","Audit"]')
    binding = one(warned, "ValidatingAdmissionPolicyBinding", FULLNAME)["spec"]
    assert binding["validationActions"] == ["Warn", "Audit"]
    assert "admission" not in json.loads(plain_env(warned)["BACKGROUNDJOBS_POD_POLICY"])
    off = render(*VALUE_SETS["policy-off"])
    assert find(off, "ValidatingAdmissionPolicy") == []
    assert find(off, "ValidatingAdmissionPolicyBinding") == []
    assert json.loads(plain_env(off)["BACKGROUNDJOBS_POD_POLICY"]) == {
        "exempt": [], "forbidden": [], "trustedNamespaces": [], "serviceAccounts": {},
        "secrets": {},
    }  # fmt: skip


@needs_helm
def test_served_namespaces_decide_what_is_excluded() -> None:
    assert plain_env(render())["BACKGROUNDJOBS_EXCLUDE_NAMESPACES"] == f"{NAMESPACE},kube-system"
    every = render("--set-json", "excludeNamespaces=[]")
    assert plain_env(every)["BACKGROUNDJOBS_EXCLUDE_NAMESPACES"] == ""
    assert json.loads(variables(policy_of(every))["excludedNamespaces"]) == []
    # Listed namespaces are explicit (kube-system included when listed), and the pod policy
    # polices only them: another release may serve the others.
    objs = render("--set-json", 'namespaces=["team-a","kube-system"]')
    assert plain_env(objs)["BACKGROUNDJOBS_EXCLUDE_NAMESPACES"] == ""
    assert json.loads(variables(policy_of(objs))["excludedNamespaces"]) == []
    binding = one(objs, "ValidatingAdmissionPolicyBinding", FULLNAME)["spec"]
    assert binding["matchResources"] == {
        "namespaceSelector": {
            "matchExpressions": [
                {
                    "key": "kubernetes.io/metadata.name",
                    "operator": "In",
                    "values": ["team-a", "kube-system"],
                }
            ]
        }
    }


@needs_helm
def test_operator_policy_keeps_the_operators_writes_to_its_own_jobs() -> None:
    objs = render()
    name = f"{FULLNAME}-operator"
    policy = policy_of(objs, name)
    resource_rule, items_rule = policy["matchConstraints"]["resourceRules"]
    assert resource_rule["apiGroups"] == ["batch"]
    assert resource_rule["resources"] == ["jobs", "cronjobs"]
    assert (items_rule["apiGroups"], items_rule["resources"]) == ([""], ["configmaps"])
    (who,) = policy["matchConditions"]
    assert who["expression"] == (
        f"request.userInfo.username == 'system:serviceaccount:{NAMESPACE}:{FULLNAME}'"
    )
    assert json.loads(variables(policy)["excludedNamespaces"]) == [NAMESPACE, "kube-system"]
    expressions = [v["expression"] for v in policy["validations"]]
    assert "!(request.namespace in variables.excludedNamespaces)" in expressions
    assert any("r.kind == 'BackgroundJob'" in e for e in expressions)
    binding = one(objs, "ValidatingAdmissionPolicyBinding", name)["spec"]
    assert binding == {"policyName": name, "validationActions": ["Deny"]}
    custom = render("--set", "serviceAccount.name=robot", "--set", "operatorPolicy.enabled=true")
    (who,) = policy_of(custom, name)["matchConditions"]
    assert who["expression"].endswith(f":{NAMESPACE}:robot'")


# ------------------------------------------------------------------ refused values
@needs_helm
@pytest.mark.parametrize(
    ("values", "message"),
    [
        (["--set", "replicaCount=0"], "at '/replicaCount': minimum: got 0, want 1"),
        (["--set", "logFormat=xml"], "at '/logFormat': value must be one of 'json', 'text'"),
        (["--set", "retention=7d"], "at '/retention': '7d' does not match pattern"),
        (["--set", "retention=soon"], "at '/retention'"),
        (
            ["--set", "queues.critical.maxConcurrency=0"],
            "at '/queues/critical/maxConcurrency': minimum: got 0, want 1",
        ),
        (
            ["--set", "queues.Bad_Name.maxConcurrency=1"],
            "at '/queues': additional properties 'Bad_Name' not allowed",
        ),
        (["--set", "queues.q.limit=1"], "at '/queues/q': additional properties 'limit'"),
        (["--set", "events=some"], "at '/events'"),
        (["--set", "workers=0"], "at '/workers'"),
        (["--set", "statusHold=-1"], "at '/statusHold'"),
        (["--set", "statusHold=soon"], "at '/statusHold'"),
        (["--set", "podStartGrace=1 minute"], "at '/podStartGrace'"),
        (["--set", "unschedulableTimeout=never"], "at '/unschedulableTimeout'"),
        (["--set", "progressInterval=-1"], "at '/progressInterval'"),
        (["--set", "progressInterval=often"], "at '/progressInterval'"),
        (["--set", "progressMaxReads=0"], "at '/progressMaxReads'"),
        (["--set", "metricsPort=70000"], "at '/metricsPort'"),
        (["--set", "leaderElection.leaseDuration=1"], "at '/leaderElection/leaseDuration'"),
        (["--set-json", 'namespaces=["a","a"]'], "at '/namespaces'"),
        (["--set-json", 'namespaces=["Not_A_Namespace"]'], "at '/namespaces/0'"),
        (["--set", "replicaCunt=2"], "additional properties 'replicaCunt' not allowed"),
        # typos in nested objects
        (["--set", "image.tagg=1"], "at '/image': additional properties 'tagg' not allowed"),
        (["--set", "resources.limit.cpu=1"], "at '/resources': additional properties 'limit'"),
        (["--set", "livenessProbe.periodSecond=5"], "at '/livenessProbe': additional properties"),
        (["--set", "securityContext.runAsUserr=1"], "at '/securityContext': additional properties"),
        (["--set", "podSecurityContext.fsGrup=1"], "at '/podSecurityContext': additional"),
        (["--set", "serviceAccount.nmae=x"], "at '/serviceAccount': additional properties 'nmae'"),
        (["--set", "serviceMonitor.intervall=1m"], "at '/serviceMonitor': additional properties"),
        (["--set", "prometheusRule.enable=true"], "at '/prometheusRule': additional properties"),
        (["--set", "grafanaDashboard.label.a=b"], "at '/grafanaDashboard': additional properties"),
        (["--set", "networkPolicy.enable=true"], "at '/networkPolicy': additional properties"),
        (["--set", "tests.timeout=5"], "at '/tests': additional properties 'timeout'"),
        (["--set", "rbac.crate=false"], "at '/rbac': additional properties 'crate'"),
        (["--set", "updateStrategy.maxSurg=2"], "at '/updateStrategy': additional properties"),
        (["--set", "affinity.podAntiAfinity.x=y"], "at '/affinity': additional properties"),
        (["--set-json", 'tolerations=[{"efect":"NoSchedule"}]'], "at '/tolerations/0'"),
        (["--set-json", 'extraEnv=[{"name":"A","vaule":"1"}]'], "at '/extraEnv/0'"),
        (["--set-json", 'extraVolumeMounts=[{"name":"ca"}]'], "at '/extraVolumeMounts/0'"),
        (["--set-json", 'extraVolumes=[{"name":"ca"}]'], "at '/extraVolumes/0'"),
        (["--set-json", 'envFrom=[{"configMap":{"name":"x"}}]'], "at '/envFrom/0'"),
        (["--set-json", 'imagePullSecrets=[{"nam":"x"}]'], "at '/imagePullSecrets/0'"),
        (
            ["--set-json", 'networkPolicy.metricsFrom=[{"podSelectr":{}}]'],
            "at '/networkPolicy/metricsFrom/0'",
        ),
        (["--set", "image.digest=latest"], "at '/image/digest'"),
        (["--set", "image.tag=a b"], "at '/image/tag'"),
        (["--set", "global.imageRegistry=has space"], "at '/global/imageRegistry'"),
        (["--set-string", 'prometheusRule.selector={a="b"}'], "at '/prometheusRule/selector'"),
        (["--set-json", 'podPolicy.exempt=["hostpath"]'], "at '/podPolicy/exempt/0'"),
        (["--set-json", 'podPolicy.forbidden=["root"]'], "at '/podPolicy/forbidden/0'"),
        (["--set-json", 'podPolicy.validationActions=["Deny","Warn"]'], "at '/podPolicy/val"),
        (["--set-json", "podPolicy.validationActions=[]"], "at '/podPolicy/validationActions'"),
        (
            ["--set-json", 'podPolicy.serviceAccounts={"Shop":["a"]}'],
            "at '/podPolicy/serviceAccounts': additional properties 'Shop' not allowed",
        ),
        (["--set-json", 'podPolicy.secrets={"shop":["Bad Name"]}'], "at '/podPolicy/secrets"),
        (["--set-json", 'podPolicy.trustedNamespaces=["a_b"]'], "at '/podPolicy/trustedNames"),
        (["--set", "podPolicy.enable=false"], "at '/podPolicy': additional properties 'enable'"),
        (["--set-json", 'excludeNamespaces=["A"]'], "at '/excludeNamespaces/0'"),
        (["--set", "operatorPolicy.on=true"], "at '/operatorPolicy': additional properties"),
        (
            ["--set", "replicaCount=2", "--set", "leaderElection.enabled=false"],
            "replicaCount is 2 but leaderElection.enabled is false",
        ),
    ],
)
def test_schema_refuses_bad_values(values: list[str], message: str) -> None:
    out = helm("template", RELEASE, str(CHART), *values)
    assert out.returncode != 0, f"{values} were accepted"
    assert message in out.stderr, out.stderr


# ------------------------------------------------------------------ the CRD
def test_chart_crd_is_the_generated_crd() -> None:
    """Byte-identical: `make crd` copies crds/ into the chart."""
    for crd_file in CRD_FILE.parent.iterdir():
        assert (CHART / "crds" / crd_file.name).read_bytes() == crd_file.read_bytes()
    assert sorted(p.name for p in (CHART / "crds").iterdir()) == sorted(
        p.name for p in CRD_FILE.parent.iterdir()
    )


@needs_helm
def test_global_values_of_a_parent_chart_are_accepted() -> None:
    """A parent chart's globals reach this chart too: global stays open to other keys."""
    objs = render("--set", "global.storageClass=fast", "--set", "global.imageRegistry=r.local")
    assert container(objs)["image"].startswith("r.local/")


@needs_helm
def test_helm_assumes_a_current_kubernetes_version() -> None:
    """hack/build-cluster-tools.sh builds helm with its release ldflags: without them helm
    assumes Kubernetes 1.20 and the chart (kubeVersion >=1.31) does not render without
    --kube-version."""
    assert HELM is not None
    out = subprocess.run(
        [HELM, "template", RELEASE, str(CHART)], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr


@needs_helm
def test_kube_version_is_enforced() -> None:
    out = helm("template", RELEASE, str(CHART), "--kube-version", "1.30.4")
    assert out.returncode != 0
    assert "kubeVersion" in out.stderr or "incompatible" in out.stderr, out.stderr
    assert helm("template", RELEASE, str(CHART), "--kube-version", "1.31.0").returncode == 0


def test_chart_metadata() -> None:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert chart["apiVersion"] == "v2"
    assert chart["version"] == "0.1.0"
    assert chart["appVersion"] == "0.1.0"
    assert chart["kubeVersion"] == ">=1.31.0-0"
    assert chart["home"].startswith("https://")
    assert chart["sources"] and all(s.startswith("https://") for s in chart["sources"])
    notes = (CHART / "templates" / "NOTES.txt").read_text()
    assert (
        "helm show crds" in notes and "kubectl apply --server-side --force-conflicts -f -" in notes
    )
    assert "pip install backgroundjobs" not in notes  # not on PyPI
    assert "kubectl get bgj" in notes and "bgjobs" in notes and "/metrics" in notes
