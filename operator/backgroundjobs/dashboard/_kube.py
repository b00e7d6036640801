"""The dashboard's own requests to the API server: the list and watch behind its cache, and
the actions, optionally as another user (impersonation headers from an authenticating proxy).

The public client has no impersonation (a request may carry several ``Impersonate-Group``
headers, which the generated API cannot send), so these go through the ApiClient's aiohttp
session with its credentials.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlencode

import aiohttp
from kubernetes_asyncio import client as k8s
from multidict import CIMultiDict

from backgroundjobs import _json
from backgroundjobs._connection import ConnectionSource, find_source, new_api_client
from backgroundjobs._version import __version__
from backgroundjobs.api.constants import (
    ACTION_ANNOTATIONS,
    ANNOTATION_REQUEUE,
    GROUP,
    PLURAL,
    VERSION,
)
from backgroundjobs.api.requester import FAILED_ONLY
from backgroundjobs.errors import BackgroundJobsError

LIST_PAGE_SIZE = 500
WATCH_SECONDS = 290  # below the API server's --min-request-timeout (1800 s) randomised floor
USER_AGENT = f"backgroundjobs-dashboard/{__version__}"
# requeue-failed: a failed-only requeue of a batch (its items that did not succeed)
ACTIONS = ("trigger", "requeue", "requeue-failed", "cancel", "delete", "suspend", "resume")


@dataclass(frozen=True)
class Identity:
    """The person an action is done for (impersonated), as an authenticating proxy named them."""

    user: str
    groups: tuple[str, ...] = ()


class KubeError(BackgroundJobsError):
    """An API server refusal: ``status`` is the HTTP status, ``message`` the Status message."""

    def __init__(self, status: int, message: str, reason: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.reason = reason


class Gone(Exception):
    """The watch's resourceVersion is too old (410): list again."""


@dataclass
class RequestCounts:
    """The requests the dashboard made, by verb: what it costs the API server."""

    counts: dict[str, int] = field(default_factory=dict)

    def add(self, verb: str) -> None:
        self.counts[verb] = self.counts.get(verb, 0) + 1


async def load_api_client(
    kubeconfig: str | None, context: str | None, in_cluster: bool
) -> k8s.ApiClient:
    """An ApiClient from the kubeconfig (``--kubeconfig``, ``$KUBECONFIG``, ``~/.kube/config``)
    or, with ``in_cluster``, the pod's ServiceAccount."""
    source = ConnectionSource(None, None) if in_cluster else find_source(kubeconfig, context)
    return await new_api_client(source)


def _objects_path(namespace: str | None, name: str | None = None, plural: str = PLURAL) -> str:
    base = f"/apis/{GROUP}/{VERSION}"
    path = (
        f"{base}/namespaces/{quote(namespace, safe='')}/{plural}"
        if namespace
        else f"{base}/{plural}"
    )
    return f"{path}/{quote(name, safe='')}" if name else path


def _status_message(body: bytes, fallback: str) -> tuple[str, str]:
    try:
        status = json.loads(body)
    except ValueError:
        return (body.decode("utf-8", "replace").strip() or fallback), ""
    if isinstance(status, dict):
        return str(status.get("message") or fallback), str(status.get("reason") or "")
    return fallback, ""


def _now_value() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


class Kube:
    """Raw JSON requests on an ApiClient's session and credentials."""

    def __init__(self, api_client: k8s.ApiClient) -> None:
        self.api_client = api_client
        self.requests = RequestCounts()

    async def close(self) -> None:
        await self.api_client.close()

    async def _headers(self, identity: Identity | None) -> CIMultiDict[str]:
        auth: dict[str, str] = {}
        await self.api_client.update_params_for_auth(auth, [], ["BearerToken"])
        headers: CIMultiDict[str] = CIMultiDict(auth)
        headers["Accept"] = "application/json"
        headers["User-Agent"] = USER_AGENT
        if identity is not None:
            headers["Impersonate-User"] = identity.user
            for group in identity.groups:
                headers.add("Impersonate-Group", group)
        return headers

    async def request(
        self,
        method: str,
        path: str,
        *,
        query: dict[str, Any] | None = None,
        body: Any = None,
        content_type: str = "application/json",
        identity: Identity | None = None,
        verb: str,
    ) -> Any:
        """One request; the decoded JSON answer, or ``KubeError`` with the API server's
        message."""
        headers = await self._headers(identity)
        data = None
        if body is not None:
            headers["Content-Type"] = content_type
            data = json.dumps(body)
        url = f"{self.api_client.configuration.host}{path}"
        if query:
            url += "?" + urlencode({k: v for k, v in query.items() if v is not None})
        self.requests.add(verb)
        session: aiohttp.ClientSession = self.api_client.rest_client.pool_manager
        async with session.request(
            method, url, headers=headers, data=data, timeout=aiohttp.ClientTimeout(total=60)
        ) as response:
            raw = await response.read()
            if response.status >= 400:
                message, reason = _status_message(raw, response.reason or "")
                raise KubeError(response.status, message, reason)
            return json.loads(raw) if raw else None

    async def list_page(
        self, namespace: str | None, continue_token: str | None, plural: str = PLURAL
    ) -> dict[str, Any]:
        """One page (at most 500) of the BackgroundJobs (or ``plural``) of the namespace
        (None: all)."""
        query = {"limit": LIST_PAGE_SIZE, "continue": continue_token}
        page: dict[str, Any] = await self.request(
            "GET", _objects_path(namespace, plural=plural), query=query, verb="list"
        )
        return page

    async def watch(
        self, namespace: str | None, resource_version: str, plural: str = PLURAL
    ) -> AsyncIterator[tuple[str, dict[str, Any]]]:
        """The events of one watch request from ``resource_version`` (with bookmarks);
        raises ``Gone`` when that version is too old."""
        headers = await self._headers(None)
        query = {
            "watch": "true",
            "resourceVersion": resource_version,
            "allowWatchBookmarks": "true",
            "timeoutSeconds": WATCH_SECONDS,
        }
        path = _objects_path(namespace, plural=plural)
        url = f"{self.api_client.configuration.host}{path}?{urlencode(query)}"
        self.requests.add("watch")
        session: aiohttp.ClientSession = self.api_client.rest_client.pool_manager
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=30, sock_read=WATCH_SECONDS + 30)
        async with session.get(url, headers=headers, timeout=timeout) as response:
            if response.status == 410:
                raise Gone()
            if response.status >= 400:
                message, reason = _status_message(await response.read(), response.reason or "")
                raise KubeError(response.status, message, reason)
            async for line in _json.lines(response.content.iter_any()):
                event = _json.loads(line)  # any length, any depth
                if event.get("type") == "ERROR":
                    status = event.get("object") or {}
                    if status.get("code") == 410:
                        raise Gone()
                    raise KubeError(
                        int(status.get("code") or 500), str(status.get("message") or status)
                    )
                yield str(event.get("type")), event.get("object") or {}

    async def act(self, action: str, namespace: str, name: str, identity: Identity | None) -> None:
        """Do ``action`` (one of ``ACTIONS``) on the job, as ``identity`` when given."""
        path = _objects_path(namespace, name)
        if action == "delete":
            body = {"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Background"}
            await self.request("DELETE", path, body=body, identity=identity, verb="delete")
            return
        patch: dict[str, Any]
        if action in ("suspend", "resume"):
            patch = {"spec": {"suspend": action == "suspend"}}
        elif action == "requeue-failed":
            value = f"{FAILED_ONLY} {_now_value()}"
            patch = {"metadata": {"annotations": {ANNOTATION_REQUEUE: value}}}
        elif action in ACTION_ANNOTATIONS:
            patch = {"metadata": {"annotations": {ACTION_ANNOTATIONS[action]: _now_value()}}}
        else:
            raise ValueError(f"unknown action {action!r}; one of {', '.join(ACTIONS)}")
        await self.request(
            "PATCH", path, body=patch, content_type="application/merge-patch+json",
            identity=identity, verb="patch",
        )  # fmt: skip
