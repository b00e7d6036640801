"""``bgjobs``'s entry point once the [client] extra is known to be there (``cli.main``).

Commands: ``enqueue``, ``schedule``, ``recurring add|remove|trigger``, ``continue``,
``requeue``, ``trigger``, ``cancel``, ``delete``, ``get``/``list``, ``describe``, ``logs``,
``wait``, ``top``; and ``operator run``. Flags follow kubectl (``-n``, ``-A``, ``--context``,
``--kubeconfig``, ``-o``). Errors go to stderr; the exit codes are in ``bgjobs --help``:
1 error, 2 usage, 3 not found, 4 invalid, 5 conflict, 6 wait timed out, 7 wait ended in
another phase, 130 interrupted.
"""

from __future__ import annotations

import asyncio
import sys
import warnings
from collections.abc import Sequence
from typing import Any

import aiohttp

from backgroundjobs.cli._commands import WaitOutcome, run
from backgroundjobs.cli._completion import print_completions
from backgroundjobs.cli._completion import script as completion_script
from backgroundjobs.cli._parser import build_parser
from backgroundjobs.cli._values import UsageError
from backgroundjobs.errors import (
    BackgroundJobsError,
    Conflict,
    InvalidArguments,
    InvalidSpec,
    JobNotFound,
)

EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_NOT_FOUND = 3
EXIT_INVALID = 4
EXIT_CONFLICT = 5
EXIT_TIMEOUT = 6
EXIT_INTERRUPTED = 130


def _print_warning(message: Warning | str, *_: Any, **__: Any) -> None:
    """A warning (the client's CredentialWarning) as the CLI prints its errors."""
    print(f"warning: {message}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``bgjobs`` with ``argv`` (default ``sys.argv[1:]``); returns the exit code."""
    parser = build_parser()
    words = list(sys.argv[1:] if argv is None else argv)
    if words[:1] == ["__complete"]:
        return print_completions(parser, words[1:])
    try:
        args = parser.parse_args(words)
    except SystemExit as exc:  # --help, --version, or a usage error argparse printed
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    if args.command == "operator":
        return _run_operator(args.operator_args)
    if args.command == "completion":
        sys.stdout.write(completion_script(args.shell, parser.prog.replace("kubectl ", "kubectl-")))
        return 0
    if args.command == "dashboard":
        from backgroundjobs.dashboard import run as run_dashboard

        return run_dashboard(args)
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _print_warning
            return asyncio.run(run(args))
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except WaitOutcome as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.code
    except TimeoutError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_TIMEOUT
    except JobNotFound as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_NOT_FOUND
    except (InvalidArguments, InvalidSpec) as exc:
        print(f"error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_INVALID
    except Conflict as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_CONFLICT
    except BackgroundJobsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except (aiohttp.ClientError, OSError) as exc:
        print(f"error: cannot reach the API server: {exc}", file=sys.stderr)
        return EXIT_ERROR


def _run_operator(argv: Sequence[str]) -> int:
    try:
        from backgroundjobs.controller.__main__ import run as run_operator
    except ImportError as exc:
        print(
            "error: the operator needs the [operator] extra"
            f" (pip install 'backgroundjobs[operator]'): {exc}",
            file=sys.stderr,
        )
        return EXIT_ERROR
    return run_operator(list(argv))
