"""ServiceAccount identities for operators under test, so that the audit log tells their
requests apart (user ``system:serviceaccount:<namespace>:<name>``)."""

from __future__ import annotations

from pathlib import Path

import yaml
from kubernetes import client
from kubernetes.client.rest import ApiException

NAMESPACE = "bgj-reliability"


def user_of(name: str) -> str:
    return f"system:serviceaccount:{NAMESPACE}:{name}"


def _create(make: object) -> None:
    try:
        make()  # type: ignore[operator]
    except ApiException as exc:
        if exc.status != 409:
            raise


def service_account_kubeconfig(
    api: client.ApiClient, admin_kubeconfig: str, name: str, out: Path
) -> Path:
    """A kubeconfig for ServiceAccount ``name`` (bound to cluster-admin: permissions are not
    what these tests are about), with a token from the TokenRequest API."""
    core = client.CoreV1Api(api)
    rbac = client.RbacAuthorizationV1Api(api)
    _create(lambda: core.create_namespace({"metadata": {"name": NAMESPACE}}))
    _create(lambda: core.create_namespaced_service_account(NAMESPACE, {"metadata": {"name": name}}))
    _create(
        lambda: rbac.create_cluster_role_binding(
            {
                "metadata": {"name": f"{NAMESPACE}-{name}"},
                "roleRef": {
                    "apiGroup": "rbac.authorization.k8s.io",
                    "kind": "ClusterRole",
                    "name": "cluster-admin",
                },
                "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": NAMESPACE}],
            }
        )
    )
    token = core.create_namespaced_service_account_token(
        name, NAMESPACE, {"spec": {"expirationSeconds": 6 * 3600}}
    ).status.token
    admin = yaml.safe_load(Path(admin_kubeconfig).read_text())
    cluster = admin["clusters"][0]
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [cluster],
        "users": [{"name": name, "user": {"token": token}}],
        "contexts": [{"name": name, "context": {"cluster": cluster["name"], "user": name}}],
        "current-context": name,
    }
    out.write_text(yaml.safe_dump(config))
    out.chmod(0o600)
    return out
