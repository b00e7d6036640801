"""What the watches have shown: BackgroundJobs, their Jobs and CronJobs, indexed for the
reconciler. Every write goes through a method that keeps the indexes (owner of a Job, parent
and children, queue slots) right; none of them enqueues anything: they return what changed
and the caller decides what to reconcile.

Objects are kept as the API returned them, without managedFields and with keys and short
strings interned (``_compact``), and with ``spec.args``, ``spec.kwargs`` and
``spec.podTemplate`` as compact JSON text (``Packed``): one string instead of a tree of
dicts, lists and strings (a 1.6 MB kwargs parsed cost ~16 MB of heap), parsed again only when
an object is reconciled (``bgj``). A finished BackgroundJob (``routine``: only its retention
is left to plan), which after months of use is nearly every object, is kept as one compact
JSON text (``Finished``) with the few fields read without reconciling it: a third of the
memory of the parsed form. Jobs as the few fields decisions need (``ObservedJob``).
"""

from __future__ import annotations

import contextlib
import json
import sys
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from backgroundjobs import _json
from backgroundjobs._json import deeper_than
from backgroundjobs.api import constants as c
from backgroundjobs.api.constants import MAX_VALUE_DEPTH, JobType, Phase
from backgroundjobs.api.times import parse_time
from backgroundjobs.controller.builders import cronjob_name
from backgroundjobs.controller.decisions import ObservedJob
from backgroundjobs.controller.groups import GroupIndex
from backgroundjobs.controller.heldruns import (
    is_suspended,
    owners,
    run_key,
    want_of_job,
)
from backgroundjobs.controller.queueing import Admitter, QueueId, QueuePolicy, Want, want_of
from backgroundjobs.controller.schedule import InvalidSchedule, previous_run
from backgroundjobs.controller.settings import QueueConfig, Settings

Body = dict[str, Any]
Key = tuple[str, str]
DELETED = "DELETED"


@dataclass(frozen=True)
class JobChange:
    """What an observed Job changed: its BackgroundJob, and the jobs a freed slot wakes."""

    owner: Key
    woken: list[Key]


class Cache:
    """The operator's view of the cluster, fed by the watches and by the API's answers."""

    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings or Settings()
        self._bgjs: dict[Key, Body | Finished] = {}
        self._jobs: dict[Key, dict[str, ObservedJob]] = {}
        # The last resourceVersion seen of each Job: a pod list "not older than" it is served
        # from the API server's watch cache, and still shows the pod update that finished it.
        self._job_versions: dict[Key, str] = {}
        # Jobs taken from an API answer (a create, a read) that no watch event has shown yet,
        # with the monotonic time they were taken (ControlLoop.confirm_jobs).
        self._unconfirmed_jobs: dict[Key, float] = {}
        self._cronjobs: dict[Key, Body] = {}
        self._cronjob_owner: dict[Key, Key] = {}
        # What each held recurring run waits for (controller.heldruns), by its admission key.
        self._run_wants: dict[Key, Want] = {}
        self._children: dict[Key, set[str]] = {}
        self._parent_of: dict[Key, Key] = {}
        self.groups = GroupIndex()
        # BackgroundJobQueue objects by (namespace, name), as the policy they set.
        self._queues: dict[QueueId, QueuePolicy] = {}
        self._queue_bodies: dict[QueueId, Body] = {}
        self.slots = Admitter(
            self.queue_policy,
            max_running=self.settings.max_running,
            key_limit=self.settings.concurrency_key_limit,
            aging=self.settings.queue_aging,
        )

    # ------------------------------------------------------------ BackgroundJobs

    def bgj(self, key: Key) -> Body | None:
        """The object as the API returned it (a copy where packed fields are parsed)."""
        body = self._bgjs.get(key)
        if isinstance(body, Finished):
            return body.body()
        return _unpack(body) if body is not None else None

    def version(self, key: Key) -> str | None:
        """The cached resourceVersion of ``key``."""
        body = self._bgjs.get(key)
        if isinstance(body, Finished):
            return body.version
        return ((body or {}).get("metadata") or {}).get("resourceVersion")

    def queue(self, key: Key) -> str:
        """The queue of ``key`` (``default`` when unknown)."""
        body = self._bgjs.get(key)
        if isinstance(body, Finished):
            return body.queue
        return ((body or {}).get("spec") or {}).get("queue") or "default"

    def routine(self, key: Key) -> bool:
        """``routine`` of the cached object, without parsing a finished one."""
        body = self._bgjs.get(key)
        return isinstance(body, Finished) or routine(body)

    def keys(self) -> list[Key]:
        return list(self._bgjs)

    def store_bgj(self, key: Key, obj: Body) -> list[Key]:
        """Keep ``obj``, unless an answer of the API (a patch response) showed a newer one.
        Returns the group continuations to wake (``obj`` joined, left or moved on in their
        group)."""
        cached = self._bgjs.get(key)
        if cached is not None:
            if isinstance(cached, Finished):
                uid, version = cached.uid, _int(cached.version)
            else:
                uid, version = cached["metadata"].get("uid"), _version(cached)
            if uid == obj["metadata"].get("uid") and 0 < _version(obj) < version:
                return []
        self._bgjs[key] = Finished.of(obj) or _slim(obj)
        waiting = _waiting_want(obj)
        if (
            waiting is not None
            and not self.slots.holds(key)
            and not self.queue_policy((key[0], waiting.queue)).kueue_local_queue
        ):
            self.slots.register(key, waiting)
        after = ((obj.get("spec") or {}).get("after") or {}).get("name")
        if after:
            parent = (key[0], after)
            old_parent = self._parent_of.get(key)
            if old_parent != parent:
                if old_parent:
                    self._drop_child(old_parent, key[1])
                self._children.setdefault(parent, set()).add(key[1])
                self._parent_of[key] = parent
        return self._observe_group(key, obj)

    def _observe_group(self, key: Key, obj: Body) -> list[Key]:
        """Index ``obj``'s own group while it waits for one; keep the groups it is in."""
        meta, status = obj.get("metadata") or {}, obj.get("status") or {}
        after = (obj.get("spec") or {}).get("after") or {}
        selector = (after.get("selector") or {}).get("matchLabels")
        if isinstance(selector, dict) and selector and not status.get("runs"):
            if self.groups.watched(key) != selector:
                self.groups.watch(key, selector, self._labelled(key[0]))
        else:
            self.groups.unwatch(key)
        return self.groups.observe(key, meta.get("labels") or {}, str(status.get("phase") or ""))

    def _labelled(self, namespace: str) -> Iterator[tuple[str, dict[str, str], str]]:
        """(name, labels, phase) of every cached BackgroundJob of ``namespace``."""
        for (ns, name), body in list(self._bgjs.items()):
            if ns != namespace:
                continue
            meta = (body.body() if isinstance(body, Finished) else body).get("metadata") or {}
            yield name, meta.get("labels") or {}, self.phase((ns, name)) or ""

    def phase(self, key: Key) -> str | None:
        """The cached phase of ``key`` ("" before its first status); None when not cached."""
        body = self._bgjs.get(key)
        if body is None:
            return None
        if isinstance(body, Finished):
            return body.phase
        return str((body.get("status") or {}).get("phase") or "")

    def group(self, child: Key) -> dict[str, str] | None:
        """Member name -> phase (as cached now) of the group ``child`` waits for; None when
        it waits for none."""
        members = self.groups.members(child)
        if members is None:
            return None
        return {name: self.phase((child[0], name)) or "" for name in members}

    def show_status(self, key: Key, body: Body, status: Body) -> None:
        """Show ``body`` with ``status`` before the API has it (an early hand-off)."""
        self._bgjs[key] = {**body, "spec": _pack(body.get("spec")), "status": status}

    def unshow_status(self, key: Key, body: Body, status: Body) -> None:
        """Undo ``show_status`` (the patch failed) unless something newer came meanwhile."""
        shown = self._bgjs.get(key)
        if isinstance(shown, dict) and shown.get("status") is status:
            self._bgjs[key] = {**shown, "status": body.get("status")}

    def forget_bgj(self, key: Key) -> list[Key]:
        """``key`` was deleted: the jobs to wake (its children, the waiters of its slot)."""
        body = self._bgjs.pop(key, None)
        parent = self._parent_of.pop(key, None)
        if parent:
            self._drop_child(parent, key[1])
        woken = owners(self.slots.forget(key, time.monotonic(), time.time()).keys)
        if body is not None:
            woken += self.children(key)
        woken += [child for child in self.groups.forget(key) if child not in woken]
        return woken

    def children(self, key: Key) -> list[Key]:
        """The continuations that wait for ``key`` (by name, or as a member of their group)."""
        named = [(key[0], child) for child in self._children.get(key, ())]
        return named + self.groups.waiters(key)

    def cycle(self, key: Key) -> list[str] | None:
        """The names of a chain of parents (``spec.after``) from ``key`` back to ``key``, as
        far as cached objects tell; None when there is none."""
        chain = [key[1]]
        parent = self._parent_of.get(key)
        while parent is not None and len(chain) <= len(self._parent_of):
            chain.append(parent[1])
            if parent == key:
                return chain
            parent = self._parent_of.get(parent)
        return None

    def _drop_child(self, parent: Key, child: str) -> None:
        children = self._children.get(parent)
        if children is not None:
            children.discard(child)
            if not children:
                del self._children[parent]

    def phases(self) -> Iterator[tuple[str, str]]:
        """(phase, queue) of every BackgroundJob, for the ``backgroundjobs_jobs`` gauge."""
        # A copy first (one step under the GIL): the metrics endpoint calls this from its own
        # thread while the event loop adds and removes objects.
        for body in list(self._bgjs.values()):
            if isinstance(body, Finished):
                yield (body.phase, body.queue)
                continue
            status = body.get("status") or {}
            spec = body.get("spec") or {}
            yield (status.get("phase") or Phase.PENDING, spec.get("queue") or "default")

    def batch_items(self) -> dict[tuple[str, str], int]:
        """(queue, state) -> items of the batches not finished yet (state: total,
        succeeded, failed, running), for the ``backgroundjobs_batch_items`` gauge. A
        finished object is stored compressed and never looked at."""
        out: dict[tuple[str, str], int] = {}
        for body in list(self._bgjs.values()):  # a copy: called from the metrics thread
            if isinstance(body, Finished):
                continue
            status = body.get("status") or {}
            batch = status.get("batch")
            if not isinstance(batch, dict) or status.get("phase") in c.FINISHED_PHASES:
                continue
            queue = (body.get("spec") or {}).get("queue") or "default"
            for state in ("total", "succeeded", "failed", "running"):
                out[(queue, state)] = out.get((queue, state), 0) + _int(batch.get(state))
        return out

    def recurring_overdue(self, now: datetime) -> dict[str, float]:
        """By queue, the seconds since the most overdue Recurring job's last scheduled run
        was due with no run (a Job, or ``status.lastRunAt``) at or after it; 0 for a queue
        with Recurring jobs and none overdue. Suspended jobs, and runs due before the
        object existed, do not count. Called from the metrics endpoint's thread: it reads
        copies (each one step under the GIL) while the event loop adds and removes objects."""
        overdue: dict[str, float] = {}
        for key, body in list(self._bgjs.items()):
            if isinstance(body, Finished):  # never one with a schedule
                continue
            spec = body.get("spec") or {}
            schedule = spec.get("schedule")
            if not schedule:
                continue
            queue = spec.get("queue") or "default"
            overdue.setdefault(queue, 0.0)
            resumed_at = parse_time(spec.get("suspendUntil")) if spec.get("suspend") else None
            if spec.get("suspend") and (resumed_at is None or now < resumed_at):
                continue
            try:
                due = previous_run(schedule, spec.get("timeZone"), now)
            except InvalidSchedule:
                continue  # the object is Failed for it; no run is owed
            if resumed_at is not None and due < resumed_at:
                continue  # due while it was suspended (spec.suspendUntil): no run owed
            created = parse_time((body.get("metadata") or {}).get("creationTimestamp"))
            if created is None or due < created:
                continue
            jobs = list(self._jobs.get(key, {}).values())
            runs = [j.created for j in jobs if j.created is not None]
            last = parse_time((body.get("status") or {}).get("lastRunAt"))
            if last is not None:
                runs.append(last)
            if any(run >= due for run in runs):
                continue
            overdue[queue] = max(overdue[queue], (now - due).total_seconds())
        return overdue

    # ------------------------------------------------------------ Jobs

    def jobs(self, key: Key) -> dict[str, ObservedJob]:
        """The Jobs of ``key`` by name (a copy)."""
        return dict(self._jobs.get(key, {}))

    def job_owners(self) -> dict[Key, Key]:
        """(namespace, name) of every cached Job -> its BackgroundJob."""
        return {(key[0], name): key for key, jobs in self._jobs.items() for name in jobs}

    def job_version(self, namespace: str, name: str) -> str | None:
        return self._job_versions.get((namespace, name))

    def job_answered(self, namespace: str, name: str, mono: float) -> None:
        """A Job was taken from an API answer: unconfirmed until a watch event shows it."""
        self._unconfirmed_jobs.setdefault((namespace, name), mono)

    def job_watched(self, namespace: str, name: str) -> None:
        """A watch event showed this Job (or it was read again): its deletion, if it comes,
        will be reported."""
        self._unconfirmed_jobs.pop((namespace, name), None)

    def unconfirmed_jobs(self, taken_before: float) -> list[tuple[Key, Key]]:
        """(Job, its BackgroundJob) of the cached Jobs taken from an API answer before
        ``taken_before`` (monotonic) that no watch event has shown since."""
        due = [job for job, at in self._unconfirmed_jobs.items() if at < taken_before]
        if not due:
            return []
        owners = self.job_owners()
        out = []
        for job in due:
            if job in owners:
                out.append((job, owners[job]))
            else:  # not taken by the cache, or gone from it meanwhile
                del self._unconfirmed_jobs[job]
        return out

    def observe_job(self, event_type: str, obj: Body) -> JobChange | None:
        """A Job was seen (``ADDED``, ``MODIFIED``, ``DELETED``); None when it has no
        BackgroundJob or is the watch's echo of what a create already told us."""
        meta = obj.get("metadata") or {}
        ns, name = meta.get("namespace", ""), meta.get("name", "")
        key = self._owner(ns, meta)
        if key is None:
            return None
        version = meta.get("resourceVersion") or ""
        labels = meta.get("labels") or {}
        queue = labels.get(c.LABEL_QUEUE, "default")
        recurring = labels.get(c.LABEL_TYPE) == JobType.RECURRING
        if event_type == DELETED:
            self._unconfirmed_jobs.pop((ns, name), None)
            jobs = self._jobs.get(key)
            if jobs is not None:
                jobs.pop(name, None)
                if not jobs:
                    del self._jobs[key]
            self._job_versions.pop((ns, name), None)
            if recurring:
                return JobChange(key, self._end_run(key, name))
            return JobChange(key, self._release(key, name))
        if (
            version
            and self._job_versions.get((ns, name)) == version
            and name in self._jobs.get(key, {})
        ):
            return None
        job = ObservedJob.from_body(obj)
        self._jobs.setdefault(key, {})[name] = job
        self._job_versions[(ns, name)] = version
        if recurring:
            return JobChange(key, self._observe_run(key, obj, job.finished, queue, labels))
        if job.finished:
            return JobChange(key, self._release(key, name))
        if c.KUEUE_QUEUE_LABEL in labels:
            return JobChange(key, [])  # Kueue admits a Job with its label: no slot of ours
        turns = self.slots.hold(key, (ns, queue), labels.get(c.LABEL_CONCURRENCY_KEY))
        return JobChange(key, owners(turns))

    def _observe_run(
        self, key: Key, obj: Body, finished: bool, queue: str, labels: dict[str, str]
    ) -> list[Key]:
        """A Job of a Recurring job is a run of its own in its queue (controller.heldruns):
        waiting while suspended, holding a slot while it runs, none once finished."""
        name = obj["metadata"].get("name", "")
        if finished:
            return self._end_run(key, name)
        run = run_key(key, name)
        concurrency_key = labels.get(c.LABEL_CONCURRENCY_KEY)
        if not is_suspended(obj):
            self._run_wants.pop(run, None)
            return owners(self.slots.hold(run, (key[0], queue), concurrency_key))
        if not self.slots.holds(run):
            want = self._run_wants[run] = want_of_job(run, obj, queue, concurrency_key)
            self.slots.register(run, want)
        return []

    def run_want(self, run: Key) -> Want | None:
        """What a held recurring run asks its queue for (None: its Job is not seen held)."""
        return self._run_wants.get(run)

    def _end_run(self, key: Key, job_name: str) -> list[Key]:
        """A recurring run finished or its Job is gone: it waits no more, its slot is free."""
        run = run_key(key, job_name)
        self._run_wants.pop(run, None)
        forgotten = self.slots.forget(run, time.monotonic(), time.time())
        return owners(forgotten.keys)

    def held_runs(self, key: Key) -> list[str]:
        """The suspended, unfinished Jobs of Recurring job ``key`` (runs waiting for their
        queue or granted a slot and not yet unsuspended), oldest first."""
        jobs = self._jobs.get(key, {})
        held = [j for j in jobs.values() if j.suspended and not j.finished]
        return [j.name for j in sorted(held, key=lambda j: (j.created is None, j.created, j.name))]

    def _release(self, key: Key, job_name: str) -> list[Key]:
        """The run of Job ``job_name`` ended: its slot is free unless another unfinished Job
        of ``key`` holds it (a requeue's); the runs to wake."""
        if any(not j.finished for n, j in self._jobs.get(key, {}).items() if n != job_name):
            return []
        return owners(self.slots.release(key, time.monotonic(), time.time()).keys)

    # ------------------------------------------------------------ queues

    def queue_policy(self, queue: QueueId) -> QueuePolicy:
        """How ``queue`` admits: its BackgroundJobQueue, else the operator's defaults."""
        policy = self._queues.get(queue)
        if policy is not None:
            return policy
        config = self.settings.queue(queue[1])
        return QueuePolicy(
            max_concurrency=config.max_concurrency,
            priority_class_name=config.priority_class_name,
        )

    def settings_for(self, key: Key, settings: Settings) -> Settings:
        """``settings`` with the queue of ``key`` as its BackgroundJobQueue says (its
        PriorityClass), when it has one."""
        name = self.queue(key)
        policy = self._queues.get((key[0], name))
        if policy is None:
            return settings
        holds = policy.paused or policy.rate_per_second is not None
        config = QueueConfig(policy.priority_class_name, policy.max_concurrency, holds)
        return replace(settings, queues={**settings.queues, name: config})

    def queue_objects(self) -> dict[QueueId, Body]:
        return dict(self._queue_bodies)

    def observe_listed_queue(self, obj: Body) -> QueueId | None:
        """A BackgroundJobQueue read by a list: kept unless the watch brought it newer."""
        meta = obj.get("metadata") or {}
        cached = self._queue_bodies.get((meta.get("namespace", ""), meta.get("name", "")))
        if cached is not None and _version(cached) >= _version(obj):
            return None
        return self.observe_queue("ADDED", obj)

    def observe_queue(self, event_type: str, obj: Body) -> QueueId | None:
        """A BackgroundJobQueue was seen; its id (None when it cannot be read)."""
        meta = obj.get("metadata") or {}
        queue = (meta.get("namespace", ""), meta.get("name", ""))
        if event_type == DELETED:
            self._queues.pop(queue, None)
            self._queue_bodies.pop(queue, None)
            return queue
        spec = obj.get("spec") or {}
        rate = spec.get("rateLimit") or {}
        try:
            self._queues[queue] = QueuePolicy(
                max_concurrency=_positive(spec.get("maxConcurrency")),
                priority=int(spec.get("priority") or 0),
                paused=bool(spec.get("paused")),
                rate_per_second=float(rate["perSecond"]) if rate.get("perSecond") else None,
                burst=max(1, int(rate.get("burst") or 1)),
                priority_class_name=spec.get("priorityClassName") or None,
                kueue_local_queue=(spec.get("kueue") or {}).get("localQueue") or None,
            )
        except (TypeError, ValueError):
            return None  # the CRD's schema keeps such objects out
        self._queue_bodies[queue] = {"metadata": meta, "status": obj.get("status") or {}}
        return queue

    # ------------------------------------------------------------ CronJobs

    def cronjob(self, key: Key) -> Body | None:
        return self._cronjobs.get(key)

    def recurring_in(self, queue: QueueId) -> list[Key]:
        """The Recurring jobs of ``queue`` (with a CronJob): whether their runs are made
        held depends on its policy (controller.heldruns)."""
        return [k for k in self._cronjobs if k[0] == queue[0] and self.queue(k) == queue[1]]

    def observe_cronjob(self, event_type: str, obj: Body) -> Key | None:
        """A CronJob was seen; its BackgroundJob (None when it has none)."""
        meta = obj.get("metadata") or {}
        ns = meta.get("namespace", "")
        key = self._owner(ns, meta)
        if key is None:
            return None
        cronjob_key = (ns, meta.get("name", ""))
        if event_type == DELETED:
            self._cronjobs.pop(key, None)
            self._cronjob_owner.pop(cronjob_key, None)
        else:
            self._cronjobs[key] = _slim(obj)
            self._cronjob_owner[cronjob_key] = key
        return key

    def _owner(self, ns: str, meta: Body) -> Key | None:
        """The BackgroundJob of a Job or CronJob, through its controller owner reference only:
        the BackgroundJob, or the CronJob the operator made for it (known, or named after the
        job of its name label while the CronJob is not cached yet). A Job that merely carries
        a job's labels (anyone who may create Jobs in the namespace can) is nobody's: it never
        counts as a run, nor holds a queue slot."""
        for ref in meta.get("ownerReferences") or []:
            if not ref.get("controller"):
                continue
            if ref.get("kind") == c.KIND and str(ref.get("apiVersion", "")).startswith(c.GROUP):
                return (ns, ref["name"])
            if ref.get("kind") == "CronJob":
                owner = self._cronjob_owner.get((ns, ref["name"]))
                if owner is not None:
                    return owner
                label = (meta.get("labels") or {}).get(c.LABEL_NAME)
                if label and ref.get("name") == cronjob_name(label):
                    return (ns, label)
        return None


def _positive(value: Any) -> int | None:
    return int(value) if value is not None and int(value) >= 1 else None


def _waiting_want(obj: Body) -> Want | None:
    """The place of a job that waits for its queue as the object shows it (Queued, or new
    and to run at once): kept in the queue as soon as it is seen, so that runs start in
    their order even before each is reconciled, and after a restart."""
    spec = obj.get("spec") or {}
    phase = (obj.get("status") or {}).get("phase")
    new_and_ready = not phase and not (
        spec.get("suspend")
        or spec.get("schedule")
        or spec.get("after")
        or spec.get("delay")
        or spec.get("runAt")
    )
    if phase != Phase.QUEUED and not new_and_ready:
        return None
    return want_of(obj, spec.get("queue") or "default")


def _version(body: Body) -> int:
    return _int((body.get("metadata") or {}).get("resourceVersion"))


def _int(value: Any) -> int:
    try:
        return int(value or 0)
    except (TypeError, ValueError):
        return 0


def routine(body: Body | None) -> bool:
    """Whether nothing about this BackgroundJob is urgent: finished, its spec's generation
    seen, no action asked, not being deleted (what a start or a relist finds by the
    thousand: only its retention is left to plan). Anything else may be due now."""
    if not body:
        return False
    meta, status = body.get("metadata") or {}, body.get("status") or {}
    annotations = meta.get("annotations") or {}
    return (
        status.get("phase") in c.FINISHED_PHASES
        and status.get("observedGeneration") == meta.get("generation")
        and not meta.get("deletionTimestamp")
        and not any(name in annotations for name in c.ACTION_ANNOTATIONS.values())
    )


# What a finished BackgroundJob looks like, for ``Finished``'s compression: the names and
# values most of them repeat (zlib finds them here instead of in each object). Any change
# is safe: the texts live only in this process.
_FINISHED_TEMPLATE = {
    "apiVersion": c.API_VERSION,
    "kind": c.KIND,
    "metadata": {
        "name": "",
        "namespace": "",
        "uid": "00000000-0000-4000-8000-000000000000",
        "resourceVersion": "",
        "generation": 1,
        "creationTimestamp": "2026-01-01T00:00:00Z",
        "labels": {},
        "annotations": {},
        "finalizers": [],
    },
    "spec": {
        "handler": "",
        "args": [],
        "kwargs": {},
        "queue": "default",
        "retries": 3,
        "timeout": "",
        "image": "",
        "after": {"name": "", "on": "Succeeded"},
        "podTemplate": {"metadata": {}, "spec": {"containers": [{"name": "handler"}]}},
    },
    "status": {
        "phase": "Succeeded",
        "type": "Immediate",
        "runs": 1,
        "jobName": "",
        "startedAt": "2026-01-01T00:00:00Z",
        "finishedAt": "2026-01-01T00:00:00Z",
        "observedGeneration": 1,
        "message": "",
        "result": {},
        "attemptsTotal": 1,
        "attempts": [
            {
                "run": 1,
                "attempt": 1,
                "job": "",
                "pod": "",
                "node": "",
                "start": "",
                "end": "",
                "exitCode": 0,
                "reason": "Completed",
            }
        ],
        "conditions": [
            {
                "type": kind,
                "status": "False",
                "reason": "Completed",
                "message": "",
                "lastTransitionTime": "2026-01-01T00:00:00Z",
                "observedGeneration": 1,
            }
            for kind in ("Failed", "Queued", "Scheduled", "Running", "Stalled", "Reconciling")
        ]
        + [{"type": "Succeeded", "status": "True", "reason": "Completed"}],
    },
}
_ZDICT = json.dumps(_FINISHED_TEMPLATE, separators=(",", ":")).encode()


class Finished:
    """A ``routine`` BackgroundJob as its JSON text, compressed against ``_ZDICT``, with the
    fields read without reconciling it. About 300 bytes instead of several KB parsed."""

    __slots__ = ("phase", "queue", "text", "uid", "version")

    def __init__(self, text: bytes, uid: str, version: str, phase: str, queue: str) -> None:
        self.text = text
        self.uid, self.version, self.phase, self.queue = uid, version, phase, queue

    @classmethod
    def of(cls, obj: Body) -> Finished | None:
        """``obj`` in this form; None if it is not ``routine``, has a schedule, is nested too
        deep for the C encoder or holds a value (NaN) that strict JSON cannot carry: the
        parsed form keeps those, for ``decide`` to judge as it always did. (No depth walk
        first: on every stored object it cost more than the encoding.)"""
        spec = obj.get("spec")
        if not routine(obj) or not isinstance(spec, dict) or spec.get("schedule"):
            return None
        meta = {k: v for k, v in obj["metadata"].items() if k != "managedFields"}
        kept = {**obj, "metadata": meta}
        try:  # the C encoder: a value too deep for it raises, and is kept parsed
            text = json.dumps(kept, separators=(",", ":"), allow_nan=False).encode()
        except (TypeError, ValueError, RecursionError):
            return None
        packer = zlib.compressobj(1, zdict=_ZDICT)
        return cls(
            packer.compress(text) + packer.flush(),
            str(meta.get("uid") or ""),
            str(meta.get("resourceVersion") or ""),
            sys.intern(str(obj["status"]["phase"])),
            sys.intern(str(spec.get("queue") or "default")),
        )

    def body(self) -> Body:
        """The object, parsed (a new copy each call)."""
        body: Body = _json.loads(zlib.decompressobj(zdict=_ZDICT).decompress(self.text))
        return body


def _slim(body: Body) -> Body:
    meta = dict(body.get("metadata") or {})
    meta.pop("managedFields", None)
    compact: Body = _compact({**body, "metadata": meta, "spec": _pack(body.get("spec"))})
    return compact


class Packed(str):
    """A spec field kept as its compact JSON text."""

    __slots__ = ()


PACKED_FIELDS = ("args", "kwargs", "podTemplate")


def _pack(spec: Any) -> Any:
    """``spec`` with its free-form fields as ``Packed`` text. A value that cannot be written
    as strict JSON (nested too deep, NaN) stays as it is, for ``decide`` to refuse."""
    if not isinstance(spec, dict):
        return spec
    packed = dict(spec)
    for field in PACKED_FIELDS:
        value = spec.get(field)
        if isinstance(value, dict | list) and value and not deeper_than(value, MAX_VALUE_DEPTH):
            with contextlib.suppress(ValueError):  # NaN: left for decide to refuse
                packed[field] = Packed(json.dumps(value, separators=(",", ":"), allow_nan=False))
    return packed


def _unpack(body: Body) -> Body:
    spec = body.get("spec")
    if not isinstance(spec, dict) or not any(
        isinstance(spec.get(f), Packed) for f in PACKED_FIELDS
    ):
        return body
    spec = dict(spec)
    for field in PACKED_FIELDS:
        value = spec.get(field)
        if isinstance(value, Packed):
            spec[field] = json.loads(value)
    return {**body, "spec": spec}


def _compact(value: Any) -> Any:
    """A copy of a JSON value whose keys and short strings are interned.

    Each parsed object otherwise holds its own copies of "metadata", "lastTransitionTime",
    "True", "Running"...: with thousands of cached objects, about a third of their memory.
    Without recursion: a stored object may nest thousands of levels deep.
    """
    root: list[Any] = [None]
    # (source container, the copy's container, the key or index in it)
    stack: list[tuple[Any, Any, Any]] = [(value, root, 0)]
    while stack:
        node, into, at = stack.pop()
        if isinstance(node, dict):
            copy: Any = {}
            for k, v in node.items():
                k = sys.intern(k)
                copy[k] = None
                stack.append((v, copy, k))
        elif isinstance(node, list):
            copy = [None] * len(node)
            stack.extend((v, copy, i) for i, v in enumerate(node))
        elif type(node) is str and len(node) <= 16:
            copy = sys.intern(node)
        else:
            copy = node
        into[at] = copy
    return root[0]
