"""One reconciliation of one BackgroundJob: gather what it needs, ``decide``, apply the plan.

Level-triggered: everything is derived from the object's status and its observed Jobs, so a
restart at any instant resumes without losing or duplicating a run: Job names are
deterministic and a create that meets AlreadyExists adopts the existing Job. The loop around
it (workers, the status stage, leadership) is ``controller.loop``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from kubernetes_asyncio.client.exceptions import ApiException
from pydantic import ValidationError

from backgroundjobs._connection import namespace_terminating, status_message
from backgroundjobs.api import constants as c
from backgroundjobs.api.constants import JobType
from backgroundjobs.api.models import BackgroundJobSpec
from backgroundjobs.api.podpolicy import AdmissionInForce, admission_in_force
from backgroundjobs.controller import builders, metrics
from backgroundjobs.controller.cache import Cache
from backgroundjobs.controller.decisions import (
    JobPods,
    Observed,
    ObservedJob,
    Plan,
    decide,
    invalid_spec_plan,
    parse_spec,
)
from backgroundjobs.controller.decisions.itemerrors import indexes_of, item_errors
from backgroundjobs.controller.decisions.podattempts import pod_attempts
from backgroundjobs.controller.decisions.retrypolicy import current_job_name
from backgroundjobs.controller.decisions.workload import WorkloadState, workload_state
from backgroundjobs.controller.events import EventPoster
from backgroundjobs.controller.heldruns import admitted_message, owner_key, owners, run_key
from backgroundjobs.controller.kube import KubeApi, termination_message_of
from backgroundjobs.controller.queueing import Dispatch, Verdict, want_of
from backgroundjobs.controller.settings import Settings
from backgroundjobs.controller.workqueue import WorkQueue

Body = dict[str, Any]
Key = tuple[str, str]
Finish = Callable[[], Awaitable[None]]
log = logging.getLogger("backgroundjobs.operator")

# Seconds a read of a Job's pods serves the reconciles that follow (decisions.pods looks again
# every PROBE_EVERY, 15 s: that look reads anew).
POD_READ_REUSE = 7.5
# A plan may ask for what decide cannot know (a termination message, whether the pod policy
# is in force, a Job's pods, a queue slot), and then be decided again: at most this many times.
MORE_DECIDES = 5


class Reconciler:
    """Reconciles one BackgroundJob at a time (the loop runs many at once, one per key)."""

    def __init__(
        self,
        settings: Settings,
        kube: KubeApi,
        cache: Cache,
        work: WorkQueue,
        events: EventPoster,
    ) -> None:
        self.settings = settings
        self.kube = kube
        self.cache = cache
        self.work = work
        self.events = events
        # The last read of each stuck Job's pods, by Job uid, oldest first: a Job reconciled
        # often (its status changes) is still read at most once per POD_READ_REUSE.
        self._pod_reads: dict[str, tuple[float, JobPods]] = {}
        # Runs that asked for a slot before admission opened (ControlLoop.warm_up).
        self.deferred: set[Key] = set()

    async def reconcile(self, key: Key) -> Finish | None:
        """Reconcile ``key``. When it created a Job, the rest (status, Events) is returned to
        be done after it: starting work first is what is late-sensitive."""
        body = self.cache.bgj(key)
        if body is None:
            return None
        if (body.get("metadata") or {}).get("deletionTimestamp"):
            # Being deleted (a finalizer may keep it for long): a slot granted for a Job it
            # will not make or unsuspend goes to the next run, which would wait for it.
            now, wall = time.monotonic(), time.time()
            for run in self._admission_keys(key):
                wake(self.work, self.cache.slots.withdraw(run, now, wall))
            return None
        try:
            spec: BackgroundJobSpec | None = parse_spec(body)
        except ValidationError:
            spec = None  # decide says why (InvalidSpec)
        obs = await self._gather(key, body, spec)
        if spec is not None and spec.job_type == JobType.RECURRING:
            await self._admit_held_runs(key, obs)
        settings = self.cache.settings_for(key, self.settings)
        waits_turn = False
        plan = decide(obs, settings)
        try:
            for _ in range(MORE_DECIDES):
                if plan.need_attempts is not None and plan.need_attempts not in obs.attempt_pods:
                    await self._fetch_attempts(key, obs, plan.need_attempts)
                elif plan.need_termination is not None:
                    await self._fetch_termination(key, obs, plan.need_termination)
                elif plan.need_pod_policy_admission and obs.pod_policy_admission is None:
                    obs.pod_policy_admission = await self._pod_policy_admission()
                elif plan.need_pods is not None:
                    await self._fetch_pods(key, obs, plan.need_pods)
                elif plan.admission is not None and plan.creates_job and obs.admitted is None:
                    if not self.cache.slots.ready:
                        # Starting up: decided again once admission opens (no status
                        # written meanwhile, not even Queued).
                        self.cache.slots.register(key, want_of(body, plan.admission.queue))
                        self.deferred.add(key)
                        return None
                    self._admit(key, body, plan.admission.queue, obs)
                    if obs.admitted:
                        break
                else:
                    break
                plan = decide(obs, settings)
            turn_in = self.cache.slots.has_turn(key, time.monotonic()) if plan.creates_job else None
            if turn_in is not None:
                # Admitted, but a run of its queue admitted before it has yet to make its
                # Job: that one first (this key is woken when its turn comes, or when its
                # patience runs out).
                waits_turn = True
                self.work.add_at(key, datetime.now(UTC) + timedelta(seconds=turn_in))
                return None
            return await self._apply(key, body, plan, obs)
        finally:
            slots = self.cache.slots
            made_nothing = (
                plan.creates_job
                and slots.granted_without_job(key)
                and not self._job_exists(key, plan)
            )
            if not waits_turn and (plan.admission is None or made_nothing):
                # Not waiting (any more), or granted a slot for a Job that was not made
                # (refused, or an error): the slot goes to the next run. (A slot granted
                # while this reconcile wrote Queued is kept: the key was woken for it.)
                wake(self.work, slots.withdraw(key, time.monotonic(), time.time()))

    def _admit(self, key: Key, body: Body, queue: str, obs: Observed) -> None:
        """Ask ``queue`` for a slot (before any await: two workers never take the last one):
        ``obs.admitted``, and why not; the runs this round admitted are woken. A queue
        handed to Kueue admits at once (unless paused): Kueue holds the Job it makes."""
        if obs.kueue_local_queue is not None:
            policy = self.cache.queue_policy((key[0], queue))
            wake(self.work, self.cache.slots.withdraw(key, time.monotonic(), time.time()))
            obs.admitted = not policy.paused
            if policy.paused:
                obs.wait_reason = c.Reason.QUEUE_PAUSED
                obs.wait_message = f"queue {queue} is paused"
            return
        verdict, dispatch = self.cache.slots.want(
            key, want_of(body, queue), time.monotonic(), time.time()
        )
        wake(self.work, dispatch, but=key)
        obs.admitted = verdict.admitted
        obs.wait_reason = verdict.reason
        obs.wait_message = verdict.message or None

    async def _admit_held_runs(self, key: Key, obs: Observed) -> None:
        """The recurring runs of ``key`` held suspended by their queue (controller.heldruns):
        each asks for a slot in its place; those granted one are unsuspended. Why the
        first still waits goes to ``obs`` (the Queued condition)."""
        slots = self.cache.slots
        for name in self.cache.held_runs(key):
            run = run_key(key, name)
            want = self.cache.run_want(run)
            if name not in obs.jobs or want is None:
                continue
            if not slots.holds(run):
                if not slots.ready:  # asked again once admission opens
                    slots.register(run, want)
                    self.deferred.add(key)
                    verdict = Verdict(False, c.Reason.OPERATOR_STARTING, "the operator is starting")
                else:
                    verdict, dispatch = slots.want(run, want, time.monotonic(), time.time())
                    wake(self.work, dispatch, but=run)
                if not verdict.admitted:
                    if obs.wait_reason is None:
                        obs.wait_reason, obs.wait_message = verdict.reason, verdict.message
                    continue
            turn_in = slots.has_turn(run, time.monotonic())
            if turn_in is not None:  # a run granted before it starts first (woken then)
                self.work.add_at(key, datetime.now(UTC) + timedelta(seconds=turn_in))
                continue
            job, unsuspended = await self.kube.unsuspend_job(key[0], name)
            if job is not None:  # else gone: its deletion frees the slot (observe_job)
                self._observed_job(job)
                obs.jobs[name] = ObservedJob.from_body(job)
            if unsuspended:  # by this call only: the Event is posted once per run
                log.info("recurring run %s/%s admitted", key[0], name)
                await self.events.post_now(
                    obs.bgj,
                    "Normal",
                    c.EventReason.ADMITTED,
                    admitted_message(name, want, time.time()),
                )

    def _admission_keys(self, key: Key) -> list[Key]:
        """``key`` and its held recurring runs: what may hold a grant of its queue."""
        return [key, *(run_key(key, name) for name in self.cache.held_runs(key))]

    def turns_failed(self, key: Key) -> None:
        """A reconcile of ``key`` failed: its runs granted a slot that still have their Job
        to make (or to unsuspend) stop holding back the runs granted after them once
        ``queueing.TURN_PATIENCE`` has passed."""
        now = time.monotonic()
        for run in self._admission_keys(key):
            self.cache.slots.turn_failed(run, now)

    # ---------------------------------------------------------------- gather

    async def _gather(self, key: Key, body: Body, spec: BackgroundJobSpec | None) -> Observed:
        """The object's Jobs, CronJob and parent: from the cache, or asked of the API server
        when the cache cannot know yet (a watch lags a create, or the operator just started)."""
        ns, name = key
        uid = body["metadata"].get("uid")
        status = body.get("status") or {}
        jobs = self.cache.jobs(key)
        cronjob = self.cache.cronjob(key)
        parent: Body | None = None
        if spec is not None and spec.job_type == JobType.RECURRING:
            if cronjob is None and status.get("phase"):
                found = await self.kube.get("CronJob", ns, builders.cronjob_name(name))
                if found is not None:
                    self.cache.observe_cronjob("ADDED", found)
                    cronjob = self.cache.cronjob(key)
            if cronjob is not None:
                owners = (uid, cronjob["metadata"].get("uid"))
                jobs = {n: job for n, job in jobs.items() if job.owner_uid in owners}
        elif spec is not None:
            jobs = {n: job for n, job in jobs.items() if job.owner_uid == uid}
            run = int(status.get("runs") or 0)
            attempt = int(status.get("attempt") or 1)
            current = current_job_name(name, run, attempt) if run else None
            if current and current not in jobs and status.get("phase") not in c.FINISHED_PHASES:
                found = await self.kube.get("Job", ns, current)
                if found is not None and ObservedJob.from_body(found).owner_uid == uid:
                    self._observed_job(found)
                    jobs[current] = ObservedJob.from_body(found)
        cycle = None
        if spec is not None and spec.after is not None and spec.after.name is not None:
            parent = await self._parent(key, body, spec.after.name)
            cycle = self.cache.cycle(key)
        obs = Observed(
            bgj=body,
            now=datetime.now(UTC),
            jobs=jobs,
            cronjob=cronjob,
            parent=parent,
            cycle=cycle,
            group=self.cache.group(key),
        )
        if spec is not None and spec.job_type != JobType.RECURRING:
            await self._gather_kueue(key, obs, spec.queue)
        return obs

    async def _gather_kueue(self, key: Key, obs: Observed, queue: str) -> None:
        """A queue handed to Kueue: its LocalQueue, and the Workload of the run's unfinished
        Job while Kueue holds it (or has not yet been seen to admit it)."""
        obs.kueue_local_queue = self.cache.queue_policy((key[0], queue)).kueue_local_queue
        if obs.kueue_local_queue is None:
            return
        status = obs.bgj.get("status") or {}
        job = obs.jobs.get(status.get("jobName") or "")
        if job is None or job.finished:
            return
        admitted = any(
            cnd.get("type") == c.ConditionType.ADMITTED and cnd.get("status") == "True"
            for cnd in status.get("conditions") or []
        )
        if admitted and not job.suspended:
            return
        try:
            found = await self.kube.workloads(key[0], job.uid)
        except ApiException as exc:
            # Kueue's API unreadable (RBAC, a hung server): decided without it, and said.
            log.warning("%s/%s: cannot read Kueue's Workloads: %s", *key, exc.reason)
            return
        obs.workload = WorkloadState(installed=False) if found is None else workload_state(found)

    async def _parent(self, key: Key, body: Body, parent_name: str) -> Body | None:
        """The parent of a continuation. Before the first run: to decide whether to start. On
        a requeue: for the parent's result (BACKGROUNDJOBS_PARENT_RESULT), which a new run
        gets again. Asked of the API server when not cached at such a time."""
        parent_key = (key[0], parent_name)
        parent = self.cache.bgj(parent_key)
        if parent is not None:
            return parent
        status = body.get("status") or {}
        requeue = (body["metadata"].get("annotations") or {}).get(c.ANNOTATION_REQUEUE)
        handled = (status.get("handledActions") or {}).get("requeue")
        if status.get("runs") and not (requeue and requeue != handled):
            return None
        parent = await self.kube.get(c.KIND, key[0], parent_name)
        if parent is not None:
            self.cache.store_bgj(parent_key, parent)
        return parent

    async def _fetch_termination(self, key: Key, obs: Observed, job_name: str) -> None:
        job = obs.jobs[job_name]
        if job.failed_indexes:  # a batch with failed items: each one's error, same list
            pods = await self.kube.owned_job_pods(
                key[0], job.uid, not_older_than=self.cache.job_version(key[0], job_name)
            )
            obs.termination[job_name] = termination_message_of(pods, succeeded=job.complete)
            obs.item_errors[job_name] = item_errors(pods, indexes_of(job.failed_indexes))
            return
        obs.termination[job_name] = await self.kube.termination_message(
            key[0],
            job_name,
            job.uid,
            succeeded=job.complete,
            not_older_than=self.cache.job_version(key[0], job_name),
        )

    async def _fetch_attempts(self, key: Key, obs: Observed, job_name: str) -> None:
        """The Job's finished pods, for status.attempts; for a finished Job the same list
        gives its termination message (no second read)."""
        job = obs.jobs[job_name]
        pods = await self.kube.owned_job_pods(
            key[0], job.uid, not_older_than=self.cache.job_version(key[0], job_name)
        )
        obs.attempt_pods[job_name] = pod_attempts(pods)
        if job.finished and job_name not in obs.termination:
            obs.termination[job_name] = termination_message_of(pods, succeeded=job.complete)

    async def _pod_policy_admission(self) -> AdmissionInForce:
        """Whether the chart's pod policy is in force now (read each time a job needs it:
        only jobs that ask for what the operator alone would refuse)."""
        expected = self.settings.pod_policy.admission
        if expected is None:
            return AdmissionInForce(None)
        policy, binding = await self.kube.admission_policy(expected.policy, expected.binding)
        return admission_in_force(expected, policy, binding)

    async def _fetch_pods(self, key: Key, obs: Observed, job_name: str) -> None:
        """What keeps the Job's pod from starting: its pods, and when it has none its
        FailedCreate Events (both served from the API server's watch cache)."""
        job = obs.jobs[job_name]
        now = time.monotonic()
        while self._pod_reads:
            oldest, (read_at, _) = next(iter(self._pod_reads.items()))
            if now - read_at < POD_READ_REUSE:
                break
            del self._pod_reads[oldest]
        recent = self._pod_reads.get(job.uid)
        if recent is not None:
            obs.pods[job_name] = recent[1]
            return
        pods = await self.kube.job_pods(key[0], job_name)
        failed_creates: list[Body] = []
        if job.active_pods == 0 and not pods:
            try:
                failed_creates = await self.kube.job_events(key[0], job.uid, "FailedCreate")
            except ApiException as exc:
                if exc.status != 403:
                    raise
                # An older Role without "list events": the rest of the job's life goes on,
                # only a refused pod create goes unseen.
                log.warning("%s/%s: may not list Events (%s): grant list on events", *key, exc)
        obs.pods[job_name] = JobPods.from_bodies(pods, failed_creates)
        self._pod_reads[job.uid] = (time.monotonic(), obs.pods[job_name])

    def _observed_job(self, obj: Body) -> None:
        """Tell the cache about a Job the API server returned; wake whom a freed slot frees."""
        meta = obj.get("metadata") or {}
        self.cache.job_answered(meta.get("namespace", ""), meta.get("name", ""), time.monotonic())
        change = self.cache.observe_job("ADDED", obj)
        if change is not None:
            self.work.add_all(change.woken)

    def _job_exists(self, key: Key, plan: Plan) -> bool:
        names = [obj["metadata"]["name"] for obj in plan.create if obj["kind"] == "Job"]
        jobs = self.cache.jobs(key)
        return any(name in jobs for name in names)

    # ---------------------------------------------------------------- apply

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
                    owners = (existing or {}).get("metadata", {}).get("ownerReferences") or []
                    if existing is None or not any(
                        o.get("uid") == body["metadata"]["uid"] for o in owners
                    ):
                        log.info(
                            "%s %s/%s belongs to an older object; waiting",
                            obj["kind"],
                            ns,
                            obj["metadata"]["name"],
                        )
                        self.work.add_at(key, datetime.now(UTC) + timedelta(seconds=2))
                        return None
                    created = existing  # ours, from an earlier attempt: adopted
                elif namespace_terminating(exc):
                    # Its namespace is being deleted, this object with it: not the spec's
                    # fault (no InvalidSpec, no failed job counted), and nothing to write.
                    # A slot granted for the Job goes to the next run (reconcile's finally).
                    log.info(
                        "%s/%s: namespace %s is being deleted; its %s is not made",
                        ns,
                        key[1],
                        ns,
                        obj["kind"],
                    )
                    return None
                elif exc.status in (400, 403, 422):
                    refused = f"the API server refused {obj['kind']} {obj['metadata']['name']}"
                    plan = self._invalid(body, obs, f"{refused}: {status_message(exc)}")
                    break
                else:
                    raise
            if obj["kind"] == "Job":
                self._observed_job(created)
                created_job = True
            elif obj["kind"] == "CronJob":
                self.cache.observe_cronjob("ADDED", created)
        if plan.replace_cronjob is not None and obs.cronjob is not None:
            try:
                replaced = await self.kube.replace_cronjob(plan.replace_cronjob, obs.cronjob)
                self.cache.observe_cronjob("MODIFIED", replaced)
            except ApiException as exc:
                if exc.status in (400, 422):
                    refused = f"the API server refused the CronJob update: {status_message(exc)}"
                    plan = self._invalid(body, obs, refused)
                elif exc.status == 409:
                    self.work.add(key)  # changed meanwhile: the watch brings the new one
                else:
                    raise

        if created_job:
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
        wake = (
            plan.status.get("phase") != old_status.get("phase") or patch.get("result") is not None
        )
        children = self.cache.children(key)
        early = bool(patch) and wake and bool(children)
        if early:
            # Hand-off (bench M5): the outcome is already a fact (the Job finished), so the
            # waiting children see it now and start while the status patch is in flight,
            # instead of one API round trip later. Undone below if the patch fails.
            self.cache.show_status(key, body, plan.status)
            self.work.add_all(children)
        warnings = [e for e in plan.events if e.type == c.EventType.WARNING]
        if patch:
            # Warnings before the status that reports them: a crash between the two would
            # otherwise lose them for good (Events have deterministic names: no duplicates).
            for event in warnings:
                await self.events.post_now(body, event.type, event.reason, event.message)
            version = body["metadata"].get("resourceVersion")
            try:
                updated = await self.kube.patch_status(ns, name, patch, version)
            except BaseException as exc:
                if early:
                    self.cache.unshow_status(key, body, plan.status)  # the retry writes it
                if isinstance(exc, ApiException) and exc.status == 409:
                    # Written on a version that is no longer current (another writer, or a
                    # stale leader): decide again on the current object, never overwrite it.
                    await self._refresh(key)
                    return
                if isinstance(exc, ApiException) and exc.status == 404:
                    self._gone(key)
                    return
                raise
            if updated:
                self.cache.store_bgj(key, updated)
        for event in plan.events:
            if (event.type == c.EventType.WARNING and not patch) or (
                event.type != c.EventType.WARNING and self.settings.events == "all"
            ):
                self.events.post(body, event.type, event.reason, event.message)
        for metric in plan.metrics:
            metrics.record(metric.name, metric.labels, metric.value)
        if wake:  # again after an early wake: a watch event may have hidden the outcome
            self.work.add_all(self.cache.children(key))
        if plan.delete_self:
            log.info("%s/%s: retention over, deleting", ns, name)
            await self.kube.delete_bgj(ns, name, body["metadata"]["uid"])
            return
        if plan.requeue_at is not None:
            self.work.add_at(key, plan.requeue_at)

    async def _refresh(self, key: Key) -> None:
        """Read ``key`` again and reconcile it on what is current."""
        current = await self.kube.get(c.KIND, *key)
        if current is None:
            self._gone(key)
            return
        self.cache.store_bgj(key, current)
        self.work.add(key)

    def _gone(self, key: Key) -> None:
        """The API server no longer has ``key``: as if the watch had shown its deletion."""
        self.work.forget(key)
        self.work.add_all(self.cache.forget_bgj(key))

    async def fail(self, key: Key, exc: Exception) -> None:
        """An error that comes from this object itself (its data), not from the API server:
        the object ends Failed/InvalidSpec with one Warning, and the others go on."""
        body = self.cache.bgj(key)
        if body is None:
            return
        message = f"the operator cannot act on it: {type(exc).__name__}: {exc}"[:1024]
        try:
            await self._finish(
                key, body, invalid_spec_plan(body, datetime.now(UTC), self.settings, message)
            )
        finally:  # it will not run: a place or a slot granted goes to the next run
            wake(self.work, self.cache.slots.withdraw(key, time.monotonic(), time.time()))

    def _invalid(self, body: Body, obs: Observed, message: str) -> Plan:
        return invalid_spec_plan(body, obs.now, self.settings, message)


def wake(work: WorkQueue, dispatch: Dispatch, but: Key | None = None) -> None:
    """Reconcile the runs a round of granting admitted (``but`` the one asking), and the
    first run of a rate-limited queue when its next token comes."""
    work.add_all(owners([k for k in dispatch.keys if k != but]))
    if dispatch.retry_at is not None and dispatch.retry_key is not None:
        delay = max(0.0, dispatch.retry_at - time.monotonic())
        work.add_at(owner_key(dispatch.retry_key), datetime.now(UTC) + timedelta(seconds=delay))


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
