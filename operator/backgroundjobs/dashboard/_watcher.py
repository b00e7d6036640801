"""The watches behind the caches (BackgroundJobs, and BackgroundJobQueues): list (paged)
once, then watch from that resourceVersion, with bookmarks; list again only when the API
server says the version is gone (410)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol

import aiohttp

from backgroundjobs.api.constants import KIND, PLURAL
from backgroundjobs.dashboard._kube import Gone, Kube, KubeError

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
    missing: bool = False  # the API server has no such resource (its CRD is not installed)


class Cache(Protocol):
    """What a watch feeds: rows made from objects, a full list, one event."""

    def make_row(self, obj: dict[str, Any]) -> Any: ...

    def replace_rows(self, namespace: str | None, rows: Iterable[Any], now: float) -> None: ...

    def apply(self, event_type: str, obj: dict[str, Any], now: float) -> None: ...


class Watcher:
    """Keeps ``store`` equal to the objects (``plural``, BackgroundJobs by default) of
    ``namespace`` (None: all)."""

    def __init__(
        self,
        kube: Kube,
        store: Cache,
        namespace: str | None,
        plural: str = PLURAL,
        kind: str = KIND,
    ) -> None:
        self.kube = kube
        self.store = store
        self.plural = plural
        self.kind = kind
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
                error = str(exc) or type(exc).__name__
                missing = isinstance(exc, KubeError) and exc.status == 404
                if missing:
                    # No such resource: its CRD is not installed (or was removed), so there
                    # are none of its objects; checked again now and then.
                    error = f"the API server has no {self.kind} resource (CRD not installed)"
                    self.store.replace_rows(self.state.namespace, [], time.time())
                if error != self.state.error:  # once per distinct error, not per retry
                    log.warning("watch of %ss failed: %s", self.kind, error)
                self.state.error = error
                self.state.missing = missing
                await asyncio.sleep(RETRY_SECONDS[min(failures, len(RETRY_SECONDS) - 1)])
                failures += 1
                if isinstance(exc, KubeError) and exc.status in (403, 404):
                    version = None  # permissions or the CRD may be back: start over

    async def _list(self) -> str:
        rows: list[Any] = []
        token: str | None = None
        while True:
            page = await self.kube.list_page(self.state.namespace, token, self.plural)
            rows.extend(self.store.make_row(obj) for obj in page.get("items") or [])
            metadata: dict[str, Any] = page.get("metadata") or {}
            token = metadata.get("continue") or None
            if token is None:
                break
        self.store.replace_rows(self.state.namespace, rows, time.time())
        self.state.lists += 1
        self.state.synced = True
        self.state.error = None
        self.state.missing = False
        return str(metadata.get("resourceVersion") or "")

    async def _watch(self, version: str) -> str:
        """One watch request; returns the last resourceVersion seen when it ends."""
        async for event_type, obj in self.kube.watch(self.state.namespace, version, self.plural):
            version = str((obj.get("metadata") or {}).get("resourceVersion") or version)
            if event_type == "BOOKMARK":
                continue
            self.store.apply(event_type, obj, time.time())
            self.state.events += 1
            self.state.last_event = time.time()
            self.state.error = None
        return version
