"""``bgjobs`` (and the kubectl plugin ``kubectl-bgjobs``): background jobs from the shell.

Commands: ``enqueue``, ``schedule``, ``recurring add|remove|trigger``, ``continue``,
``requeue``, ``trigger``, ``cancel``, ``delete``, ``get``/``list``, ``describe``, ``logs``,
``wait``, ``top``; and ``operator run``. Flags follow kubectl (``-n``, ``-A``, ``--context``,
``--kubeconfig``, ``-o``). Errors go to stderr; the exit codes are in ``bgjobs --help``:
1 error, 2 usage, 3 not found, 4 invalid, 5 conflict, 6 wait timed out, 7 wait ended in
another phase, 130 interrupted.

This module imports nothing beyond the core, so that without the [client] extra ``bgjobs``
says what to install instead of failing with a traceback.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from backgroundjobs._extras import MissingExtra, require_client_extra

EXIT_ERROR = 1


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``bgjobs`` with ``argv`` (default ``sys.argv[1:]``); returns the exit code."""
    try:
        require_client_extra("bgjobs")
    except MissingExtra as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    from backgroundjobs.cli._main import main as run

    return run(argv)


def complete_main() -> int:
    """``kubectl_complete-bgjobs``: what kubectl runs to complete ``kubectl bgjobs ...``
    (its plugin-completion convention): ``bgjobs __complete`` with the same words."""
    return main(["__complete", *sys.argv[1:]])


__all__ = ["complete_main", "main"]


if __name__ == "__main__":
    sys.exit(main())
