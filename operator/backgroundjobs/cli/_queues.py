"""``bgjobs queue list|get|pause|resume`` (BackgroundJobQueue objects), and where a waiting
job stands in its queue (``describe``)."""

from __future__ import annotations

import argparse
import json
from typing import Any

import yaml
from kubernetes_asyncio.client.exceptions import ApiException

from backgroundjobs.api import constants as c
from backgroundjobs.api.constants import Phase
from backgroundjobs.cli._heldruns import queue_order
from backgroundjobs.client import AsyncClient, JobInfo
from backgroundjobs.errors import JobNotFound

Body = dict[str, Any]
MERGE_PATCH = "application/merge-patch+json"
COLUMNS = ("NAME", "MAX", "PRIORITY", "PAUSED", "PENDING", "RUNNING", "OLDEST")


def add_queue_command(commands: Any, connection_flags: Any, formatter: Any) -> None:
    """The ``queue`` command and its actions, on the parser's subcommands."""
    text = "list, show, pause or resume queues (BackgroundJobQueue objects)"
    queue = commands.add_parser("queue", help=text, description=text, formatter_class=formatter)
    connection_flags(queue, all_namespaces=False)
    actions = queue.add_subparsers(dest="queue_command", metavar="ACTION", required=True)
    for action, help_text in (
        ("list", "the namespace's queues: limit, priority, paused, pending, running"),
        ("get", "one queue (-o yaml|json: the object)"),
        ("pause", "running jobs finish, no new run starts (waiting jobs: QueuePaused)"),
        ("resume", "start admitting runs again"),
    ):
        sub = actions.add_parser(
            action, help=help_text, description=help_text, formatter_class=formatter
        )
        connection_flags(sub, all_namespaces=action == "list")
        if action != "list":
            sub.add_argument("name", metavar="NAME")
        if action in ("list", "get"):
            sub.add_argument("-o", "--output", choices=["json", "yaml", "name"])


async def cmd_queue(client: AsyncClient, args: argparse.Namespace, out: Any) -> int:
    """``queue list|get|pause|resume``."""
    custom = await client._custom()
    ns = client.namespace
    where = (c.GROUP, c.VERSION)
    if args.queue_command == "list":
        all_ns = bool(getattr(args, "all_namespaces", False))
        if all_ns:
            found = await custom.list_cluster_custom_object(*where, c.QUEUE_PLURAL)
        else:
            found = await custom.list_namespaced_custom_object(*where, ns, c.QUEUE_PLURAL)
        return _print(found.get("items") or [], args.output, out, all_ns=all_ns)
    try:
        if args.queue_command == "get":
            obj = await custom.get_namespaced_custom_object(*where, ns, c.QUEUE_PLURAL, args.name)
            return _print([obj], args.output, out)
        paused = args.queue_command == "pause"
        await custom.patch_namespaced_custom_object(
            *where,
            ns,
            c.QUEUE_PLURAL,
            args.name,
            {"spec": {"paused": paused}},
            _content_type=MERGE_PATCH,
        )
    except ApiException as exc:
        if exc.status == 404:
            raise JobNotFound(
                f"queue {args.name} has no BackgroundJobQueue in namespace {ns}"
                " (create one to pause it or to change its limits)"
            ) from None
        raise
    out.write(f"queue {args.name} {'paused' if paused else 'resumed'}\n")
    return 0


def _print(items: list[Body], output: str | None, out: Any, all_ns: bool = False) -> int:
    if output == "json":
        out.write(json.dumps(items[0] if len(items) == 1 else items, indent=2) + "\n")
    elif output == "yaml":
        out.write(yaml.safe_dump(items[0] if len(items) == 1 else items, sort_keys=False))
    elif output == "name":
        out.write("".join(f"{c.QUEUE_PLURAL}/{i['metadata']['name']}\n" for i in items))
    else:
        rows = [(("NAMESPACE",) if all_ns else ()) + COLUMNS]
        for item in items:
            spec, status = item.get("spec") or {}, item.get("status") or {}
            row = (
                item["metadata"]["name"],
                str(spec.get("maxConcurrency") or "-"),
                str(spec.get("priority") or 0),
                str(bool(spec.get("paused"))).lower(),
                str(status.get("pending") or 0),
                str(status.get("running") or 0),
                status.get("oldestPendingSince") or "-",
            )
            rows.append(((item["metadata"]["namespace"],) if all_ns else ()) + row)
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        for r in rows:
            out.write(
                "   ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip() + "\n"
            )
    return 0


async def queue_position(client: AsyncClient, job: JobInfo) -> str | None:
    """Where a Queued job stands: ``position 3 of 12 in queue fifo (QueueFull: ...)``, in
    the order the operator admits (creation time, then name); None when it does not wait."""
    if job.phase != Phase.QUEUED:
        return None
    # with the held runs of Recurring jobs (cli._heldruns); RFC 3339 UTC sorts as the time
    names = [name for _, name in sorted(set(await queue_order(client, job.namespace, job.queue)))]
    position = names.index(job.name) + 1 if job.name in names else len(names) + 1
    queued: Body = next(
        (cond for cond in job.raw.get("status", {}).get("conditions") or []
         if cond.get("type") == "Queued"),
        {},
    )  # fmt: skip
    why = f" ({queued.get('reason')}: {queued.get('message')})" if queued else ""
    return f"position {position} of {len(names)} in queue {job.queue}{why}"
