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


async def pods_of_jobs(api: k8s.ApiClient, job_names: Sequence[str], ns: str) -> list[Body]:
    """The pods of these Jobs, oldest first, as dicts."""
    if not job_names:
        return []
    core = k8s.CoreV1Api(api)
    selector = f"{LABEL_JOB_NAME} in ({','.join(job_names)})"
    try:
        result = await core.list_namespaced_pod(ns, label_selector=selector)
    except ApiException as exc:
        raise from_api_exception(exc, namespace=ns) from None
    pods: list[Body] = [api.sanitize_for_serialization(pod) for pod in result.items]
    return sorted(
        pods,
        key=lambda p: (p["metadata"].get("creationTimestamp") or "", p["metadata"]["name"]),
    )


async def job_logs(
    api: k8s.ApiClient, job_name: str, ns: str, *, follow: bool
) -> AsyncIterator[LogLine]:
    """The handler container's log lines of the Job's pods, pod by pod (a retried run has
    several). ``follow`` streams until the Job finishes."""
    core = k8s.CoreV1Api(api)
    printed: set[str] = set()
    while True:
        # Once the Job has finished, one last pass prints what is left, without following.
        final = not follow or await _job_finished(api, job_name, ns)
        for pod in await pods_of_jobs(api, [job_name], ns):
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


async def _job_finished(api: k8s.ApiClient, job_name: str, ns: str) -> bool:
    batch = k8s.BatchV1Api(api)
    try:
        job = await batch.read_namespaced_job(job_name, ns)
    except ApiException as exc:
        if exc.status == 404:
            return True
        raise from_api_exception(exc, namespace=ns) from None
    conditions = (job.status.conditions or []) if job.status else []
    return any(c.type in ("Complete", "Failed") and c.status == "True" for c in conditions)


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
