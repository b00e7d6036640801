"""The dashboard's cache of ``BackgroundJobQueue`` objects, fed by a watch of its own.

A queue is ``(namespace, name)``. The queues page joins these objects with the queue names
the jobs use: a name with no object runs on the operator's defaults, and is shown as such.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from backgroundjobs.dashboard._rows import Key, epoch, iso


@dataclass(slots=True)
class QueueRow:
    """One BackgroundJobQueue as the queues page shows it."""

    namespace: str
    name: str
    max_concurrency: int | None
    priority: int
    priority_class_name: str | None
    rate_per_second: float | None
    rate_burst: int | None
    paused: bool
    pending: int
    running: int
    oldest_pending_since: float | None
    resource_version: str = ""

    @property
    def key(self) -> Key:
        return (self.namespace, self.name)

    def to_json(self) -> dict[str, Any]:
        """The queue's object fields as the page gets them."""
        return {
            "maxConcurrency": self.max_concurrency,
            "priority": self.priority,
            "priorityClassName": self.priority_class_name,
            "rateLimit": {"perSecond": self.rate_per_second, "burst": self.rate_burst}
            if self.rate_per_second is not None
            else None,
            "paused": self.paused,
            "pending": self.pending,
            "running": self.running,
            "oldestPendingSince": iso(self.oldest_pending_since),
        }


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def queue_row_from_object(obj: dict[str, Any]) -> QueueRow:
    """The row of a BackgroundJobQueue object (a dict as the API server sends it)."""
    metadata = obj.get("metadata") or {}
    spec = obj.get("spec") or {}
    status = obj.get("status") or {}
    rate_limit = spec.get("rateLimit")
    rate: dict[str, Any] = rate_limit if isinstance(rate_limit, dict) else {}
    per_second = rate.get("perSecond")
    class_name = spec.get("priorityClassName")
    return QueueRow(
        namespace=str(metadata.get("namespace") or ""),
        name=str(metadata.get("name") or ""),
        max_concurrency=_int(spec.get("maxConcurrency")),
        priority=_int(spec.get("priority")) or 0,
        priority_class_name=str(class_name) if class_name else None,
        rate_per_second=float(per_second)
        if isinstance(per_second, int | float) and not isinstance(per_second, bool)
        else None,
        rate_burst=_int(rate.get("burst")),
        paused=spec.get("paused") is True,
        pending=_int(status.get("pending")) or 0,
        running=_int(status.get("running")) or 0,
        oldest_pending_since=epoch(status.get("oldestPendingSince")),
        resource_version=str(metadata.get("resourceVersion") or ""),
    )


class QueueStore:
    """The BackgroundJobQueues in the dashboard's scope (a handful: no index needed)."""

    def __init__(self) -> None:
        self.rows: dict[Key, QueueRow] = {}
        self.version = 0
        self._listeners: list[Callable[[], None]] = []

    def listen(self, callback: Callable[[], None]) -> None:
        """Call ``callback()`` after every batch of changes."""
        self._listeners.append(callback)

    def make_row(self, obj: dict[str, Any]) -> QueueRow:
        return queue_row_from_object(obj)

    def apply(self, event_type: str, obj: dict[str, Any], now: float) -> None:
        """One watch event: ``ADDED``, ``MODIFIED`` or ``DELETED``."""
        row = queue_row_from_object(obj)
        if event_type == "DELETED":
            self.rows.pop(row.key, None)
        else:
            self.rows[row.key] = row
        self._changed()

    def replace_rows(self, namespace: str | None, rows: Iterable[QueueRow], now: float) -> None:
        """A full list of ``namespace`` (None: every namespace)."""
        fresh = {row.key: row for row in rows}
        kept = {k: v for k, v in self.rows.items() if namespace is not None and k[0] != namespace}
        new = {**kept, **fresh}
        if new != self.rows:
            self.rows = new
            self._changed()

    def _changed(self) -> None:
        self.version += 1
        for callback in self._listeners:
            callback()

    def get(self, namespace: str, name: str) -> QueueRow | None:
        return self.rows.get((namespace, name))
