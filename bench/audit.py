"""API cost from the API server's audit log (hack/kwok/audit-policy.yaml: Metadata level).

``mark()`` remembers where the log ends; ``since(mark)`` reads what was written after it,
across the rotations the API server kept (lumberjack renames audit.log to audit-<time>.log;
``--audit-log-maxbackup``, hack/cluster.sh's BGJ_AUDIT_LOG_BACKUPS). ``covers(mark)`` says
whether all of it is still there. Only the ``ResponseComplete`` stage is counted (a watch
also logs ``ResponseStarted``).
"""

from __future__ import annotations

import contextlib
import json
import os
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

WRITE_VERBS = {"create", "update", "patch", "delete", "deletecollection"}
READ_VERBS = {"get", "list"}


@dataclass(frozen=True)
class Mark:
    inode: int
    offset: int


class AuditLog:
    def __init__(self, path: Path) -> None:
        self.path = path

    def exists(self) -> bool:
        return self.path.exists()

    def mark(self) -> Mark:
        st = self.path.stat()
        return Mark(st.st_ino, st.st_size)

    def _marked_file(self, mark: Mark) -> Path | None:
        """The file ``mark`` was taken in: the current one or a kept rotation (None: rotated
        away, as the API server keeps only ``audit-log-maxbackup`` old files)."""
        if self.path.stat().st_ino == mark.inode:
            return self.path
        return next((p for p in self.rotations() if p.stat().st_ino == mark.inode), None)

    def covers(self, mark: Mark) -> bool:
        """Whether every request since ``mark`` is still on disk (a long run can outlive the
        kept rotations, and its count would be only the tail)."""
        return self._marked_file(mark) is not None

    def _files_since(self, mark: Mark) -> Iterator[tuple[Path, int]]:
        """The marked file from the mark on, the rotations made after it (their names sort
        by time), then the current file."""
        marked = self._marked_file(mark)
        if marked is not None:
            yield marked, mark.offset
        if marked != self.path:
            for rotated in self.rotations():
                if marked is None or rotated.name > marked.name:
                    yield rotated, 0
            yield self.path, 0

    def rotations(self) -> list[Path]:
        """The kept rotations, oldest first (lumberjack names them by the time of rotation)."""
        return sorted(self.path.parent.glob(self.path.stem + "-*" + self.path.suffix))

    def since(
        self, mark: Mark, user: str | None, namespace: str | None = None
    ) -> Iterator[dict[str, Any]]:
        """Completed requests after ``mark`` by ``user`` (anyone: None), in ``namespace``."""
        needle = f'"username":"{user}"'.encode() if user else b""
        ns_needle = f'"namespace":"{namespace}"'.encode() if namespace else b""
        for path, offset in self._files_since(mark):
            for event in completed(path, offset, needle, ns_needle):
                ref = event.get("objectRef") or {}
                if namespace is None or ref.get("namespace") == namespace:
                    yield event

    def kept(self, needle: bytes = b"") -> Iterator[dict[str, Any]]:
        """Every completed request still on disk whose line holds ``needle``, oldest first."""
        for path in [*self.rotations(), self.path]:
            yield from completed(path, 0, needle)


def completed(path: Path, offset: int, *needles: bytes) -> Iterator[dict[str, Any]]:
    """The completed requests logged in ``path`` from ``offset`` whose lines hold every one
    of ``needles`` (a cheap test before decoding)."""
    with path.open("rb") as f:
        f.seek(offset)
        for line in f:
            if b'"stage":"ResponseComplete"' not in line:
                continue
            if not all(n in line for n in needles):
                continue
            try:
                yield json.loads(line)
            except ValueError:
                continue  # a line being written


def resource_of(event: dict[str, Any]) -> str:
    ref = event.get("objectRef") or {}
    res = ref.get("resource") or event.get("requestURI", "?").split("?")[0]
    if ref.get("subresource"):
        res += "/" + ref["subresource"]
    return str(res)


@dataclass
class Cost:
    """Requests by verb class and by (verb, resource), with the API server's time on them."""

    writes: int
    reads: int
    watches: int
    by_kind: Counter[tuple[str, str]]
    seconds: dict[tuple[str, str], float]

    def top(self, n: int = 8) -> str:
        """'create jobs: 500 (4.1 ms)', ...: count and mean time received → response."""
        return ", ".join(
            f"{verb} {res}: {k} ({self.seconds[(verb, res)] / k * 1000:.1f} ms)"
            for (verb, res), k in self.by_kind.most_common(n)
        )


def stamp(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def cost(events: Iterator[dict[str, Any]]) -> Cost:
    by_kind: Counter[tuple[str, str]] = Counter()
    seconds: dict[tuple[str, str], float] = defaultdict(float)
    writes = reads = watches = 0
    for ev in events:
        verb = ev.get("verb", "")
        key = (verb, resource_of(ev))
        by_kind[key] += 1
        if verb != "watch":
            with contextlib.suppress(KeyError, ValueError):
                took = stamp(ev["stageTimestamp"]) - stamp(ev["requestReceivedTimestamp"])
                seconds[key] += took
        if verb in WRITE_VERBS:
            writes += 1
        elif verb in READ_VERBS:
            reads += 1
        elif verb == "watch":
            watches += 1
    return Cost(writes, reads, watches, by_kind, seconds)


def audit_path(kubeconfig: str) -> Path:
    """logs/audit.log next to the cluster's kubeconfig (hack/cluster.sh's layout)."""
    override = os.environ.get("BENCH_AUDIT_LOG")
    if override:
        return Path(override)
    return Path(kubeconfig).resolve().parent / "logs" / "audit.log"


def component(event: dict[str, Any]) -> str:
    """Who sent a request: the cluster's components share the admin user, so their user agent."""
    user = str((event.get("user") or {}).get("username", "?"))
    if user.startswith("system:serviceaccount:"):
        return user.rsplit(":", 1)[-1]
    agent = str(event.get("userAgent") or "?").split("/")[0]
    return agent if user == "kwok-admin" else user


def shares(events: Iterator[dict[str, Any]]) -> dict[str, int]:
    """Requests per component, most first."""
    count: Counter[str] = Counter(component(e) for e in events)
    return dict(count.most_common())
