"""Cluster access for the suite: API clients, namespaces, the CRD and the operator's identity.

Everything is raw JSON (``_preload_content=False``): building kubernetes_asyncio's model
objects would make the load generators measure themselves.
"""

# mypy: disable-error-code="arg-type"

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import yaml
from kubernetes_asyncio import client, config
from kubernetes_asyncio.client.exceptions import ApiException

from backgroundjobs.api import constants as c
from backgroundjobs.controller.kube import response_json

Body = dict[str, Any]
REPO = Path(__file__).resolve().parent.parent
CRD_FILE = REPO / "crds" / "backgroundjobs.dev_backgroundjobs.yaml"

BENCH_LABEL = "bench.backgroundjobs.dev/run"
PROBE_LABEL = "bench.backgroundjobs.dev/probe"
OPERATOR_NAMESPACE = "bgj-bench-system"
OPERATOR_SA = "bgj-bench-operator"
OPERATOR_USER = f"system:serviceaccount:{OPERATOR_NAMESPACE}:{OPERATOR_SA}"


async def api_client(kubeconfig: str, pool: int = 64) -> client.ApiClient:
    """An API client with ``pool`` connections (the default 10 would cap 32 in flight)."""
    cfg = client.Configuration()
    await config.load_kube_config(config_file=kubeconfig, client_configuration=cfg)
    cfg.connection_pool_maxsize = pool
    return client.ApiClient(configuration=cfg)


# The response-to-dict helper is the operator's own (an error status raises ApiException).
body = response_json


async def drain(resp: Any) -> None:
    """Release a raw response, raising on an error status (the body is not parsed)."""
    try:
        if resp.status >= 400:
            exc = ApiException(status=resp.status, reason=resp.reason)
            exc.body = await resp.text()
            raise exc
        await resp.read()
    finally:
        resp.release()


class Kube:
    """The handful of calls the suite makes."""

    def __init__(self, api: client.ApiClient) -> None:
        self.api = api
        self.core = client.CoreV1Api(api)
        self.batch = client.BatchV1Api(api)
        self.custom = client.CustomObjectsApi(api)
        self.rbac = client.RbacAuthorizationV1Api(api)
        self.ext = client.ApiextensionsV1Api(api)

    async def close(self) -> None:
        await self.api.close()

    # ------------------------------------------------------------ namespaces
    async def namespace(self, name: str, run_id: str) -> str:
        """Create ``name`` and wait for its default ServiceAccount (pods need it)."""
        meta = {"name": name, "labels": {BENCH_LABEL: run_id}}
        try:
            await drain(
                await self.core.create_namespace({"metadata": meta}, _preload_content=False)
            )
        except ApiException as exc:
            if exc.status != 409:
                raise
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                await drain(
                    await self.core.read_namespaced_service_account(
                        "default", name, _preload_content=False
                    )
                )
                return name
            except ApiException as exc:
                if exc.status != 404:
                    raise
            await asyncio.sleep(0.2)
        raise RuntimeError(f"namespace {name}: no default ServiceAccount after 120s")

    async def delete_namespace(self, name: str) -> None:
        try:
            await drain(
                await self.core.delete_namespace(
                    name, propagation_policy="Background", _preload_content=False
                )
            )
        except ApiException as exc:
            if exc.status != 404:
                raise

    async def namespaces_gone(self, run_id: str) -> bool:
        """Whether the namespaces of this run that are being deleted are all gone."""
        data = await body(
            await self.core.list_namespace(
                label_selector=f"{BENCH_LABEL}={run_id}", _preload_content=False
            )
        )
        return not any(n["metadata"].get("deletionTimestamp") for n in data.get("items") or [])

    async def old_bench_namespaces(self) -> list[str]:
        data = await body(
            await self.core.list_namespace(label_selector=BENCH_LABEL, _preload_content=False)
        )
        return [n["metadata"]["name"] for n in data.get("items") or []]

    # ------------------------------------------------------------ the CRD
    async def apply_crd(self) -> None:
        crd = yaml.safe_load(CRD_FILE.read_text())
        name = crd["metadata"]["name"]
        try:
            existing = await body(
                await self.ext.read_custom_resource_definition(name, _preload_content=False)
            )
            crd["metadata"]["resourceVersion"] = existing["metadata"]["resourceVersion"]
            await drain(
                await self.ext.replace_custom_resource_definition(name, crd, _preload_content=False)
            )
        except ApiException as exc:
            if exc.status != 404:
                raise
            await drain(
                await self.ext.create_custom_resource_definition(crd, _preload_content=False)
            )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            got = await body(
                await self.ext.read_custom_resource_definition(name, _preload_content=False)
            )
            conds = (got.get("status") or {}).get("conditions") or []
            if any(x["type"] == "Established" and x["status"] == "True" for x in conds):
                return
            await asyncio.sleep(0.2)
        raise RuntimeError("the BackgroundJob CRD did not become Established")

    # ------------------------------------------------------------ objects
    async def create_bgj(self, ns: str, obj: Body) -> None:
        await drain(
            await self.custom.create_namespaced_custom_object(
                c.GROUP, c.VERSION, ns, c.PLURAL, obj, _preload_content=False
            )
        )

    async def create_job(self, ns: str, obj: Body) -> None:
        await drain(await self.batch.create_namespaced_job(ns, obj, _preload_content=False))

    async def create_cronjob(self, ns: str, obj: Body) -> None:
        await drain(await self.batch.create_namespaced_cron_job(ns, obj, _preload_content=False))

    async def create_configmap(self, ns: str, obj: Body) -> None:
        await drain(await self.core.create_namespaced_config_map(ns, obj, _preload_content=False))

    async def list_bgjs(self, ns: str) -> list[Body]:
        data = await body(
            await self.custom.list_namespaced_custom_object(
                c.GROUP, c.VERSION, ns, c.PLURAL, _preload_content=False
            )
        )
        return list(data.get("items") or [])

    # ------------------------------------------------------------ the operator's identity
    async def operator_kubeconfig(self, admin_kubeconfig: str, out: Path) -> str:
        """A kubeconfig with a ServiceAccount token (TokenRequest API) for the operator.

        The audit log then tells the operator's requests (user ``OPERATOR_USER``) from the
        shared admin user's. The ServiceAccount is bound to cluster-admin: permissions are
        not what is measured here.
        """
        for make in (
            lambda: self.core.create_namespace(
                {"metadata": {"name": OPERATOR_NAMESPACE}}, _preload_content=False
            ),
            lambda: self.core.create_namespaced_service_account(
                OPERATOR_NAMESPACE, {"metadata": {"name": OPERATOR_SA}}, _preload_content=False
            ),
            lambda: self.rbac.create_cluster_role_binding(
                {
                    "metadata": {"name": OPERATOR_SA},
                    "roleRef": {
                        "apiGroup": "rbac.authorization.k8s.io",
                        "kind": "ClusterRole",
                        "name": "cluster-admin",
                    },
                    "subjects": [
                        {
                            "kind": "ServiceAccount",
                            "name": OPERATOR_SA,
                            "namespace": OPERATOR_NAMESPACE,
                        }
                    ],
                },
                _preload_content=False,
            ),
        ):
            try:
                await drain(await make())
            except ApiException as exc:
                if exc.status != 409:
                    raise
        token = await body(
            await self.core.create_namespaced_service_account_token(
                OPERATOR_SA,
                OPERATOR_NAMESPACE,
                {"spec": {"expirationSeconds": 4 * 3600}},
                _preload_content=False,
            )
        )
        return _write_kubeconfig(admin_kubeconfig, token["status"]["token"], out)


def _write_kubeconfig(admin_kubeconfig: str, token: str, out: Path) -> str:
    """The admin kubeconfig's cluster with ``token`` as the user, written to ``out``."""
    admin = yaml.safe_load(Path(admin_kubeconfig).read_text())
    cluster = admin["clusters"][0]
    cfg = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [cluster],
        "users": [{"name": OPERATOR_SA, "user": {"token": token}}],
        "contexts": [
            {"name": "operator", "context": {"cluster": cluster["name"], "user": OPERATOR_SA}}
        ],
        "current-context": "operator",
    }
    out.write_text(json.dumps(cfg))
    out.chmod(0o600)
    return str(out)
