"""The pods of a job's runs and their handler containers' logs, followed while they run."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

from kubernetes_asyncio import client as k8s
from kubernetes_asyncio.client.exceptions import ApiException

from backgroundjobs._connection import status_message
from backgroundjobs.api.constants import HANDLER_CONTAINER, LABEL_JOB_NAME
from backgroundjobs.client._errors import from_api_exception
from backgroundjobs.errors import BackgroundJobsError

Body = dict[str, Any]


@dataclass(frozen=True)
class LogLine:
    """One line of a handler container's log, and the pod that wrote it."""

    pod: str
    text: str


def controlled_by(obj: Body, kind: str, name: str | None = None, uid: str | None = None) -> bool:
    """Whether ``obj``'s controller owner reference is of ``kind`` (and of that name or uid).

    Labels can be set by anyone who may create pods or Jobs in the namespace; the controller
    owner reference is what the Job controller and the operator set, so runs and pods are
    found by it: a look-alike with copied labels is not shown as a job's run or its log."""
    for owner in (obj.get("metadata") or {}).get("ownerReferences") or []:
        if owner.get("controller") and owner.get("kind") == kind:
            return (name is None or owner.get("name") == name) and (
                uid is None or owner.get("uid") == uid
            )
    return False


async def pods_of_jobs(api: k8s.ApiClient, jobs: Sequence[Body], ns: str) -> list[Body]:
    """The pods of these Jobs (controlled by them), oldest first, as dicts."""
    if not jobs:
        return []
    core = k8s.CoreV1Api(api)
    by_name = {job["metadata"]["name"]: job["metadata"].get("uid") for job in jobs}
    selector = f"{LABEL_JOB_NAME} in ({','.join(by_name)})"
    try:
        result = await core.list_namespaced_pod(ns, label_selector=selector)
    except ApiException as exc:
        raise from_api_exception(exc, namespace=ns) from None
    pods: list[Body] = [api.sanitize_for_serialization(pod) for pod in result.items]
    pods = [
        pod
        for pod in pods
        if controlled_by(pod, "Job", uid=by_name.get(_label(pod, LABEL_JOB_NAME)) or "")
    ]
    return sorted(
        pods,
        key=lambda p: (p["metadata"].get("creationTimestamp") or "", p["metadata"]["name"]),
    )


def _label(obj: Body, key: str) -> str:
    return str(((obj.get("metadata") or {}).get("labels") or {}).get(key, ""))


async def job_logs(
    api: k8s.ApiClient, job_name: str, ns: str, *, follow: bool
) -> AsyncIterator[LogLine]:
    """The handler container's log lines of the Job's pods, pod by pod (a retried run has
    several). ``follow`` streams until the Job finishes."""
    core = k8s.CoreV1Api(api)
    printed: set[str] = set()
    first = await _read_job(api, job_name, ns)
    if first is None:
        return  # gone (retention): its pods went with it
    job: Body | None = first
    while True:
        # Once the Job has finished (or is gone), one last pass prints what is left.
        final = not follow or job is None or _job_finished(job)
        for pod in await pods_of_jobs(api, [first], ns):
            pod_name = pod["metadata"]["name"]
            if pod_name in printed:
                continue
            if not _container_started(pod):
                if final:
                    printed.add(pod_name)
                    continue
                break  # list again once it has started
            printed.add(pod_name)
            live = not final and not _container_finished(pod)
            async for line in _pod_log(core, pod_name, ns, follow=live):
                yield LogLine(pod_name, line)
        if final:
            return
        await asyncio.sleep(1)
        job = await _read_job(api, job_name, ns)


async def _read_job(api: k8s.ApiClient, job_name: str, ns: str) -> Body | None:
    batch = k8s.BatchV1Api(api)
    try:
        job = await batch.read_namespaced_job(job_name, ns)
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise from_api_exception(exc, namespace=ns) from None
    plain: Body = api.sanitize_for_serialization(job)
    return plain


def _job_finished(job: Body) -> bool:
    conditions = (job.get("status") or {}).get("conditions") or []
    return any(
        c.get("type") in ("Complete", "Failed") and c.get("status") == "True" for c in conditions
    )


async def _pod_log(core: Any, pod: str, ns: str, *, follow: bool) -> AsyncIterator[str]:
    try:
        if not follow:
            text = await core.read_namespaced_pod_log(pod, ns, container=HANDLER_CONTAINER)
            for line in str(text).splitlines():
                yield line
            return
        response = await core.read_namespaced_pod_log(
            pod, ns, container=HANDLER_CONTAINER, follow=True, _preload_content=False
        )
    except ApiException as exc:
        raise BackgroundJobsError(
            f"cannot read the log of pod {pod}: {status_message(exc)}"
        ) from None
    try:
        if response.status >= 400:
            body = (await response.read()).decode("utf-8", "replace")
            raise BackgroundJobsError(f"cannot read the log of pod {pod}: {body.strip()}")
        async for raw_line in response.content:
            yield raw_line.decode("utf-8", "replace").rstrip("\n")
    finally:
        response.release()


def _container_started(pod: Body) -> bool:
    for status in (pod.get("status") or {}).get("containerStatuses") or []:
        if status.get("name") == HANDLER_CONTAINER:
            state = status.get("state") or {}
            return "running" in state or "terminated" in state
    return False


def _container_finished(pod: Body) -> bool:
    phase = (pod.get("status") or {}).get("phase")
    return phase in ("Succeeded", "Failed")
