"""The operator's Kubernetes API calls (kubernetes_asyncio, raw JSON in and out).

Responses are read as plain dicts (``_preload_content=False``): building the client's model
objects for every Job would cost more than the rest of a reconciliation.
"""

from __future__ import annotations

import json
import logging
import os
import uuid
from datetime import UTC, datetime
from typing import Any

from kubernetes_asyncio import client, config
from kubernetes_asyncio.client.exceptions import ApiException

from backgroundjobs.api import constants as c

Body = dict[str, Any]
log = logging.getLogger("backgroundjobs.kube")

MERGE_PATCH = "application/merge-patch+json"


async def new_api_client() -> client.ApiClient:
    """An API client from the in-cluster service account, else the kubeconfig."""
    try:
        config.load_incluster_config()  # type: ignore[no-untyped-call]
        api = client.ApiClient()
    except config.ConfigException:
        cfg = client.Configuration()
        await config.load_kube_config(client_configuration=cfg)
        cfg.connection_pool_maxsize = 64
        api = client.ApiClient(configuration=cfg)
    _skip_env_lookups(api)
    return api


_PROXY_ENV = ("http_proxy", "https_proxy", "all_proxy", "ws_proxy", "wss_proxy", "netrc")


def _skip_env_lookups(api: client.ApiClient) -> None:
    """Turn off aiohttp's per-request proxy and netrc lookups when there is nothing to find.

    kubernetes_asyncio opens its session with ``trust_env=True``, so aiohttp looks up proxy
    variables and reads ~/.netrc in a worker thread on every request: two thread hops per
    API call (bench/profiles/). Without any proxy variable or netrc file the lookups always
    come back empty, so skipping them changes nothing but the cost.
    """
    if any(key.lower() in _PROXY_ENV for key in os.environ) or os.path.exists(
        os.path.expanduser("~/.netrc")
    ):
        return
    session = getattr(getattr(api, "rest_client", None), "pool_manager", None)
    if session is not None and hasattr(session, "_trust_env"):
        session._trust_env = False


async def _json(resp: Any) -> Body:
    """The response body as a dict; an error status raises ApiException like the client does.

    With ``_preload_content=False`` kubernetes_asyncio hands back any response, 4xx included.
    """
    try:
        if resp.status >= 400:
            exc = ApiException(status=resp.status, reason=resp.reason)
            exc.body = await resp.text()
            raise exc
        data = await resp.json()
    finally:
        resp.release()
    return data if isinstance(data, dict) else {}


def api_message(exc: ApiException) -> str:
    """The API server's own message from an error response."""
    try:
        body = json.loads(str(exc.body))
        return str(body.get("message") or exc.reason)
    except (TypeError, ValueError):
        return str(exc.body or exc.reason)


class Kube:
    """The calls the reconciler makes; each returns the object as a dict."""

    def __init__(self, api: client.ApiClient) -> None:
        self.api = api
        # Typed as Any: these calls send and receive raw JSON dicts, not the client's models.
        self.batch: Any = client.BatchV1Api(api)
        self.core: Any = client.CoreV1Api(api)
        self.custom: Any = client.CustomObjectsApi(api)

    async def close(self) -> None:
        await self.api.close()

    # --- Jobs and CronJobs ---
    async def create(self, obj: Body) -> Body:
        ns = obj["metadata"]["namespace"]
        if obj["kind"] == "Job":
            resp = await self.batch.create_namespaced_job(ns, obj, _preload_content=False)
        elif obj["kind"] == "CronJob":
            resp = await self.batch.create_namespaced_cron_job(ns, obj, _preload_content=False)
        else:
            raise ValueError(f"cannot create {obj['kind']}")
        return await _json(resp)

    async def get(self, kind: str, namespace: str, name: str) -> Body | None:
        """The object, or None when it does not exist."""
        try:
            if kind == "Job":
                resp = await self.batch.read_namespaced_job(name, namespace, _preload_content=False)
            elif kind == "CronJob":
                resp = await self.batch.read_namespaced_cron_job(
                    name, namespace, _preload_content=False
                )
            else:
                resp = await self.custom.get_namespaced_custom_object(
                    c.GROUP, c.VERSION, namespace, c.PLURAL, name, _preload_content=False
                )
            return await _json(resp)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise

    async def replace_cronjob(self, obj: Body, observed: Body) -> Body:
        meta = obj["metadata"]
        body = {
            **obj,
            "metadata": {**meta, "resourceVersion": observed["metadata"].get("resourceVersion")},
        }
        resp = await self.batch.replace_namespaced_cron_job(
            meta["name"], meta["namespace"], body, _preload_content=False
        )
        return await _json(resp)

    async def delete_job(self, namespace: str, name: str) -> None:
        try:
            await _json(
                await self.batch.delete_namespaced_job(
                    name, namespace, propagation_policy="Background", _preload_content=False
                )
            )
        except ApiException as exc:
            if exc.status != 404:
                raise

    async def termination_message(
        self, namespace: str, job_name: str, succeeded: bool, not_older_than: str | None = None
    ) -> str | None:
        """The handler container's termination message in the Job's last finished pod.

        ``not_older_than``: the finished Job's resourceVersion. The pods are then listed from
        the API server's watch cache as of that version or later (which has the pod's final
        status, written before the Job's) instead of a quorum read that first asks etcd for
        its current revision: the most expensive request of a job's life (bench M7).
        """
        extra: dict[str, Any] = {}
        if not_older_than:
            extra = {"resource_version": not_older_than, "resource_version_match": "NotOlderThan"}
        resp = await self.core.list_namespaced_pod(
            namespace,
            label_selector=f"batch.kubernetes.io/job-name={job_name}",
            _preload_content=False,
            **extra,
        )
        pods = (await _json(resp)).get("items") or []
        want = "Succeeded" if succeeded else "Failed"
        candidates = [p for p in pods if (p.get("status") or {}).get("phase") == want] or pods
        candidates.sort(key=lambda p: p["metadata"].get("creationTimestamp") or "")
        for pod in reversed(candidates):
            for cs in (pod.get("status") or {}).get("containerStatuses") or []:
                if cs.get("name") != c.HANDLER_CONTAINER:
                    continue
                terminated = (cs.get("state") or {}).get("terminated") or (
                    cs.get("lastState") or {}
                ).get("terminated")
                if terminated and terminated.get("message"):
                    return str(terminated["message"])
        return None

    # --- BackgroundJobs ---
    async def patch_status(self, namespace: str, name: str, status_patch: Body) -> Body:
        resp = await self.custom.patch_namespaced_custom_object_status(
            c.GROUP,
            c.VERSION,
            namespace,
            c.PLURAL,
            name,
            {"status": status_patch},
            _content_type=MERGE_PATCH,
            _preload_content=False,
        )
        return await _json(resp)

    async def delete_bgj(self, namespace: str, name: str, uid: str) -> None:
        try:
            await _json(
                await self.custom.delete_namespaced_custom_object(
                    c.GROUP,
                    c.VERSION,
                    namespace,
                    c.PLURAL,
                    name,
                    body={"preconditions": {"uid": uid}, "propagationPolicy": "Background"},
                    _preload_content=False,
                )
            )
        except ApiException as exc:
            if exc.status not in (404, 409):
                raise

    # --- Events ---
    async def post_event(self, obj: Body, etype: str, reason: str, message: str) -> None:
        meta = obj["metadata"]
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        event = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {
                "name": f"{meta['name'][:200]}.{uuid.uuid4().hex[:16]}",
                "namespace": meta["namespace"],
            },
            "involvedObject": {
                "apiVersion": c.API_VERSION,
                "kind": c.KIND,
                "name": meta["name"],
                "namespace": meta["namespace"],
                "uid": meta.get("uid"),
                "resourceVersion": meta.get("resourceVersion"),
            },
            "type": etype,
            "reason": reason,
            "message": message[:1024],
            "source": {"component": "backgroundjobs-operator"},
            "reportingComponent": "backgroundjobs.dev/operator",
            "reportingInstance": "backgroundjobs-operator",
            "firstTimestamp": now[:19] + "Z",
            "lastTimestamp": now[:19] + "Z",
            "eventTime": now,
            "action": reason,
            "count": 1,
        }
        resp = await self.core.create_namespaced_event(
            meta["namespace"], event, _preload_content=False
        )
        resp.release()
