"""The one watch behind the cache: list (paged) once, then watch from that resourceVersion,
with bookmarks; list again only when the API server says the version is gone (410)."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any

import aiohttp

from backgroundjobs.dashboard._kube import Gone, Kube, KubeError
from backgroundjobs.dashboard._rows import JobRow, row_from_object
from backgroundjobs.dashboard._store import JobStore

log = logging.getLogger("backgroundjobs.dashboard")

RETRY_SECONDS = (1, 2, 5, 10, 30)


@dataclass
class WatchState:
    """What the pages say about the watch: synced once the first list is in."""

    namespace: str | None
    synced: bool = False
    error: str | None = None
    events: int = 0
    lists: int = 0
    last_event: float | None = None


class Watcher:
    """Keeps ``store`` equal to the BackgroundJobs of ``namespace`` (None: all)."""

    def __init__(self, kube: Kube, store: JobStore, namespace: str | None) -> None:
        self.kube = kube
        self.store = store
        self.state = WatchState(namespace)

    async def run(self) -> None:
        """List and watch until cancelled; API errors are reported in ``state`` and retried."""
        failures = 0
        version: str | None = None
        while True:
            try:
                if version is None:
                    version = await self._list()
                version = await self._watch(version)
                failures = 0
            except Gone:
                version = None
            except (KubeError, aiohttp.ClientError, TimeoutError, OSError, ValueError) as exc:
                self.state.error = str(exc) or type(exc).__name__
                log.warning("watch of BackgroundJobs failed: %s", self.state.error)
                await asyncio.sleep(RETRY_SECONDS[min(failures, len(RETRY_SECONDS) - 1)])
                failures += 1
                if isinstance(exc, KubeError) and exc.status in (403, 404):
                    version = None  # permissions or the CRD may be back: start over

    async def _list(self) -> str:
        rows: list[JobRow] = []
        token: str | None = None
        while True:
            page = await self.kube.list_page(self.state.namespace, token)
            rows.extend(row_from_object(obj) for obj in page.get("items") or [])
            metadata: dict[str, Any] = page.get("metadata") or {}
            token = metadata.get("continue") or None
            if token is None:
                break
        self.store.replace_rows(self.state.namespace, rows, time.time())
        self.state.lists += 1
        self.state.synced = True
        self.state.error = None
        return str(metadata.get("resourceVersion") or "")

    async def _watch(self, version: str) -> str:
        """One watch request; returns the last resourceVersion seen when it ends."""
        async for event_type, obj in self.kube.watch(self.state.namespace, version):
            version = str((obj.get("metadata") or {}).get("resourceVersion") or version)
            if event_type == "BOOKMARK":
                continue
            self.store.apply(event_type, obj, time.time())
            self.state.events += 1
            self.state.last_event = time.time()
            self.state.error = None
        return version
