"""Kubernetes Events of the BackgroundJobs, posted by a few tasks from one queue.

A queue of small tuples, not a task per Event: a burst of thousands of jobs would otherwise
hold thousands of pending tasks with their objects (bench M6). An Event is best effort: one
that cannot be posted is logged at debug level and dropped, never a reason to fail.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from backgroundjobs.controller.kube import KubeApi

Body = dict[str, Any]
log = logging.getLogger("backgroundjobs.operator")
POSTERS = 16


class EventPoster:
    """Posts Events about BackgroundJobs in the background."""

    def __init__(self, kube: KubeApi) -> None:
        self.kube = kube
        # (the involved object's name, namespace, uid and resourceVersion, type, reason, text)
        self._events: asyncio.Queue[tuple[Body, str, str, str]] = asyncio.Queue()
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        for i in range(POSTERS):
            self._tasks.append(asyncio.create_task(self._post_events(), name=f"events-{i}"))

    def post(self, body: Body, etype: str, reason: str, message: str) -> None:
        """Post an Event about the BackgroundJob ``body`` (soon, in the background)."""
        meta = body["metadata"]
        involved = {
            "metadata": {k: meta.get(k) for k in ("name", "namespace", "uid", "resourceVersion")}
        }
        self._events.put_nowait((involved, etype, reason, message))

    async def post_now(self, body: Body, etype: str, reason: str, message: str) -> None:
        """Post an Event now (best effort): for a Warning that must not be lost to a crash
        right after the status that caused it is written (the status does not repeat it)."""
        try:
            await self.kube.post_event(body, etype, reason, message)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.debug("event %s on %s not posted: %s", reason, body["metadata"]["name"], exc)

    def drop(self) -> None:
        """Forget the Events waiting and abandon those being posted (leadership was lost)."""
        while not self._events.empty():
            self._events.get_nowait()
            self._events.task_done()
        if self._tasks:
            for task in self._tasks:
                task.cancel()
            self._tasks = []
            self.start()

    def idle(self) -> bool:
        return self._events.empty()

    async def stop(self, drain: float = 5) -> None:
        """Post what waits (for at most ``drain`` seconds), then stop."""
        if not self._events.empty():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._events.join(), timeout=drain)
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def _post_events(self) -> None:
        while True:
            involved, etype, reason, message = await self._events.get()
            try:
                await self.kube.post_event(involved, etype, reason, message)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # an Event is best effort, never a reason to fail
                log.debug(
                    "event %s on %s not posted: %s", reason, involved["metadata"]["name"], exc
                )
            finally:
                self._events.task_done()
