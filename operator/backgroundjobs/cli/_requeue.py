"""``bgjobs requeue NAME --kwarg K=V --image I --env K=V --limits cpu=1 --failed-only``: the
flags of a requeue with changes (or of a batch's failed items only), turned into the client's
``requeue()`` keyword arguments."""

from __future__ import annotations

import argparse
import json
from typing import Any

from backgroundjobs.cli._values import UsageError, parse_kwargs, split_pair


def add_requeue_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--failed-only",
        action="store_true",
        help="a batch: run again only the items the last run did not succeed",
    )
    group = parser.add_argument_group("changes for the new run (one write with the requeue)")
    group.add_argument("--args", metavar="JSON", help="new positional arguments: a JSON array")
    group.add_argument(
        "--kwargs", metavar="JSON", help="keyword arguments set over the old ones (JSON object)"
    )
    group.add_argument(
        "-k", "--kwarg", action="append", default=[], metavar="KEY=VALUE",
        help="a keyword argument set over the old one (VALUE parsed like ARG); repeatable",
    )  # fmt: skip
    group.add_argument("--image", help="a new image for the handler")
    group.add_argument(
        "--env", action="append", default=[], metavar="KEY=VALUE",
        help="an environment variable of the handler container; repeatable",
    )  # fmt: skip
    group.add_argument(
        "--requests", metavar="RES=QTY,...", help="new resource requests: cpu=250m,memory=1Gi"
    )
    group.add_argument("--limits", metavar="RES=QTY,...", help="new resource limits: memory=2Gi")


def requeue_changes(args: argparse.Namespace) -> dict[str, Any]:
    """The keyword arguments of ``client.requeue`` for the flags given (none: a plain
    requeue)."""
    out: dict[str, Any] = {}
    if args.failed_only:
        out["failed_only"] = True
    if args.args is not None:
        try:
            positional = json.loads(args.args)
        except ValueError as exc:
            raise UsageError(f"--args is not valid JSON: {exc}") from None
        if not isinstance(positional, list):
            raise UsageError("--args must be a JSON array, like '[\"a@example.com\", 3]'")
        out["args"] = positional
    kwargs = parse_kwargs(args.kwargs, args.kwarg)
    if kwargs:
        out["kwargs"] = kwargs
    if args.image is not None:
        out["image"] = args.image
    env = dict(split_pair(pair, "--env") for pair in args.env)
    if env:
        out["env"] = env
    resources = {
        key: _quantities(text, f"--{key}")
        for key, text in (("requests", args.requests), ("limits", args.limits))
        if text is not None
    }
    if resources:
        out["resources"] = resources
    return out


def _quantities(text: str, flag: str) -> dict[str, str]:
    pairs = [p for p in text.split(",") if p.strip()]
    if not pairs:
        raise UsageError(f"{flag} needs RES=QTY pairs, like cpu=250m,memory=1Gi")
    return dict(split_pair(p.strip(), flag) for p in pairs)
