"""``suspend NAME... [--until T]`` and ``resume NAME...``: pause until (spec.suspendUntil)."""

from __future__ import annotations

import argparse
import sys

from backgroundjobs.cli import render
from backgroundjobs.cli._values import UsageError
from backgroundjobs.client import AsyncClient
from backgroundjobs.errors import JobNotFound


async def cmd_pause(client: AsyncClient, args: argparse.Namespace) -> int:
    """Suspend (until ``--until``) or resume each job; 3 when one was not found."""
    missing = 0
    for name in args.names:
        try:
            if args.command == "suspend":
                info = await client.suspend(name, until=args.until)
                until = info.raw.get("spec", {}).get("suspendUntil")
                done = f"suspended until {until}" if until else "suspended"
            else:
                await client.resume(name)
                done = "resumed"
        except JobNotFound as exc:
            print(f"error: {exc}", file=sys.stderr)
            missing += 1
            continue
        except ValueError as exc:  # an --until in the past, or not a time
            raise UsageError(str(exc)) from None
        print(f"{render.resource_name(name)} {done}", file=sys.stdout)
    return 3 if missing else 0
