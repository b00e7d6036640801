"""Listing and watching BackgroundJobs: paged lists, and a watch that reconnects and lists
again when its history is gone (an informer without a cache)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any

from kubernetes_asyncio.client.exceptions import ApiException

from backgroundjobs import _json
from backgroundjobs.api.constants import GROUP, PLURAL, VERSION
from backgroundjobs.client._errors import from_api_exception
from backgroundjobs.client._info import JobInfo
from backgroundjobs.errors import BackgroundJobsError

LIST_PAGE_SIZE = 500
WATCH_SECONDS = 290  # below the API server's default --min-request-timeout * 2

Body = dict[str, Any]


@dataclass(frozen=True)
class WatchEvent:
    """A change seen by ``watch``: ``type`` is ``ADDED``, ``MODIFIED`` or ``DELETED``."""

    type: str
    job: JobInfo


class _Gone(Exception):
    """The watch's resourceVersion is too old (410): list again."""


def label_selector(labels: Mapping[str, str] | str | None) -> str | None:
    """A label selector from a mapping (``k=v,k2=v2``) or as given."""
    if labels is None or isinstance(labels, str):
        return labels or None
    return ",".join(f"{key}={value}" for key, value in labels.items()) or None


async def list_objects(
    custom: Any, ns: str | None, labels: str | None, fields: str | None = None
) -> tuple[list[Body], str]:
    """All BackgroundJobs of ``ns`` (None: every namespace), paged, and the list's
    resourceVersion to watch from."""
    items: list[Body] = []
    token: str | None = None
    while True:
        query: dict[str, Any] = {"limit": LIST_PAGE_SIZE}
        if token:
            query["_continue"] = token
        if labels:
            query["label_selector"] = labels
        if fields:
            query["field_selector"] = fields
        try:
            if ns is None:
                page = await custom.list_cluster_custom_object(GROUP, VERSION, PLURAL, **query)
            else:
                page = await custom.list_namespaced_custom_object(
                    GROUP, VERSION, ns, PLURAL, **query
                )
        except ApiException as exc:
            raise from_api_exception(exc, namespace=ns) from None
        items.extend(page.get("items") or [])
        token = (page.get("metadata") or {}).get("continue")
        if not token:
            return items, str((page.get("metadata") or {}).get("resourceVersion", ""))


async def watch_jobs(
    custom: Any, ns: str | None, labels: str | None, fields: str | None, *, initial: bool
) -> AsyncIterator[WatchEvent]:
    """Changes of the BackgroundJobs, for ever: list, watch from the list's version, and
    list again (reporting what changed meanwhile, deletions too) when that history is gone.
    With ``initial``, the first list's jobs come first as ``ADDED``."""
    seen: dict[tuple[str, str], str] = {}
    first = True
    while True:
        objects, version = await list_objects(custom, ns, labels, fields)
        current = {}
        for obj in objects:
            meta = obj.get("metadata", {})
            key = (meta.get("namespace", ""), meta.get("name", ""))
            current[key] = meta.get("resourceVersion", "")
            if seen.get(key) != current[key] and (initial or not first):
                kind = "ADDED" if key not in seen else "MODIFIED"
                yield WatchEvent(kind, JobInfo.from_object(obj))
        if not first:
            for key in set(seen) - set(current):
                gone = {"metadata": {"namespace": key[0], "name": key[1]}, "spec": {}}
                yield WatchEvent("DELETED", JobInfo.from_object(gone))
        seen, first = current, False
        try:
            while True:
                async for event_type, obj in _watch_stream(custom, ns, version, labels, fields):
                    meta = obj.get("metadata", {})
                    version = meta.get("resourceVersion", version)
                    if event_type == "BOOKMARK":
                        continue
                    key = (meta.get("namespace", ""), meta.get("name", ""))
                    if event_type == "DELETED":
                        seen.pop(key, None)
                    else:
                        seen[key] = version
                    yield WatchEvent(event_type, JobInfo.from_object(obj))
        except _Gone:
            continue


async def _watch_stream(
    custom: Any, ns: str | None, version: str, labels: str | None, fields: str | None
) -> AsyncIterator[tuple[str, Body]]:
    """One watch request's events; raises ``_Gone`` when ``version`` is too old."""
    query: dict[str, Any] = {
        "watch": True,
        "resource_version": version,
        "allow_watch_bookmarks": True,
        "timeout_seconds": WATCH_SECONDS,
        "_preload_content": False,
    }
    if labels:
        query["label_selector"] = labels
    if fields:
        query["field_selector"] = fields
    if ns is None:
        response = await custom.list_cluster_custom_object(GROUP, VERSION, PLURAL, **query)
    else:
        response = await custom.list_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, **query)
    try:
        if response.status == 410:
            raise _Gone()
        if response.status >= 400:
            exc = ApiException(status=response.status, reason=response.reason)
            exc.body = await response.read()
            raise from_api_exception(exc, namespace=ns)
        async for raw_line in _json.lines(response.content.iter_any()):
            event = _json.loads(raw_line)  # any length, any depth
            if event.get("type") == "ERROR":
                status = event.get("object") or {}
                if status.get("code") == 410:
                    raise _Gone()
                raise BackgroundJobsError(f"watch failed: {status.get('message', status)}")
            yield event["type"], event["object"]
    finally:
        response.release()
