"""``--retry-initial/--retry-factor/--retry-max/--retry-jitter``: a job's retry timing of its
own (``spec.retryPolicy``); any one of them gives the job a policy, the rest its defaults."""

from __future__ import annotations

import argparse

from backgroundjobs.client import RetryPolicy


def add_retry_flags(group: argparse._ArgumentGroup) -> None:
    group.add_argument(
        "--retry-initial", metavar="DURATION",
        help="retry policy: the delay after the first failure (default 10s); each attempt a"
        " Job of its own, made when due",
    )  # fmt: skip
    group.add_argument(
        "--retry-factor", type=float, metavar="X", help="retry policy: delay multiplier (2)"
    )
    group.add_argument(
        "--retry-max", metavar="DURATION", help="retry policy: the longest delay (6m)"
    )
    group.add_argument(
        "--retry-jitter", type=float, metavar="F",
        help="retry policy: up to this fraction (0-1) taken off each delay (0)",
    )  # fmt: skip


def retry_policy_of(args: argparse.Namespace) -> RetryPolicy | None:
    """The policy the flags ask for; None when none of them is given."""
    given = {
        key: value
        for key in ("initial", "factor", "max", "jitter")
        if (value := getattr(args, f"retry_{key}", None)) is not None
    }
    return RetryPolicy(**given) if given else None
