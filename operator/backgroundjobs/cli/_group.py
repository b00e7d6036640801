"""``bgjobs continue --group``: a continuation after a group of jobs."""

from __future__ import annotations

import argparse
from typing import Any

from backgroundjobs.cli._values import UsageError, parse_value
from backgroundjobs.client import AsyncClient
from backgroundjobs.client._groups import Group


def parse_group(text: str) -> Group:
    """``--group``: a name prefix, or ``key=value,...`` labels."""
    if "=" not in text:
        return text
    labels: dict[str, str] = {}
    for pair in text.split(","):
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"--group needs PREFIX or KEY=VALUE pairs, got {pair!r}")
        labels[key.strip()] = value.strip()
    return labels


async def continue_group(
    client: AsyncClient, args: argparse.Namespace, values: list[Any], options: dict[str, Any]
) -> str:
    """Create the continuation; with --group the first positional is the handler, so what
    argparse took as HANDLER is the first argument."""
    if args.count is None:
        raise UsageError("--group needs --count N: how many jobs the group has")
    if args.handler is not None:
        values = [parse_value(args.handler), *values]
    return await client.continue_batch_with(
        parse_group(args.group), args.parent, *values, count=args.count, when=args.when, **options
    )
