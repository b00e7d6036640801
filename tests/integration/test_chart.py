"""The chart against the real API server: every rendered value set passes a server-side dry
run; `helm install` (into a namespace that enforces Pod Security "restricted"), `helm upgrade`
with changed values and `helm uninstall` work; the user roles aggregate into edit and view;
the k9s plugins' commands annotate a BackgroundJob as the operator expects.

Pods are simulated by kwok: a Deployment's pods go Running and stay so (nothing runs in them).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client
from kubernetes.client.rest import ApiException
from tests.integration.bgj import FAIL_EXIT as KWOK_EXIT
from tests.integration.bgj import Jobs, manifest, wait_for
from tests.integration.harness import OperatorProcess, free_port
from tests.integration.test_rbac import delete_namespace, kubectl, kubectl_binary, new_namespace
from tests.unit.test_chart_render import CHART, HELM, VALUE_SETS, helm

from backgroundjobs.api import constants as c

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(HELM is None, reason="helm not built (make cluster-tools)"),
]

Body = dict[str, Any]
REPO_ROOT = Path(__file__).resolve().parents[2]

# Stand-ins for the Prometheus Operator's CRDs, so that the dry run can reach the API server
# with the monitoring objects (their spec is not validated by these stubs).
MONITORING_STUBS = [
    {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.monitoring.coreos.com"},
        "spec": {
            "group": "monitoring.coreos.com",
            "scope": "Namespaced",
            "names": {"plural": plural, "kind": kind, "singular": plural[:-1].lower()},
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "x-kubernetes-preserve-unknown-fields": True,
                        }
                    },
                }
            ],
        },
    }
    for plural, kind in [
        ("servicemonitors", "ServiceMonitor"),
        ("prometheusrules", "PrometheusRule"),
    ]
]


def helm_in(kubeconfig: str, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    assert HELM is not None
    return subprocess.run(
        [HELM, "--kubeconfig", kubeconfig, *args], capture_output=True, text=True, timeout=timeout
    )


@pytest.fixture(scope="module")
def monitoring_crds(kubeconfig: str, crd: Body) -> Iterator[None]:
    text = yaml.safe_dump_all(MONITORING_STUBS)
    created = kubectl(kubeconfig, "create", "-f", "-", stdin=text)
    existed = "AlreadyExists" in created.stderr
    assert created.returncode == 0 or existed, created.stderr
    out = kubectl(
        kubeconfig, "wait", "--for=condition=Established", "--timeout=60s",
        "crd/servicemonitors.monitoring.coreos.com", "crd/prometheusrules.monitoring.coreos.com",
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    yield
    if not existed:
        kubectl(kubeconfig, "delete", "-f", "-", "--ignore-not-found", stdin=text)


@pytest.mark.parametrize("name", sorted(VALUE_SETS))
def test_rendered_manifests_pass_a_server_side_dry_run(
    name: str, kubeconfig: str, core_v1: client.CoreV1Api, monitoring_crds: None
) -> None:
    ns = new_namespace(core_v1, "dry")
    served = [new_namespace(core_v1, "dry-a"), new_namespace(core_v1, "dry-b")]
    try:
        values = VALUE_SETS[name]
        if name == "namespaced":
            values = ["--set-json", f"namespaces={json.dumps(served)}"]
        out = helm("template", f"dry{uuid.uuid4().hex[:4]}", str(CHART), "-n", ns,
                   "--include-crds", *values)  # fmt: skip
        assert out.returncode == 0, out.stderr
        docs = [d for d in yaml.safe_load_all(out.stdout) if d]
        applied = kubectl(
            kubeconfig, "apply", "--dry-run=server", "--server-side", "--force-conflicts",
            "-f", "-", stdin=out.stdout,
        )  # fmt: skip
        assert applied.returncode == 0, applied.stderr
        lines = [x for x in applied.stdout.splitlines() if x.strip()]
        assert len(lines) == len(docs), applied.stdout
        assert all(x.endswith("(server dry run)") for x in lines), applied.stdout
    finally:
        for n in (ns, *served):
            delete_namespace(core_v1, n)


# ------------------------------------------------------------------ install, upgrade, uninstall
@pytest.fixture
def release_namespace(core_v1: client.CoreV1Api) -> Iterator[str]:
    """A namespace that enforces Pod Security "restricted": a pod that breaks it is refused."""
    name = f"t-chart-{uuid.uuid4().hex[:6]}"
    labels = {
        "backgroundjobs.dev/test": "true",
        "pod-security.kubernetes.io/enforce": "restricted",
        "pod-security.kubernetes.io/enforce-version": "latest",
    }
    core_v1.create_namespace(
        client.V1Namespace(metadata=client.V1ObjectMeta(name=name, labels=labels))
    )
    try:
        yield name
    finally:
        delete_namespace(core_v1, name)


def running_pods(core: client.CoreV1Api, ns: str, release: str) -> list[Any]:
    pods = core.list_namespaced_pod(ns, label_selector=f"app.kubernetes.io/instance={release}")
    return [
        p for p in pods.items if p.status.phase == "Running" and not p.metadata.deletion_timestamp
    ]


def exists(read: Any, *args: str) -> bool:
    try:
        read(*args)
        return True
    except ApiException as exc:
        if exc.status == 404:
            return False
        raise


def test_install_upgrade_uninstall(
    kubeconfig: str,
    api_client: client.ApiClient,
    core_v1: client.CoreV1Api,
    release_namespace: str,
    crd: Body,
) -> None:
    ns, release = release_namespace, f"it{uuid.uuid4().hex[:5]}"
    fullname = f"{release}-backgroundjobs-operator"
    apps = client.AppsV1Api(api_client)
    rbac = client.RbacAuthorizationV1Api(api_client)
    ext = client.ApiextensionsV1Api(api_client)

    # The user roles have fixed names: one release per cluster creates them.
    user_roles = not exists(rbac.read_cluster_role, "backgroundjobs-edit")
    roles_flag = f"userRoles.create={str(user_roles).lower()}"
    # kwok runs no container: the annotation makes the `helm test` pod exit as a passing check
    # would (the check itself runs against a real operator in test_helm_test_check_*).
    out = helm_in(kubeconfig, "install", release, str(CHART), "-n", ns, "--wait",
                  "--timeout", "180s", "--set", roles_flag,
                  "--set-json", f'tests.podAnnotations={{"{KWOK_EXIT}":"0"}}')  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert "kubectl get bgj" in out.stdout and "kubectl apply --server-side" in out.stdout  # NOTES
    assert "helm show crds" in out.stdout and "helm test" in out.stdout
    assert exists(ext.read_custom_resource_definition, c.CRD_NAME)
    assert exists(rbac.read_cluster_role, fullname)
    assert exists(rbac.read_cluster_role_binding, fullname)
    assert exists(rbac.read_namespaced_role, f"{fullname}-leader-election", ns)
    assert exists(rbac.read_cluster_role, "backgroundjobs-edit")
    assert exists(rbac.read_cluster_role, "backgroundjobs-view")
    assert exists(core_v1.read_namespaced_service_account, fullname, ns)
    assert exists(core_v1.read_namespaced_service, f"{fullname}-metrics", ns)
    deploy = apps.read_namespaced_deployment(fullname, ns)
    assert deploy.status.ready_replicas == 2
    pods = wait_for(
        "2 Running pods", lambda: len(p := running_pods(core_v1, ns, release)) == 2 and p
    )
    assert all(p.spec.security_context.run_as_non_root for p in pods)
    first_pods = {p.metadata.name for p in pods}

    # helm test: the hook pod is admitted under Pod Security "restricted" and passes; a passed
    # test pod is deleted (hook-delete-policy).
    tested = helm_in(kubeconfig, "test", release, "-n", ns, "--timeout", "120s")
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "Phase:          Succeeded" in tested.stdout, tested.stdout
    test_pod = f"{fullname}-test-metrics"
    wait_for("the passed test pod to go",
             lambda: not exists(core_v1.read_namespaced_pod, test_pod, ns))  # fmt: skip

    out = helm_in(
        kubeconfig, "upgrade", release, str(CHART), "-n", ns, "--wait", "--timeout", "180s",
        "--set", "replicaCount=3", "--set", "logFormat=text", "--set", "retention=24h",
        "--set-json", 'queues={"critical":{"maxConcurrency":2}}',
        "--set-json", f'tests.podAnnotations={{"{KWOK_EXIT}":"1"}}',
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    # A failing check fails `helm test`, and its pod stays for `kubectl logs`.
    tested = helm_in(kubeconfig, "test", release, "-n", ns, "--timeout", "120s")
    assert tested.returncode != 0
    assert core_v1.read_namespaced_pod(test_pod, ns).status.phase == "Failed"
    deploy = apps.read_namespaced_deployment(fullname, ns)
    assert deploy.spec.replicas == 3 and deploy.status.updated_replicas == 3
    env = {e.name: e.value for e in deploy.spec.template.spec.containers[0].env}
    assert env["BACKGROUNDJOBS_LOG_FORMAT"] == "text"
    assert env["BACKGROUNDJOBS_RETENTION"] == "24h"
    assert json.loads(env["BACKGROUNDJOBS_QUEUES"]) == {"critical": {"maxConcurrency": 2}}
    pods = wait_for(
        "3 Running new pods", lambda: len(p := running_pods(core_v1, ns, release)) == 3 and p
    )
    assert not {p.metadata.name for p in pods} & first_pods, "the pods were not rolled"

    # Upgrade into namespaced mode: the ClusterRole goes, a Role in the served namespace comes.
    out = helm_in(kubeconfig, "upgrade", release, str(CHART), "-n", ns, "--reuse-values",
                  "--set-json", f"namespaces={json.dumps([ns])}", "--wait")  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert not exists(rbac.read_cluster_role, fullname)
    assert exists(rbac.read_namespaced_role, fullname, ns)
    status = json.loads(helm_in(kubeconfig, "status", release, "-n", ns, "-o", "json").stdout)
    assert status["version"] == 3 and status["info"]["status"] == "deployed"

    out = helm_in(kubeconfig, "uninstall", release, "-n", ns, "--wait")
    assert out.returncode == 0, out.stderr
    wait_for(
        "the Deployment to go", lambda: not exists(apps.read_namespaced_deployment, fullname, ns)
    )
    assert not exists(rbac.read_namespaced_role, fullname, ns)
    if user_roles:
        assert not exists(rbac.read_cluster_role, "backgroundjobs-edit")
    assert exists(ext.read_custom_resource_definition, c.CRD_NAME)  # crds/ are never deleted


def check_metrics(url: str, timeout: str = "20") -> subprocess.CompletedProcess[str]:
    """The `helm test` pod's command, as the chart renders it, run here against ``url``."""
    rendered = yaml.safe_load_all(helm("template", "t", str(CHART)).stdout)
    pod = next(o for o in rendered if o and o["kind"] == "Pod")
    python, flag, script, _, _ = pod["spec"]["containers"][0]["command"]
    assert python == "python3"  # the image's; here this venv's interpreter stands in for it
    return subprocess.run(
        [sys.executable, flag, script, url, timeout], capture_output=True, text=True, timeout=120
    )


def test_helm_test_check_passes_against_the_operator(operator: OperatorProcess) -> None:
    out = check_metrics(f"http://127.0.0.1:{operator.metrics_port}/metrics")
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("ok: ") and 'backgroundjobs_build_info{version="' in out.stdout


def test_helm_test_check_fails_when_the_operator_does_not_answer(
    operator: OperatorProcess,
) -> None:
    closed = check_metrics(f"http://127.0.0.1:{free_port()}/metrics", timeout="3")
    assert closed.returncode == 1 and "does not answer" in closed.stderr, closed.stderr
    # Something else answers there (the operator's health endpoint): not the metrics.
    other = check_metrics(f"http://127.0.0.1:{operator.health_port}/healthz", timeout="3")
    assert other.returncode == 1 and "without backgroundjobs_build_info" in other.stderr


def test_a_pod_breaking_restricted_would_be_refused(
    kubeconfig: str, release_namespace: str
) -> None:
    """The Pod Security check above can fail: a root pod is refused in that namespace."""
    pod = {
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "root"},
        "spec": {"containers": [{"name": "c", "image": "busybox"}]},
    }  # fmt: skip
    out = kubectl(kubeconfig, "apply", "--dry-run=server", "-n", release_namespace, "-f", "-",
                  stdin=json.dumps(pod))  # fmt: skip
    assert out.returncode != 0 and "restricted" in out.stderr, out.stderr


def test_user_roles_aggregate_into_edit_and_view(
    kubeconfig: str, api_client: client.ApiClient, namespace: str, crd: Body
) -> None:
    release = f"roles{uuid.uuid4().hex[:4]}"
    rbac = client.RbacAuthorizationV1Api(api_client)
    user_roles = not exists(rbac.read_cluster_role, "backgroundjobs-edit")
    out = helm_in(kubeconfig, "install", release, str(CHART), "-n", namespace,
                  "--set", "replicaCount=1", "--set", "leaderElection.enabled=false",
                  "--set", f"userRoles.create={str(user_roles).lower()}")  # fmt: skip
    assert out.returncode == 0, out.stderr
    try:
        editor, viewer = f"editor-{release}", f"viewer-{release}"
        for user, role in ((editor, "edit"), (viewer, "view")):
            out = kubectl(kubeconfig, "create", "rolebinding", f"{user}", f"--clusterrole={role}",
                          f"--user={user}", "-n", namespace)  # fmt: skip
            assert out.returncode == 0, out.stderr

        def can(user: str, verb: str) -> bool:
            r = kubectl(kubeconfig, "auth", "can-i", verb, "backgroundjobs.backgroundjobs.dev",
                        "-n", namespace, f"--as={user}")  # fmt: skip
            return r.stdout.strip() == "yes"

        # the clusterrole-aggregation controller fills edit and view in the background
        wait_for("edit to aggregate", lambda: can(editor, "create"), timeout=60)
        assert can(editor, "patch") and can(editor, "delete")
        wait_for("view to aggregate", lambda: can(viewer, "list"), timeout=60)
        assert not can(viewer, "create") and not can(viewer, "patch")
    finally:
        helm_in(kubeconfig, "uninstall", release, "-n", namespace, "--wait")


# ------------------------------------------------------------------ k9s
K9S_VAR = re.compile(r"\$(\!?[\w|\d|\-|]+)")  # k9s' internal/view/env.go


def k9s_substitute(arg: str, env: dict[str, str]) -> str:
    """What k9s does to a plugin argument: $WORD from its own variables, else an error."""
    for key in sorted(K9S_VAR.findall(arg), key=len, reverse=True):
        assert key.upper() in env, f"k9s would refuse ${key} (not one of its variables)"
        arg = arg.replace(f"${key}", env[key.upper()])
    return arg


def run_plugin(
    name: str, kubeconfig: str, namespace: str, bgj: str, home: Path, k9s_kubeconfig: str = ""
) -> subprocess.CompletedProcess[str]:
    """The plugin as `k9s --kubeconfig FILE --context CONTEXT` runs it: the kubeconfig reaches
    it only as k9s' $KUBECONFIG (``k9s_kubeconfig``, default ``kubeconfig``), with none in the
    environment and an empty home."""
    plugin = yaml.safe_load((REPO_ROOT / "k9s" / "plugins.yaml").read_text())["plugins"][name]
    assert plugin["scopes"] == ["backgroundjobs"]
    config = yaml.safe_load(Path(kubeconfig).read_text())
    k9s_env = {
        "NAME": bgj, "NAMESPACE": namespace, "CONTEXT": config["current-context"],
        "KUBECONFIG": k9s_kubeconfig or kubeconfig,
    }  # fmt: skip
    args = [k9s_substitute(str(a), k9s_env) for a in plugin["args"]]
    path = f"{Path(kubectl_binary()).parent}:{os.environ['PATH']}"
    env = {k: v for k, v in os.environ.items() if k != "KUBECONFIG"}
    return subprocess.run(
        [plugin["command"], *args], capture_output=True, text=True, timeout=60,
        env={**env, "HOME": str(home), "PATH": path},
    )  # fmt: skip


@pytest.mark.parametrize(
    ("plugin", "annotation"),
    [
        ("bgj-trigger", c.ANNOTATION_TRIGGER),
        ("bgj-requeue", c.ANNOTATION_REQUEUE),
        ("bgj-cancel", c.ANNOTATION_CANCEL),
    ],
)
def test_k9s_action_plugins_annotate_with_a_timestamp(
    plugin: str, annotation: str, kubeconfig: str, bgjobs_no_operator: Jobs, tmp_path: Path
) -> None:
    jobs = bgjobs_no_operator
    jobs.create(manifest("k9s", delay="1h"))
    before = datetime.now(UTC).replace(microsecond=0)
    out = run_plugin(plugin, kubeconfig, jobs.ns, "k9s", tmp_path)
    assert out.returncode == 0, out.stderr
    value = (jobs.get("k9s") or {})["metadata"]["annotations"][annotation]
    stamp = datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    assert before <= stamp <= datetime.now(UTC) + timedelta(seconds=1)


def test_k9s_suspend_and_resume_plugins_patch_the_spec(
    kubeconfig: str, bgjobs_no_operator: Jobs, tmp_path: Path
) -> None:
    jobs = bgjobs_no_operator
    jobs.create(
        manifest("k9s-pause", delay="1h", suspend=True, suspendUntil="2030-01-01T00:00:00Z")
    )
    out = run_plugin("bgj-suspend", kubeconfig, jobs.ns, "k9s-pause", tmp_path)
    assert out.returncode == 0, out.stderr
    spec = (jobs.get("k9s-pause") or {})["spec"]
    assert spec["suspend"] is True and "suspendUntil" not in spec  # until resumed
    out = run_plugin("bgj-resume", kubeconfig, jobs.ns, "k9s-pause", tmp_path)
    assert out.returncode == 0, out.stderr
    spec = (jobs.get("k9s-pause") or {})["spec"]
    assert spec["suspend"] is False and "suspendUntil" not in spec


def test_k9s_logs_plugin_without_a_run(
    kubeconfig: str, bgjobs_no_operator: Jobs, tmp_path: Path
) -> None:
    bgjobs_no_operator.create(manifest("k9s-idle", delay="1h"))
    out = run_plugin("bgj-logs", kubeconfig, bgjobs_no_operator.ns, "k9s-idle", tmp_path)
    assert out.returncode == 0, out.stderr
    assert "has not started a Job yet" in out.stdout


def test_k9s_plugins_use_no_other_kubeconfig(
    kubeconfig: str, bgjobs_no_operator: Jobs, tmp_path: Path
) -> None:
    """The tests above can fail: given a kubeconfig that does not exist, the plugin reaches no
    cluster (it does not fall back on another) and annotates nothing."""
    bgjobs_no_operator.create(manifest("k9s-nocfg", delay="1h"))
    missing = str(tmp_path / "missing-kubeconfig")
    out = run_plugin("bgj-trigger", kubeconfig, bgjobs_no_operator.ns, "k9s-nocfg", tmp_path,
                     k9s_kubeconfig=missing)  # fmt: skip
    assert out.returncode != 0
    annotations = (bgjobs_no_operator.get("k9s-nocfg") or {})["metadata"].get("annotations")
    assert c.ANNOTATION_TRIGGER not in (annotations or {})


def test_k9s_jump_selects_the_jobs_of_a_backgroundjob(bgjobs: Jobs) -> None:
    """k9s/jumps.yaml's label selector, rendered as k9s renders it, lists exactly the Jobs of
    the BackgroundJob it starts from."""
    jump = yaml.safe_load((REPO_ROOT / "k9s" / "jumps.yaml").read_text())["jumps"]
    (rule,) = jump.values()
    bgjobs.create(manifest("jump-a"))
    bgjobs.create(manifest("jump-b"))
    for name in ("jump-a", "jump-b"):
        bgjobs.wait_phase(name, "Succeeded")
    bgjobs.annotate("jump-a", c.ANNOTATION_REQUEUE, "again")
    wait_for("the requeued run", lambda: len(bgjobs.jobs("jump-a")) == 2)
    selector = rule["labelSelector"].replace("{{.metadata.name}}", "jump-a")
    selected = bgjobs.batch.list_namespaced_job(bgjobs.ns, label_selector=selector).items
    assert sorted(j.metadata.name for j in selected) == sorted(
        j.metadata.name for j in bgjobs.jobs("jump-a")
    )
    assert len(selected) == 2
    assert all(j.metadata.owner_references[0].name == "jump-a" for j in selected)


def test_k9s_plugins_and_views_use_only_k9s_variables() -> None:
    env = {k: "x" for k in ("NAME", "NAMESPACE", "CONTEXT", "KUBECONFIG")}
    plugins = yaml.safe_load((REPO_ROOT / "k9s" / "plugins.yaml").read_text())["plugins"]
    for name, plugin in plugins.items():
        assert {"shortCut", "description", "scopes", "command", "args"} <= plugin.keys(), name
        for arg in plugin["args"]:
            k9s_substitute(str(arg), env)
    keys = [p["shortCut"] for p in plugins.values()]
    assert len(keys) == len(set(keys))
    views = yaml.safe_load((REPO_ROOT / "k9s" / "views.yaml").read_text())["views"]
    columns = views["backgroundjobs.dev/v1alpha1/backgroundjobs"]["columns"]
    assert {"NAME", "PHASE", "TYPE", "AGE"} <= {col.split(":")[0].split("|")[0] for col in columns}
