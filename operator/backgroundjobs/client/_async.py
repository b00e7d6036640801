"""``AsyncClient``: the asyncio core of the client, on kubernetes_asyncio.

``Client`` (the synchronous facade) is generated from this class, so every public coroutine
and async iterator here is also a plain method there.
"""

from __future__ import annotations

import asyncio
import builtins
import os
import random
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import aiohttp
from kubernetes_asyncio import client as k8s
from kubernetes_asyncio.client.exceptions import ApiException

from backgroundjobs._connection import (
    default_namespace,
    find_source,
    new_api_client,
)
from backgroundjobs._registry import handler_name
from backgroundjobs.api.constants import (
    ACTION_ANNOTATIONS,
    ANNOTATION_REQUEUE,
    FINISHED_PHASES,
    GROUP,
    KIND,
    LABEL_BATCH,
    LABEL_NAME,
    LABEL_RUN,
    MAX_NAME_LENGTH,
    PHASES,
    PLURAL,
    SELECTABLE_FIELDS,
    VERSION,
)
from backgroundjobs.api.misfire import MisfirePolicyName
from backgroundjobs.api.requester import FAILED_ONLY, requeue_value
from backgroundjobs.api.times import micro_time
from backgroundjobs.client._arguments import HandlerRef, PreparedCall, prepare_call
from backgroundjobs.client._batches import BatchItem, prepare_items
from backgroundjobs.client._errors import from_api_exception, is_transient
from backgroundjobs.client._groups import Group, group_after
from backgroundjobs.client._info import JobInfo
from backgroundjobs.client._logs import LogLine, controlled_by, job_logs, pods_of_jobs
from backgroundjobs.client._manifests import (
    FIELD_MANAGER,
    build_manifest,
    check_name,
    duration_text,
    generate_name,
    random_suffix,
    rfc3339,
    slug,
)
from backgroundjobs.client._misfire import misfire_spec
from backgroundjobs.client._options import (
    JobOptions,
    split_options,
    with_defaults,
    with_options,
)
from backgroundjobs.client._requeue import (
    RequeueChanges,
    changed_spec,
    check_requeueable,
    requeue_patch,
)
from backgroundjobs.client._suspend import RESUME_PATCH, Until, suspend_patch
from backgroundjobs.client._watch import WatchEvent, label_selector, list_objects, watch_jobs
from backgroundjobs.errors import (
    BackgroundJobsError,
    Conflict,
    InvalidArguments,
    InvalidSpec,
    JobNotFound,
)

MAX_ATTEMPTS = 4  # one try and three retries of a transient failure
LIST_PAGE_SIZE = 500
WATCH_SECONDS = 290  # below the API server's default --min-request-timeout * 2

When = Literal["Succeeded", "Failed", "Finished"]
Item = tuple[Sequence[Any], Mapping[str, Any]]
"""One job of ``enqueue_many``: ``(args, kwargs)`` for the handler."""


# Reads and writes of a requeue with changes when others keep writing the object meanwhile.
_REQUEUE_CONFLICT_TRIES = 5


def _now_value() -> str:
    """A fresh value for an action annotation (RFC 3339 with microseconds)."""
    return micro_time(datetime.now(UTC))


def _seconds(value: float | timedelta | None) -> float | None:
    if value is None:
        return None
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


class AsyncClient:
    """Create and manage BackgroundJobs from asyncio code.

    Connects with the kubeconfig (``kubeconfig=`` or ``$KUBECONFIG`` or ``~/.kube/config``,
    ``context=`` or its current context), else the in-cluster service account. The default
    namespace is ``namespace=``, else the kubeconfig context's, else the pod's, else
    ``default``; every method also takes ``namespace=``.

    Handler arguments: positional ones follow the handler, keyword ones are the method's
    ``**kwargs``. The method's own options (``queue``, ``retries``, ``timeout``, ``image``,
    ``name``, ``labels``, ``namespace``, ``pod_template``, ``handler_kwargs`` and the type's
    ``delay``/``at``, ``cron``/``time_zone``, ``when``) are keyword-only and reserved; a
    handler parameter with one of these names is passed in ``handler_kwargs={...}`` (or
    positionally). Use it as ``async with AsyncClient() as jobs:`` or call ``close()``.
    """

    def __init__(
        self,
        *,
        kubeconfig: str | os.PathLike[str] | None = None,
        context: str | None = None,
        namespace: str | None = None,
        request_timeout: float | None = None,
    ) -> None:
        self._source = find_source(kubeconfig, context)
        self._request_timeout = request_timeout
        self.namespace: str = namespace or default_namespace(self._source)
        """The namespace used when a method is not given ``namespace=``."""
        self._api_client: k8s.ApiClient | None = None
        self._whoami: tuple[str | None] | None = None
        self._connecting: asyncio.Lock | None = None

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the connections. The client may not be used afterwards."""
        if self._api_client is not None:
            api_client, self._api_client = self._api_client, None
            await api_client.close()

    # ---------------------------------------------------------------- creating jobs

    @with_options()
    async def enqueue(self, handler: HandlerRef, /, *args: Any, **kwargs: Any) -> str:
        """Create a fire-and-forget job: it runs at once. Returns the job's name.

        ``enqueue(send_mail, "a@b.c", subject="Welcome", body="...")``. The arguments are
        checked against the handler's signature first (``InvalidArguments``); the API server
        checks the rest (``InvalidSpec``). ``name`` defaults to ``<handler>-<random>``.
        """
        return await self._submit(handler, args, kwargs, {})

    @with_options()
    async def schedule(
        self,
        handler: HandlerRef,
        /,
        *args: Any,
        delay: timedelta | str | None = None,
        at: datetime | None = None,
        **kwargs: Any,
    ) -> str:
        """Create a delayed job, due ``delay`` after its creation (a timedelta or ``"90s"``)
        or ``at`` an aware datetime; exactly one of them. Returns the job's name."""
        if (delay is None) == (at is None):
            raise InvalidSpec(
                "schedule() needs exactly one of delay= (a timedelta) or at= (a datetime)"
            )
        when = {"delay": duration_text(delay, "delay")} if at is None else {"runAt": rfc3339(at)}
        return await self._submit(handler, args, kwargs, when)

    @with_options()
    async def continue_with(
        self,
        parent: str,
        handler: HandlerRef,
        /,
        *args: Any,
        when: When = "Succeeded",
        **kwargs: Any,
    ) -> str:
        """Create a continuation: it starts when the job ``parent`` (same namespace) reaches
        ``when`` (``Succeeded``, ``Failed`` or ``Finished``). Returns the child's name.

        The parent need not exist yet: the child waits for it."""
        return await self._submit(handler, args, kwargs, {"after": {"name": parent, "when": when}})

    @with_options()
    async def continue_batch_with(
        self,
        group: Group,
        handler: HandlerRef,
        /,
        *args: Any,
        count: int | None = None,
        when: When = "Succeeded",
        **kwargs: Any,
    ) -> str:
        """Create a continuation after a group of jobs (Hangfire's ContinueBatchWith): it
        starts once ``count`` members exist and every one reached ``when`` (Succeeded: all
        succeeded; Failed: all finished, one or more failed; Finished: all finished).
        Returns the child's name.

        ``group`` is what ``enqueue_many`` returned (``count`` defaults to the jobs it
        created), its ``name_prefix``, or a mapping of labels every member carries (then
        ``count`` is required). For a batch made by ``enqueue_batch``, use ``continue_with``."""
        after = group_after(group, count, when)
        return await self._submit(handler, args, kwargs, {"after": after})

    @with_options(without=("name",))
    async def add_or_update_recurring(
        self,
        recurring_id: str,
        handler: HandlerRef,
        /,
        *args: Any,
        cron: str,
        time_zone: str = "UTC",
        misfire: MisfirePolicyName | None = None,
        max_catch_up: int | None = None,
        **kwargs: Any,
    ) -> str:
        """Create or update the recurring job ``recurring_id`` (its name) running on ``cron``
        (``Cron.daily(2)``, ``"0 2 * * *"``, ``"@hourly"``) in ``time_zone``.

        ``misfire`` says what happens to the times missed while the cluster was down:
        ``"Latest"`` (default: one run, for the most recent), ``"Skip"`` (none) or ``"All"``
        (each once, oldest first, at most ``max_catch_up`` waiting at once; default 10).

        Idempotent (server-side apply, like Hangfire's ``RecurringJob.AddOrUpdate``): calling
        it again at every start-up updates the one object; options not given any more are
        removed. Returns ``recurring_id``.
        """
        options, handler_kwargs = split_options(kwargs, without=("name",))
        ns = options.get("namespace") or self.namespace
        check_name(recurring_id, "recurring_id")
        call = prepare_call(handler, args, handler_kwargs)
        manifest = build_manifest(
            name=recurring_id,
            namespace=ns,
            call=call,
            when={"schedule": cron, "timeZone": time_zone, **misfire_spec(misfire, max_catch_up)},
            **with_defaults(call, options),
        )
        await self._apply(manifest, ns)
        return recurring_id

    async def remove_recurring(self, recurring_id: str, *, namespace: str | None = None) -> bool:
        """Delete the recurring job and its CronJob and Jobs; absent is fine (Hangfire's
        ``RemoveIfExists``). Returns whether it existed."""
        try:
            await self.delete(recurring_id, namespace=namespace)
        except JobNotFound:
            return False
        return True

    @with_options(without=("name",))
    async def enqueue_many(
        self,
        handler: HandlerRef,
        items: Iterable[Item],
        /,
        *,
        concurrency: int = 32,
        on_progress: Callable[[int, int], None] | None = None,
        name_prefix: str | None = None,
        **kwargs: Any,
    ) -> builtins.list[str | BackgroundJobsError]:
        """Enqueue one fire-and-forget job per item, ``concurrency`` requests at a time.

        ``items`` are ``(args, kwargs)`` pairs; ``**kwargs`` (and ``handler_kwargs``) are
        handler keyword arguments common to every item (an item's own win). Returns, in
        order, each job's name or the error that item met (``InvalidArguments``,
        ``InvalidSpec``, ...): one bad item loses nothing else. Names are deterministic,
        ``<name_prefix>-<index>`` (default prefix ``<handler>-<random>``), so a create retried
        after a dropped connection never makes a second job; every job carries the label
        ``backgroundjobs.dev/batch=<prefix>``. A ``Conflict`` result means that name exists
        already (a rerun with the same ``name_prefix``). ``on_progress(done, total)`` is
        called after each item (on the event loop's thread).
        """
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        work = builtins.list(items)
        total = len(work)
        prefix = name_prefix or f"{slug(handler_name(handler))}-{random_suffix()}"
        if len(prefix) + 1 + len(str(max(total - 1, 0))) > MAX_NAME_LENGTH:
            raise InvalidSpec(f"name_prefix {prefix!r} is too long for {total} items")
        check_name(f"{prefix}-0", "name_prefix")
        options, common = split_options(kwargs, without=("name",))
        options["namespace"] = options.get("namespace") or self.namespace
        options["labels"] = {**dict(options.get("labels") or {}), LABEL_BATCH: prefix}
        results: builtins.list[str | BackgroundJobsError] = [
            BackgroundJobsError("not submitted") for _ in range(total)
        ]
        next_index = iter(range(total))
        done = 0

        async def submit(index: int) -> str:
            item = work[index]
            if not (isinstance(item, tuple | builtins.list) and len(item) == 2):
                raise InvalidArguments(
                    f"item {index}: expected an (args, kwargs) pair, got {item!r:.60}"
                )
            item_args, item_kwargs = item
            if isinstance(item_args, str | bytes) or not isinstance(item_kwargs, Mapping):
                raise InvalidArguments(f"item {index}: expected (args sequence, kwargs mapping)")
            item_options: JobOptions = {**options, "name": f"{prefix}-{index}"}
            return await self._submit(
                handler, tuple(item_args), {**common, **item_kwargs}, {}, item_options
            )

        async def worker() -> None:
            nonlocal done
            for index in next_index:
                try:
                    results[index] = await submit(index)
                except BackgroundJobsError as exc:
                    results[index] = exc
                except Exception as exc:
                    error = BackgroundJobsError(f"item {index}: {type(exc).__name__}: {exc}")
                    error.__cause__ = exc
                    results[index] = error
                done += 1
                if on_progress is not None:
                    on_progress(done, total)

        await self._custom()  # connect once, before the workers start
        workers = [asyncio.create_task(worker()) for _ in range(min(concurrency, max(total, 1)))]
        try:
            await asyncio.gather(*workers)
        finally:  # an exception from on_progress stops every worker, not just its own
            for task in workers:
                task.cancel()
        return results

    @with_options()
    async def enqueue_batch(
        self,
        handler: HandlerRef,
        items: Iterable[BatchItem],
        /,
        *,
        parallelism: int = 20,
        max_failed: int | None = None,
        **kwargs: Any,
    ) -> str:
        """Create a batch: one job running ``handler`` once per item, as one Indexed Job.
        Returns the batch's name.

        ``items`` are ``(args, kwargs)`` pairs or ``{"args": [...], "kwargs": {...}}``
        mappings; ``**kwargs`` (and ``handler_kwargs``) are keyword arguments common to every
        item (an item's own win). Every item is checked against the handler's signature
        before anything is created (``InvalidArguments`` naming the item). ``parallelism``
        items run at once; ``retries`` counts per item; ``max_failed`` is the failure budget:
        with at most that many failed items the batch succeeds, with more it stops and fails
        (default: every item must succeed). At most 10,000 items, 1,000,000 bytes of JSON:
        split more into several batches. ``continue_with(batch, ...)`` runs after it.
        """
        options, common = split_options(kwargs)
        name, ns = options.get("name"), options.get("namespace") or self.namespace
        handler_id, prepared, defaults = prepare_items(handler, items, common)
        when: dict[str, Any] = {"items": prepared, "parallelism": parallelism}
        if max_failed is not None:
            when["maxFailed"] = max_failed
        job_name = check_name(name) if name is not None else generate_name(handler_id)
        call = PreparedCall(handler_id, [], {}, defaults=defaults)  # the items hold the calls
        manifest = build_manifest(
            name=job_name, namespace=ns, call=call, when=when, **with_defaults(call, options)
        )
        regenerate = (lambda: generate_name(handler_id)) if name is None else None
        return await self._create(manifest, ns, regenerate)

    # ---------------------------------------------------------------- actions

    async def trigger(self, name: str, *, namespace: str | None = None) -> JobInfo:
        """Recurring: one extra run now, the schedule unchanged; Delayed: start now."""
        return await self._action("trigger", name, namespace)

    async def requeue(
        self,
        name: str,
        *,
        args: Sequence[Any] | None = None,
        kwargs: Mapping[str, Any] | None = None,
        image: str | None = None,
        env: Mapping[str, str] | None = None,
        resources: Mapping[str, Any] | None = None,
        failed_only: bool = False,
        namespace: str | None = None,
    ) -> JobInfo:
        """Run a finished job again: a new Job, ``runs`` + 1 (a Recurring job: one extra run
        now, its schedule unchanged). ``failed_only``, for a batch: the new run runs only
        the items the last run did not succeed (status.batch.rerun names them; a job that is
        not a batch, or has nothing to rerun, is not run again and gets a RequeueIgnored
        Warning Event). With changes, the new run uses them: ``args`` replace
        the positional arguments, ``kwargs`` and ``env`` (the handler container's) are set
        over the old ones, ``image`` replaces the image, ``resources`` ({"limits": {...}})
        replaces the handler container's requests or limits it names. The changes and the
        request are one write (``InvalidSpec`` naming the field, or ``Conflict``, and nothing
        changed). status.runHistory records the run's spec generation and the requester."""
        ns = namespace or self.namespace
        changes = RequeueChanges(args, kwargs or {}, image, env or {}, resources)
        request = requeue_value(_now_value(), await self._username())
        if failed_only:
            request = f"{FAILED_ONLY} {request}"
        if changes.empty():
            patch = {"metadata": {"annotations": {ANNOTATION_REQUEUE: request}}}
            return await self._merge_patch(name, patch, ns)
        for _ in range(_REQUEUE_CONFLICT_TRIES - 1):
            try:
                return await self._requeue_changed(name, ns, changes, request)
            except Conflict:
                continue  # written since it was read: read it again
        return await self._requeue_changed(name, ns, changes, request)

    async def _requeue_changed(
        self, name: str, ns: str, changes: RequeueChanges, request: str
    ) -> JobInfo:
        obj = await self._get_object(name, ns)
        check_requeueable(obj)
        ops = requeue_patch(obj, changed_spec(obj.get("spec") or {}, changes), request)
        return await self._patch(name, ops, ns, "application/json-patch+json")

    async def _username(self) -> str | None:
        """Who this client is to the API server (a SelfSubjectReview, asked once); None when
        the API server does not say (older than 1.28, or the review is not allowed)."""
        if self._whoami is None:
            auth = k8s.AuthenticationV1Api(await self._api())
            try:
                review = await auth.create_self_subject_review(k8s.V1SelfSubjectReview())
                user = review.status.user_info.username if review.status else None
            except ApiException:
                user = None
            self._whoami = (user,)
        return self._whoami[0]

    async def cancel(self, name: str, *, namespace: str | None = None) -> JobInfo:
        """Stop a pending or running job and keep its record (phase ``Cancelled``)."""
        return await self._action("cancel", name, namespace)

    async def suspend(
        self, name: str, *, until: Until = None, namespace: str | None = None
    ) -> JobInfo:
        """Pause the job: a job not started yet does not start, a Recurring job runs no more
        (a running run goes on). ``until`` (a datetime, an RFC 3339 string, or a duration
        from now: ``timedelta`` or ``"2h"``): the operator resumes it then, never earlier;
        None: until ``resume``. ``ValueError`` for an ``until`` that is not in the future."""
        patch = suspend_patch(until, datetime.now(UTC))
        return await self._merge_patch(name, patch, namespace)

    async def resume(self, name: str, *, namespace: str | None = None) -> JobInfo:
        """Undo ``suspend`` now (``spec.suspend`` false, ``spec.suspendUntil`` removed)."""
        return await self._merge_patch(name, RESUME_PATCH, namespace)

    async def delete(self, name: str, *, namespace: str | None = None) -> None:
        """Delete the job and, through ownerReferences, its Jobs, CronJob and pods
        (``JobNotFound`` if absent)."""
        ns = namespace or self.namespace
        custom = await self._custom()
        try:
            await custom.delete_namespaced_custom_object(
                GROUP, VERSION, ns, PLURAL, name, propagation_policy="Background"
            )
        except ApiException as exc:
            raise from_api_exception(exc, name=name, namespace=ns) from None

    # ---------------------------------------------------------------- reading

    async def get(self, name: str, *, namespace: str | None = None) -> JobInfo:
        """The job ``name`` (``JobNotFound`` if absent)."""
        return JobInfo.from_object(await self._get_object(name, namespace or self.namespace))

    async def list(
        self,
        *,
        namespace: str | None = None,
        all_namespaces: bool = False,
        phase: str | None = None,
        type: str | None = None,
        queue: str | None = None,
        handler: str | None = None,
        labels: Mapping[str, str] | str | None = None,
    ) -> builtins.list[JobInfo]:
        """The jobs of the namespace (or of all namespaces), optionally only those with the
        given phase, type, queue, handler and labels (a mapping or a label selector)."""
        ns = None if all_namespaces else (namespace or self.namespace)
        # The API server selects by the CRD's selectableFields; the filter below stays for a
        # CRD installed before them (its answer: 400 "field label not supported"), and for
        # the type, which a job has before the operator writes status.type.
        wanted = {"phase": phase, "queue": queue, "handler": handler}
        fields = ",".join(
            f"{SELECTABLE_FIELDS[key]}={value}"
            for key, value in wanted.items()
            if value is not None
        )
        custom = await self._custom()
        try:
            objects, _ = await list_objects(custom, ns, label_selector(labels), fields or None)
        except InvalidSpec as exc:
            if not fields or "field label not supported" not in str(exc):
                raise
            objects, _ = await list_objects(custom, ns, label_selector(labels))
        jobs = [JobInfo.from_object(obj) for obj in objects]
        return [
            job
            for job in jobs
            if (phase is None or job.phase == phase)
            and (type is None or job.type == type)
            and (queue is None or job.queue == queue)
            and (handler is None or job.handler == handler)
        ]

    async def watch(
        self,
        *,
        name: str | None = None,
        namespace: str | None = None,
        all_namespaces: bool = False,
        labels: Mapping[str, str] | str | None = None,
        initial: bool = True,
    ) -> AsyncIterator[WatchEvent]:
        """Stream changes of the jobs (or of the one job ``name``) as ``WatchEvent``s.

        With ``initial``, the current jobs come first as ``ADDED``. Runs until the consumer
        stops; reconnects (and lists again when history is gone) on its own."""
        ns = None if all_namespaces else (namespace or self.namespace)
        fields = f"metadata.name={name}" if name else None
        custom = await self._custom()
        async for event in watch_jobs(custom, ns, label_selector(labels), fields, initial=initial):
            yield event

    async def wait(
        self,
        name: str,
        *,
        timeout: float | timedelta | None = None,  # noqa: ASYNC109 - part of the API
        until: str | Iterable[str] = frozenset(FINISHED_PHASES),
        namespace: str | None = None,
        on_change: Callable[[JobInfo], None] | None = None,
    ) -> JobInfo:
        """Wait until the job's phase is one of ``until`` (default: Succeeded, Failed or
        Cancelled) and return it. Watches the object (no polling). ``timeout`` in seconds or
        a timedelta (None: no limit) raises ``TimeoutError``; ``JobNotFound`` if the job is
        absent or deleted meanwhile. ``on_change(job)`` sees every new phase."""
        phases = {until} if isinstance(until, str) else set(until)
        unknown = phases - set(PHASES)
        if unknown or not phases:
            raise ValueError(f"until: unknown phases {sorted(unknown)}; use some of {PHASES}")
        ns = namespace or self.namespace
        last: list[str | None] = [None]

        async def watch_until() -> JobInfo:
            reported: str | None = ""
            async for event in self.watch(name=name, namespace=ns):
                if event.type == "DELETED":
                    raise JobNotFound(f'backgroundjob "{name}" in namespace "{ns}" was deleted')
                job = event.job
                last[0] = job.phase
                if on_change is not None and job.phase != reported:
                    reported = job.phase
                    on_change(job)
                if job.phase in phases:
                    return job
            raise AssertionError("watch ended")  # pragma: no cover - watch never ends

        await self._get_object(name, ns)  # JobNotFound at once for a missing job
        seconds = _seconds(timeout)
        try:
            async with asyncio.timeout(seconds):
                return await watch_until()
        except TimeoutError:
            raise TimeoutError(
                f'backgroundjob "{name}" did not reach {"/".join(sorted(phases))} within'
                f" {seconds:g}s (phase: {last[0] or 'none yet'})"
            ) from None

    async def events(
        self, name: str, *, kind: str = KIND, namespace: str | None = None
    ) -> builtins.list[dict[str, Any]]:
        """The Events about the object ``name`` of ``kind`` (a BackgroundJob by default; also
        ``Job``, ``Pod``), oldest first, as dicts."""
        ns = namespace or self.namespace
        core = k8s.CoreV1Api(await self._api())
        try:
            result = await core.list_namespaced_event(
                ns, field_selector=f"involvedObject.name={name},involvedObject.kind={kind}"
            )
        except ApiException as exc:
            raise from_api_exception(exc, namespace=ns) from None
        events = [self._plain(event) for event in result.items]
        return sorted(events, key=_event_time)

    async def runs(
        self, name: str, *, namespace: str | None = None
    ) -> builtins.list[dict[str, Any]]:
        """The batch/v1 Jobs created for the job (its runs), oldest first, as dicts."""
        ns = namespace or self.namespace
        batch = k8s.BatchV1Api(await self._api())
        try:
            result = await batch.list_namespaced_job(ns, label_selector=f"{LABEL_NAME}={name}")
        except ApiException as exc:
            raise from_api_exception(exc, namespace=ns) from None
        jobs = [self._plain(job) for job in result.items]
        # the runs the operator made for it, not a look-alike carrying its labels
        jobs = [job for job in jobs if controlled_by(job, KIND, name=name)]
        return sorted(
            jobs,
            key=lambda j: (j["metadata"].get("creationTimestamp") or "", j["metadata"]["name"]),
        )

    async def pods(
        self, name: str, *, run: int | None = None, namespace: str | None = None
    ) -> builtins.list[dict[str, Any]]:
        """The pods of the job's runs (of run ``run`` only, when given), oldest first."""
        ns = namespace or self.namespace
        jobs = await self.runs(name, namespace=ns)
        if run is not None:
            jobs = [j for j in jobs if _run_of(j) == run]
        return await pods_of_jobs(await self._api(), jobs, ns)

    async def logs(
        self,
        name: str,
        *,
        run: int | None = None,
        follow: bool = False,
        namespace: str | None = None,
    ) -> AsyncIterator[LogLine]:
        """The handler container's log lines of the current run (or of run ``run``), pod by
        pod (a retried run has several). ``follow`` streams until the run's Job finishes."""
        ns = namespace or self.namespace
        job_name = await self._job_of_run(name, run, ns)
        async for line in job_logs(await self._api(), job_name, ns, follow=follow):
            yield line

    # ---------------------------------------------------------------- internals

    def _forget_connections(self) -> object:
        """In a forked child: drop the parent's connections without closing them (their
        sockets and event loop belong to the parent); the next call opens new ones. Returns
        what was dropped, for the caller to keep (collecting it would close shared sockets)."""
        inherited = (self._api_client, self._connecting)
        self._api_client = None
        self._connecting = None
        return inherited

    async def _api(self) -> k8s.ApiClient:
        if self._api_client is None:
            if self._connecting is None:
                self._connecting = asyncio.Lock()
            async with self._connecting:
                if self._api_client is None:
                    self._api_client = await new_api_client(self._source, self._request_timeout)
        return self._api_client

    async def _custom(self) -> Any:
        return k8s.CustomObjectsApi(await self._api())

    def _plain(self, model: Any) -> dict[str, Any]:
        assert self._api_client is not None
        plain: dict[str, Any] = self._api_client.sanitize_for_serialization(model)
        return plain

    async def _submit(
        self,
        handler: HandlerRef,
        args: Sequence[Any],
        kwargs: Mapping[str, Any],
        when: Mapping[str, Any],
        options: JobOptions | None = None,
    ) -> str:
        """Create the job of a create method: ``kwargs`` holds the handler's keyword arguments
        and the options (unless they are given apart, as ``options``)."""
        if options is None:
            options, kwargs = split_options(kwargs)
        name, ns = options.get("name"), options.get("namespace") or self.namespace
        call = prepare_call(handler, args, kwargs)
        job_name = check_name(name) if name is not None else generate_name(call.handler)
        manifest = build_manifest(
            name=job_name, namespace=ns, call=call, when=when, **with_defaults(call, options)
        )
        regenerate = (lambda: generate_name(call.handler)) if name is None else None
        return await self._create(manifest, ns, regenerate)

    async def _apply(self, manifest: dict[str, Any], ns: str) -> None:
        """Server-side apply of ``manifest`` (a recurring job's add-or-update)."""
        custom = await self._custom()
        try:
            await custom.patch_namespaced_custom_object(
                GROUP, VERSION, ns, PLURAL, manifest["metadata"]["name"], manifest,
                field_manager=FIELD_MANAGER, force=True,
                _content_type="application/apply-patch+yaml",
            )  # fmt: skip
        except ApiException as exc:
            raise from_api_exception(exc, namespace=ns) from None

    async def _create(
        self, manifest: dict[str, Any], ns: str, regenerate: Callable[[], str] | None
    ) -> str:
        """Create the object; retry transient failures with the same name (a 409 after such a
        retry means the first attempt was stored), and pick a new generated name on a
        collision."""
        custom = await self._custom()
        retried = False
        for attempt in range(1, MAX_ATTEMPTS + 1):
            name: str = manifest["metadata"]["name"]
            try:
                await custom.create_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, manifest)
                return name
            except ApiException as exc:
                if exc.status == 409 and retried:
                    return name
                if exc.status == 409 and regenerate is not None and attempt < MAX_ATTEMPTS:
                    manifest["metadata"]["name"] = regenerate()
                    continue
                if not is_transient(exc) or attempt == MAX_ATTEMPTS:
                    raise from_api_exception(exc, namespace=ns) from None
            except (TimeoutError, aiohttp.ClientError, ConnectionError) as exc:
                if attempt == MAX_ATTEMPTS:
                    raise BackgroundJobsError(f"cannot reach the API server: {exc}") from exc
            retried = True
            await asyncio.sleep(0.2 * 2**attempt * random.uniform(0.5, 1.5))
        raise AssertionError("unreachable")  # pragma: no cover

    async def _action(self, action: str, name: str, namespace: str | None) -> JobInfo:
        ns = namespace or self.namespace
        patch = {"metadata": {"annotations": {ACTION_ANNOTATIONS[action]: _now_value()}}}
        return await self._merge_patch(name, patch, ns)

    async def _merge_patch(
        self, name: str, patch: dict[str, Any], namespace: str | None
    ) -> JobInfo:
        return await self._patch(name, patch, namespace, "application/merge-patch+json")

    async def _patch(
        self, name: str, patch: Any, namespace: str | None, content_type: str
    ) -> JobInfo:
        ns = namespace or self.namespace
        custom = await self._custom()
        try:
            obj = await custom.patch_namespaced_custom_object(
                GROUP, VERSION, ns, PLURAL, name, patch, _content_type=content_type
            )
        except ApiException as exc:
            raise from_api_exception(exc, name=name, namespace=ns) from None
        return JobInfo.from_object(obj)

    async def _get_object(self, name: str, ns: str) -> dict[str, Any]:
        custom = await self._custom()
        try:
            obj: dict[str, Any] = await custom.get_namespaced_custom_object(
                GROUP, VERSION, ns, PLURAL, name
            )
        except ApiException as exc:
            raise from_api_exception(exc, name=name, namespace=ns) from None
        return obj

    async def _job_of_run(self, name: str, run: int | None, ns: str) -> str:
        if run is None:
            job = await self.get(name, namespace=ns)
            if not job.job_name:
                raise JobNotFound(f'backgroundjob "{name}" has no run yet (phase {job.phase})')
            return job.job_name
        for candidate in await self.runs(name, namespace=ns):
            if _run_of(candidate) == run:
                return str(candidate["metadata"]["name"])
        raise JobNotFound(f'backgroundjob "{name}" has no run {run}')


def _run_of(job: dict[str, Any]) -> int | None:
    value = (job.get("metadata", {}).get("labels") or {}).get(LABEL_RUN)
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _event_time(event: dict[str, Any]) -> str:
    for key in ("eventTime", "lastTimestamp", "firstTimestamp"):
        value = event.get(key) or ""
        if value:
            return str(value)
    return str((event.get("metadata") or {}).get("creationTimestamp") or "")


__all__ = ["AsyncClient", "Item"]
