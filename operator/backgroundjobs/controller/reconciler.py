"""The level-triggered reconciler: a cache fed by kopf's watch events, a keyed work queue,
one timer heap for due times, and workers that gather inputs, call ``decide`` and apply
the plan.

Why not kopf's per-change handlers: they keep progress and diff-base annotations on every
object (extra writes per job) and run one task per object. Here a reconciliation derives
everything from the object's status and its observed Jobs, so a restart at any instant
resumes without losing or duplicating a run: Job names are deterministic and a create that
meets AlreadyExists adopts the existing Job.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

from kubernetes_asyncio.client.exceptions import ApiException
from pydantic import ValidationError

from backgroundjobs._connection import status_message
from backgroundjobs.api import constants as c
from backgroundjobs.api.constants import JobType, Phase
from backgroundjobs.controller import builders, memory, metrics
from backgroundjobs.controller.decisions import (
    Observed,
    ObservedJob,
    Plan,
    decide,
    invalid_spec_plan,
    parse_spec,
)
from backgroundjobs.controller.kube import Kube
from backgroundjobs.controller.settings import Settings

Body = dict[str, Any]
Key = tuple[str, str]
Finish = Callable[[], Awaitable[None]]
log = logging.getLogger("backgroundjobs.operator")
EVENT_POSTERS = 16


def _rv(body: Body) -> int:
    try:
        return int((body.get("metadata") or {}).get("resourceVersion") or 0)
    except ValueError:
        return 0


def _slim(body: Body) -> Body:
    meta = dict(body.get("metadata") or {})
    meta.pop("managedFields", None)
    compact: Body = _compact({**body, "metadata": meta})
    return compact


def _compact(value: Any) -> Any:
    """A copy of a JSON value whose keys and short strings are interned.

    Each parsed object otherwise holds its own copies of "metadata", "lastTransitionTime",
    "True", "Running"...: with thousands of cached objects, about a third of their memory.
    """
    if isinstance(value, dict):
        return {sys.intern(k): _compact(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_compact(v) for v in value]
    if isinstance(value, str) and len(value) <= 16:
        return sys.intern(value)
    return value


@dataclass
class Cache:
    """What the watches have shown, indexed for the reconciler."""

    bgjs: dict[Key, Body] = field(default_factory=dict)
    jobs: dict[Key, dict[str, ObservedJob]] = field(default_factory=lambda: defaultdict(dict))
    # The last resourceVersion seen of each Job: a pod list "not older than" it is served from
    # the API server's watch cache, and still shows the pod update that finished the Job.
    job_rv: dict[tuple[str, str], str] = field(default_factory=dict)
    cronjobs: dict[Key, Body] = field(default_factory=dict)
    cronjob_owner: dict[Key, Key] = field(default_factory=dict)
    children: dict[Key, set[str]] = field(default_factory=lambda: defaultdict(set))
    parent_of: dict[Key, Key] = field(default_factory=dict)
    active: dict[str, set[Key]] = field(default_factory=lambda: defaultdict(set))
    queued: dict[str, set[Key]] = field(default_factory=lambda: defaultdict(set))

    def phases(self) -> Iterator[tuple[str, str]]:
        for body in self.bgjs.values():
            status = body.get("status") or {}
            spec = body.get("spec") or {}
            yield (status.get("phase") or "Pending", spec.get("queue") or "default")


class WorkQueue:
    """Keys to reconcile: deduplicated, one worker per key at a time, plus due-time timers."""

    def __init__(self) -> None:
        self._queue: asyncio.Queue[Key] = asyncio.Queue()
        self._dirty: set[Key] = set()
        self._processing: set[Key] = set()
        self._timers: dict[Key, tuple[float, asyncio.TimerHandle]] = {}
        self.empty = asyncio.Event()  # set while no key waits for a worker
        self.empty.set()

    def _put(self, key: Key) -> None:
        self._queue.put_nowait(key)
        self.empty.clear()

    def add(self, key: Key) -> None:
        if key in self._dirty:
            return
        self._dirty.add(key)
        if key not in self._processing:
            self._put(key)

    def add_at(self, key: Key, when: datetime) -> None:
        """Reconcile ``key`` at wall-clock ``when`` (one asyncio timer per key, earliest wins)."""
        loop = asyncio.get_running_loop()
        delay = max(0.0, (when - datetime.now(UTC)).total_seconds())
        at = loop.time() + delay
        current = self._timers.get(key)
        if (
            current is not None
            and not current[1].cancelled()
            and current[0] <= at
            and current[0] >= loop.time()
        ):
            return
        if current is not None:
            current[1].cancel()
        self._timers[key] = (at, loop.call_at(at, self._fire, key))

    def _fire(self, key: Key) -> None:
        self._timers.pop(key, None)
        self.add(key)

    def forget(self, key: Key) -> None:
        timer = self._timers.pop(key, None)
        if timer is not None:
            timer[1].cancel()

    async def get(self) -> Key:
        key = await self._queue.get()
        if self._queue.empty():
            self.empty.set()
        self._dirty.discard(key)
        self._processing.add(key)
        return key

    def done(self, key: Key) -> None:
        self._processing.discard(key)
        if key in self._dirty:
            self._put(key)

    def __len__(self) -> int:
        return self._queue.qsize()


class Reconciler:
    """Owns the cache, the queue and the workers."""

    def __init__(self, settings: Settings, kube: Kube) -> None:
        self.settings = settings
        self.kube = kube
        self.cache = Cache()
        self.queue = WorkQueue()
        self._workers: list[asyncio.Task[None]] = []
        self._failures: dict[Key, int] = defaultdict(int)
        # Events to post: (involved object's metadata, type, reason, message), posted by a
        # few tasks. A queue of small tuples, not a task per Event: a burst of thousands of
        # jobs would otherwise hold thousands of pending tasks (bench M6).
        self._events: asyncio.Queue[tuple[Body, str, str, str]] = asyncio.Queue()
        self._posters: list[asyncio.Task[None]] = []
        # Status writes that follow a Job's creation, done after it (see _apply); their key
        # stays "processing" until its status is written.
        # Each with the loop time it was queued at (settings.status_hold).
        self._status: asyncio.Queue[tuple[Key, Finish, float]] = asyncio.Queue()
        self.active = True
        self.reconciles = 0
        metrics.register_phase_source(self.cache.phases)
        metrics.register_queue_depths(
            lambda: {"reconcile": len(self.queue), "status": self._status.qsize()}
        )

    async def start(self) -> None:
        for i in range(self.settings.workers):
            self._workers.append(asyncio.create_task(self._worker(), name=f"reconcile-{i}"))
        for i in range(max(1, self.settings.workers // 8)):
            self._workers.append(asyncio.create_task(self._status_writer(), name=f"status-{i}"))
        for i in range(EVENT_POSTERS):
            self._posters.append(asyncio.create_task(self._event_poster(), name=f"events-{i}"))
        self._posters.append(
            asyncio.create_task(
                memory.release_when_idle(lambda: self.reconciles, self._idle), name="memory"
            )
        )

    def _idle(self) -> bool:
        return not len(self.queue) and self._status.empty() and self._events.empty()

    async def stop(self) -> None:
        for task in self._workers:
            task.cancel()
        for task in self._workers:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self.active and not self._status.empty():
            # Statuses of Jobs already created: a successor would adopt the Jobs and write
            # them anyway, but a clean stop writes what it can in a few seconds.
            pending = []
            while not self._status.empty():
                pending.append(self._status.get_nowait())
            drain = asyncio.Semaphore(self.settings.workers)

            async def write(key: Key, finish: Finish) -> None:
                async with drain:
                    await self._write_status(key, finish)

            tasks = [asyncio.create_task(write(k, f)) for k, f, _ in pending]
            _, late = await asyncio.wait(tasks, timeout=5)
            for task in late:
                task.cancel()
        if not self._events.empty():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._events.join(), timeout=5)
        for task in self._posters:
            task.cancel()
        for task in self._posters:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await self.kube.close()

    # ---------------------------------------------------------------- watch events
    def on_bgj_event(self, event: Body) -> None:
        obj = event.get("object") or {}
        meta = obj.get("metadata") or {}
        key = (meta.get("namespace", ""), meta.get("name", ""))
        if event.get("type") == "DELETED":
            self._forget_bgj(key)
            return
        self._store_bgj(key, obj)
        self.queue.add(key)

    def _store_bgj(self, key: Key, obj: Body) -> None:
        cached = self.cache.bgjs.get(key)
        same_object = cached is not None and cached["metadata"].get("uid") == obj["metadata"].get(
            "uid"
        )
        if same_object and cached is not None and _rv(obj) and _rv(obj) < _rv(cached):
            return  # an older event than what a patch response already told us
        self.cache.bgjs[key] = _slim(obj)
        after = ((obj.get("spec") or {}).get("after") or {}).get("name")
        old_parent = self.cache.parent_of.get(key)
        if after:
            parent_key = (key[0], after)
            if old_parent != parent_key:
                if old_parent:
                    self.cache.children[old_parent].discard(key[1])
                self.cache.children[parent_key].add(key[1])
                self.cache.parent_of[key] = parent_key

    def _forget_bgj(self, key: Key) -> None:
        body = self.cache.bgjs.pop(key, None)
        self.queue.forget(key)
        parent = self.cache.parent_of.pop(key, None)
        if parent:
            self.cache.children[parent].discard(key[1])
        for keys in self.cache.active.values():
            keys.discard(key)
        for keys in self.cache.queued.values():
            keys.discard(key)
        if body is not None:
            self._wake_children(key)

    def on_job_event(self, event: Body) -> None:
        obj = event.get("object") or {}
        meta = obj.get("metadata") or {}
        ns, name = meta.get("namespace", ""), meta.get("name", "")
        key = self._owner_key(ns, meta)
        if key is None:
            return
        rv = meta.get("resourceVersion") or ""
        if (
            event.get("type") != "DELETED"
            and rv
            and self.cache.job_rv.get((ns, name)) == rv
            and name in self.cache.jobs.get(key, {})
        ):
            return  # the watch's echo of a create response already handled
        queue_name = (meta.get("labels") or {}).get(c.LABEL_QUEUE, "default")
        if event.get("type") == "DELETED":
            self.cache.jobs[key].pop(name, None)
            self.cache.job_rv.pop((ns, name), None)
            self._release_slot(queue_name, key)
        else:
            view = ObservedJob.from_body(obj)
            self.cache.jobs[key][name] = view
            self.cache.job_rv[(ns, name)] = rv
            if view.finished:
                self._release_slot(queue_name, key)
            elif (meta.get("labels") or {}).get(c.LABEL_TYPE) != JobType.RECURRING:
                self.cache.active[queue_name].add(key)
        self.queue.add(key)

    def on_cronjob_event(self, event: Body) -> None:
        obj = event.get("object") or {}
        meta = obj.get("metadata") or {}
        key = self._owner_key(meta.get("namespace", ""), meta)
        if key is None:
            return
        cj_key = (meta.get("namespace", ""), meta.get("name", ""))
        if event.get("type") == "DELETED":
            self.cache.cronjobs.pop(key, None)
            self.cache.cronjob_owner.pop(cj_key, None)
        else:
            self.cache.cronjobs[key] = _slim(obj)
            self.cache.cronjob_owner[cj_key] = key
        self.queue.add(key)

    def _owner_key(self, ns: str, meta: Body) -> Key | None:
        for ref in meta.get("ownerReferences") or []:
            if not ref.get("controller"):
                continue
            if ref.get("kind") == c.KIND and str(ref.get("apiVersion", "")).startswith(c.GROUP):
                return (ns, ref["name"])
            if ref.get("kind") == "CronJob":
                owner = self.cache.cronjob_owner.get((ns, ref["name"]))
                if owner is not None:
                    return owner
        label = (meta.get("labels") or {}).get(c.LABEL_NAME)
        return (ns, label) if label else None

    def _admit(self, key: Key, queue: str) -> bool:
        """Take a slot of ``queue`` for ``key`` before any await; False when it is full."""
        limit = self.settings.queue(queue).max_concurrency
        if limit is None:
            return True
        active = self.cache.active[queue]
        if len(active - {key}) >= limit:
            return False
        active.add(key)
        return True

    def _release_slot(self, queue_name: str, key: Key) -> None:
        active = self.cache.active[queue_name]
        if key in active:
            active.discard(key)
            for waiting in list(self.cache.queued[queue_name]):
                self.queue.add(waiting)

    def _wake_children(self, key: Key) -> None:
        for child in list(self.cache.children.get(key, ())):
            self.queue.add((key[0], child))

    # ---------------------------------------------------------------- workers
    async def _worker(self) -> None:
        while True:
            key = await self.queue.get()
            self.reconciles += 1
            await self._run_step(key, partial(self.reconcile, key))
            # With nothing else to do, help write the statuses that wait.
            while not len(self.queue) and not self._status.empty():
                key, finish, _ = self._status.get_nowait()
                await self._write_status(key, finish)

    async def _status_writer(self) -> None:
        """Writes deferred statuses even while the workers are all busy creating Jobs.

        Jobs first: a status waits up to ``settings.status_hold`` seconds while other objects
        wait for a worker, so a burst's Jobs are created before their statuses are written (a
        status patch costs the API server more than a Job create; bench M1, M3). Under load a
        status is at most that much behind its Job; when nothing else waits it goes at once.
        """
        loop = asyncio.get_running_loop()
        while True:
            key, finish, queued = await self._status.get()
            hold = queued + self.settings.status_hold - loop.time()
            if hold > 0 and not self.queue.empty.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.queue.empty.wait(), hold)
            await self._write_status(key, finish)

    async def _write_status(self, key: Key, finish: Finish) -> None:
        await self._run_step(key, finish)

    async def _run_step(self, key: Key, step: Callable[[], Awaitable[Finish | None]]) -> None:
        """Run one step of a key taken from the queue: its reconcile, or the status write a
        reconcile deferred. A step that returns a ``Finish`` hands the key, still
        "processing", to the status queue; otherwise the key is done. A failure is counted,
        logged and requeued with backoff; the count is cleared when the key's work is all
        done (after a Job's creation: when its status is written)."""
        deferred: Finish | None = None
        try:
            if self.active:  # else a new leader reconciles, adopts the Job, writes the status
                deferred = await step()
            if deferred is None:
                self._failures.pop(key, None)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self._failed(key, exc)
        finally:
            if deferred is None:
                self.queue.done(key)
            else:
                self._status.put_nowait((key, deferred, asyncio.get_running_loop().time()))

    def _failed(self, key: Key, exc: Exception) -> None:
        self._failures[key] += 1
        delay = min(60.0, 0.5 * 2 ** min(self._failures[key], 7))
        reason = f"Api{exc.status}" if isinstance(exc, ApiException) else type(exc).__name__
        metrics.record("reconcile_errors", {"reason": reason}, 1)
        log.warning(
            "reconcile %s/%s failed (%s), retrying in %.1fs",
            *key,
            exc,
            delay,
            exc_info=self._failures[key] == 1,
        )
        self.queue.add_at(key, datetime.now(UTC) + timedelta(seconds=delay))

    async def reconcile(self, key: Key) -> Finish | None:
        """Reconcile one BackgroundJob. When it created a Job, the rest (status, Events) is
        returned to be done after it: starting work first is what is late-sensitive."""
        body = self.cache.bgjs.get(key)
        if body is None or (body.get("metadata") or {}).get("deletionTimestamp"):
            return None
        ns, name = key
        uid = body["metadata"].get("uid")
        status = body.get("status") or {}
        try:
            spec = parse_spec(body)
        except ValidationError:
            spec = None

        jobs = {n: v for n, v in self.cache.jobs.get(key, {}).items()}
        cronjob = self.cache.cronjobs.get(key)
        parent: Body | None = None
        reserved: str | None = None

        if spec is not None and spec.job_type != JobType.RECURRING:
            jobs = {n: v for n, v in jobs.items() if v.owner_uid == uid}
            run = int(status.get("runs") or 0)
            current = builders.job_name(name, run) if run else None
            if current and current not in jobs and status.get("phase") not in c.FINISHED_PHASES:
                # Not seen yet (a watch lags a create, or the operator just started): ask.
                found = await self.kube.get("Job", ns, current)
                if found is not None and ObservedJob.from_body(found).owner_uid == uid:
                    self.on_job_event({"type": "ADDED", "object": found})
                    jobs[current] = ObservedJob.from_body(found)
        if (
            spec is not None
            and spec.job_type == JobType.RECURRING
            and cronjob is None
            and status.get("phase")
        ):
            found = await self.kube.get("CronJob", ns, builders.cronjob_name(name))
            if found is not None:
                self.on_cronjob_event({"type": "ADDED", "object": found})
                cronjob = self.cache.cronjobs.get(key)
        if spec is not None and spec.job_type == JobType.RECURRING and cronjob is not None:
            cj_uid = cronjob["metadata"].get("uid")
            jobs = {n: v for n, v in jobs.items() if v.owner_uid in (uid, cj_uid)}
        if spec is not None and spec.after is not None:
            # Before the first run: to decide whether to start. On a requeue: for the
            # parent's result (BACKGROUNDJOBS_PARENT_RESULT), which a new run gets again.
            parent_key = (ns, spec.after.name)
            parent = self.cache.bgjs.get(parent_key)
            requeue = (body["metadata"].get("annotations") or {}).get(c.ANNOTATION_REQUEUE)
            requeue_pending = requeue and requeue != (status.get("handledActions") or {}).get(
                "requeue"
            )
            if parent is None and (not status.get("runs") or requeue_pending):
                parent = await self.kube.get(c.KIND, ns, spec.after.name)
                if parent is not None:
                    self._store_bgj(parent_key, parent)
        obs = Observed(bgj=body, now=datetime.now(UTC), jobs=jobs, cronjob=cronjob, parent=parent)
        deferred: Finish | None = None
        try:
            plan = decide(obs, self.settings)
            for _ in range(3):
                if plan.need_termination is not None:
                    job = jobs[plan.need_termination]
                    obs.termination[job.name] = await self.kube.termination_message(
                        ns,
                        job.name,
                        succeeded=job.complete,
                        not_older_than=self.cache.job_rv.get((ns, job.name)),
                    )
                elif plan.admission is not None and plan.create and obs.admitted is None:
                    queue = plan.admission.queue
                    held = key in self.cache.active[queue]
                    obs.admitted = self._admit(key, queue)
                    if obs.admitted:
                        reserved = None if held else queue
                        break
                else:
                    break
                plan = decide(obs, self.settings)
            deferred = await self._apply(key, body, plan, obs)
        finally:
            if (
                reserved is not None
                and deferred is None
                and not (body.get("status") or {}).get("runs")
            ):
                latest = self.cache.bgjs.get(key) or {}
                if not (latest.get("status") or {}).get("runs"):
                    self.cache.active[reserved].discard(key)
        if spec is not None:
            queued = self.cache.queued[spec.queue]
            if plan.status.get("phase") == Phase.QUEUED:
                queued.add(key)
            else:
                queued.discard(key)
        return deferred

    async def _apply(self, key: Key, body: Body, plan: Plan, obs: Observed) -> Finish | None:
        """Delete and create children; the status write and Events follow, in a closure
        returned to the caller when a Job was created (None when all is done)."""
        ns = key[0]
        created_job = False
        for job_name in plan.delete_jobs:
            await self.kube.delete_job(ns, job_name)
        for obj in plan.create:
            try:
                created = await self.kube.create(obj)
            except ApiException as exc:
                if exc.status == 409:
                    existing = await self.kube.get(obj["kind"], ns, obj["metadata"]["name"])
                    owner = (existing or {}).get("metadata", {}).get("ownerReferences") or []
                    if existing is None or not any(
                        o.get("uid") == body["metadata"]["uid"] for o in owner
                    ):
                        log.info(
                            "%s %s/%s belongs to an older object; waiting",
                            obj["kind"],
                            ns,
                            obj["metadata"]["name"],
                        )
                        self.queue.add_at(key, datetime.now(UTC) + timedelta(seconds=2))
                        return None
                    created = existing
                elif exc.status in (400, 403, 422):
                    plan = self._invalid(
                        body,
                        obs,
                        f"the API server refused {obj['kind']} {obj['metadata']['name']}:"
                        f" {status_message(exc)}",
                    )
                    break
                else:
                    raise
            if obj["kind"] == "Job":
                self.on_job_event({"type": "ADDED", "object": created})
                created_job = True
            else:
                self.on_cronjob_event({"type": "ADDED", "object": created})
        if plan.replace_cronjob is not None and obs.cronjob is not None:
            try:
                replaced = await self.kube.replace_cronjob(plan.replace_cronjob, obs.cronjob)
                self.on_cronjob_event({"type": "MODIFIED", "object": replaced})
            except ApiException as exc:
                if exc.status in (400, 422):
                    plan = self._invalid(
                        body,
                        obs,
                        f"the API server refused the CronJob update: {status_message(exc)}",
                    )
                elif exc.status == 409:
                    self.queue.add(key)  # changed meanwhile: the watch brings the new one
                else:
                    raise

        if created_job and plan.status.get("phase") != "InvalidSpec":
            # Only what the status stage needs: not the built Job (KBs per waiting job).
            rest = replace(plan, create=[], replace_cronjob=None, delete_jobs=[])

            async def finish() -> None:
                await self._finish(key, body, rest)

            return finish
        await self._finish(key, body, plan)
        return None

    async def _finish(self, key: Key, body: Body, plan: Plan) -> None:
        """Write the plan's status, post its Events and metrics, wake children, requeue."""
        ns, name = key
        old_status = body.get("status") or {}
        patch = _diff(old_status, plan.status)
        old_phase = old_status.get("phase")
        wake = plan.status.get("phase") != old_phase or patch.get("result") is not None
        early = bool(patch) and wake and bool(self.cache.children.get(key))
        if early:
            # Hand-off (bench M5): the outcome is already a fact (the Job finished), so the
            # waiting children see it now and start while the status patch is in flight,
            # instead of one API round trip later. Undone below if the patch fails.
            self.cache.bgjs[key] = {**body, "status": plan.status}
            self._wake_children(key)
        if patch:
            try:
                updated = await self.kube.patch_status(ns, name, patch)
            except BaseException:
                if early and self.cache.bgjs.get(key, {}).get("status") is plan.status:
                    self.cache.bgjs[key] = body  # the retry must see (and write) the change
                raise
            if updated:
                self._store_bgj(key, updated)
        for etype, reason, message in plan.events:
            if etype == "Warning" or self.settings.events == "all":
                self._post_event(body, etype, reason, message)
        for metric in plan.metrics:
            metrics.record(metric.name, metric.labels, metric.value)
        if wake:  # again after an early wake: a watch event may have hidden the outcome
            self._wake_children(key)
        if plan.delete_self:
            log.info("%s/%s: retention over, deleting", ns, name)
            await self.kube.delete_bgj(ns, name, body["metadata"]["uid"])
            return
        if plan.requeue_at is not None:
            self.queue.add_at(key, plan.requeue_at)

    def _invalid(self, body: Body, obs: Observed, message: str) -> Plan:
        return invalid_spec_plan(body, obs.now, self.settings, message)

    def _post_event(self, body: Body, etype: str, reason: str, message: str) -> None:
        meta = body["metadata"]
        involved = {
            "metadata": {k: meta.get(k) for k in ("name", "namespace", "uid", "resourceVersion")}
        }
        self._events.put_nowait((involved, etype, reason, message))

    async def _event_poster(self) -> None:
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


def _diff(old: Body, new: Body) -> Body:
    """A JSON merge patch turning ``old`` into ``new`` (removed keys become None)."""
    patch: Body = {}
    for k, v in new.items():
        if old.get(k) != v:
            patch[k] = v
    for k in old:
        if k not in new:
            patch[k] = None
    return patch


__all__ = ["Cache", "Reconciler", "WorkQueue"]
