"""Who may ask a BackgroundJob for what, against the real API server (docs/SECURITY.md).

The operator runs as configured by the chart (its own process, cluster-wide, the session's
paused): it trusts jobs the admission policy checked, refuses itself what it did not
(PolicyDenied, nothing created), serves neither its namespace nor those excluded, reads
results only from pods the Job controls, and passes secrets by reference.

A tenant holds only `create` and `get` on BackgroundJobs in namespace X; a developer may also
create Jobs there. The chart's pod policy (a ValidatingAdmissionPolicy, rendered by helm and
applied as is) refuses each privileged or identity-changing field to the tenant, naming the
field, and admits the same manifest from the developer; the allow-lists let the tenant use
what the administrator listed; the operator's own identity cannot write Jobs where it does
not serve. Requests are made as those users (impersonation), as the API server sees them.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
import uuid
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client, config
from kubernetes.client.rest import ApiException
from tests.integration.bgj import MESSAGE, RUN_FOR, Jobs, manifest, wait_for
from tests.integration.harness import OperatorProcess
from tests.integration.test_rbac import delete_namespace, kubectl, new_namespace
from tests.policy_cases import ACCOUNT, CASES, SECRET, Case, with_case
from tests.unit.test_chart_render import HELM, plain_env, render

from backgroundjobs import Client, CredentialWarning, SecretKey
from backgroundjobs.api import constants as c
from backgroundjobs.api.models import BackgroundJobSpec
from backgroundjobs.api.podpolicy import ADMISSION_SETTLE, offending_fields
from backgroundjobs.api.times import parse_time

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(HELM is None, reason="helm not built (make cluster-tools)"),
    pytest.mark.usefixtures("session_operator_paused"),
]

Body = dict[str, Any]
APPLIED_KINDS = {
    "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding",
    "ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding",
}  # fmt: skip
CLUSTER_KINDS = {
    "ClusterRole", "ClusterRoleBinding",
    "ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding",
}  # fmt: skip
SHARED_ACCOUNT, SHARED_SECRET = "shared-account", "shared-secret"
SHARED = {"name": SHARED_SECRET}


@dataclass
class Tenancy:
    """The chart's policies and RBAC applied for a release in ``system``; a tenant namespace."""

    kubeconfig: str
    release: str
    system: str  # the release namespace
    tenant_ns: str
    objects: list[Body]
    tenant: str  # create, get backgroundjobs in tenant_ns
    developer: str  # the same, and create jobs
    operator_env: dict[str, str]  # the pod policy and exclusions, as the chart sets them

    @property
    def fullname(self) -> str:
        return f"{self.release}-backgroundjobs-operator"

    @property
    def operator_user(self) -> str:
        return f"system:serviceaccount:{self.system}:{self.fullname}"

    def api(self, user: str) -> client.ApiClient:
        """An API client that acts as ``user`` (Impersonate-User)."""
        api = config.new_client_from_config(config_file=self.kubeconfig)
        api.set_default_header("Impersonate-User", user)
        return api

    def create_as(self, user: str, body: Body, namespace: str | None = None) -> Body:
        with self.api(user) as api:
            return client.CustomObjectsApi(api).create_namespaced_custom_object(  # type: ignore[no-any-return]
                c.GROUP, c.VERSION, namespace or self.tenant_ns, c.PLURAL, body
            )

    def refusal(self, user: str, body: Body, namespace: str | None = None) -> str:
        """The API server's message refusing ``body`` from ``user`` (fails if it was stored)."""
        with pytest.raises(ApiException) as refused:
            self.create_as(user, body, namespace)
        assert refused.value.status == 403, refused.value.body
        message = str(json.loads(refused.value.body)["message"])
        assert "ValidatingAdmissionPolicy" in message, message
        return message


def _role(name: str, namespace: str, rules: list[Body]) -> list[Body]:
    return [
        {
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
            "metadata": {"name": name, "namespace": namespace}, "rules": rules,
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
            "metadata": {"name": name, "namespace": namespace},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": name}],
        },
    ]  # fmt: skip


CREATE_GET_BGJ = {"apiGroups": [c.GROUP], "resources": [c.PLURAL], "verbs": ["create", "get"]}


@pytest.fixture(scope="module")
def tenancy(kubeconfig: str, core_v1: client.CoreV1Api, crd: Body) -> Iterator[Tenancy]:
    system, tenant_ns = new_namespace(core_v1, "ten-sys"), new_namespace(core_v1, "ten-x")
    release = f"ten{uuid.uuid4().hex[:5]}"
    rendered = render(
        "--set", "userRoles.create=false",
        "--set-json", f"podPolicy.serviceAccounts={json.dumps({tenant_ns: [SHARED_ACCOUNT]})}",
        "--set-json", f"podPolicy.secrets={json.dumps({tenant_ns: [SHARED_SECRET]})}",
        namespace=system, release=release,
    )  # fmt: skip
    objects = [o for o in rendered if o["kind"] in APPLIED_KINDS]
    suffix = uuid.uuid4().hex[:5]
    tenant, developer = f"tenant-{suffix}", f"developer-{suffix}"
    users = _role(tenant, tenant_ns, [CREATE_GET_BGJ]) + _role(
        developer,
        tenant_ns,
        [CREATE_GET_BGJ, {"apiGroups": ["batch"], "resources": ["jobs"], "verbs": ["create"]}],
    )
    out = kubectl(kubeconfig, "apply", "-f", "-", stdin=yaml.safe_dump_all(objects + users))
    assert out.returncode == 0, out.stderr
    chart_env = plain_env(rendered)
    operator_env = {
        k: chart_env[k]
        for k in ("BACKGROUNDJOBS_POD_POLICY", "BACKGROUNDJOBS_POD_POLICY_CHECK",
                  "BACKGROUNDJOBS_EXCLUDE_NAMESPACES")
    }  # fmt: skip
    setup = Tenancy(
        kubeconfig, release, system, tenant_ns, objects, tenant, developer, operator_env
    )
    try:
        # A policy is enforced once the API server has loaded it (an informer, so not at once).
        probe = with_case(manifest("probe"), CASES[0])

        def enforced() -> bool:
            try:
                setup.create_as(tenant, {**probe, "metadata": {"generateName": "probe-"}})
            except ApiException as exc:
                return exc.status == 403
            return False

        wait_for("the pod policy to be enforced", enforced, timeout=60, interval=0.5)
        yield setup
    finally:
        for o in objects:
            if o["kind"] in CLUSTER_KINDS:
                kubectl(
                    kubeconfig, "delete", o["kind"], o["metadata"]["name"], "--ignore-not-found"
                )
        for ns in (system, tenant_ns):
            delete_namespace(core_v1, ns)


def stored(tenancy: Tenancy, name: str) -> bool:
    out = kubectl(tenancy.kubeconfig, "get", "bgj", name, "-n", tenancy.tenant_ns)
    return out.returncode == 0


@pytest.mark.parametrize("case", CASES, ids=[x.name for x in CASES])
def test_a_tenant_is_refused_each_privileged_field_naming_it(tenancy: Tenancy, case: Case) -> None:
    name = f"tenant-{case.name}"
    body = with_case(manifest(name), case)
    message = tenancy.refusal(tenancy.tenant, body)
    assert case.field in message, message
    assert f"(rule {case.rule})" in message, message
    assert tenancy.tenant_ns in message, message
    assert not stored(tenancy, name)
    # The operator's own check (api/podpolicy.py) names exactly the same fields.
    named = re.search(r"denied request: (.*) \(rule (\w+)\)", message)
    assert named, message
    spec = BackgroundJobSpec.model_validate(body["spec"])
    expected = offending_fields(spec, None, allowed_secrets=frozenset({SHARED_SECRET}),
                                allowed_accounts=frozenset({SHARED_ACCOUNT}))  # fmt: skip
    assert named.group(1).split(", ") == expected[case.rule]


@pytest.mark.parametrize("case", CASES, ids=[x.name for x in CASES])
def test_a_developer_who_may_create_jobs_is_admitted_the_same_manifest(
    tenancy: Tenancy, case: Case
) -> None:
    name = f"developer-{case.name}"
    created = tenancy.create_as(tenancy.developer, with_case(manifest(name), case))
    assert created["metadata"]["name"] == name
    assert stored(tenancy, name)


def test_a_plain_job_needs_nothing_but_create_backgroundjobs(tenancy: Tenancy) -> None:
    """The refusals above can fail: what asks for nothing special passes for the tenant, pod
    annotations and the handler's own resources and env included."""
    body = manifest("tenant-plain", pod_annotations={"example.com/team": "a"})
    body["spec"]["podTemplate"]["spec"] = {
        "containers": [
            {
                "name": "handler",
                "env": [{"name": "MODE", "value": "fast"}],
                "resources": {"limits": {"memory": "64Mi"}},
                "securityContext": {"capabilities": {"add": ["NET_BIND_SERVICE"]}},
            }
        ]
    }
    tenancy.create_as(tenancy.tenant, body)
    assert stored(tenancy, "tenant-plain")


def test_the_allow_lists_let_a_tenant_use_what_the_administrator_listed(
    tenancy: Tenancy,
) -> None:
    listed_account = {"podTemplate": {"spec": {"serviceAccountName": SHARED_ACCOUNT}}}
    body = manifest("tenant-shared-account", **listed_account)
    tenancy.create_as(tenancy.tenant, body)
    env_from = {"containers": [{"name": "handler", "envFrom": [{"secretRef": SHARED}]}]}
    tenancy.create_as(
        tenancy.tenant, manifest("tenant-shared-secret", podTemplate={"spec": env_from})
    )
    # Another account, or the listed account's neighbour, is still refused; the message says
    # which are allowed.
    message = tenancy.refusal(
        tenancy.tenant,
        manifest("tenant-other", podTemplate={"spec": {"serviceAccountName": ACCOUNT}}),
    )
    assert (
        f"ServiceAccount {ACCOUNT}" in message
        and f"allowed for everyone here: {SHARED_ACCOUNT}" in message
    )


def test_a_tenant_who_may_get_a_secret_may_pass_it(
    tenancy: Tenancy, core_v1: client.CoreV1Api
) -> None:
    """For Secrets the requester's own right to read that one Secret is enough."""
    reader = f"reader-{uuid.uuid4().hex[:5]}"
    rules = [
        CREATE_GET_BGJ,
        {"apiGroups": [""], "resources": ["secrets"], "resourceNames": [SECRET], "verbs": ["get"]},
    ]
    out = kubectl(tenancy.kubeconfig, "apply", "-f", "-",
                  stdin=yaml.safe_dump_all(_role(reader, tenancy.tenant_ns, rules)))  # fmt: skip
    assert out.returncode == 0, out.stderr
    secret_cases = [x for x in CASES if x.rule == "secrets"]
    assert len(secret_cases) == 4

    def admitted() -> bool:  # RBAC changes reach the authorizer through an informer too
        try:
            tenancy.create_as(reader, with_case(manifest("reader-probe"), secret_cases[0]))
        except ApiException:
            return False
        return True

    wait_for("the reader's Role to apply", admitted, timeout=30, interval=0.5)
    for case in secret_cases[1:]:
        tenancy.create_as(reader, with_case(manifest(f"reader-{case.name}"), case))
    # A Secret the reader may not get is refused, naming it.
    other = with_case(manifest("reader-other"), secret_cases[0])
    (handler,) = other["spec"]["podTemplate"]["spec"]["containers"]
    handler["env"][0]["valueFrom"]["secretKeyRef"] = {"name": "another", "key": "password"}
    assert "(Secret another)" in tenancy.refusal(reader, other)


def test_each_secret_is_checked_once_and_at_most_eight_per_job(tenancy: Tenancy) -> None:
    """The API server allows two authorizer checks per expression: the policy checks each
    distinct Secret in a validation of its own, repeats once, and up to eight of them."""
    reader = f"many-{uuid.uuid4().hex[:5]}"
    names = [f"s{i}" for i in range(9)]
    rules = [
        CREATE_GET_BGJ,
        {"apiGroups": [""], "resources": ["secrets"], "resourceNames": names, "verbs": ["get"]},
    ]
    out = kubectl(tenancy.kubeconfig, "apply", "-f", "-",
                  stdin=yaml.safe_dump_all(_role(reader, tenancy.tenant_ns, rules)))  # fmt: skip

    def job(name: str, secrets: list[str]) -> Body:
        env = [
            {"name": f"E{i}", "valueFrom": {"secretKeyRef": {"name": secret, "key": "k"}}}
            for i, secret in enumerate(secrets)
        ]
        return manifest(
            name, podTemplate={"spec": {"containers": [{"name": "handler", "env": env}]}}
        )

    assert out.returncode == 0, out.stderr
    eight_many_times = [names[i % 8] for i in range(400)]
    eight = job("eight", eight_many_times)
    wait_for("the reader's Role", lambda: _try(lambda: tenancy.create_as(reader, eight)), 30, 0.5)
    message = tenancy.refusal(reader, job("nine", names))
    assert "more than 8 different Secrets" in message and "(rule secrets)" in message, message
    tenancy.create_as(tenancy.developer, job("nine-by-developer", names))


def test_an_update_of_the_spec_is_checked_but_an_action_is_not(tenancy: Tenancy) -> None:
    """Whoever rewrites the spec of a privileged job needs the right to create Jobs (else they
    could change what runs under that identity); a requeue annotation asks for nothing."""
    editor = f"editor-{uuid.uuid4().hex[:5]}"
    rules = [{"apiGroups": [c.GROUP], "resources": [c.PLURAL], "verbs": ["get", "patch"]}]
    out = kubectl(tenancy.kubeconfig, "apply", "-f", "-",
                  stdin=yaml.safe_dump_all(_role(editor, tenancy.tenant_ns, rules)))  # fmt: skip
    assert out.returncode == 0, out.stderr
    tenancy.create_as(tenancy.developer, with_case(manifest("privileged-job"), CASES[0]))

    def patch(body: Body) -> Body:
        with tenancy.api(editor) as api:
            return client.CustomObjectsApi(api).patch_namespaced_custom_object(  # type: ignore[no-any-return]
                c.GROUP, c.VERSION, tenancy.tenant_ns, c.PLURAL, "privileged-job", body
            )

    requeue = {"metadata": {"annotations": {c.ANNOTATION_REQUEUE: "now"}}}
    wait_for("the editor's Role to apply", lambda: _try(lambda: patch(requeue)), 30, 0.5)
    with pytest.raises(ApiException) as refused:
        patch({"spec": {"args": ["other code, same account"]}})
    assert refused.value.status == 403
    assert "spec.podTemplate.spec.serviceAccountName" in refused.value.body


def _try(action: Any) -> bool:
    try:
        action()
    except ApiException:
        return False
    return True


def test_backgroundjobs_are_refused_where_the_operator_never_serves(tenancy: Tenancy) -> None:
    """The release namespace (whose ServiceAccount is the operator's) and kube-system: even a
    cluster admin's BackgroundJob there is refused, naming the namespace."""
    for ns in (tenancy.system, "kube-system"):
        out = kubectl(tenancy.kubeconfig, "create", "--dry-run=server", "-n", ns, "-f", "-",
                      stdin=json.dumps(manifest("in-operator-namespace")))  # fmt: skip
        assert out.returncode != 0, out.stdout
        assert f"BackgroundJobs in namespace {ns} are never served" in out.stderr, out.stderr


def test_the_operator_identity_cannot_write_jobs_where_it_does_not_serve(
    tenancy: Tenancy,
) -> None:
    """Its RBAC allows creating Jobs in every namespace; the operator policy keeps its token
    out of kube-system and its own namespace, and to Jobs a BackgroundJob controls."""
    owned = {
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": {
            "name": "owned",
            "ownerReferences": [{
                "apiVersion": c.API_VERSION, "kind": c.KIND, "name": "x",
                "uid": str(uuid.uuid4()), "controller": True,
            }],
        },
        "spec": {"template": {"spec": {"restartPolicy": "Never",
                                       "containers": [{"name": "c", "image": "busybox"}]}}},
    }  # fmt: skip
    as_operator = f"--as={tenancy.operator_user}"

    def create(namespace: str, body: Body) -> Any:
        return kubectl(tenancy.kubeconfig, "create", "--dry-run=server", as_operator, "-n",
                       namespace, "-f", "-", stdin=json.dumps(body))  # fmt: skip

    wait_for("the operator's RBAC", lambda: create(tenancy.tenant_ns, owned).returncode == 0, 30)
    for ns in ("kube-system", tenancy.system):
        out = create(ns, owned)
        assert out.returncode != 0
        assert f"does not write jobs in namespace {ns}" in out.stderr, out.stderr
    unowned = {**owned, "metadata": {"name": "unowned"}}
    out = create(tenancy.tenant_ns, unowned)
    assert out.returncode != 0
    assert "writes only jobs controlled by a BackgroundJob" in out.stderr, out.stderr


def test_the_tenant_still_cannot_create_pods_or_jobs_or_read_secrets(tenancy: Tenancy) -> None:
    def can_i(*args: str) -> str:
        out = kubectl(tenancy.kubeconfig, "auth", "can-i", *args, "-n", tenancy.tenant_ns,
                      f"--as={tenancy.tenant}")  # fmt: skip
        return out.stdout.strip()

    assert can_i("create", f"{c.PLURAL}.{c.GROUP}") == "yes"
    for verb, resource in [
        ("create", "pods"), ("create", "jobs.batch"), ("create", "cronjobs.batch"),
        ("get", "secrets"), ("get", f"secrets/{SHARED_SECRET}"), ("list", "pods"),
        ("update", f"{c.PLURAL}.{c.GROUP}"),
    ]:  # fmt: skip
        assert can_i(verb, resource) == "no", f"{verb} {resource}"


# ------------------------------------------------------------------ the operator's side


@dataclass
class Served:
    """The operator running with the chart's settings; a namespace it serves, one it does not."""

    op: OperatorProcess
    ns: str  # served; the admin creates jobs here (the admission policy is in force)
    unserved: str  # excluded, and not refused at admission: as on a cluster without the policy
    jobs: Jobs
    binding_created: float  # epoch seconds


@pytest.fixture(scope="module")
def served(
    tenancy: Tenancy,
    kubeconfig: str,
    api_client: client.ApiClient,
    core_v1: client.CoreV1Api,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Served]:
    ns, unserved = new_namespace(core_v1, "ten-ok"), new_namespace(core_v1, "ten-off")
    env = dict(tenancy.operator_env)
    assert env["BACKGROUNDJOBS_EXCLUDE_NAMESPACES"] == f"{tenancy.system},kube-system"
    env["BACKGROUNDJOBS_EXCLUDE_NAMESPACES"] += f",{unserved}"
    op = OperatorProcess(kubeconfig, tmp_path_factory.mktemp("tenancy-operator"), env)
    op.start()
    binding = json.loads(
        kubectl(kubeconfig, "get", "validatingadmissionpolicybinding", tenancy.fullname,
                "-o", "json").stdout
    )  # fmt: skip
    created = parse_time(binding["metadata"]["creationTimestamp"])
    assert created is not None
    try:
        yield Served(op, ns, unserved, Jobs(api_client, ns), created.timestamp())
    finally:
        op.stop()
        for name in (ns, unserved):
            delete_namespace(core_v1, name)


def settled(served: Served) -> None:
    """Wait until a job created now counts as checked by the admission policy."""
    wait = served.binding_created + ADMISSION_SETTLE.total_seconds() + 1 - time.time()
    if wait > 0:
        time.sleep(wait)


def test_a_job_the_admission_policy_checked_runs_with_what_it_asked_for(served: Served) -> None:
    """Created by someone who may create Jobs, while the policy denies: the operator trusts
    the admission and creates the Job with the ServiceAccount asked for."""
    settled(served)
    body = with_case(manifest("admitted-account"), CASES[0])
    served.jobs.create(body)
    job = wait_for("its Job", lambda: served.jobs.job("admitted-account-1"), timeout=60)
    assert job.spec.template.spec.service_account_name == ACCOUNT
    assert job.spec.template.spec.automount_service_account_token is None  # asked for an account


def test_handler_pods_get_no_token_and_no_service_links(served: Served) -> None:
    served.jobs.create(manifest("least-privilege"))
    served.jobs.wait_phase("least-privilege", "Succeeded")
    (pod,) = served.jobs.pods("least-privilege-1")
    assert pod.spec.automount_service_account_token is False
    assert pod.spec.enable_service_links is False
    assert not [v for v in pod.spec.volumes or [] if v.name.startswith("kube-api-access")]


def test_a_namespace_not_served_is_ignored(served: Served, api_client: client.ApiClient) -> None:
    elsewhere = Jobs(api_client, served.unserved)
    elsewhere.create(manifest("ignored"))
    served.jobs.create(manifest("served-after"))
    # The operator handled a later job, so it saw the ignored one's event first.
    served.jobs.wait_phase("served-after", "Succeeded")
    time.sleep(2)
    assert elsewhere.status("ignored") == {}
    assert elsewhere.jobs() == []
    assert f"namespace {served.unserved} is not served" in served.op.log_path.read_text()


def test_a_forged_result_pod_is_ignored(served: Served, core_v1: client.CoreV1Api) -> None:
    """A pod carrying the labels the result used to be found by (the Job's name, the job's
    name and run), finishing after the real one with another message: the result is the real
    pod's. (The controller-uid label is the Job's selector: a pod with it is adopted by the
    Job controller and becomes one of the Job's pods, which only who may create pods can do;
    docs/SECURITY.md.)"""
    served.jobs.create(manifest("forged", pod_annotations={RUN_FOR: "8s", MESSAGE: '"genuine"'}))
    wait_for("its pod", lambda: served.jobs.pods("forged-1"), timeout=60)
    time.sleep(1.1)  # creation times are in seconds: the forged pod is strictly the newest
    labels = {
        c.LABEL_JOB_NAME: "forged-1", "job-name": "forged-1",
        c.LABEL_NAME: "forged", c.LABEL_RUN: "1", c.LABEL_MANAGED_BY: c.MANAGED_BY,
    }  # fmt: skip
    core_v1.create_namespaced_pod(served.ns, {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "forged-result", "labels": labels,
                     "annotations": {RUN_FOR: "1s", MESSAGE: '"forged"'}},
        "spec": {"restartPolicy": "Never",
                 "containers": [{"name": c.HANDLER_CONTAINER, "image": "forger"}]},
    })  # fmt: skip

    def forged_finished() -> bool:
        pod = core_v1.read_namespaced_pod("forged-result", served.ns)
        return bool(pod.status.phase == "Succeeded")

    wait_for("the forged pod to finish", forged_finished, timeout=60)
    status = served.jobs.wait_phase("forged", "Succeeded")
    assert status["result"] == "genuine"
    real = [p for p in served.jobs.pods("forged-1") if p.metadata.name != "forged-result"]
    assert (
        len(real) == 1
        and real[0].metadata.creation_timestamp
        < core_v1.read_namespaced_pod("forged-result", served.ns).metadata.creation_timestamp
    )  # the forged pod is the newest: it would have been read


SECRET_VALUE = "s3cr3t-reset-link-value-9f8e7d"
RESET_HANDLER = "tenancy.reset"  # not importable here: only the runtime would check its arguments
LINK_REF = {"name": "reset-42", "key": "link"}


def secret_key_refs(value: Any) -> int:
    """How many ``secretKeyRef``s to reset-42/link ``value`` holds, at any depth."""
    if isinstance(value, dict):
        own = 1 if value.get("secretKeyRef") == LINK_REF else 0
        return own + sum(secret_key_refs(v) for v in value.values())
    if isinstance(value, list):
        return sum(secret_key_refs(v) for v in value)
    return 0


def test_secrets_never_appear_in_the_job_its_jobs_cronjob_or_pods(
    served: Served, tenancy: Tenancy, core_v1: client.CoreV1Api
) -> None:
    settled(served)  # the Secret's reference is checked: admitted by the policy, as the admin
    core_v1.create_namespaced_secret(served.ns, {
        "metadata": {"name": "reset-42"}, "stringData": {"link": SECRET_VALUE},
    })  # fmt: skip
    with Client(namespace=served.ns, kubeconfig=tenancy.kubeconfig) as jobs:
        with warnings.catch_warnings():
            warnings.simplefilter("error", CredentialWarning)
            jobs.enqueue(
                RESET_HANDLER, "a@b.c", name="by-client", link=SecretKey("reset-42", "link")
            )
            jobs.add_or_update_recurring(
                "by-client-recurring", RESET_HANDLER, "a@b.c", cron="0 3 * * *",
                link=SecretKey("reset-42", "link"),
            )  # fmt: skip
        with pytest.warns(CredentialWarning, match=r"kwargs\['link'\]") as warned:
            jobs.enqueue(RESET_HANDLER, "a@b.c", name="plain-link",
                         link="https://shop.example/reset/4f9c2a7be81d44c0a6b3f0d2")  # fmt: skip
        assert "4f9c2a7be81d44c0a6b3f0d2" not in str(warned[0].message)
    cli = subprocess.run(
        [str(Path(sys.executable).parent / "bgjobs"), "--kubeconfig", tenancy.kubeconfig,
         "-n", served.ns, "enqueue", RESET_HANDLER, "a@b.c", "--name", "by-cli",
         "--kwarg-from", "link=reset-42/link"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert cli.returncode == 0, cli.stderr
    plain = subprocess.run(
        [str(Path(sys.executable).parent / "bgjobs"), "--kubeconfig", tenancy.kubeconfig,
         "-n", served.ns, "enqueue", RESET_HANDLER, "a@b.c", "--name", "plain-link-by-cli",
         "-k", "token=4f9c2a7be81d44c0a6b3f0d2"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert plain.returncode == 0, plain.stderr
    assert f"warning: handler {RESET_HANDLER}: kwargs['token'] (its name)" in plain.stderr
    assert "4f9c2a7be81d44c0a6b3f0d2" not in plain.stderr
    for name in ("by-client", "by-cli"):
        served.jobs.wait_phase(name, "Succeeded")
    wait_for("the CronJob", lambda: kubectl(tenancy.kubeconfig, "get", "cronjob", "-n", served.ns,
             "by-client-recurring").returncode == 0, timeout=60)  # fmt: skip
    dumped = kubectl(tenancy.kubeconfig, "get", "bgj,jobs,cronjobs,pods", "-n", served.ns,
                     "-o", "json")  # fmt: skip
    assert dumped.returncode == 0, dumped.stderr
    assert SECRET_VALUE not in dumped.stdout
    # the three BackgroundJobs' kwargsFrom, the CronJob's template, the two Jobs and their pods
    assert secret_key_refs(json.loads(dumped.stdout)["items"]) >= 8


def test_the_operator_refuses_what_the_policy_did_not_admit(
    tenancy: Tenancy, served: Served, api_client: client.ApiClient
) -> None:
    """The binding deleted (the policy off): the tenant, who may only create and get
    BackgroundJobs, gets each privileged field past admission, and the operator refuses every
    one: Failed/PolicyDenied naming the field, a Warning Event, no Job. Last in the module."""
    fullname = tenancy.fullname
    binding = next(o for o in tenancy.objects if o["kind"] == "ValidatingAdmissionPolicyBinding"
                   and o["metadata"]["name"] == fullname)  # fmt: skip
    out = kubectl(tenancy.kubeconfig, "delete", "validatingadmissionpolicybinding", fullname)
    assert out.returncode == 0, out.stderr
    try:
        probe = with_case(manifest("probe-off"), CASES[0])

        def admitted() -> bool:
            try:
                tenancy.create_as(tenancy.tenant, probe)
            except ApiException:
                return False
            return True

        wait_for("the policy to be off", admitted, timeout=60, interval=0.5)
        names = {}
        for case in CASES:
            names[case.name] = f"off-{case.name}"
            tenancy.create_as(tenancy.tenant, with_case(manifest(names[case.name]), case))
        jobs = Jobs(api_client, tenancy.tenant_ns)
        for case in CASES:
            name = names[case.name]
            jobs.wait_phase(name, "Failed", timeout=120)
            failed = jobs.condition(name, "Failed")
            assert failed is not None and failed["reason"] == "PolicyDenied", failed
            assert case.field in failed["message"] and f"(rule {case.rule})" in failed["message"]
            assert jobs.jobs(name) == []
            wait_for(f"{name}'s Warning", lambda n=name: "PolicyDenied" in jobs.event_reasons(n),
                     timeout=30)  # fmt: skip
        assert jobs.jobs("probe-off") == []
        recurring_update_is_held(jobs, api_client)
    finally:
        restored = kubectl(tenancy.kubeconfig, "apply", "-f", "-", stdin=json.dumps(binding))
        assert restored.returncode == 0, restored.stderr


def recurring_update_is_held(jobs: Jobs, api_client: client.ApiClient) -> None:
    """A Recurring job's spec updated with a privileged field (the policy off, so the operator
    checks it): PolicyDenied, and its CronJob suspended so the earlier spec does not go on
    running; the field removed again, the CronJob runs again."""
    from backgroundjobs.controller.builders import cronjob_name

    batch = client.BatchV1Api(api_client)
    jobs.create(manifest("nightly-held", schedule="0 2 * * *"))
    jobs.wait_phase("nightly-held", "Scheduled", timeout=60)
    cronjob = cronjob_name("nightly-held")

    def suspended() -> bool | None:
        return batch.read_namespaced_cron_job(cronjob, jobs.ns).spec.suspend

    assert not suspended()
    privileged = with_case(manifest("nightly-held"), CASES[0])["spec"]["podTemplate"]
    jobs.patch("nightly-held", {"spec": {"podTemplate": privileged}})
    jobs.wait_phase("nightly-held", "Failed", timeout=60)
    assert (jobs.condition("nightly-held", "Failed") or {}).get("reason") == "PolicyDenied"
    wait_for("the CronJob to be held", lambda: suspended() is True, timeout=60)
    jobs.patch("nightly-held", {"spec": {"podTemplate": None}})
    jobs.wait_phase("nightly-held", "Scheduled", timeout=60)
    wait_for("the CronJob to run again", lambda: suspended() is False, timeout=60)
