"""Progress in status: the operator reads the ``progress`` records of running handlers' logs.

Why the log: the runtime already writes each ``progress(done, total, message)`` as a JSON line
(``runtime.logrecord``), and reading a pod's log needs no right in the job's pod. The other
channels each cost more: the termination message is readable only after the container
exits; a pod annotation or a status patch from the pod needs API rights for the job's
ServiceAccount (which the user chooses, and which every job with that account would share:
no least privilege without a ServiceAccount, Role and RoleBinding per job, and a
podTemplate's own serviceAccountName would have to be overridden).

The cost is bounded: every ``progress_interval`` one list of the running pods (from the API
server's watch cache) and at most ``progress_max_reads`` log reads of their last lines
(``tailLines``, ``limitBytes``), oldest-read pods first; the status is patched only when the
progress changed. The operator needs ``get pods/log`` for it.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from backgroundjobs._connection import status_message
from backgroundjobs.api import constants as c
from backgroundjobs.api.constants import JobType
from backgroundjobs.api.models import Progress
from backgroundjobs.api.times import format_time
from backgroundjobs.runtime.logrecord import is_progress, parse_record

Body = dict[str, Any]
Key = tuple[str, str]
log = logging.getLogger("backgroundjobs.progress")

# What one read asks of the kubelet: the last lines, at most this many bytes.
TAIL_LINES = 50
LIMIT_BYTES = 32 * 1024
# Reads in flight at once.
CONCURRENT_READS = 8
# How long one read may take: a kubelet that does not answer (a node cut off) would otherwise
# hold its round, and every other job's progress, for the connection's own timeouts.
READ_TIMEOUT = 10.0
# Failed reads are logged as one warning per this many seconds at most (a missing
# ``get pods/log`` right fails every read of every round).
WARN_EVERY = 300.0


def latest_progress(log_text: str, name: str, namespace: str) -> Progress | None:
    """The last progress record in ``log_text`` of the job ``namespace/name`` (records that
    name another job, or no job, are not its own), as the status's ``Progress``."""
    for line in reversed(log_text.splitlines()):
        record = parse_record(line.strip())
        if record is None or not is_progress(record):
            continue
        if record.get("job") != name or (record.get("namespace") or namespace) != namespace:
            continue
        progress = progress_of(record)
        if progress is not None:
            return progress
    return None


def progress_of(record: dict[str, Any]) -> Progress | None:
    """A progress record as ``Progress``; None when done/total are not finite numbers."""
    done, total = record.get("done"), record.get("total")
    if not (_number(done) and _number(total)):
        return None
    assert isinstance(done, int | float) and isinstance(total, int | float)
    message = record.get("message")
    return Progress.of(done, total, message if isinstance(message, str) else "")


def changed(old: Body | None, new: Progress) -> bool:
    """Whether ``new`` says something ``old`` (the status's progress) does not."""
    if not old:
        return True
    return any(
        old.get(k) != v
        for k, v in new.model_dump(by_alias=True, exclude={"updated_at", "pod"}).items()
    )


def pick(pods: Iterable[str], last_read: dict[str, float], budget: int) -> list[str]:
    """The ``budget`` pods read longest ago (never read: first)."""
    return sorted(pods, key=lambda p: last_read.get(p, -math.inf))[:budget]


def is_running(status: Body | None) -> bool:
    """Whether a run is going on: phase Running, or (a Recurring job, whose phase stays
    Scheduled) its Running condition True."""
    if not status:
        return False
    if status.get("phase") == "Running":
        return True
    return any(
        isinstance(cnd, dict) and cnd.get("type") == "Running" and cnd.get("status") == "True"
        for cnd in status.get("conditions") or []
    )


def _failure(exc: Exception) -> str:
    """What a failed read says: the API server's status and message, else the error."""
    code = getattr(exc, "status", None)
    if isinstance(code, int):
        return f"{code} {status_message(exc)}"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


class ProgressReads(Protocol):
    """The reads of the progress reader (``kube.Kube``)."""

    async def running_pods(self, namespace: str | None, label_selector: str) -> list[Body]: ...
    async def pod_log(
        self, namespace: str, pod: str, container: str, tail_lines: int, limit_bytes: int
    ) -> str: ...


class StatusWrites(Protocol):
    """Its one write (the fenced ``KubeApi``: only while this replica leads)."""

    async def patch_status(
        self, namespace: str, name: str, status_patch: Body, resource_version: str | None = None
    ) -> Body: ...


@dataclass(frozen=True)
class RunningPod:
    """A running pod of a BackgroundJob's Job."""

    key: Key
    pod: str


def running_pods_of(pods: list[Body], is_running: Callable[[Key], bool]) -> list[RunningPod]:
    """The pods (running, not being deleted) of BackgroundJobs that ``is_running``."""
    out = []
    for pod in pods:
        meta = pod.get("metadata") or {}
        name = (meta.get("labels") or {}).get(c.LABEL_NAME)
        if not name or meta.get("deletionTimestamp"):
            continue
        key = (meta.get("namespace", ""), name)
        if is_running(key):
            out.append(RunningPod(key, meta.get("name", "")))
    return out


class ProgressReader:
    """Reads the progress of running handlers into their BackgroundJobs' status, every
    ``interval`` seconds, at most ``max_reads`` logs a round."""

    def __init__(
        self,
        reads: ProgressReads,
        writes: StatusWrites,
        namespaces: tuple[str, ...],
        interval: float,
        max_reads: int,
        status_of: Callable[[Key], Body | None],
        leading: Callable[[], bool],
    ) -> None:
        self.reads = reads
        self.writes = writes
        self.namespaces: list[str | None] = list(namespaces) or [None]
        self.interval = interval
        self.max_reads = max_reads
        self.status_of = status_of
        self.leading = leading
        self._last_read: dict[str, float] = {}
        self.requests = 0  # lists and log reads made (the cost, for tests and the bench)
        self.patches = 0
        self.failed_reads = 0
        self.read_timeout = READ_TIMEOUT
        self._warned_at = -math.inf

    async def run_forever(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            if not self.leading():
                continue
            try:
                await self.round()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the next round tries again
                log.warning("reading progress failed: %s", exc)

    def _running(self, key: Key) -> bool:
        status = self.status_of(key)
        # A batch's progress is its items' counts (decisions/batch.py), not one pod's log.
        return is_running(status) and (status or {}).get("type") != JobType.BATCH

    async def round(self) -> None:
        """One round: list the running pods, read the logs of the longest unread ones,
        patch the statuses whose progress changed."""
        selector = f"{c.LABEL_MANAGED_BY}={c.MANAGED_BY}"
        found: list[RunningPod] = []
        for ns in self.namespaces:
            self.requests += 1
            found += running_pods_of(await self.reads.running_pods(ns, selector), self._running)
        by_pod = {p.pod: p for p in found}
        for gone in set(self._last_read).difference(by_pod):
            del self._last_read[gone]
        chosen = pick(by_pod, self._last_read, self.max_reads)
        limit = asyncio.Semaphore(CONCURRENT_READS)
        failures: list[str] = []

        async def read(pod: RunningPod) -> None:
            async with limit:
                failure = await self._read(pod)
            if failure:
                failures.append(failure)

        await asyncio.gather(*(read(by_pod[p]) for p in chosen))
        if failures:
            self._warn(failures, len(chosen))

    def _warn(self, failures: list[str], reads: int) -> None:
        """One warning now and then: a missing right or an unreachable kubelet fails every
        read, round after round (a pod deleted since the list is no failure)."""
        self.failed_reads += len(failures)
        now = time.monotonic()
        if now - self._warned_at < WARN_EVERY:
            return
        self._warned_at = now
        log.warning(
            "progress: %d of %d pod log reads failed (the first: %s); the next warning"
            " after %.0f s at the earliest",
            len(failures),
            reads,
            failures[0],
            WARN_EVERY,
        )

    async def _read(self, pod: RunningPod) -> str | None:
        """Read one pod's log into its job's status; what failed, if the read did."""
        ns, name = pod.key
        self._last_read[pod.pod] = time.monotonic()
        self.requests += 1
        try:
            text = await asyncio.wait_for(
                self.reads.pod_log(ns, pod.pod, c.HANDLER_CONTAINER, TAIL_LINES, LIMIT_BYTES),
                self.read_timeout,
            )
        except TimeoutError:  # a kubelet not answering: next round
            log.debug("no log of pod %s/%s within %.0f s", ns, pod.pod, self.read_timeout)
            return f"pod {ns}/{pod.pod}: no answer within {self.read_timeout:.0f} s"
        except Exception as exc:  # a right missing, a kubelet refusing: next round
            log.debug("no log of pod %s/%s: %s", ns, pod.pod, exc)
            if getattr(exc, "status", None) == 404:  # the pod just gone: nothing to say
                return None
            return f"pod {ns}/{pod.pod}: {_failure(exc)}"
        progress = latest_progress(text, name, ns)
        if progress is None:
            return None
        status = self.status_of(pod.key)
        if not is_running(status) or not changed((status or {}).get("progress"), progress):
            return None
        progress.pod = pod.pod
        progress.updated_at = format_time(datetime.now(UTC))
        patch = {"progress": progress.model_dump(mode="json", by_alias=True, exclude_none=True)}
        self.patches += 1
        try:
            await self.writes.patch_status(ns, name, patch)
        except Exception as exc:  # gone, or no longer leading: nothing to keep
            log.debug("progress of %s/%s not written: %s", ns, name, exc)
        return None
