"""The chart's in-cluster dashboard (``dashboard.*`` values), rendered with ``helm template``:
off by default; its own ServiceAccount; read-only RBAC unless actions are on; actions only
behind an auth proxy in the pod (the chart refuses them otherwise); a ClusterIP Service; and
container arguments the dashboard itself accepts."""

from __future__ import annotations

from typing import Any

import pytest
from tests.unit.test_chart_render import (
    CHART,
    FULLNAME,
    NAMESPACE,
    RELEASE,
    find,
    helm,
    needs_helm,
    one,
    render,
    verbs,
)

from backgroundjobs.dashboard._cli import build_parser, settings_from

pytestmark = [pytest.mark.unit, needs_helm]

Body = dict[str, Any]
NAME = f"{FULLNAME}-dashboard"
PROXY = [
    "--set", "dashboard.authProxy.enabled=true",
    "--set", "dashboard.authProxy.container.image=quay.example/oauth2-proxy:v7",
    "--set-json", 'dashboard.authProxy.container.args=["--upstream=http://127.0.0.1:8080"]',
]  # fmt: skip
READ = {
    ("backgroundjobs.dev", "backgroundjobs"): {"get", "list", "watch"},
    ("backgroundjobs.dev", "backgroundjobqueues"): {"list", "watch"},  # the queues page
    ("batch", "jobs"): {"get", "list"},
    ("", "pods"): {"list"},
    ("", "pods/log"): {"get"},
    ("", "events"): {"list"},
}


def dashboard_objects(*values: str) -> list[Body]:
    objs = render("--set", "dashboard.enabled=true", *values)
    return [
        o
        for o in objs
        if (o["metadata"].get("labels") or {}).get("app.kubernetes.io/component") == "dashboard"
    ]


def pod_of(objs: list[Body]) -> Body:
    return one(objs, "Deployment", NAME)["spec"]["template"]["spec"]  # type: ignore[no-any-return]


def dashboard_container(objs: list[Body]) -> Body:
    return next(c for c in pod_of(objs)["containers"] if c["name"] == "dashboard")


def settings_of(objs: list[Body]) -> Any:
    """The container's arguments as the dashboard parses and checks them."""
    container = dashboard_container(objs)
    assert container["command"] == ["python3", "-m", "backgroundjobs.dashboard"]
    args = build_parser().parse_args(container["args"])
    settings = settings_from(args, "default")
    settings.check()
    return args, settings


def test_off_by_default() -> None:
    objs = render()
    assert not [o for o in objs if "dashboard" in o["metadata"]["name"]]


def test_enabled_is_read_only_with_its_own_service_account_and_a_clusterip_service() -> None:
    objs = dashboard_objects()
    assert sorted(o["kind"] for o in objs) == [
        "ClusterRole", "ClusterRoleBinding", "Deployment", "Service", "ServiceAccount",
    ]  # fmt: skip
    pod = pod_of(objs)
    assert pod["serviceAccountName"] == NAME
    assert one(objs, "ServiceAccount")["metadata"]["namespace"] == NAMESPACE
    assert [c["name"] for c in pod["containers"]] == ["dashboard"]
    container = dashboard_container(objs)
    assert container["image"] == "backgroundjobs/operator:0.1.0"
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert pod["securityContext"]["runAsNonRoot"] is True
    args, settings = settings_of(objs)
    assert (settings.auth, settings.read_only, settings.namespace) == ("none", True, None)
    assert args.in_cluster and args.no_browser and args.health_port == 8081
    for probe in ("readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"]["port"] == "health"

    svc = one(objs, "Service", NAME)
    assert svc["spec"]["type"] == "ClusterIP"
    assert svc["spec"]["ports"] == [
        {"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}
    ]
    labels = one(objs, "Deployment")["spec"]["template"]["metadata"]["labels"]
    assert svc["spec"]["selector"].items() <= labels.items()
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"http": 8080, "health": 8081}

    assert verbs(one(objs, "ClusterRole", NAME)["rules"]) == READ
    binding = one(objs, "ClusterRoleBinding", NAME)
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": NAME, "namespace": NAMESPACE}]
    for obj in objs:
        labels = obj["metadata"]["labels"]
        assert labels["app.kubernetes.io/instance"] == RELEASE
        assert labels["app.kubernetes.io/part-of"] == "backgroundjobs"


def test_one_namespace_gets_a_role_there_and_nothing_cluster_wide() -> None:
    objs = dashboard_objects("--set", "dashboard.namespace=team-a")
    assert find(objs, "ClusterRole") == [] and find(objs, "ClusterRoleBinding") == []
    role = one(objs, "Role", NAME)
    assert role["metadata"]["namespace"] == "team-a"
    assert verbs(role["rules"]) == READ
    binding = one(objs, "RoleBinding", NAME)
    assert binding["metadata"]["namespace"] == "team-a"
    assert binding["subjects"][0]["namespace"] == NAMESPACE
    _, settings = settings_of(objs)
    assert settings.namespace == "team-a"


def test_actions_without_an_auth_proxy_are_refused() -> None:
    out = helm(
        "template", RELEASE, str(CHART), "-n", NAMESPACE,
        "--set", "dashboard.enabled=true", "--set", "dashboard.actions.enabled=true",
    )  # fmt: skip
    assert out.returncode != 0
    assert "dashboard.actions.enabled needs dashboard.authProxy.enabled" in out.stderr
    out = helm(
        "template", RELEASE, str(CHART), "-n", NAMESPACE,
        "--set", "dashboard.enabled=true", "--set", "dashboard.authProxy.enabled=true",
    )  # fmt: skip
    assert out.returncode != 0
    assert "dashboard.authProxy.container" in out.stderr


def test_actions_behind_the_proxy_impersonate_the_proxy_s_user() -> None:
    objs = dashboard_objects(*PROXY, "--set", "dashboard.actions.enabled=true")
    pod = pod_of(objs)
    assert [c["name"] for c in pod["containers"]] == ["dashboard", "auth-proxy"]
    proxy = pod["containers"][1]
    assert proxy["image"] == "quay.example/oauth2-proxy:v7"
    assert proxy["ports"] == [{"name": "http", "containerPort": 4180, "protocol": "TCP"}]
    # Only the proxy is reachable: the dashboard listens on 127.0.0.1, without an http port.
    assert "http" not in {p["name"] for p in dashboard_container(objs)["ports"]}
    _, settings = settings_of(objs)
    assert (settings.address, settings.auth, settings.impersonate, settings.read_only) == (
        "127.0.0.1", "proxy", True, False,
    )  # fmt: skip
    assert settings.user_header == "X-Forwarded-User"
    # Reading as itself; writing only as the person, through impersonation.
    assert verbs(one(objs, "ClusterRole", NAME)["rules"]) == READ
    impersonate = one(objs, "ClusterRole", f"{NAME}-impersonate")
    assert verbs(impersonate["rules"]) == {
        ("", "users"): {"impersonate"},
        ("", "groups"): {"impersonate"},
    }
    assert one(objs, "ClusterRoleBinding", f"{NAME}-impersonate")["subjects"][0]["name"] == NAME


def test_actions_as_the_dashboard_s_service_account_grant_patch_and_delete_only() -> None:
    objs = dashboard_objects(
        *PROXY,
        "--set", "dashboard.actions.enabled=true",
        "--set", "dashboard.actions.impersonate=false",
        "--set", "dashboard.namespace=team-a",
    )  # fmt: skip
    granted = verbs(one(objs, "Role", NAME)["rules"])
    assert granted[("backgroundjobs.dev", "backgroundjobs")] == {
        "get", "list", "watch", "patch", "delete",
    }  # fmt: skip
    assert not [o for o in objs if o["metadata"]["name"].endswith("-impersonate")]
    _, settings = settings_of(objs)
    assert (settings.impersonate, settings.read_only) == (False, False)


def test_a_proxy_without_actions_stays_read_only() -> None:
    _, settings = settings_of(dashboard_objects(*PROXY))
    assert (settings.auth, settings.read_only) == ("proxy", True)


def test_prometheus_url_and_lint() -> None:
    values = ["--set", "dashboard.prometheusUrl=http://prometheus.monitoring:9090"]
    args, _ = settings_of(dashboard_objects(*values))
    assert args.prometheus == "http://prometheus.monitoring:9090"
    out = helm("lint", "--strict", str(CHART), "--set", "dashboard.enabled=true", *PROXY, *values)
    assert out.returncode == 0, out.stdout + out.stderr


@pytest.mark.parametrize(
    ("value", "named"),
    [
        ("dashboard.namespace=Team_A", "/dashboard/namespace"),
        ("dashboard.prometheusUrl=ftp://x", "/dashboard/prometheusUrl"),
        ("dashboard.port=0", "/dashboard/port"),
        ("dashboard.colour=blue", "colour"),
    ],
)
def test_schema_refuses_bad_dashboard_values(value: str, named: str) -> None:
    out = helm("template", RELEASE, str(CHART), "--set", "dashboard.enabled=true", "--set", value)
    assert out.returncode != 0
    assert named in out.stderr
