"""The chart's RBAC is sufficient and minimal: the operator runs as the chart's ServiceAccount
(a TokenRequest token, no admin credentials) through every kind of job, the API server's audit
log shows no request of it refused and every granted verb used, and `kubectl auth can-i`
shows what it may not do: secrets, pod creation, other namespaces in namespaced mode."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client
from kubernetes.client.rest import ApiException
from tests.integration.bgj import FAIL_EXIT, MESSAGE, RUN_FOR, Jobs, manifest, wait_for
from tests.integration.harness import OperatorProcess
from tests.unit.test_chart_render import HELM, render

from backgroundjobs.api import constants as c
from backgroundjobs.controller import builders

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(HELM is None, reason="helm not built (make cluster-tools)"),
    pytest.mark.usefixtures("session_operator_paused"),
]

Body = dict[str, Any]
RBAC_KINDS = {"ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"}


def kubectl_binary() -> str:
    venv = Path(sys.executable).parent / "kubectl"
    found = str(venv) if venv.is_file() else shutil.which("kubectl")
    assert found, "kubectl not found (make venv)"
    return found


def kubectl(
    kubeconfig: str, *args: str, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [kubectl_binary(), "--kubeconfig", kubeconfig, *args],
        input=stdin, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


@dataclass
class Install:
    """The chart's ServiceAccount and RBAC, applied as `helm template` renders them."""

    release: str
    namespace: str  # the release namespace: the ServiceAccount and the Lease
    objects: list[Body]

    @property
    def fullname(self) -> str:
        return f"{self.release}-backgroundjobs-operator"

    @property
    def user(self) -> str:
        return f"system:serviceaccount:{self.namespace}:{self.fullname}"


def new_namespace(core: client.CoreV1Api, prefix: str) -> str:
    name = f"t-{prefix}-{uuid.uuid4().hex[:6]}"
    core.create_namespace(
        client.V1Namespace(
            metadata=client.V1ObjectMeta(name=name, labels={"backgroundjobs.dev/test": "true"})
        )
    )
    # Pods (the chart's `helm test` pod, even in a dry run) are refused until the
    # ServiceAccount controller has made the namespace's "default" account.
    wait_for(
        f"the default ServiceAccount in {name}",
        lambda: [sa for sa in core.list_namespaced_service_account(name).items
                 if sa.metadata.name == "default"],
    )  # fmt: skip
    return name


def delete_namespace(core: client.CoreV1Api, name: str) -> None:
    try:
        core.delete_namespace(name, propagation_policy="Background")
    except ApiException as exc:
        if exc.status != 404:
            raise


def apply_chart_rbac(
    kubeconfig: str, namespace: str, *values: str, without: str | None = None
) -> Install:
    """The chart's RBAC objects applied; ``without``: a resource taken out of every rule (an
    administrator's trimmed role)."""
    release = f"rbac{uuid.uuid4().hex[:5]}"
    rendered = render(
        "--set", "userRoles.create=false", *values, namespace=namespace, release=release
    )
    objs = [o for o in rendered if o["kind"] in RBAC_KINDS]
    if without:
        for o in objs:
            rules = [
                {**r, "resources": [x for x in r.get("resources") or [] if x != without]}
                for r in o.get("rules") or []
            ]
            if "rules" in o:
                o["rules"] = [r for r in rules if r["resources"] or r.get("nonResourceURLs")]
    out = kubectl(kubeconfig, "apply", "-f", "-", stdin=yaml.safe_dump_all(objs))
    assert out.returncode == 0, out.stderr
    return Install(release, namespace, objs)


def remove_cluster_objects(kubeconfig: str, install: Install) -> None:
    for o in install.objects:
        if o["kind"] in {"ClusterRole", "ClusterRoleBinding"}:
            kubectl(kubeconfig, "delete", o["kind"], o["metadata"]["name"], "--ignore-not-found")


def token_kubeconfig(
    admin_kubeconfig: str, core: client.CoreV1Api, install: Install, path: Path
) -> str:
    """A kubeconfig for the cluster's server and CA whose only credential is a token of the
    chart's ServiceAccount (TokenRequest API, one hour)."""
    request = client.AuthenticationV1TokenRequest(
        spec=client.V1TokenRequestSpec(audiences=[], expiration_seconds=3600)
    )
    token = core.create_namespaced_service_account_token(
        install.fullname, install.namespace, request
    ).status.token
    admin = yaml.safe_load(Path(admin_kubeconfig).read_text())
    ctx_name = admin.get("current-context") or admin["contexts"][0]["name"]
    ctx = next(x["context"] for x in admin["contexts"] if x["name"] == ctx_name)
    cluster = dict(next(x["cluster"] for x in admin["clusters"] if x["name"] == ctx["cluster"]))
    ca = cluster.pop("certificate-authority", None)
    if ca and not Path(ca).is_absolute():
        ca = str((Path(admin_kubeconfig).parent / ca).resolve())
    if ca:
        cluster["certificate-authority"] = ca
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "cluster", "cluster": cluster}],
        "users": [{"name": install.user, "user": {"token": token}}],
        "contexts": [{"name": "operator", "context": {"cluster": "cluster", "user": install.user}}],
        "current-context": "operator",
    }
    path.write_text(yaml.safe_dump(config))
    return str(path)


def operator_as(
    install: Install,
    kubeconfig: str,
    core: client.CoreV1Api,
    tmp: Path,
    env: dict[str, str] | None = None,
    namespaces: list[str] | None = None,
) -> OperatorProcess:
    """The operator with nothing but the chart's ServiceAccount token, leader election on
    (the chart's Lease); not started."""
    return OperatorProcess(
        token_kubeconfig(kubeconfig, core, install, tmp / "kubeconfig"),
        tmp,
        {
            "BACKGROUNDJOBS_LEADER_ELECTION": "true",
            "BACKGROUNDJOBS_LEASE_NAME": install.fullname,
            "BACKGROUNDJOBS_LEASE_NAMESPACE": install.namespace,
            "BACKGROUNDJOBS_LEASE_DURATION": "6",
            **(env or {}),
        },
        namespaces=namespaces,
    )


def audit_log(kubeconfig: str) -> Path:
    """The local cluster's audit log (hack/cluster.sh, hack/kwok/audit-policy.yaml)."""
    return Path(kubeconfig).parent / "logs" / "audit.log"


def audit_entries(kubeconfig: str, user: str, since: datetime) -> list[Body]:
    path = audit_log(kubeconfig)
    if not path.is_file():
        pytest.skip(f"no audit log at {path} (not the local cluster)")
    needle = f'"username":"{user}"'
    entries = []
    for path_ in sorted(path.parent.glob("audit*.log")):
        with path_.open(encoding="utf-8", errors="replace") as f:
            for line in f:
                if needle not in line:
                    continue
                entry = json.loads(line)
                stamp = datetime.fromisoformat(entry["stageTimestamp"].replace("Z", "+00:00"))
                if entry["user"]["username"] == user and stamp >= since:
                    entries.append(entry)
    return entries


def used(entries: list[Body]) -> set[tuple[str, str, str]]:
    """(apiGroup, resource[/subresource], verb) of the requests that were allowed."""
    out = set()
    for e in entries:
        ref = e.get("objectRef") or {}
        if not ref.get("resource") or (e.get("responseStatus") or {}).get("code", 200) == 403:
            continue
        resource = ref["resource"] + (f"/{ref['subresource']}" if ref.get("subresource") else "")
        out.add((ref.get("apiGroup", ""), resource, e["verb"]))
    return out


def refused(entries: list[Body]) -> list[str]:
    """The requests RBAC refused. A create in a namespace being deleted is refused with 403
    too (the NamespaceLifecycle admission plugin, not RBAC): a cluster-wide operator meets
    those when another test's namespace goes away under its jobs."""
    return [
        f"{e['verb']} {e['requestURI']}"
        for e in entries
        if (status := e.get("responseStatus") or {}).get("code") == 403
        and "being terminated" not in (status.get("message") or "")
    ]


def can_i(kubeconfig: str, install: Install, *args: str) -> bool:
    out = kubectl(kubeconfig, "auth", "can-i", *args, f"--as={install.user}")
    assert out.stdout.strip() in {"yes", "no"}, out.stdout + out.stderr
    return out.stdout.strip() == "yes"


# ------------------------------------------------------------------ cluster-wide mode
@pytest.fixture(scope="module")
def clusterwide(kubeconfig: str, core_v1: client.CoreV1Api, crd: Body) -> Iterator[Install]:
    ns = new_namespace(core_v1, "rbac-sys")
    install = apply_chart_rbac(kubeconfig, ns)
    try:
        yield install
    finally:
        remove_cluster_objects(kubeconfig, install)
        delete_namespace(core_v1, ns)


@pytest.fixture
def operator_as_sa(
    kubeconfig: str, core_v1: client.CoreV1Api, clusterwide: Install, tmp_path: Path
) -> Iterator[tuple[OperatorProcess, datetime]]:
    """The operator with nothing but the chart's ServiceAccount token, leader election on."""
    started = datetime.now(UTC).replace(microsecond=0)
    op = operator_as(clusterwide, kubeconfig, core_v1, tmp_path)
    op.start()
    try:
        wait_for("the leader log line", lambda: "became the leader" in op.log_tail(200), 30)
        yield op, started
    finally:
        op.stop()


def test_every_kind_of_job_works_as_the_chart_service_account(
    api_client: client.ApiClient,
    namespace: str,
    kubeconfig: str,
    clusterwide: Install,
    operator_as_sa: tuple[OperatorProcess, datetime],
) -> None:
    op, started = operator_as_sa
    jobs = Jobs(api_client, namespace)  # a user (admin) submits; the operator acts
    jobs.create(manifest("immediate", pod_annotations={MESSAGE: '{"ok": true}'}))
    jobs.create(manifest("failing", pod_annotations={FAIL_EXIT: "2"}))
    jobs.create(manifest("delayed", delay="3s"))
    jobs.create(manifest("recurring", schedule="0 0 1 1 *", pod_annotations={MESSAGE: '"r"'}))
    jobs.create(manifest("parent", pod_annotations={MESSAGE: '{"n": 1}'}))
    jobs.create(manifest("child", after={"name": "parent"}))
    jobs.create(manifest("long", pod_annotations={RUN_FOR: "600s"}))
    jobs.create(manifest("ephemeral", ttlAfterFinished="2s"))
    # A pod that Pod Security refuses: the operator reads the Job's FailedCreate Events.
    core_v1 = client.CoreV1Api(api_client)
    enforce = {"pod-security.kubernetes.io/enforce": "restricted"}
    core_v1.patch_namespace(namespace, {"metadata": {"labels": enforce}})
    escalates = {"name": "handler", "securityContext": {"allowPrivilegeEscalation": True}}
    jobs.create(manifest("refused", podTemplate={"spec": {"containers": [escalates]}}))

    st = jobs.wait_phase("immediate", "Succeeded")
    assert st["result"] == {"ok": True}
    assert jobs.wait_phase("failing", "Failed")["failedAttempts"] == 1
    assert jobs.condition("failing", "Failed")["reason"] == "NonRetryableExitCode"  # type: ignore[index]
    assert jobs.wait_phase("delayed", "Succeeded")["type"] == "Delayed"

    cronjob_name = builders.cronjob_name("recurring")
    cj = wait_for("the CronJob", lambda: _cronjob(jobs, cronjob_name))
    assert cj.metadata.owner_references[0].name == "recurring"
    jobs.patch("recurring", {"spec": {"schedule": "0 0 2 1 *"}})  # add-or-update: CronJob update
    wait_for(
        "the CronJob to follow the schedule",
        lambda: (x := _cronjob(jobs, cronjob_name)) is not None and x.spec.schedule == "0 0 2 1 *",
    )
    jobs.annotate("recurring", c.ANNOTATION_TRIGGER, "now")
    wait_for("the triggered run", lambda: jobs.status("recurring").get("lastSuccessAt"), 90)

    child = jobs.wait_phase("child", "Succeeded")
    assert child["type"] == "Continuation"
    child_job = jobs.job(child["jobName"])
    env = {e.name: e.value for e in child_job.spec.template.spec.containers[0].env}
    assert json.loads(env[c.ENV_PARENT_RESULT]) == {"n": 1}

    wait_for("long to run", lambda: jobs.status("long").get("phase") == "Running")
    jobs.annotate("long", c.ANNOTATION_CANCEL, "now")
    jobs.wait_phase("long", "Cancelled")
    wait_for("its Job to be deleted", lambda: jobs.job("long-1") is None, 60)

    wait_for("ephemeral to be deleted (retention)", lambda: jobs.get("ephemeral") is None, 60)
    assert jobs.wait_phase("refused", "Failed")["phase"] == "Failed"
    assert jobs.condition("refused", "Failed")["reason"] == "PodCreateRefused"  # type: ignore[index]
    assert "Succeeded" in wait_for("Events", lambda: jobs.event_reasons("immediate"))

    lease = client.CoordinationV1Api(api_client).read_namespaced_lease(
        clusterwide.fullname, clusterwide.namespace
    )
    assert lease.spec.holder_identity and lease.spec.holder_identity.endswith(f"_{op.proc.pid}")  # type: ignore[union-attr]
    assert "Forbidden" not in op.log_tail(500) and "403" not in op.log_tail(500)

    # The audit log: nothing refused, and every verb the chart grants was used (leases are not
    # audited; backgroundjobs patch is kopf releasing a stale finalizer and finalizers update
    # is an admission check, neither an everyday request).
    time.sleep(1)
    entries = audit_entries(kubeconfig, clusterwide.user, started)
    assert entries, f"no audit entries of {clusterwide.user}"
    assert refused(entries) == []
    seen = used(entries)
    for wanted in [
        ("backgroundjobs.dev", "backgroundjobs", "list"),
        ("backgroundjobs.dev", "backgroundjobs", "watch"),
        ("backgroundjobs.dev", "backgroundjobs", "delete"),
        ("backgroundjobs.dev", "backgroundjobs/status", "patch"),
        ("batch", "jobs", "list"),
        ("batch", "jobs", "watch"),
        ("batch", "jobs", "create"),
        ("batch", "jobs", "delete"),
        ("batch", "cronjobs", "list"),
        ("batch", "cronjobs", "watch"),
        ("batch", "cronjobs", "create"),
        ("batch", "cronjobs", "update"),
        ("", "pods", "list"),
        ("", "events", "create"),
        ("", "events", "list"),
        ("apiextensions.k8s.io", "customresourcedefinitions", "list"),
        ("apiextensions.k8s.io", "customresourcedefinitions", "watch"),
    ]:
        assert wanted in seen, f"{wanted} granted but never used: {sorted(seen)}"


def _cronjob(jobs: Jobs, name: str) -> Any | None:
    try:
        return jobs.batch.read_namespaced_cron_job(name, jobs.ns)
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise


def test_can_i_list_shows_no_secrets_and_no_pod_creation(
    kubeconfig: str, clusterwide: Install
) -> None:
    for ns in (clusterwide.namespace, "default"):
        out = kubectl(kubeconfig, "auth", "can-i", "--list", "-n", ns, f"--as={clusterwide.user}")
        assert out.returncode == 0, out.stderr
        rows = [line.split() for line in out.stdout.splitlines()[1:] if line.strip()]
        by_resource = {row[0]: " ".join(row[1:]) for row in rows}
        print(f"kubectl auth can-i --list -n {ns} --as={clusterwide.user}\n{out.stdout}")
        assert not [r for r in by_resource if r.startswith("secrets")], out.stdout
        assert not [r for r in by_resource if r == "*" or r.startswith("*.")], out.stdout
        assert by_resource["pods"].endswith("[list]"), out.stdout
    assert not can_i(kubeconfig, clusterwide, "get", "secrets", "-A")
    assert not can_i(kubeconfig, clusterwide, "create", "pods", "-A")
    assert not can_i(kubeconfig, clusterwide, "delete", "cronjobs.batch", "-A")
    assert not can_i(kubeconfig, clusterwide, "update", "backgroundjobs.backgroundjobs.dev", "-A")
    assert not can_i(kubeconfig, clusterwide, "list", "namespaces")
    assert can_i(kubeconfig, clusterwide, "create", "jobs.batch", "-A")
    assert can_i(kubeconfig, clusterwide, "patch", "backgroundjobs.backgroundjobs.dev/status", "-A")
    lease = f"leases.coordination.k8s.io/{clusterwide.fullname}"
    assert can_i(kubeconfig, clusterwide, "update", lease, "-n", clusterwide.namespace)
    assert not can_i(
        kubeconfig, clusterwide, "update", "leases/someone-else", "-n", clusterwide.namespace
    )
    assert not can_i(kubeconfig, clusterwide, "update", lease, "-n", "default")


def test_a_role_without_pods_log_runs_jobs_and_the_log_says_why_no_progress(
    api_client: client.ApiClient,
    namespace: str,
    kubeconfig: str,
    core_v1: client.CoreV1Api,
    crd: Body,
    tmp_path: Path,
) -> None:
    """An administrator who trims ``get pods/log`` from the operator's role loses the
    progress in status and nothing else; the operator's log says why, once, not every
    round (docs/API.md, progress)."""
    release_ns = new_namespace(core_v1, "rbac-nolog")
    install = apply_chart_rbac(kubeconfig, release_ns, without="pods/log")
    assert not can_i(kubeconfig, install, "get", "pods", "--subresource=log", "-n", namespace)
    # many rounds in the test's few seconds
    op = operator_as(
        install, kubeconfig, core_v1, tmp_path, {"BACKGROUNDJOBS_PROGRESS_INTERVAL": "1"}
    )
    try:
        op.start()
        jobs = Jobs(api_client, namespace)
        jobs.create(manifest("long", pod_annotations={RUN_FOR: "600s"}))
        jobs.create(manifest("quick", pod_annotations={MESSAGE: '{"ok": true}'}))
        wait_for("long to run", lambda: jobs.status("long").get("phase") == "Running", 90)

        def warnings() -> list[str]:
            return [x for x in op.log_tail(1000).splitlines() if "pod log reads failed" in x]

        line = wait_for("the operator's warning", lambda: warnings(), 60)[0]
        # the first failed read names whichever pod ran then: quick's too, while it runs
        assert "403" in line, line
        assert re.search(rf"pod {re.escape(namespace)}/(long|quick)-1-", line), line
        time.sleep(5)  # five more rounds, each failing again
        assert len(warnings()) == 1, warnings()
        assert "progress" not in jobs.status("long")
        # everything else works as the trimmed role
        assert jobs.wait_phase("quick", "Succeeded")["result"] == {"ok": True}
        jobs.annotate("long", c.ANNOTATION_CANCEL, "now")
        jobs.wait_phase("long", "Cancelled")
    finally:
        op.stop()
        remove_cluster_objects(kubeconfig, install)
        delete_namespace(core_v1, release_ns)


# ------------------------------------------------------------------ namespaced mode
@pytest.fixture(scope="module")
def namespaced(
    kubeconfig: str, core_v1: client.CoreV1Api, crd: Body
) -> Iterator[tuple[Install, list[str], str]]:
    sys_ns = new_namespace(core_v1, "rbac-nsd")
    served = [new_namespace(core_v1, "team-a"), new_namespace(core_v1, "team-b")]
    other = new_namespace(core_v1, "other")
    install = apply_chart_rbac(kubeconfig, sys_ns, "--set-json", f"namespaces={json.dumps(served)}")
    try:
        yield install, served, other
    finally:
        remove_cluster_objects(kubeconfig, install)
        for ns in (sys_ns, *served, other):
            delete_namespace(core_v1, ns)


def test_namespaced_mode_cannot_reach_other_namespaces(
    kubeconfig: str, namespaced: tuple[Install, list[str], str]
) -> None:
    install, served, other = namespaced
    bgj = "backgroundjobs.backgroundjobs.dev"
    for ns in served:
        assert can_i(kubeconfig, install, "list", bgj, "-n", ns)
        assert can_i(kubeconfig, install, "create", "jobs.batch", "-n", ns)
    for verb, resource in [("list", bgj), ("create", "jobs.batch"), ("create", "events")]:
        assert not can_i(kubeconfig, install, verb, resource, "-n", other)
        assert not can_i(kubeconfig, install, verb, resource, "-A")
    assert not can_i(kubeconfig, install, "list", "namespaces")
    assert not can_i(kubeconfig, install, "list", "customresourcedefinitions")
    assert not can_i(kubeconfig, install, "get", "secrets", "-n", served[0])


def test_namespaced_operator_serves_its_namespaces_only(
    api_client: client.ApiClient,
    kubeconfig: str,
    core_v1: client.CoreV1Api,
    namespaced: tuple[Install, list[str], str],
    tmp_path: Path,
) -> None:
    install, served, other = namespaced
    started = datetime.now(UTC).replace(microsecond=0)
    op = operator_as(install, kubeconfig, core_v1, tmp_path, namespaces=served)
    op.start()
    try:
        outside = Jobs(api_client, other)
        outside.create(manifest("ignored"))
        for ns in served:
            Jobs(api_client, ns).create(manifest("served", pod_annotations={MESSAGE: '"yes"'}))
        for ns in served:
            assert Jobs(api_client, ns).wait_phase("served", "Succeeded")["result"] == "yes"
        time.sleep(2)
        assert outside.status("ignored") == {}
        assert outside.jobs() == []
        log = op.log_tail(500)
        assert "Forbidden" not in log and "Not enough permissions" not in log, log
    finally:
        op.stop()
    entries = audit_entries(kubeconfig, install.user, started)
    assert entries and refused(entries) == []
    resources = [e["objectRef"] for e in entries if (e.get("objectRef") or {}).get("resource")]
    touched = {(r["resource"], r.get("namespace")) for r in resources}
    assert {ns for _, ns in touched} <= {*served, install.namespace}, touched  # no cluster scope
