"""The control loop's own list and watch of BackgroundJobs, in place of kopf's.

kopf hands each object's events to a worker task of that object and, per event, builds its
body views, recalls the object's memory and runs its handler machinery: about a millisecond
of CPU per object before the operator's handler sees it, and a memory record kept per object
for as long as the object exists. After months of use the BackgroundJobs are counted by the
hundred thousand, nearly all finished (issue 13: a start on 100,000 stored jobs must create a
newly due Job within 2 minutes and fit in the chart's 512 MiB). So this kind is read here:
a paged list, then a watch from the list's resourceVersion (with bookmarks), again each time
it ends, and a new list when the API server no longer has that version (410); after such a
list ``on_relisted`` is called (the loop's resync then finds what was deleted meanwhile, as it
does for the other kinds). Every object and event is passed on as kopf passed
it (``{"type": None | "ADDED" | "MODIFIED" | "DELETED", "object": ...}``). Watch lines are
decoded by ``_json.loads`` (any depth) and read whatever their length.

Jobs, CronJobs and queues stay with kopf: a handful per running job, gone when finished.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
from kubernetes_asyncio import client

from backgroundjobs import _json
from backgroundjobs.api import constants as c
from backgroundjobs.controller.kube import LIST_PAGE, response_json

Body = dict[str, Any]
log = logging.getLogger("backgroundjobs.operator")

WATCH_SECONDS = 290  # the API server ends each watch after this; it is then started again
# Seconds to wait after a failed list or watch: doubled up to the last, with jitter.
BACKOFF = (1.0, 2.0, 4.0, 8.0, 15.0)
RELIST_AFTER = 3  # failures in a row


class Gone(Exception):
    """The resourceVersion to watch from is no longer in the API server's history: list."""


class WatchFailed(Exception):
    """The API server refused or ended a watch with an error other than 410."""

    def __init__(self, status: int, message: str, retry_after: float = 0.0) -> None:
        super().__init__(f"{status} {message}")
        self.status = status
        self.retry_after = retry_after


def path_of(namespace: str | None) -> str:
    base = f"/apis/{c.GROUP}/{c.VERSION}"
    return f"{base}/namespaces/{namespace}/{c.PLURAL}" if namespace else f"{base}/{c.PLURAL}"


class Reflector:
    """Lists and watches the BackgroundJobs of one namespace (None: all) for ``on_event``."""

    def __init__(
        self,
        api: client.ApiClient,
        namespace: str | None,
        on_event: Callable[[Body], None],
        on_relisted: Callable[[], None],
        on_first_list: Callable[[], None] | None = None,
    ) -> None:
        self.api = api
        self.namespace = namespace
        self.on_event = on_event
        self.on_relisted = on_relisted
        self.on_first_list = on_first_list
        self.lists = 0
        # the waits between failures (a test's own clock)
        self.sleep: Callable[[float], Awaitable[None]] = asyncio.sleep

    async def run(self) -> None:
        """List and watch until cancelled; a failure is logged and tried again later, with
        a growing wait; a list again after ``RELIST_AFTER`` failures in a row, except while
        the API server says it is busy (429, e.g. its watch cache initialising: a list
        then would only add to its load, and the version watched from is still good)."""
        failures = 0
        version = ""
        while True:
            try:
                if not version:
                    version = await self.list()
                version = await self.watch(version)
                failures = 0  # a watch the API server ended in time: all well
            except asyncio.CancelledError:
                raise
            except Gone:
                version = ""  # list again at once: the history moved on
            except Exception as exc:
                wait = BACKOFF[min(failures, len(BACKOFF) - 1)] * random.uniform(0.8, 1.2)
                busy = isinstance(exc, WatchFailed) and exc.status == 429
                if isinstance(exc, WatchFailed) and busy:
                    wait = max(wait, min(exc.retry_after, BACKOFF[-1]))
                failures += 1
                log.warning(
                    "watch of BackgroundJobs in %s: %s; again in %.0fs",
                    self.namespace or "all namespaces",
                    " ".join(str(exc).split())[:300] or type(exc).__name__,
                    wait,
                )
                await self.sleep(wait)
                if failures % RELIST_AFTER == 0 and not busy:
                    version = ""  # a watch that keeps failing: from a fresh list

    async def _get(self, query: list[tuple[str, Any]], **options: Any) -> Any:
        """A GET of this scope's BackgroundJobs (list or watch); the raw response."""
        return await self.api.call_api(
            path_of(self.namespace),
            "GET",
            query_params=query,
            header_params={"Accept": "application/json"},
            auth_settings=["BearerToken"],
            _preload_content=False,
            **options,
        )

    async def list(self) -> str:
        """Pass on every object, in pages; the list's resourceVersion (to watch from)."""
        token = ""
        version = ""
        while True:
            query: list[tuple[str, Any]] = [("limit", LIST_PAGE)]
            if token:
                query.append(("continue", token))
            page = await response_json(await self._get(query))
            for obj in page.get("items") or []:
                self.on_event({"type": None, "object": obj})
            meta = page.get("metadata") or {}
            version = version or str(meta.get("resourceVersion") or "")
            token = meta.get("continue") or ""
            await asyncio.sleep(0)  # a page is hundreds of objects: let the rest run
            if not token:
                break
        self.lists += 1
        if self.lists > 1:
            self.on_relisted()
        elif self.on_first_list is not None:
            self.on_first_list()  # every object listed has been passed on
        return version

    async def watch(self, version: str) -> str:
        """One watch request from ``version``, its events passed on; the version to go on
        from when the API server ends it."""
        query: list[tuple[str, Any]] = [
            ("watch", "true"),
            ("resourceVersion", version),
            ("allowWatchBookmarks", "true"),
            ("timeoutSeconds", WATCH_SECONDS),
        ]
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=30, sock_read=WATCH_SECONDS + 30)
        resp = await self._get(query, _request_timeout=timeout)
        try:
            if resp.status == 410:
                raise Gone()
            if resp.status >= 400:
                retry_after = resp.headers.get("Retry-After") or ""
                raise WatchFailed(
                    resp.status,
                    (await resp.text())[:300],
                    float(retry_after) if retry_after.isdigit() else 0.0,
                )
            async for line in _json.lines(resp.content.iter_any()):
                event = _json.loads(line)
                kind = event.get("type")
                obj = event.get("object") or {}
                if kind == "ERROR":
                    if obj.get("code") == 410:
                        raise Gone()
                    raise WatchFailed(int(obj.get("code") or 500), str(obj.get("message") or obj))
                version = str((obj.get("metadata") or {}).get("resourceVersion") or version)
                if kind != "BOOKMARK":
                    self.on_event({"type": kind, "object": obj})
        finally:
            resp.release()
        return version
