"""The ``bgjobs`` commands, on ``AsyncClient``; output goes through the pure ``render`` module."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import itertools
import os
import shutil
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Any, TextIO

from backgroundjobs.api.constants import ENV_HANDLER_MODULES, FINISHED_PHASES, LABEL_JOB_NAME
from backgroundjobs.cli import render
from backgroundjobs.cli._batch import create_batch
from backgroundjobs.cli._dryrun import ManifestCollector
from backgroundjobs.cli._group import continue_group
from backgroundjobs.cli._heldruns import held_run_lines, with_held_runs
from backgroundjobs.cli._pause import cmd_pause
from backgroundjobs.cli._queues import cmd_queue, queue_position
from backgroundjobs.cli._requests import apply_request_flags
from backgroundjobs.cli._requeue import requeue_changes
from backgroundjobs.cli._retry import retry_policy_of
from backgroundjobs.cli._values import (
    UsageError,
    parse_at,
    parse_kwargs,
    parse_kwargs_from,
    parse_labels,
    parse_seconds,
    parse_value,
    pod_template_of,
)
from backgroundjobs.cli.render import jsonpath
from backgroundjobs.cli.render.topbatches import render_batches
from backgroundjobs.client import AsyncClient
from backgroundjobs.errors import JobNotFound
from backgroundjobs.runtime.logrecord import is_progress, parse_record

MAX_DESCRIBED_RUNS = 10
SPINNER = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"


class WaitOutcome(Exception):
    """``wait`` ended without the wanted phase; ``code`` is the exit code."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


def _out() -> TextIO:
    return sys.stdout


def _err() -> TextIO:
    return sys.stderr


def _now() -> datetime:
    return datetime.now(UTC)


def _is_tty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def table_width(wide: bool = False) -> int | None:
    """80 columns, or the terminal's width when wider; ``-o wide`` off a terminal: no limit."""
    if not _is_tty(_out()):
        return None if wide else 80
    return max(shutil.get_terminal_size((80, 24)).columns, 80)


class CliClient(AsyncClient):
    """The client with kubectl's per-request flags (``--request-timeout``, ``--as``,
    ``--as-group``) on its connection."""

    def __init__(
        self,
        *,
        request_timeout: float | None = None,
        as_user: str | None = None,
        as_groups: Sequence[str] = (),
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self._request_flags = (request_timeout, as_user, list(as_groups))

    async def _api(self) -> Any:
        fresh = self._api_client is None
        api = await super()._api()
        if fresh:
            apply_request_flags(api, *self._request_flags)
        return api


def new_client(args: argparse.Namespace) -> AsyncClient:
    """The client for the cluster flags (``--kubeconfig``, ``--context``, ``-n``,
    ``--request-timeout``, ``--as``, ``--as-group``); with ``--dry-run=client`` one that
    keeps what it would create (``ManifestCollector``)."""
    connection = {
        "kubeconfig": getattr(args, "kubeconfig", None),
        "context": getattr(args, "context", None),
        "namespace": getattr(args, "namespace", None),
    }
    if getattr(args, "dry_run", "none") == "client":
        return ManifestCollector(**connection)
    timeout = getattr(args, "request_timeout", None)
    return CliClient(
        request_timeout=(
            parse_seconds(timeout, "--request-timeout").total_seconds() if timeout else None
        ),
        as_user=getattr(args, "as_user", None),
        as_groups=getattr(args, "as_groups", None) or (),
        **connection,
    )


def import_handler_modules() -> None:
    """Import the modules in $BACKGROUNDJOBS_HANDLER_MODULES so the arguments of their
    handlers are checked before a job is created (as the runtime will check them)."""
    for module in filter(
        None, (m.strip() for m in os.environ.get(ENV_HANDLER_MODULES, "").split(","))
    ):
        importlib.import_module(module)


async def run(args: argparse.Namespace) -> int:
    """Run the parsed command; returns the exit code (errors are raised)."""
    handlers: dict[str, Callable[[AsyncClient, argparse.Namespace], Awaitable[int]]] = {
        "enqueue": cmd_create,
        "batch": cmd_create,
        "schedule": cmd_create,
        "continue": cmd_create,
        "recurring": cmd_recurring,
        "requeue": cmd_action,
        "trigger": cmd_action,
        "cancel": cmd_action,
        "delete": cmd_action,
        "get": cmd_get,
        "list": cmd_get,
        "describe": cmd_describe,
        "logs": cmd_logs,
        "wait": cmd_wait,
        "top": cmd_top,
        "suspend": cmd_pause,
        "resume": cmd_pause,
        "queue": lambda client, args: cmd_queue(client, args, _out()),
    }
    async with new_client(args) as client:
        return await handlers[args.command](client, args)


def _job_options(args: argparse.Namespace) -> dict[str, Any]:
    handler_kwargs: dict[str, Any] = parse_kwargs(args.kwargs, args.kwarg)
    handler_kwargs.update(parse_kwargs_from(args.kwarg_from, handler_kwargs))
    options: dict[str, Any] = {
        "queue": args.queue,
        "retries": args.retries,
        "timeout": args.timeout,
        "image": args.image,
        "labels": parse_labels(args.label) or None,
        "handler_kwargs": handler_kwargs,
        "pod_template": pod_template_of(args.pod_template, args.env),
        "keep_succeeded": getattr(args, "keep_succeeded", None),
        "keep_failed": getattr(args, "keep_failed", None),
        "concurrency_key": args.concurrency_key,
        "retry_policy": retry_policy_of(args),
    }
    if getattr(args, "name", None):
        options["name"] = args.name
    return options


async def _print_created(client: AsyncClient, name: str, output: str | None, verb: str) -> None:
    if isinstance(client, ManifestCollector):  # --dry-run=client: nothing was sent
        manifest = client.manifests[-1]
        if output in ("json", "yaml"):
            _out().write(render.to_json(manifest) if output == "json" else render.to_yaml(manifest))
        elif output == "name":
            print(render.resource_name(name), file=_out())
        else:
            print(f"{render.resource_name(name)} {verb} (dry run)", file=_out())
        return
    if output == "name":
        print(render.resource_name(name), file=_out())
    elif output in ("json", "yaml"):
        job = await client.get(name)
        text = render.to_json(job.raw) if output == "json" else render.to_yaml(job.raw)
        _out().write(text)
    else:
        print(f"{render.resource_name(name)} {verb}", file=_out())


async def cmd_create(client: AsyncClient, args: argparse.Namespace) -> int:
    """``enqueue``, ``schedule`` and ``continue``."""
    import_handler_modules()
    values = [parse_value(a) for a in args.args]
    options = _job_options(args)
    if args.command == "enqueue":
        name = await client.enqueue(args.handler, *values, **options)
    elif args.command == "batch":
        name = await create_batch(client, args, options)
    elif args.command == "schedule":
        if args.at is not None:
            name = await client.schedule(args.handler, *values, at=parse_at(args.at), **options)
        else:
            name = await client.schedule(args.handler, *values, delay=args.delay, **options)
    elif args.group is not None:
        name = await continue_group(client, args, values, options)
    else:
        if args.handler is None:
            raise UsageError("continue: HANDLER is required (bgjobs continue PARENT HANDLER)")
        name = await client.continue_with(
            args.parent, args.handler, *values, when=args.when, **options
        )
    await _print_created(client, name, args.output, "created")
    return 0


async def cmd_recurring(client: AsyncClient, args: argparse.Namespace) -> int:
    """``recurring add|remove|trigger``."""
    if args.recurring_command == "add":
        import_handler_modules()
        values = [parse_value(a) for a in args.args]
        name = await client.add_or_update_recurring(
            args.id,
            args.handler,
            *values,
            cron=args.cron,
            time_zone=args.tz,
            misfire=args.misfire,
            max_catch_up=args.max_catch_up,
            **_job_options(args),
        )
        await _print_created(client, name, args.output, "configured")
    elif args.recurring_command == "remove":
        existed = await client.remove_recurring(args.id)
        outcome = "deleted" if existed else "not found (nothing to remove)"
        print(f"{render.resource_name(args.id)} {outcome}", file=_out())
    else:
        await client.trigger(args.id)
        print(f"{render.resource_name(args.id)} triggered", file=_out())
    return 0


async def cmd_action(client: AsyncClient, args: argparse.Namespace) -> int:
    """``requeue``, ``trigger``, ``cancel`` and ``delete`` of one or more jobs."""
    verbs = {
        "requeue": "requeued",
        "trigger": "triggered",
        "cancel": "cancelled",
        "delete": "deleted",
    }
    missing = 0
    for name in args.names:
        try:
            if args.command == "delete":
                await client.delete(name)
            elif args.command == "requeue":
                await client.requeue(name, **requeue_changes(args))
            else:
                await getattr(client, args.command)(name)
        except JobNotFound as exc:
            print(f"error: {exc}", file=_err())
            missing += 1
            continue
        print(f"{render.resource_name(name)} {verbs[args.command]}", file=_out())
    return 3 if missing else 0


async def cmd_get(client: AsyncClient, args: argparse.Namespace) -> int:
    """``get``/``list``: a table, or ``-o json|yaml|name``; ``-w`` then streams changes."""
    names: list[str] = getattr(args, "names", [])
    all_ns = bool(getattr(args, "all_namespaces", False))
    if names and all_ns:
        raise UsageError("a job name cannot be combined with -A/--all-namespaces")
    missing = 0
    if names:
        jobs = []
        for name in names:
            try:
                jobs.append(await client.get(name))
            except JobNotFound as exc:
                print(f"error: {exc}", file=_err())
                missing += 1
    else:
        jobs = await client.list(
            all_namespaces=all_ns,
            phase=args.phase,
            type=args.type,
            queue=args.queue,
            handler=args.handler,
            labels=args.selector,
        )
    if args.watch:
        await _watch(client, args, all_ns, names)
        return 0
    if args.sort_by:
        try:
            key = jsonpath.sort_key(args.sort_by)
        except jsonpath.JsonPathError as exc:
            raise UsageError(f"--sort-by: {exc}") from None
        jobs.sort(key=lambda job: key(job.raw))
    output = args.output or ""
    if output.startswith("jsonpath="):
        obj = jobs[0].raw if len(names) == 1 and jobs else render.as_list([j.raw for j in jobs])
        try:
            _out().write(jsonpath.render(output[len("jsonpath=") :], obj))
        except jsonpath.JsonPathError as exc:
            raise UsageError(f"-o jsonpath: {exc}") from None
    elif output == "json" or output == "yaml":
        obj = jobs[0].raw if len(names) == 1 and jobs else render.as_list([j.raw for j in jobs])
        _out().write(render.to_json(obj) if output == "json" else render.to_yaml(obj))
    elif output == "name":
        for job in jobs:
            print(render.resource_name(job.name), file=_out())
    elif jobs:
        wide = output == "wide"
        if wide:  # where held recurring runs stand, in the MESSAGE column
            jobs = [await with_held_runs(client, job) for job in jobs]
        table = render.render_jobs(
            jobs, _now(), wide=wide, namespaces=all_ns, width=table_width(wide)
        )
        if args.no_headers:
            table = table.split("\n", 1)[1]
        _out().write(table)
    elif not names:
        where = "any namespace" if all_ns else f"{client.namespace} namespace"
        print(f"No resources found in {where}.", file=_err())
    return 3 if missing else 0


async def _watch(
    client: AsyncClient, args: argparse.Namespace, all_ns: bool, names: list[str]
) -> None:
    wide = args.output == "wide"
    columns = render.job_columns(wide=wide, namespaces=all_ns)
    widths = render.watch_widths(columns, table_width(wide) or 200)
    out = _out()
    if not args.no_headers:
        print(render.format_row(widths, [c.header for c in columns]), file=out, flush=True)
    async for event in client.watch(all_namespaces=all_ns, labels=args.selector):
        job = event.job
        if names and job.name not in names:
            continue
        if any(
            want is not None and have != want
            for want, have in (
                (args.phase, job.phase),
                (args.type, job.type),
                (args.queue, job.queue),
                (args.handler, job.handler),
            )
        ):
            continue
        row = render.job_row(job, _now(), wide=wide, namespaces=all_ns)
        if event.type == "DELETED":
            row[columns.index(next(c for c in columns if c.header == "PHASE"))] = "Deleted"
        print(render.format_row(widths, row), file=out, flush=True)


async def cmd_describe(client: AsyncClient, args: argparse.Namespace) -> int:
    """``describe``: fields and a timeline of conditions, Events, Jobs and pods."""
    job = await client.get(args.name)
    runs = (await client.runs(args.name))[-MAX_DESCRIBED_RUNS:]
    pods = await client.pods(args.name)
    pods = [
        p
        for p in pods
        if p["metadata"].get("labels", {}).get(LABEL_JOB_NAME)
        in {r["metadata"]["name"] for r in runs}
    ]
    lookups = [client.events(args.name)]
    lookups += [client.events(r["metadata"]["name"], kind="Job") for r in runs]
    lookups += [client.events(p["metadata"]["name"], kind="Pod") for p in pods]
    events = [event for found in await asyncio.gather(*lookups) for event in found]
    timeline = render.build_timeline(job.raw, events, runs, pods)
    _out().write(render.render_describe(job, timeline, _now(), width=table_width() or 80))
    position = await queue_position(client, job)
    if position is not None:
        _out().write(f"Waiting:     {position}\n")
    for held in await held_run_lines(client, job):
        _out().write(f"Waiting:     {held}\n")
    return 0


async def cmd_logs(client: AsyncClient, args: argparse.Namespace) -> int:
    """``logs``: the current run's (or ``--run N``'s) handler log, progress as a bar."""
    out, err = _out(), _err()
    live_bar = _is_tty(out) and args.follow and not args.raw
    pending_bar = False
    pod = None
    async for line in client.logs(args.name, run=args.run, follow=args.follow):
        if line.pod != pod:
            pod = line.pod
            if pending_bar:
                out.write("\n")
                pending_bar = False
            print(f"# pod {pod}", file=err, flush=True)
        text = line.text if args.raw else render.render_log_line(line.text)
        if live_bar and text.startswith("[") and _is_progress(line.text):
            out.write("\r\x1b[K" + text)
            pending_bar = True
        else:
            if pending_bar:
                out.write("\n")
                pending_bar = False
            out.write(text + "\n")
        out.flush()
    if pending_bar:
        out.write("\n")
    return 0


def _is_progress(raw: str) -> bool:
    record = parse_record(raw)
    return record is not None and is_progress(record)


async def cmd_wait(client: AsyncClient, args: argparse.Namespace) -> int:
    """``wait``: until the job finishes (or reaches ``--for``); a spinner on a terminal."""
    timeout = parse_seconds(args.timeout, "--timeout") if args.timeout else None
    wanted = {args.for_phase} if args.for_phase else set(FINISHED_PHASES)
    state: dict[str, Any] = {"phase": None, "start": time.monotonic()}
    spinner = None
    if _is_tty(_err()):
        spinner = asyncio.create_task(_spin(args.name, state))
    try:
        job = await client.wait(
            args.name,
            timeout=timeout,
            until=wanted | set(FINISHED_PHASES),
            on_change=lambda j: state.__setitem__("phase", j.phase),
        )
    finally:
        if spinner is not None:
            spinner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await spinner
            _err().write("\r\x1b[K")
    print(f"{render.resource_name(job.name)} {job.phase}", file=_out())
    if args.for_phase and job.phase != args.for_phase:
        raise WaitOutcome(f"job {job.name} finished {job.phase}, not {args.for_phase}", 7)
    if not args.for_phase and job.phase != "Succeeded":
        detail = f": {job.message}" if job.message else ""
        raise WaitOutcome(f"job {job.name} {job.phase}{detail}", 7)
    return 0


async def _spin(name: str, state: dict[str, Any]) -> None:
    err = _err()
    for frame in itertools.cycle(SPINNER):
        elapsed = int(time.monotonic() - state["start"])
        err.write(f"\r\x1b[K{frame} waiting for {name}: {state['phase'] or '...'} ({elapsed}s)")
        err.flush()
        await asyncio.sleep(0.1)


async def cmd_top(client: AsyncClient, args: argparse.Namespace) -> int:
    """``top``: counts by phase and queue, redrawn every ``--interval`` seconds."""
    all_ns = bool(getattr(args, "all_namespaces", False))
    scope = "all namespaces" if all_ns else f"namespace {client.namespace}"
    out = _out()
    tty = _is_tty(out)
    async for frame in _frames(client, all_ns, scope, args.interval, once=args.once):
        if tty and not args.once:
            out.write("\x1b[H\x1b[2J")
        out.write(frame)
        if not tty and not args.once:
            out.write("\n")
        out.flush()
    return 0


async def _frames(
    client: AsyncClient, all_ns: bool, scope: str, interval: float, *, once: bool
) -> AsyncIterator[str]:
    while True:
        jobs = await client.list(all_namespaces=all_ns)
        width = table_width() or 80
        yield render.render_top(jobs, _now(), scope, width=width) + render_batches(jobs, width)
        if once:
            return
        await asyncio.sleep(max(interval, 0.2))
