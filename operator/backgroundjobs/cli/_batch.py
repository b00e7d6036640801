"""``bgjobs batch HANDLER --items FILE.jsonl``: one batch of handler calls, one per line."""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING, Any

from backgroundjobs.errors import InvalidArguments

if TYPE_CHECKING:  # the parser imports this module without the [client] extra
    from backgroundjobs.client import AsyncClient


def add_batch_flags(parser: argparse.ArgumentParser) -> None:
    """The batch's own flags (the job flags are added by the caller)."""
    group = parser.add_argument_group("batch options")
    group.add_argument(
        "--items", required=True, metavar="FILE",
        help="JSON lines, one item per line: {\"args\": [...], \"kwargs\": {...}} (- reads stdin)",
    )  # fmt: skip
    group.add_argument(
        "--parallelism", type=int, default=20, metavar="N", help="items run at once (default 20)"
    )
    group.add_argument(
        "--max-failed", type=int, metavar="N",
        help="failure budget: at most N failed items and the batch still succeeds (default 0)",
    )  # fmt: skip


def read_items(path: str) -> list[dict[str, Any]]:
    """The items of a JSON-lines file (blank lines skipped); errors name the line."""
    items: list[dict[str, Any]] = []
    stream = sys.stdin if path == "-" else open(path, encoding="utf-8")  # noqa: SIM115
    with stream:
        for number, line in enumerate(stream, start=1):
            if not line.strip():
                continue
            try:
                item = json.loads(line)
            except json.JSONDecodeError as exc:
                raise InvalidArguments(f"{path} line {number}: not valid JSON: {exc}") from None
            if not isinstance(item, dict):
                raise InvalidArguments(
                    f"{path} line {number}: an item is an object with args and kwargs"
                )
            items.append(item)
    return items


async def create_batch(
    client: AsyncClient, args: argparse.Namespace, options: dict[str, Any]
) -> str:
    """Create the batch the parsed command describes; returns its name."""
    if args.args:
        raise InvalidArguments(
            "bgjobs batch takes no ARG: each item's arguments are in its line of --items"
        )
    return await client.enqueue_batch(
        args.handler,
        read_items(args.items),
        parallelism=args.parallelism,
        max_failed=args.max_failed,
        **options,
    )
