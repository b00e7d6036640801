"""The operator's own control loop, fed by kopf's watch events.

kopf supplies the watches (list+watch of BackgroundJobs, Jobs and CronJobs, reconnects),
the process's life (startup, cleanup, signals) and the health endpoint; it calls
``on_bgj_event``/``on_job_event``/``on_cronjob_event`` with each raw event. The rest is here:
the cache, a keyed work queue with due-time timers, workers running the ``Reconciler``, a
status stage, Events, backoff on failure, and leadership (only the leader reconciles).

Why not kopf's per-change handlers: they keep progress and diff-base annotations on every
object (extra writes per job) and run one task per object; a level-triggered loop over a
cache derives everything from the object and its observed Jobs, and creates a burst's Jobs
before writing their statuses.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import aiohttp
from kubernetes_asyncio.client import ApiClient
from kubernetes_asyncio.client.exceptions import ApiException

from backgroundjobs.api import constants as c
from backgroundjobs.api.constants import JobType
from backgroundjobs.controller import memory, metrics
from backgroundjobs.controller.cache import DELETED, Cache, routine
from backgroundjobs.controller.decisions import MetricName
from backgroundjobs.controller.events import EventPoster
from backgroundjobs.controller.fence import FencedKube, NotLeading
from backgroundjobs.controller.heldruns import owners
from backgroundjobs.controller.kube import KubeApi
from backgroundjobs.controller.progress import ProgressReader, ProgressReads
from backgroundjobs.controller.reconciler import Finish, Reconciler, wake
from backgroundjobs.controller.reflector import Reflector
from backgroundjobs.controller.settings import Settings
from backgroundjobs.controller.workqueue import WorkQueue

Body = dict[str, Any]
Key = tuple[str, str]
log = logging.getLogger("backgroundjobs.operator")


# Relists in a row that find the same objects missing before the queue gate opens anyway.
STALLED_RELISTS = 3
# The warm-up's relists wait at least this many times as long as the last one took.
RELIST_COST = 5


class ControlLoop:
    """Owns the cache, the work queue, the workers and the status stage; leads or stands by."""

    def __init__(
        self,
        settings: Settings,
        kube: KubeApi,
        *,
        leading: bool = True,
        progress_reads: ProgressReads | None = None,
    ) -> None:
        self.settings = settings
        self.kube = FencedKube(kube, self._may_write)
        # Set by leader.elect: whether the Lease was renewed within its renew deadline.
        self.holds_lease: Callable[[], bool] | None = None
        self.cache = Cache(settings)
        self.cache.slots.on_grant = metrics.observe_queue_wait
        self._queue_statuses: dict[tuple[str, str], Body] = {}
        self._queue_task: asyncio.Task[None] | None = None
        self._watches: list[asyncio.Task[None]] = []
        # Scopes whose own BackgroundJob watch has not finished its first list yet.
        self._first_lists: set[str | None] = set()
        self._warm_up_task: asyncio.Task[None] | None = None
        # While the queue gate warms up: every object a watch delivered, cached or not.
        self._warm_seen: set[tuple[str, Key]] | None = None
        self.work = WorkQueue()
        self.events = EventPoster(self.kube)
        self.reconciler = Reconciler(settings, self.kube, self.cache, self.work, self.events)
        # Only a leader reconciles; a standby keeps its cache warm (leader.elect).
        self.leading = leading
        metrics.set_leading(leading)
        self.reconciles = 0
        self._tasks: list[asyncio.Task[None]] = []
        self._memory: asyncio.Task[None] | None = None
        self._resync: asyncio.Task[None] | None = None
        # Set when a request succeeds after the API server could not be reached: the watches
        # may have missed deletions meanwhile, so the resync runs now, not at its period.
        self._resync_soon = asyncio.Event()
        self._unreachable = False
        # Health: the newest version each watch delivered, the versions a relist showed that
        # it has yet to deliver, and the loop time of the last step finished.
        self._watch_versions: dict[str, int] = {}
        self._awaited_versions: dict[str, int] = {}
        self.stuck_watches: list[str] = []
        self._progress_at = time.monotonic()
        self._failures: dict[Key, int] = {}
        self._ignored_namespaces: set[str] = set()
        # Status writes that follow a Job's creation, done after it (Reconciler._apply), each
        # with the loop time it was queued at (settings.status_hold); their key stays
        # "processing" in the work queue until its status is written.
        self._statuses: asyncio.Queue[tuple[Key, Finish, float]] = asyncio.Queue()
        # status.progress from the running handlers' logs (controller.progress)
        self.progress: ProgressReader | None = None
        if progress_reads is not None and settings.progress_interval > 0:
            self.progress = ProgressReader(
                progress_reads,
                self.kube,
                settings.namespaces,
                settings.progress_interval,
                settings.progress_max_reads,
                self._status_of,
                self._may_write,
            )
        self._progress_task: asyncio.Task[None] | None = None
        metrics.register_phase_source(self.cache.phases)
        metrics.register_batch_items(self.cache.batch_items)
        metrics.register_overdue(lambda: self.cache.recurring_overdue(datetime.now(UTC)))
        metrics.register_pending(
            lambda: {"reconcile": len(self.work), "status": self._statuses.qsize()}
        )
        metrics.register_queue_pending(self._queue_pending)

    # ---------------------------------------------------------------- life

    async def start(self) -> None:
        self._start_workers()
        self.events.start()
        if self.settings.resync_period > 0:
            self._resync = asyncio.create_task(self._resync_forever(), name="resync")
        self._memory = asyncio.create_task(
            memory.release_when_idle(lambda: self.reconciles, self._idle), name="memory"
        )
        if self.progress is not None:
            self._progress_task = asyncio.create_task(self.progress.run_forever(), name="progress")
        # Nothing is admitted before what runs and waits is known (warm_up): the order and
        # the counts after a start come from the objects, not from the order events arrive.
        self.cache.slots.ready = False
        # Finished jobs (thousands, after a start) wait too: the event loop is the watches'.
        self.work.hold_routine(True)
        self._warm_up_task = asyncio.create_task(self.warm_up(), name="queue-warm-up")
        self._queue_task = asyncio.create_task(self._queues_forever(), name="queues")

    def watch_backgroundjobs(self, api: ApiClient) -> None:
        """Read the BackgroundJobs with this loop's own list and watch (``Reflector``), one
        per scope the relists read: each watched namespace, or the whole cluster."""
        for ns in self._list_scopes():
            self._first_lists.add(ns)
            reflector = Reflector(
                api,
                ns,
                self.on_bgj_event,
                self._resync_soon.set,
                on_first_list=partial(self._first_lists.discard, ns),
            )
            name = f"watch-backgroundjobs-{ns or 'all'}"
            self._watches.append(asyncio.create_task(reflector.run(), name=name))

    async def stop(self) -> None:
        for watch in self._watches:
            watch.cancel()
        for watch in self._watches:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await watch
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self.leading and not self._statuses.empty():
            await self._write_pending_statuses(timeout=5)
        await self.events.stop()
        for helper in (
            self._memory,
            self._resync,
            self._progress_task,
            self._warm_up_task,
            self._queue_task,
        ):
            if helper is not None:
                helper.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await helper
        await self.kube.close()

    async def _write_pending_statuses(self, timeout: float) -> None:  # noqa: ASYNC109
        """Statuses of Jobs already created: a successor would adopt the Jobs and write them
        anyway, but a clean stop writes what it can in a few seconds."""
        pending = []
        while not self._statuses.empty():
            pending.append(self._statuses.get_nowait())
        drain = asyncio.Semaphore(self.settings.workers)

        async def write(key: Key, finish: Finish) -> None:
            async with drain:
                await self._run_step(key, finish)

        tasks = [asyncio.create_task(write(key, finish)) for key, finish, _ in pending]
        _, late = await asyncio.wait(tasks, timeout=timeout)
        for task in late:
            task.cancel()

    def _status_of(self, key: Key) -> Body | None:
        """The cached status of ``key`` (None: not cached)."""
        body = self.cache.bgj(key)
        return None if body is None else (body.get("status") or {})

    def _idle(self) -> bool:
        return not len(self.work) and self._statuses.empty() and self.events.idle()

    # ---------------------------------------------------------------- leadership

    def start_leading(self) -> None:
        """This replica leads: reconcile everything cached, so that nothing that happened
        while it stood by (a job created, a due time passed) is missed."""
        self.leading = True
        metrics.set_leading(True)
        for key in list(self.cache.keys()):
            self.work.add(key, routine=self.cache.routine(key))

    def stop_leading(self) -> None:
        """Another replica leads (or may soon): stop acting at once. The steps and Events in
        flight are cancelled (their requests abandoned) and the statuses waiting are dropped:
        nothing is written from now on; the next leader derives it all again."""
        self.leading = False
        if self._tasks:
            for task in self._tasks:
                task.cancel()
            self._tasks = []
            self._start_workers()  # they reconcile nothing until this replica leads again
        self.events.drop()
        metrics.set_leading(False)

    def _may_write(self) -> bool:
        """Whether a write may go out now: this replica leads and its Lease has not lapsed
        (a lapsed one stops it at once)."""
        if not self.leading:
            return False
        # holds_lease steps down (stop_leading) when the Lease lapsed
        return self.holds_lease is None or self.holds_lease()

    def _start_workers(self) -> None:
        for i in range(self.settings.workers):
            self._tasks.append(asyncio.create_task(self._worker(), name=f"reconcile-{i}"))
        for i in range(max(1, self.settings.workers // 8)):
            self._tasks.append(asyncio.create_task(self._status_writer(), name=f"status-{i}"))

    # ---------------------------------------------------------------- watch events

    def on_bgj_event(self, event: Body) -> None:
        """A watch event of a BackgroundJob."""
        self._watched(c.KIND, event)
        self._bgj_event(event)

    def on_job_event(self, event: Body) -> None:
        """A watch event of a Job."""
        self._watched("Job", event)
        meta = (event.get("object") or {}).get("metadata") or {}
        self.cache.job_watched(meta.get("namespace", ""), meta.get("name", ""))
        self._job_event(event)

    def _watched(self, kind: str, event: Body) -> None:
        if self._warm_seen is not None:
            meta = (event.get("object") or {}).get("metadata") or {}
            self._warm_seen.add((kind, (meta.get("namespace", ""), meta.get("name", ""))))
        version = _int(_version_of(event.get("object")))
        if version > self._watch_versions.get(kind, 0):
            self._watch_versions[kind] = version

    def _bgj_event(self, event: Body) -> None:
        obj = event.get("object") or {}
        meta = obj.get("metadata") or {}
        key = (meta.get("namespace", ""), meta.get("name", ""))
        if not self._serves(key[0]):
            return
        if event.get("type") == DELETED:
            self.work.forget(key)
            self.work.add_all(self.cache.forget_bgj(key))
            return
        self.work.add_all(self.cache.store_bgj(key, obj))
        self.work.add(key, routine=routine(obj))

    def _serves(self, namespace: str) -> bool:
        """Whether ``namespace`` is served (its objects are ignored, said once, if not)."""
        if self.settings.serves(namespace):
            return True
        if namespace not in self._ignored_namespaces:
            self._ignored_namespaces.add(namespace)
            log.info(
                "namespace %s is not served (BACKGROUNDJOBS_EXCLUDE_NAMESPACES): its"
                " BackgroundJobs are ignored",
                namespace,
            )
        return False

    def _job_event(self, event: Body) -> None:
        change = self.cache.observe_job(event.get("type") or "", event.get("object") or {})
        if change is not None:
            self.work.add_all(change.woken)
            self.work.add(change.owner)

    def on_queue_event(self, event: Body) -> None:
        """A watch event of a BackgroundJobQueue: its policy applies at once (a limit raised
        or a queue resumed admits the runs it now can)."""
        queue = self.cache.observe_queue(event.get("type") or "", event.get("object") or {})
        if queue is not None and self._serves(queue[0]):
            self._admit_now()
            # their CronJobs make held runs, or no longer, as the new policy says
            self.work.add_all(self.cache.recurring_in(queue))

    def _admit_now(self) -> None:
        """A round of granting: the runs admitted are reconciled (and so started)."""
        wake(self.work, self.cache.slots.dispatch(time.monotonic(), time.time()))

    async def warm_up(self, timeout: float = 120.0, relist: float = 2.0) -> None:  # noqa: ASYNC109
        """Admit nothing until the watches delivered every BackgroundJob and Job the API
        server lists (their first lists), then admit in order. An object counts once its watch
        event came, whether or not the cache took it (a Job of a CronJob not yet seen, an
        object refused as hostile). The lists are read again every ``relist`` seconds while
        some object is missing (or, when a list takes longer, every ``RELIST_COST`` times
        as long as the last one took, so that at 100,000 objects the relists do not take the
        time the watches need): one deleted since (a namespace being torn down deletes many)
        no longer holds the gate. When ``STALLED_RELISTS`` relists in a row find that the
        watches brought none of the missing objects, what is still missing will not come and
        the gate opens. After ``timeout`` it admits anyway, with a warning (a list that cannot
        be read must not stop the operator).

        With its own BackgroundJob watch (``watch_backgroundjobs``) the loop does not list
        BackgroundJobs here: the watch's first list delivers every one the API server has,
        so the gate waits for that list to end, and lists only Jobs. (At 100,000 stored
        jobs a second list of them took the API server about 40 s, beside the watch's.)"""
        started = time.monotonic()
        deadline = started + timeout
        self._warm_seen = set()
        listed = (0, 0)
        try:
            took = time.monotonic()
            missing_bgjs, missing_jobs = await self._listed()
            took = time.monotonic() - took
            listed = (len(missing_bgjs), len(missing_jobs))
            next_list = time.monotonic() + max(relist, RELIST_COST * took)
            stalled = 0  # relists in a row during which the watches brought nothing missing
            brought = False  # some missing object came since the last relist
            while time.monotonic() < deadline:
                before = len(missing_bgjs) + len(missing_jobs)
                checked = time.monotonic()
                missing_bgjs, missing_jobs = self._still_missing(missing_bgjs, missing_jobs)
                checked = time.monotonic() - checked
                brought = brought or len(missing_bgjs) + len(missing_jobs) < before
                if not missing_bgjs and not missing_jobs and not self._first_lists:
                    break
                if time.monotonic() >= next_list:
                    took = time.monotonic()
                    still_bgjs, still_jobs = await self._listed()
                    took = time.monotonic() - took
                    missing_bgjs &= still_bgjs
                    missing_jobs &= still_jobs
                    stalled = 0 if brought else stalled + 1
                    brought = False
                    if stalled >= STALLED_RELISTS and (missing_bgjs or missing_jobs):
                        # (an own watch's first list still running is waited for: it
                        # delivers as it reads, and the timeout bounds it)
                        # The watches delivered what they will: what is still missing is
                        # something they do not bring; waiting longer would only delay
                        # every job.
                        log.info(
                            "queues: admitting; %d listed objects were not delivered by the"
                            " watches (e.g. %s)",
                            len(missing_bgjs) + len(missing_jobs),
                            sorted(missing_bgjs | missing_jobs)[:3],
                        )
                        break
                    next_list = time.monotonic() + max(relist, RELIST_COST * took)
                # a check over 100,000 missing keys takes tens of ms: not five times a second
                await asyncio.sleep(max(0.2, 20 * checked))
            else:
                log.warning("queues: not every listed object was seen after %.0fs", timeout)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("queues: could not list what runs (%s); admitting anyway", exc)
        finally:
            self._warm_seen = None
        await self._read_queues()
        if self._watches:  # what the own watch's first list brought (the cache)
            listed = (len(self.cache.keys()), listed[1])
        log.info(
            "queues: admission open after %.1fs (%d BackgroundJobs and %d Jobs listed at start)",
            time.monotonic() - started,
            *listed,
        )
        self.cache.slots.ready = True
        self.work.hold_routine(False)
        self._admit_now()
        self.work.add_all(sorted(self.reconciler.deferred))
        self.reconciler.deferred.clear()

    async def _read_queues(self) -> None:
        """Read every BackgroundJobQueue before admission opens: until their watch brings
        them, a queue would run under the operator's defaults (often no limit), and a run
        admitted then is not taken back."""
        try:
            for ns in self._list_scopes():
                for obj in await self.kube.list_queues(ns):
                    self.cache.observe_listed_queue(obj)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("queues: could not read the BackgroundJobQueues (%s); admitting", exc)

    def _still_missing(self, bgjs: set[Key], jobs: set[Key]) -> tuple[set[Key], set[Key]]:
        """Of ``bgjs`` and ``jobs``, those neither cached nor delivered by a watch."""
        seen = self._warm_seen or set()
        cached_jobs = self.cache.job_owners()
        return (
            {k for k in bgjs if self.cache.version(k) is None and (c.KIND, k) not in seen},
            {k for k in jobs if k not in cached_jobs and ("Job", k) not in seen},
        )

    def _list_scopes(self) -> list[str | None]:
        """Where the relists read: each watched namespace, or the whole cluster (all
        namespaces, or globs such as team-*, which need cluster-wide rights anyway)."""
        names = list(self.settings.namespaces)
        if not names or any(set(ns) & set("*?[]!") for ns in names):
            return [None]
        return list(names)

    async def _listed(self) -> tuple[set[Key], set[Key]]:
        """The BackgroundJobs this operator serves (none when its own watch lists them) and
        the Jobs it manages, as listed now."""
        bgjs: set[Key] = set()
        jobs: set[Key] = set()
        for ns in self._list_scopes():
            if not self._watches:
                bgjs |= set((await self.kube.list_versions(c.KIND, ns))[0])
            jobs |= set((await self.kube.list_versions("Job", ns, MANAGED_SELECTOR))[0])
        return {k for k in bgjs if self.settings.serves(k[0])}, jobs

    def _queue_pending(self) -> dict[str, int]:
        """Jobs waiting for admission by queue name (all namespaces)."""
        out: dict[str, int] = {}
        for queue in self.cache.slots.queues():
            out[queue[1]] = out.get(queue[1], 0) + self.cache.slots.pending(queue)
        return out

    async def _queues_forever(self, period: float = 2.0) -> None:
        """Every ``period``: a round of granting (a rate limit's tokens come back with time)
        and the status of each BackgroundJobQueue object written when it changed."""
        while True:
            await asyncio.sleep(period)
            if not self.leading:
                continue
            self._admit_now()
            # in case a wake was lost
            self.work.add_all(owners(self.cache.slots.first_unstarted()))
            try:
                await self.confirm_jobs()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the next period tries again
                log.warning("reading unconfirmed Jobs again: %s", exc)
            try:
                await self.write_queue_statuses()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the next period tries again
                log.warning("queue status: %s", exc)

    async def confirm_jobs(self) -> None:
        """Read again each Job the cache took from an API answer (a create, a read) that no
        watch event showed within ``CONFIRM_AFTER`` seconds; one gone is handled as deleted.

        A Job read or made before the Job watch's first list and deleted before that list is
        in neither the list nor any event: kopf never reports it, and its run would hold its
        queue slot until the next resync (seen: a Job deleted while a restarted operator
        started, its slot held 5 minutes)."""
        for job, owner in self.cache.unconfirmed_jobs(time.monotonic() - CONFIRM_AFTER):
            if await self.kube.get("Job", *job) is None:
                log.info("Job %s/%s is gone (no watch event showed it)", *job)
                self._job_event({"type": DELETED, "object": self._gone_job(*job, owner)})
            self.cache.job_watched(*job)

    async def write_queue_statuses(self) -> None:
        """Write ``pending``, ``running`` and ``oldestPendingSince`` of every queue object
        whose counts changed."""
        slots = self.cache.slots
        for queue, body in self.cache.queue_objects().items():
            oldest = slots.oldest_pending(queue)
            status: Body = {
                "pending": slots.pending(queue),
                "running": slots.running(queue),
                "oldestPendingSince": oldest.created if oldest is not None else None,
                "observedGeneration": (body.get("metadata") or {}).get("generation"),
            }
            last = self._queue_statuses.get(queue)
            if last is None:
                shown = body.get("status") or {}
                last = {k: shown.get(k) for k in status}
            if last == status:
                continue
            await self.kube.patch_queue_status(queue[0], queue[1], status)
            self._queue_statuses[queue] = status

    def on_cronjob_event(self, event: Body) -> None:
        owner = self.cache.observe_cronjob(event.get("type") or "", event.get("object") or {})
        if owner is not None:
            self.work.add(owner)

    # ---------------------------------------------------------------- resync

    async def _resync_forever(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._resync_soon.wait(), self.settings.resync_period)
            self._resync_soon.clear()
            if not self.leading:
                continue
            try:
                await self.resync()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the next period tries again
                log.warning("resync failed: %s", exc)

    async def resync(self) -> None:
        """Relist (metadata only) and compare with the cache: what a watch gap hid.

        kopf's watch reconnects after a gap without reporting the objects deleted meanwhile,
        so a deleted BackgroundJob or Job could stay cached for ever (a job Running, a queue
        slot held). Cached objects the API server no longer has are handled as deleted;
        objects it has in another version than the cache are read again and reconciled.
        """
        bgjs: dict[Key, str] = {}
        jobs: dict[Key, str] = {}
        snapshots: list[int] = []
        for ns in self._list_scopes():
            found, snapshot = await self.kube.list_versions(c.KIND, ns)
            bgjs |= found
            snapshots.append(snapshot)
            found, snapshot = await self.kube.list_versions("Job", ns, MANAGED_SELECTOR)
            jobs |= found
            snapshots.append(snapshot)
        # A cached object newer than the oldest list may be missing from it for that reason.
        as_of = min(snapshots)
        self._check_watches({c.KIND: bgjs, "Job": jobs})
        for (ns, name), owner in self.cache.job_owners().items():
            version = _int(self.cache.job_version(ns, name))
            if (ns, name) not in jobs and 0 < version <= as_of:
                log.info("resync: Job %s/%s is gone", ns, name)
                self._job_event({"type": DELETED, "object": self._gone_job(ns, name, owner)})
        for key in set(self.cache.keys()).difference(bgjs):
            if _int(self.cache.version(key)) <= as_of:
                log.info("resync: %s/%s is gone", *key)
                self._bgj_event({"type": DELETED, "object": _named(key)})
        for key, listed in bgjs.items():
            if self.cache.version(key) != listed:
                current = await self.kube.get(c.KIND, *key)
                if current is not None:
                    self._bgj_event({"type": "MODIFIED", "object": current})

    def _check_watches(self, listed: dict[str, dict[Key, str]]) -> None:
        """A watch is stuck when a version the previous relist showed has still not come
        through it a whole resync period later (kopf reconnects a broken watch itself)."""
        stuck = []
        for kind, versions in listed.items():
            awaited = self._awaited_versions.pop(kind, 0)
            seen = self._watch_versions.get(kind, 0)
            if awaited > seen:
                stuck.append(kind)
            newest = max((_int(v) for v in versions.values()), default=0)
            if newest > seen:
                self._awaited_versions[kind] = newest
        if stuck:
            log.error("the watch of %s shows nothing the relist shows", ", ".join(stuck))
        self.stuck_watches = stuck

    def problems(self) -> list[str]:
        """Why this replica is not healthy (the liveness probe fails): a stuck watch, or
        work waiting while no step has finished for ``STUCK_AFTER`` seconds."""
        out = [f"the watch of {kind} is stuck" for kind in self.stuck_watches]
        idle_for = time.monotonic() - self._progress_at
        if len(self.work) and idle_for > STUCK_AFTER:
            out.append(f"{len(self.work)} objects wait and no worker finished for {idle_for:.0f}s")
        return out

    def _gone_job(self, ns: str, name: str, owner: Key) -> Body:
        """What the cache needs of a Job's deletion: its owner and queue (labels)."""
        labels = {c.LABEL_NAME: owner[1], c.LABEL_QUEUE: self.cache.queue(owner)}
        if self.cache.cronjob(owner) is not None:  # a run of a Recurring job: its own slot
            labels[c.LABEL_TYPE] = JobType.RECURRING
        ref = {"apiVersion": c.API_VERSION, "kind": c.KIND, "name": owner[1], "controller": True}
        meta = {"namespace": ns, "name": name, "labels": labels, "ownerReferences": [ref]}
        return {"metadata": meta}

    # ---------------------------------------------------------------- workers

    async def _worker(self) -> None:
        while True:
            key = await self.work.get()
            self.reconciles += 1
            await self._run_step(key, partial(self.reconciler.reconcile, key))
            # A step that needed no request (a finished job's retention) never gave the
            # event loop a turn, and neither does get() while keys wait: without this one
            # worker went through thousands of them while the watches and probes waited.
            await asyncio.sleep(0)
            # With nothing else to do, help write the statuses that wait.
            while not len(self.work) and not self._statuses.empty():
                key, finish, _ = self._statuses.get_nowait()
                await self._run_step(key, finish)

    async def _status_writer(self) -> None:
        """Writes deferred statuses even while the workers are all busy creating Jobs.

        Jobs first: a status waits up to ``settings.status_hold`` seconds while other objects
        wait for a worker, so a burst's Jobs are created before their statuses are written (a
        status patch costs the API server more than a Job create; bench M1, M3). Under load a
        status is at most that much behind its Job; when nothing else waits it goes at once.
        """
        loop = asyncio.get_running_loop()
        while True:
            key, finish, queued = await self._statuses.get()
            hold = queued + self.settings.status_hold - loop.time()
            if hold > 0 and not self.work.empty.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.work.empty.wait(), hold)
            await self._run_step(key, finish)

    async def _run_step(self, key: Key, step: Callable[[], Awaitable[Finish | None]]) -> None:
        """Run one step of a key taken from the work queue: its reconcile, or the status write
        a reconcile deferred. A step that returns a ``Finish`` hands the key, still
        "processing", to the status stage; otherwise the key is done. A failure is counted,
        logged and retried with backoff; the count is cleared when the key's work is all
        done (after a Job's creation: when its status is written)."""
        deferred: Finish | None = None
        started = time.perf_counter()
        try:
            if self.leading:  # else the leader reconciles, adopts the Job, writes the status
                deferred = await step()
                metrics.observe_reconcile(time.perf_counter() - started, "success")
                if self._unreachable:
                    self._unreachable = False
                    self._resync_soon.set()
            if deferred is None:
                self._failures.pop(key, None)
        except asyncio.CancelledError:
            raise
        except NotLeading:
            pass  # the replica that leads now reconciles the key
        except Exception as exc:
            metrics.observe_reconcile(time.perf_counter() - started, "error")
            self.reconciler.turns_failed(key)
            if transient(exc):
                self._failed(key, exc)
            else:
                await self._fail_object(key, exc)
        finally:
            self._progress_at = time.monotonic()
            if deferred is None:
                self.work.done(key)
            else:
                self._statuses.put_nowait((key, deferred, asyncio.get_running_loop().time()))

    async def _fail_object(self, key: Key, exc: Exception) -> None:
        """The object's own data broke its reconcile (a RecursionError, a value no code path
        expected): it ends Failed/InvalidSpec instead of being retried for ever."""
        log.error("reconcile %s/%s failed on the object itself; failing it", *key, exc_info=exc)
        metrics.record(MetricName.RECONCILE_ERRORS, {"reason": type(exc).__name__}, 1)
        try:
            await self.reconciler.fail(key, exc)
        except asyncio.CancelledError:
            raise
        except Exception as again:
            self._failed(key, again)

    def _failed(self, key: Key, exc: Exception) -> None:
        if not isinstance(exc, ApiException) or exc.status >= 500:
            self._unreachable = True
        failures = self._failures[key] = self._failures.get(key, 0) + 1
        delay = min(60.0, 0.5 * 2 ** min(failures, 7))
        reason = f"Api{exc.status}" if isinstance(exc, ApiException) else type(exc).__name__
        metrics.record(MetricName.RECONCILE_ERRORS, {"reason": reason}, 1)
        log.warning(
            "reconcile %s/%s failed (%s), retrying in %.1fs",
            *key,
            exc,
            delay,
            exc_info=failures == 1,
        )
        self.work.add_at(key, datetime.now(UTC) + timedelta(seconds=delay))


def transient(exc: Exception) -> bool:
    """An error worth retrying: the API server's answer or the network, not the object.
    A refusal (422) too: an admission policy or webhook may allow the write later, and what
    decide writes fits the schema (a refused child is handled where it is created)."""
    return isinstance(exc, ApiException | OSError | TimeoutError | aiohttp.ClientError)


MANAGED_SELECTOR = f"{c.LABEL_MANAGED_BY}={c.MANAGED_BY}"
# Work waiting this long with no step finished: the workers are stuck (every request times
# out well before: _connection.DEFAULT_REQUEST_TIMEOUT).
STUCK_AFTER = 300.0
# Seconds a Job taken from an API answer may stay unshown by the watch (ControlLoop.confirm_jobs)
CONFIRM_AFTER = 3.0


def _named(key: Key) -> Body:
    return {"metadata": {"namespace": key[0], "name": key[1]}}


def _version_of(body: Body | None) -> str | None:
    return ((body or {}).get("metadata") or {}).get("resourceVersion")


def _int(version: str | None) -> int:
    try:
        return int(version or 0)
    except ValueError:
        return 0
