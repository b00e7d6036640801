"""The operator's Kubernetes API calls (kubernetes_asyncio, raw JSON in and out).

Responses are read as plain dicts (``_preload_content=False``): building the client's model
objects for every Job would cost more than the rest of a reconciliation.
"""

from __future__ import annotations

import hashlib
import logging
from datetime import UTC, datetime
from typing import Any, Protocol

from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException

from backgroundjobs import _json
from backgroundjobs._connection import find_source, new_api_client
from backgroundjobs._version import __version__
from backgroundjobs.api import constants as c
from backgroundjobs.api.times import micro_time
from backgroundjobs.controller import metrics

Body = dict[str, Any]
log = logging.getLogger("backgroundjobs.kube")

MERGE_PATCH = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
# A list of the objects' metadata only (names and versions for a relist, not their bodies).
METADATA_LIST = "application/json;as=PartialObjectMetadataList;v=v1;g=meta.k8s.io"
LIST_PAGE = 500
USER_AGENT = "backgroundjobs-operator"
# Kueue's API group and the version of its Workloads read (a queue with spec.kueue).
KUEUE_GROUP = "kueue.x-k8s.io"
KUEUE_VERSION = "v1beta2"


async def operator_api_client() -> client.ApiClient:
    """The operator's API client: the pod's service account, else the kubeconfig; its
    requests are counted in ``backgroundjobs_api_requests_total`` and carry a User-Agent of
    their own, so an audit log tells them from other clients of the same account."""
    api = await new_api_client(find_source(in_cluster_first=True))
    api.user_agent = f"{USER_AGENT}/{__version__}"
    metrics.count_requests(api)
    return api


async def response_json(resp: Any) -> Body:
    """The response body as a dict; an error status raises ApiException like the client does.

    With ``_preload_content=False`` kubernetes_asyncio hands back any response, 4xx included.
    """
    try:
        if resp.status >= 400:
            exc = ApiException(status=resp.status, reason=resp.reason)
            exc.body = await resp.text()
            raise exc
        data = await resp.json(loads=_json.loads)
    finally:
        resp.release()
    return data if isinstance(data, dict) else {}


def event_name(meta: Body, reason: str, message: str) -> str:
    """The same Event of the same object always has the same name: posted again (after a
    crash, or by a retry), it is refused as AlreadyExists instead of shown twice."""
    digest = hashlib.sha256(f"{meta.get('uid')}\0{reason}\0{message}".encode()).hexdigest()
    return f"{meta['name'][:200]}.{digest[:16]}"


def event_body(
    meta: Body, involved: Body, namespace: str, etype: str, reason: str, message: str
) -> Body:
    """An Event about the object of ``meta`` (name, uid, resourceVersion; ``involved`` adds
    its apiVersion, kind and namespace), under its deterministic name (``event_name``)."""
    now = micro_time(datetime.now(UTC))
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": event_name(meta, reason, message), "namespace": namespace},
        "involvedObject": {
            **involved,
            "name": meta.get("name"),
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


def owned_by(obj: Body, uid: str) -> bool:
    """Whether ``obj``'s controller owner reference is the object ``uid``."""
    owners = (obj.get("metadata") or {}).get("ownerReferences") or []
    return any(o.get("controller") and o.get("uid") == uid for o in owners)


def termination_message_of(pods: list[Body], succeeded: bool) -> str | None:
    """The handler's termination message in the newest pod of the outcome (``succeeded``),
    else of any outcome."""
    want = "Succeeded" if succeeded else "Failed"
    candidates = [p for p in pods if (p.get("status") or {}).get("phase") == want] or pods
    candidates.sort(key=lambda p: (p.get("metadata") or {}).get("creationTimestamp") or "")
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


class KubeApi(Protocol):
    """The operator's calls to the API server: all its I/O (a fake one drives the unit
    tests of the reconciler). Objects go and come as dicts; errors are ApiExceptions."""

    async def create(self, obj: Body) -> Body: ...
    async def get(self, kind: str, namespace: str, name: str) -> Body | None: ...
    async def replace_cronjob(self, obj: Body, observed: Body) -> Body: ...
    async def delete_job(self, namespace: str, name: str) -> None: ...
    async def unsuspend_job(self, namespace: str, name: str) -> tuple[Body | None, bool]: ...
    async def termination_message(
        self,
        namespace: str,
        job_name: str,
        job_uid: str,
        succeeded: bool,
        not_older_than: str | None = None,
    ) -> str | None: ...
    async def admission_policy(
        self, name: str, binding: str
    ) -> tuple[Body | None, Body | None]: ...
    async def job_pods(self, namespace: str, job_name: str) -> list[Body]: ...
    async def owned_job_pods(
        self, namespace: str, job_uid: str, not_older_than: str | None = None
    ) -> list[Body]: ...
    async def job_events(self, namespace: str, job_uid: str, reason: str) -> list[Body]: ...
    async def workloads(self, namespace: str, job_uid: str) -> list[Body] | None: ...
    async def patch_status(
        self, namespace: str, name: str, status_patch: Body, resource_version: str | None = None
    ) -> Body: ...
    async def delete_bgj(self, namespace: str, name: str, uid: str) -> None: ...
    async def patch_queue_status(self, namespace: str, name: str, status: Body) -> None: ...
    async def post_event(self, obj: Body, etype: str, reason: str, message: str) -> None: ...
    async def list_versions(
        self, kind: str, namespace: str | None, label_selector: str | None = None
    ) -> tuple[dict[tuple[str, str], str], int]: ...
    async def list_queues(self, namespace: str | None) -> list[Body]: ...
    async def close(self) -> None: ...


class Kube:
    """The calls the reconciler makes (``KubeApi``) on kubernetes_asyncio."""

    def __init__(self, api: client.ApiClient) -> None:
        self.api = api
        # Typed as Any: these calls send and receive raw JSON dicts, not the client's models.
        self.batch: Any = client.BatchV1Api(api)
        self.core: Any = client.CoreV1Api(api)
        self.custom: Any = client.CustomObjectsApi(api)
        self.admission: Any = client.AdmissionregistrationV1Api(api)

    async def close(self) -> None:
        await self.api.close()

    # --- Jobs and CronJobs ---
    async def create(self, obj: Body) -> Body:
        ns = obj["metadata"]["namespace"]
        if obj["kind"] == "Job":
            resp = await self.batch.create_namespaced_job(ns, obj, _preload_content=False)
        elif obj["kind"] == "CronJob":
            resp = await self.batch.create_namespaced_cron_job(ns, obj, _preload_content=False)
        elif obj["kind"] == "ConfigMap":  # a batch's items
            resp = await self.core.create_namespaced_config_map(ns, obj, _preload_content=False)
        else:
            raise ValueError(f"cannot create {obj['kind']}")
        return await response_json(resp)

    async def get(self, kind: str, namespace: str, name: str) -> Body | None:
        """The object, or None when it does not exist."""
        try:
            if kind == "Job":
                resp = await self.batch.read_namespaced_job(name, namespace, _preload_content=False)
            elif kind == "CronJob":
                resp = await self.batch.read_namespaced_cron_job(
                    name, namespace, _preload_content=False
                )
            elif kind == "ConfigMap":
                resp = await self.core.read_namespaced_config_map(
                    name, namespace, _preload_content=False
                )
            else:
                resp = await self.custom.get_namespaced_custom_object(
                    c.GROUP, c.VERSION, namespace, c.PLURAL, name, _preload_content=False
                )
            return await response_json(resp)
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
        return await response_json(resp)

    async def delete_job(self, namespace: str, name: str) -> None:
        try:
            await response_json(
                await self.batch.delete_namespaced_job(
                    name, namespace, propagation_policy="Background", _preload_content=False
                )
            )
        except ApiException as exc:
            if exc.status != 404:
                raise

    async def unsuspend_job(self, namespace: str, name: str) -> tuple[Body | None, bool]:
        """Set the Job's ``spec.suspend`` false (a held recurring run admitted), only if it
        is still true (a JSON Patch test: of two tries, after a restart or with a stale
        cache, one only does it): the Job as it is now (None when gone), and whether this
        call unsuspended it."""
        ops = [
            {"op": "test", "path": "/spec/suspend", "value": True},
            {"op": "replace", "path": "/spec/suspend", "value": False},
        ]
        try:
            return await response_json(
                await self.batch.patch_namespaced_job(
                    name, namespace, ops, _content_type=JSON_PATCH, _preload_content=False
                )
            ), True
        except ApiException as exc:
            if exc.status == 404:
                return None, False
            if exc.status != 422:
                raise
            job = await self.get("Job", namespace, name)
            if job is not None and (job.get("spec") or {}).get("suspend"):
                raise  # refused for another reason (an admission policy): retried
        return job, False  # unsuspended already

    async def termination_message(
        self,
        namespace: str,
        job_name: str,
        job_uid: str,
        succeeded: bool,
        not_older_than: str | None = None,
    ) -> str | None:
        """The handler container's termination message in the last finished pod of the Job
        ``job_name`` whose uid is ``job_uid``.

        The pods are those the Job controller made for that Job: selected by the
        controller-uid label it sets, and kept only if their controller owner reference is
        that Job. A pod anyone made with the same labels carries no result.

        ``not_older_than``: the finished Job's resourceVersion. The pods are then listed from
        the API server's watch cache as of that version or later (which has the pod's final
        status, written before the Job's) instead of a quorum read that first asks etcd for
        its current revision: the most expensive request of a job's life (bench M7).
        """
        pods = await self.owned_job_pods(namespace, job_uid, not_older_than)
        return termination_message_of(pods, succeeded)

    async def owned_job_pods(
        self, namespace: str, job_uid: str, not_older_than: str | None = None
    ) -> list[Body]:
        """The pods the Job ``job_uid`` made (its controller-uid label, and owned by it), as of
        the Job's resourceVersion ``not_older_than`` or later (see ``termination_message``)."""
        extra: dict[str, Any] = {}
        if not_older_than:
            extra = {"resource_version": not_older_than, "resource_version_match": "NotOlderThan"}
        resp = await self.core.list_namespaced_pod(
            namespace,
            label_selector=f"{c.LABEL_CONTROLLER_UID}={job_uid}",
            _preload_content=False,
            **extra,
        )
        return [p for p in (await response_json(resp)).get("items") or [] if owned_by(p, job_uid)]

    async def admission_policy(self, name: str, binding: str) -> tuple[Body | None, Body | None]:
        """The ValidatingAdmissionPolicy ``name`` and the binding ``binding`` (None: absent)."""

        async def read(call: Any, name: str) -> Body | None:
            try:
                return await response_json(await call(name, _preload_content=False))
            except ApiException as exc:
                if exc.status == 403:  # not allowed to tell: as good as absent
                    log.warning("may not read the admission policy %s: %s", name, exc.reason)
                    return None
                if exc.status == 404:
                    return None
                raise

        return (
            await read(self.admission.read_validating_admission_policy, name),
            await read(self.admission.read_validating_admission_policy_binding, binding),
        )

    async def job_pods(self, namespace: str, job_name: str) -> list[Body]:
        """The Job's pods, from the API server's watch cache (``resourceVersion=0``: no etcd
        read; a second or so behind is fine for what it is read for)."""
        resp = await self.core.list_namespaced_pod(
            namespace,
            label_selector=f"{c.LABEL_JOB_NAME}={job_name}",
            resource_version="0",
            _preload_content=False,
        )
        return list((await response_json(resp)).get("items") or [])

    async def job_events(self, namespace: str, job_uid: str, reason: str) -> list[Body]:
        """The Events about the Job with ``reason`` (the Job controller's FailedCreate)."""
        resp = await self.core.list_namespaced_event(
            namespace,
            field_selector=f"involvedObject.uid={job_uid},reason={reason}",
            resource_version="0",
            _preload_content=False,
        )
        return list((await response_json(resp)).get("items") or [])

    # --- progress (controller.progress) ---
    async def running_pods(self, namespace: str | None, label_selector: str) -> list[Body]:
        """The Running pods with ``label_selector`` in ``namespace`` (None: all), from the API
        server's watch cache."""
        extra: dict[str, Any] = {
            "label_selector": label_selector,
            "field_selector": "status.phase=Running",
            "resource_version": "0",
            "_preload_content": False,
        }
        if namespace:
            resp = await self.core.list_namespaced_pod(namespace, **extra)
        else:
            resp = await self.core.list_pod_for_all_namespaces(**extra)
        return list((await response_json(resp)).get("items") or [])

    async def pod_log(
        self, namespace: str, pod: str, container: str, tail_lines: int, limit_bytes: int
    ) -> str:
        """The last ``tail_lines`` lines (at most ``limit_bytes``) of a container's log."""
        resp = await self.core.read_namespaced_pod_log(
            pod,
            namespace,
            container=container,
            tail_lines=tail_lines,
            limit_bytes=limit_bytes,
            _preload_content=False,
        )
        try:
            if resp.status >= 400:
                exc = ApiException(status=resp.status, reason=resp.reason)
                exc.body = await resp.text()
                raise exc
            return str(await resp.text())
        finally:
            resp.release()

    # --- Kueue ---
    async def workloads(self, namespace: str, job_uid: str) -> list[Body] | None:
        """Kueue's Workloads of the Job ``job_uid``; None when Kueue's Workload API is not
        served (Kueue not installed)."""
        try:
            resp = await self.custom.list_namespaced_custom_object(
                KUEUE_GROUP,
                KUEUE_VERSION,
                namespace,
                "workloads",
                label_selector=f"{c.KUEUE_JOB_UID_LABEL}={job_uid}",
                _preload_content=False,
            )
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
        items = (await response_json(resp)).get("items") or []
        return [item for item in items if isinstance(item, dict)]

    # --- relists ---
    async def list_versions(
        self, kind: str, namespace: str | None, label_selector: str | None = None
    ) -> tuple[dict[tuple[str, str], str], int]:
        """(namespace, name) -> resourceVersion of every object of ``kind`` (BackgroundJob or
        Job; a Job only with a controller owner reference) in ``namespace`` (None: all),
        metadata only, in pages; and the list's own resourceVersion (what it shows is the
        state as of then)."""
        base = f"/apis/{c.GROUP}/{c.VERSION}" if kind == c.KIND else "/apis/batch/v1"
        plural = c.PLURAL if kind == c.KIND else "jobs"
        path = f"{base}/namespaces/{namespace}/{plural}" if namespace else f"{base}/{plural}"
        out: dict[tuple[str, str], str] = {}
        token = ""
        as_of = 0
        while True:
            query: list[tuple[str, Any]] = [("limit", LIST_PAGE)]
            if label_selector:
                query.append(("labelSelector", label_selector))
            if token:
                query.append(("continue", token))
            resp = await self.api.call_api(
                path,
                "GET",
                query_params=query,
                header_params={"Accept": METADATA_LIST},
                auth_settings=["BearerToken"],
                _preload_content=False,
            )
            page = await response_json(resp)
            for item in page.get("items") or []:
                meta = item.get("metadata") or {}
                if kind == "Job" and not any(
                    ref.get("controller") for ref in meta.get("ownerReferences") or []
                ):
                    continue  # no controller: never one of ours (the cache ignores it too)
                key = (meta.get("namespace", ""), meta.get("name", ""))
                out[key] = meta.get("resourceVersion", "")
            page_meta = page.get("metadata") or {}
            if not as_of:  # later pages are of the first one's snapshot
                as_of = int(page_meta.get("resourceVersion") or 0)
            token = page_meta.get("continue") or ""
            if not token:
                return out, as_of

    # --- BackgroundJobQueues ---
    async def list_queues(self, namespace: str | None) -> list[Body]:
        """Every BackgroundJobQueue in ``namespace`` (None: all), whole (there are few);
        none when their CRD is not installed."""
        base = f"/apis/{c.GROUP}/{c.VERSION}"
        plural = c.QUEUE_PLURAL
        path = f"{base}/namespaces/{namespace}/{plural}" if namespace else f"{base}/{plural}"
        try:
            resp = await self.api.call_api(
                path,
                "GET",
                header_params={"Accept": "application/json"},
                auth_settings=["BearerToken"],
                _preload_content=False,
            )
        except ApiException as exc:
            if exc.status == 404:
                return []
            raise
        return list((await response_json(resp)).get("items") or [])

    async def patch_queue_status(self, namespace: str, name: str, status: Body) -> None:
        """Merge ``status`` into the queue object's status (a queue deleted meanwhile: 404,
        ignored)."""
        try:
            await self.custom.patch_namespaced_custom_object_status(
                c.GROUP,
                c.VERSION,
                namespace,
                c.QUEUE_PLURAL,
                name,
                {"status": status},
                _content_type=MERGE_PATCH,
                _preload_content=False,
            )
        except ApiException as exc:
            if exc.status != 404:
                raise

    # --- BackgroundJobs ---
    async def patch_status(
        self, namespace: str, name: str, status_patch: Body, resource_version: str | None = None
    ) -> Body:
        body: Body = {"status": status_patch}
        if resource_version:  # optimistic concurrency: 409 Conflict when the object changed
            body["metadata"] = {"resourceVersion": resource_version}
        resp = await self.custom.patch_namespaced_custom_object_status(
            c.GROUP,
            c.VERSION,
            namespace,
            c.PLURAL,
            name,
            body,
            _content_type=MERGE_PATCH,
            _preload_content=False,
        )
        return await response_json(resp)

    async def delete_bgj(self, namespace: str, name: str, uid: str) -> None:
        try:
            await response_json(
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
        involved = {"apiVersion": c.API_VERSION, "kind": c.KIND, "namespace": meta["namespace"]}
        event = event_body(meta, involved, meta["namespace"], etype, reason, message)
        resp = await self.core.create_namespaced_event(
            meta["namespace"], event, _preload_content=False
        )
        resp.release()
