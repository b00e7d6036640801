"""The chart's dashboard RBAC on the real API server: the dashboard run with a token of the
chart's dashboard ServiceAccount (as its pod would be; kwok cannot run the pod itself) reads
everything its pages need, and can change nothing, unless actions are on, and then only as
the person the auth proxy names (impersonation)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client
from tests.integration.bgj import RUN_FOR, Jobs, manifest, wait_for
from tests.integration.browser import DashboardProcess
from tests.integration.queue_helpers import Queues
from tests.integration.test_dashboard import append_pod_log
from tests.integration.test_rbac import (
    Install,
    apply_chart_rbac,
    delete_namespace,
    new_namespace,
    remove_cluster_objects,
)
from tests.unit.test_chart_render import HELM

from backgroundjobs.api import constants as c

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(HELM is None, reason="helm not built (make cluster-tools)"),
]

Body = dict[str, Any]
PROXY = [
    "--set", "dashboard.enabled=true",
    "--set", "dashboard.authProxy.enabled=true",
    "--set", "dashboard.authProxy.container.image=proxy:1",
]  # fmt: skip


@pytest.fixture
def release_namespace(core_v1: client.CoreV1Api) -> Iterator[str]:
    name = new_namespace(core_v1, "dash-chart")
    yield name
    delete_namespace(core_v1, name)


def dashboard_kubeconfig(
    admin_kubeconfig: str, core: client.CoreV1Api, install: Install, path: Path
) -> str:
    """A kubeconfig whose only credential is a token of the chart's dashboard ServiceAccount."""
    account = f"{install.fullname}-dashboard"
    token = core.create_namespaced_service_account_token(
        account, install.namespace, {"spec": {"audiences": [], "expirationSeconds": 3600}}
    ).status.token
    admin = yaml.safe_load(Path(admin_kubeconfig).read_text())
    context = next(x["context"] for x in admin["contexts"] if x["name"] == admin["current-context"])
    cluster = dict(next(x["cluster"] for x in admin["clusters"] if x["name"] == context["cluster"]))
    ca = cluster.get("certificate-authority")
    if ca and not Path(ca).is_absolute():
        cluster["certificate-authority"] = str((Path(admin_kubeconfig).parent / ca).resolve())
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "c", "cluster": cluster}],
                "users": [{"name": account, "user": {"token": token}}],
                "contexts": [{"name": "d", "context": {"cluster": "c", "user": account}}],
                "current-context": "d",
            }
        )
    )
    return str(path)


def call(
    dash: DashboardProcess, path: str, method: str = "GET", headers: dict[str, str] | None = None
) -> tuple[int, Any]:
    request = urllib.request.Request(
        dash.base + path,
        method=method,
        headers={"X-Requested-With": "bgjobs-dashboard", **(headers or {})},
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def first_event(dash: DashboardProcess, path: str, headers: dict[str, str]) -> str:
    """The first server-sent event of a stream (its name and data)."""
    request = urllib.request.Request(dash.base + path, headers=headers)
    with urllib.request.urlopen(request, timeout=60) as response:
        lines = []
        for raw in response:
            line = raw.decode().rstrip("\n")
            if not line and lines:
                return "\n".join(lines)
            if line:
                lines.append(line)
    raise AssertionError("the stream ended without an event")


def test_the_read_only_dashboard_reads_all_its_pages_need_and_changes_nothing(
    bgjobs: Jobs,
    namespace: str,
    release_namespace: str,
    kubeconfig: str,
    core_v1: client.CoreV1Api,
    api_client: client.ApiClient,
    tmp_path: Path,
) -> None:
    install = apply_chart_rbac(
        kubeconfig, release_namespace, "--set", "dashboard.enabled=true",
        "--set", f"dashboard.namespace={namespace}",
    )  # fmt: skip
    try:
        token = dashboard_kubeconfig(kubeconfig, core_v1, install, tmp_path / "dashboard.yaml")
        bgjobs.create(manifest("seen", pod_annotations={RUN_FOR: "60s"}))
        bgjobs.wait_phase("seen", "Running")
        Queues(api_client, namespace).create("mail", maxConcurrency=3)
        # The chart's arguments for this value set, with a kubeconfig instead of --in-cluster.
        dash = DashboardProcess(
            token, tmp_path / "log", "-n", namespace, "--auth", "none", "--read-only"
        )
        try:
            wait_for("the cache", lambda: call(dash, "/healthz")[0] == 200, timeout=60)
            status, page = call(dash, "/api/jobs")
            assert status == 200 and [i["name"] for i in page["items"]] == ["seen"]
            status, job = call(dash, f"/api/jobs/{namespace}/seen")
            assert status == 200, job
            assert job["runs"] and job["runs"][0]["attempts"], "Jobs and pods are readable"
            assert any(e["source"] == "event" for e in job["timeline"]), "Events are readable"
            append_pod_log(kubeconfig, {"level": "info", "message": f"hello from {namespace}"})
            event = first_event(dash, f"/api/jobs/{namespace}/seen/logs", {})
            assert event.startswith("event: line"), event  # pods/log is readable
            status, body = call(dash, f"/api/jobs/{namespace}/seen/cancel", "POST")
            assert (status, body["error"]) == (403, "ReadOnly")

            def queues_page() -> Any:
                status, body = call(dash, "/api/queues")
                assert status == 200, body
                return body if body["watch"]["synced"] else None

            queues = wait_for("the queue watch", queues_page, timeout=60)  # may list, watch
            assert queues["watch"]["error"] is None
            assert {(q["name"], q["object"]) for q in queues["items"]} == {
                ("mail", True), ("default", False),
            }  # fmt: skip
        finally:
            dash.stop()
    finally:
        remove_cluster_objects(kubeconfig, install)
    assert bgjobs.status("seen").get("phase") == "Running"


def test_actions_behind_the_proxy_are_the_named_person_s(
    bgjobs: Jobs,
    namespace: str,
    release_namespace: str,
    kubeconfig: str,
    core_v1: client.CoreV1Api,
    api_client: client.ApiClient,
    tmp_path: Path,
) -> None:
    install = apply_chart_rbac(
        kubeconfig, release_namespace, *PROXY, "--set", "dashboard.actions.enabled=true"
    )
    rbac = client.RbacAuthorizationV1Api(api_client)
    group = "rbac.authorization.k8s.io"
    rbac.create_namespaced_role(
        namespace,
        {
            "metadata": {"name": "requeuer"},
            "rules": [{"apiGroups": [c.GROUP], "resources": [c.PLURAL], "verbs": ["patch"]}],
        },
    )
    rbac.create_namespaced_role_binding(
        namespace,
        {
            "metadata": {"name": "requeuer"},
            "roleRef": {"apiGroup": group, "kind": "Role", "name": "requeuer"},
            "subjects": [{"kind": "User", "name": "ops@example.com", "apiGroup": group}],
        },
    )
    try:
        token = dashboard_kubeconfig(kubeconfig, core_v1, install, tmp_path / "dashboard.yaml")
        bgjobs.create(manifest("done"))
        bgjobs.wait_phase("done", "Succeeded")
        dash = DashboardProcess(token, tmp_path / "log", "-A", "--auth", "proxy", "--impersonate")
        try:
            as_dev = {"X-Forwarded-User": "dev@example.com"}
            as_ops = {"X-Forwarded-User": "ops@example.com"}
            wait_for("the cache", lambda: call(dash, "/healthz")[0] == 200, timeout=60)
            assert call(dash, f"/api/jobs/{namespace}/done/requeue", "POST")[0] == 401
            status, body = call(dash, f"/api/jobs/{namespace}/done/requeue", "POST", as_dev)
            assert status == 403 and body["rbac"], body
            assert "dev@example.com" in body["message"]
            status, body = call(dash, f"/api/jobs/{namespace}/done/requeue", "POST", as_ops)
            assert status == 200, body
            wait_for("the second run", lambda: bgjobs.status("done").get("runs") == 2)
        finally:
            dash.stop()
    finally:
        remove_cluster_objects(kubeconfig, install)
