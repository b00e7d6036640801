"""The dashboard's cache: one row per job, fed by the watch, queried by the pages.

Every page reads from here, so a page view costs the API server nothing; counts are kept
up to date per change (no request lists everything, no page scans the cache for counts).
"""

from __future__ import annotations

import heapq
import re
from collections import Counter, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from backgroundjobs.api.constants import PHASES, JobType
from backgroundjobs.dashboard._rows import JobRow, Key, row_from_object
from backgroundjobs.dashboard._series import MinuteSeries, Point

MAX_PAGE = 200
CHANGELOG = 4096  # changes remembered for the pages' live updates
SORTS = ("created", "-created", "due", "-due", "finished", "-finished", "name", "-name")

_SELECTOR_TERM = re.compile(
    r"^\s*(!?)\s*([A-Za-z0-9_./-]+)\s*(?:(==|=|!=)\s*([A-Za-z0-9_.-]*))?\s*$"
)


class SelectorError(ValueError):
    """A label selector the dashboard cannot read."""


@dataclass(frozen=True)
class LabelTerm:
    """One term of an equality-based label selector: ``k=v``, ``k!=v``, ``k`` or ``!k``."""

    key: str
    op: str  # "=", "!=", "exists", "!exists"
    value: str = ""

    def matches(self, labels: dict[str, str]) -> bool:
        if self.op == "exists":
            return self.key in labels
        if self.op == "!exists":
            return self.key not in labels
        if self.op == "=":
            return labels.get(self.key) == self.value
        return labels.get(self.key) != self.value


def parse_selector(text: str) -> list[LabelTerm]:
    """Parse ``app=shop,tier!=web,batch,!canary`` (kubectl's equality-based selectors)."""
    terms = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        match = _SELECTOR_TERM.match(part)
        if not match:
            raise SelectorError(
                f"label selector term {part!r} is not key=value, key!=value, key or !key"
            )
        negated, key, op, value = match.groups()
        if op is None:
            terms.append(LabelTerm(key, "!exists" if negated else "exists"))
        elif negated:
            raise SelectorError(f"label selector term {part!r}: '!' goes only before a bare key")
        else:
            terms.append(LabelTerm(key, "!=" if op == "!=" else "=", value or ""))
    return terms


@dataclass(frozen=True)
class Query:
    """The filters, sort and page of a jobs list."""

    namespace: str | None = None
    phase: str | None = None
    type: str | None = None
    handler: str | None = None
    queue: str | None = None
    labels: str = ""
    text: str = ""
    sort: str = "-created"
    offset: int = 0
    limit: int = 50


@dataclass(frozen=True)
class Page:
    """A page of a jobs list: ``total`` rows matched, ``items`` from ``offset`` on."""

    total: int
    offset: int
    items: list[dict[str, Any]]
    version: int


def _sort_key(sort: str) -> Callable[[JobRow], Any]:
    field = sort.lstrip("-")
    if field == "name":
        return lambda r: (r.namespace, r.name)
    attr = {"created": "created", "due": "due", "finished": "finished"}[field]
    # Rows without the time go last in either direction.
    if sort.startswith("-"):
        return lambda r: (getattr(r, attr) is None, -(getattr(r, attr) or 0.0), r.name)
    return lambda r: (getattr(r, attr) is None, getattr(r, attr) or 0.0, r.name)


def _admission_order(row: JobRow) -> tuple[float, str]:
    """A queue admits its waiting jobs by (creationTimestamp, name): FIFO."""
    return (row.created or 0.0, row.name)


class JobStore:
    """Rows of the jobs in the dashboard's scope, with counts kept per change."""

    def __init__(self) -> None:
        self.rows: dict[Key, JobRow] = {}
        self._series: dict[str, MinuteSeries] = {}  # namespace -> runs finished per minute
        self.version = 0
        self._phases: Counter[tuple[str, str]] = Counter()  # (namespace, phase)
        self._queues: Counter[tuple[str, str, str]] = Counter()  # (namespace, queue, phase)
        self._types: Counter[tuple[str, str]] = Counter()  # (namespace, type)
        self._handlers: Counter[tuple[str, str]] = Counter()  # (namespace, handler)
        self._children: dict[Key, set[str]] = {}  # (namespace, parent) -> children
        self._counted: dict[str, float] = {}  # uid -> finishedAt already counted
        self._changelog: deque[tuple[int, Key]] = deque(maxlen=CHANGELOG)
        self._listeners: list[Callable[[], None]] = []

    # ------------------------------------------------------------ feeding

    def listen(self, callback: Callable[[], None]) -> None:
        """Call ``callback()`` after every batch of changes."""
        self._listeners.append(callback)

    def make_row(self, obj: dict[str, Any]) -> JobRow:
        """The row the cache keeps of a BackgroundJob object."""
        return row_from_object(obj)

    def apply(self, event_type: str, obj: dict[str, Any], now: float) -> None:
        """One watch event: ``ADDED``, ``MODIFIED`` or ``DELETED``."""
        metadata = obj.get("metadata") or {}
        key = (str(metadata.get("namespace") or ""), str(metadata.get("name") or ""))
        if event_type == "DELETED":
            self._remove(key)
        else:
            self._put(row_from_object(obj), now)
        self._notify()

    def replace(self, namespace: str | None, objects: Iterable[dict[str, Any]], now: float) -> None:
        """A full list of ``namespace`` (None: every namespace): rows not in it are removed,
        the others added or updated, as if their events had been seen."""
        self.replace_rows(namespace, (row_from_object(obj) for obj in objects), now)

    def replace_rows(self, namespace: str | None, rows: Iterable[JobRow], now: float) -> None:
        """``replace`` with the rows already made (the watch makes them page by page, so
        that a list of 10,000 objects is never held whole)."""
        seen: set[Key] = set()
        for row in rows:
            seen.add(row.key)
            old = self.rows.get(row.key)
            if old is None or old.resource_version != row.resource_version:
                self._put(row, now)
        gone = [k for k in self.rows if (namespace is None or k[0] == namespace) and k not in seen]
        for key in gone:
            self._remove(key)
        self._notify()

    def _put(self, row: JobRow, now: float) -> None:
        old = self.rows.get(row.key)
        if old is not None:
            self._unindex(old)
            if old.uid != row.uid:
                self._counted.pop(old.uid, None)
        self.rows[row.key] = row
        self._index(row)
        outcome = row.finish_outcome
        if (
            outcome is not None
            and row.finished is not None
            and self._counted.get(row.uid) != row.finished
        ):
            self._counted[row.uid] = row.finished
            series = self._series.setdefault(row.namespace, MinuteSeries())
            series.add(row.finished, outcome, now)
        self._changed(row.key)

    def _remove(self, key: Key) -> None:
        old = self.rows.pop(key, None)
        if old is None:
            return
        self._unindex(old)
        self._counted.pop(old.uid, None)
        self._changed(key)

    def _index(self, row: JobRow, sign: int = 1) -> None:
        ns = row.namespace
        self._phases[(ns, row.phase)] += sign
        self._queues[(ns, row.queue, row.phase)] += sign
        self._types[(ns, row.type)] += sign
        self._handlers[(ns, row.handler)] += sign
        if row.parent:
            children = self._children.setdefault((ns, row.parent), set())
            if sign > 0:
                children.add(row.name)
            else:
                children.discard(row.name)
                if not children:
                    del self._children[(ns, row.parent)]

    def _unindex(self, row: JobRow) -> None:
        self._index(row, -1)
        for counter in (self._phases, self._queues, self._types, self._handlers):
            for key in [k for k, v in counter.items() if v <= 0]:
                del counter[key]

    def _changed(self, key: Key) -> None:
        self.version += 1
        self._changelog.append((self.version, key))

    def _notify(self) -> None:
        for callback in self._listeners:
            callback()

    # ------------------------------------------------------------ reading

    def changes_since(self, version: int) -> list[Key] | None:
        """The jobs changed after ``version`` (None: more than the changelog remembers)."""
        if version >= self.version:
            return []
        if not self._changelog or self._changelog[0][0] > version + 1:
            return None
        return list(dict.fromkeys(k for v, k in self._changelog if v > version))

    def series(self, namespace: str | None, now: float, minutes: int) -> list[Point]:
        """Runs finished per minute over the last ``minutes`` (of one namespace or all)."""
        chosen = [s for ns, s in self._series.items() if namespace is None or ns == namespace]
        if not chosen:
            return MinuteSeries().points(now, minutes)
        summed = [s.points(now, minutes) for s in chosen]
        return [
            Point(points[0].minute, sum(p.succeeded for p in points), sum(p.failed for p in points))
            for points in zip(*summed, strict=True)
        ]

    def namespaces(self) -> list[str]:
        """The namespaces that have jobs."""
        return sorted({ns for ns, _ in self._phases})

    def counts(self, namespace: str | None = None) -> dict[str, Any]:
        """Jobs by phase, by queue and phase, by type and by handler, and the total."""

        def keep(ns: str) -> bool:
            return namespace is None or ns == namespace

        phases: Counter[str] = Counter()
        for (ns, phase), n in self._phases.items():
            if keep(ns):
                phases[phase] += n
        queues: dict[str, Counter[str]] = {}
        for (ns, queue, phase), n in self._queues.items():
            if keep(ns):
                queues.setdefault(queue, Counter())[phase] += n
        types: Counter[str] = Counter()
        for (ns, kind), n in self._types.items():
            if keep(ns):
                types[kind] += n
        handlers: Counter[str] = Counter()
        for (ns, handler), n in self._handlers.items():
            if keep(ns):
                handlers[handler] += n
        return {
            "total": sum(phases.values()),
            "phases": {p: phases.get(p, 0) for p in PHASES},
            "queues": {q: dict(c) for q, c in sorted(queues.items())},
            "types": dict(sorted(types.items())),
            "handlers": dict(sorted(handlers.items())),
        }

    def query(self, q: Query) -> Page:
        """The rows matching ``q``, sorted, one page of them."""
        terms = parse_selector(q.labels) if q.labels else []
        needle = q.text.strip().lower()
        if q.sort not in SORTS:
            raise ValueError(f"sort must be one of {', '.join(SORTS)}")
        matched = [
            r
            for r in self.rows.values()
            if (q.namespace is None or r.namespace == q.namespace)
            and (q.phase is None or r.phase == q.phase)
            and (q.type is None or r.type == q.type)
            and (q.handler is None or r.handler == q.handler)
            and (q.queue is None or r.queue == q.queue)
            and all(t.matches(r.labels) for t in terms)
            and (not needle or r.matches_text(needle))
        ]
        limit = max(1, min(q.limit, MAX_PAGE))
        offset = max(0, q.offset)
        key = _sort_key(q.sort)
        if (offset + limit) * 8 < len(matched):
            # The first pages (the usual ones) without sorting every match.
            shown = heapq.nsmallest(offset + limit, matched, key=key)[offset:]
        else:
            shown = sorted(matched, key=key)[offset : offset + limit]
        positions = self.queue_positions([r for r in shown if r.phase == "Queued"])
        return Page(
            total=len(matched),
            offset=offset,
            items=[r.to_json(positions.get(r.key)) for r in shown],
            version=self.version,
        )

    def queue_positions(self, rows: list[JobRow]) -> dict[Key, int]:
        """Each Queued row's place (1 = next) among the Queued jobs of its queue: a queue is
        (namespace, name), and admits in (creation time, name) order (API.md "queues")."""
        if not rows:
            return {}
        queues = {(r.namespace, r.queue) for r in rows}
        waiting: dict[tuple[str, str], list[JobRow]] = {q: [] for q in queues}
        for r in self.rows.values():
            if r.phase == "Queued" and (r.namespace, r.queue) in queues:
                waiting[(r.namespace, r.queue)].append(r)
        out: dict[Key, int] = {}
        for members in waiting.values():
            members.sort(key=_admission_order)
            out.update({r.key: i + 1 for i, r in enumerate(members)})
        return {r.key: out[r.key] for r in rows if r.key in out}

    def queued(self, namespace: str, queue: str) -> list[JobRow]:
        """The Queued jobs of the queue ``namespace/queue``, in the order it admits them."""
        return sorted(
            (
                r
                for r in self.rows.values()
                if r.phase == "Queued" and r.namespace == namespace and r.queue == queue
            ),
            key=_admission_order,
        )

    def queue_phases(self, namespace: str | None = None) -> dict[Key, dict[str, int]]:
        """Jobs by phase of each queue (namespace, queue) that has jobs."""
        out: dict[Key, dict[str, int]] = {}
        for (ns, queue, phase), n in self._queues.items():
            if namespace is None or ns == namespace:
                phases = out.setdefault((ns, queue), {})
                phases[phase] = phases.get(phase, 0) + n
        return out

    def batches(self, namespace: str | None = None) -> list[JobRow]:
        """The Batch jobs, newest first."""
        return sorted(
            (
                r
                for r in self.rows.values()
                if r.type == JobType.BATCH and (namespace is None or r.namespace == namespace)
            ),
            key=lambda r: (-(r.created or 0.0), r.namespace, r.name),
        )

    def children(self, namespace: str, name: str) -> list[JobRow]:
        """The continuations waiting for (or started after) the job, oldest first."""
        names = self._children.get((namespace, name), set())
        found = [self.rows[(namespace, n)] for n in names if (namespace, n) in self.rows]
        return sorted(found, key=lambda r: (r.created or 0.0, r.name))

    def ancestors(self, namespace: str, name: str, limit: int = 20) -> list[dict[str, Any]]:
        """The chain of parents above the job, nearest first (a parent not in the cache
        ends it, marked ``missing``; a loop is cut)."""
        chain: list[dict[str, Any]] = []
        seen = {name}
        row = self.rows.get((namespace, name))
        while row is not None and row.parent and len(chain) < limit:
            parent = self.rows.get((namespace, row.parent))
            if parent is None:
                chain.append({"name": row.parent, "missing": True, "when": row.parent_when})
                break
            chain.append({**parent.to_json(), "when": row.parent_when})
            if parent.name in seen:
                break
            seen.add(parent.name)
            row = parent
        return chain

    def recurring(self, namespace: str | None = None) -> list[JobRow]:
        """The Recurring jobs, by name."""
        return sorted(
            (
                r
                for r in self.rows.values()
                if r.type == JobType.RECURRING and (namespace is None or r.namespace == namespace)
            ),
            key=lambda r: (r.namespace, r.name),
        )
