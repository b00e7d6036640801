"""The job runtime: the entrypoint of a handler container (``python -m backgroundjobs.runtime``).

It reads the job from the env the operator sets (``BACKGROUNDJOBS_HANDLER``, ``_ARGS``,
``_KWARGS``, ``_NAME``, ``_NAMESPACE``, ``_RUN``, ``_PARENT``, ``_PARENT_RESULT``, and the
secret keyword arguments of ``spec.kwargsFrom``: ``_SECRET_KWARGS`` names them,
``_SECRET_KWARG_<name>`` holds each, from its Secret key), imports the
modules in ``BACKGROUNDJOBS_HANDLER_MODULES`` (comma-separated) so their ``@handler``
registrations exist, resolves the handler (a registered name or ``module:function``), checks the
arguments against its signature with pydantic and runs it, sync in a worker thread or async on
an event loop. Logs, the handler's own ``logging`` included, are JSON lines on stderr.

Exit codes and the termination log (``/dev/termination-log`` or ``BACKGROUNDJOBS_TERMINATION_LOG``):

- 0: succeeded; the log holds the JSON result (at most 4096 bytes; a larger result is a
  failure with code 1, never a truncated result).
- 1: the handler raised (the Job retries it), or its result is too large or not JSON.
- 2: ``PermanentError``, an unknown handler, invalid arguments, or an env that is not valid
  JSON (not retried by default).
- 143 (128 + the signal): cancelled by SIGTERM (or 130 for SIGINT). An async handler's task is
  cancelled; a sync handler should poll ``cancelled()`` and return. The runtime waits
  ``BACKGROUNDJOBS_CANCEL_GRACE_SECONDS`` (default 20, below Kubernetes' 30 s grace period) for
  the handler to stop, then exits anyway.

On a failure the log holds ``{"error": "...", "type": "...", "exitCode": n}``. The values of
secret keyword arguments (four characters or more) are replaced by ``<secret>`` in the
termination log and in every log line, the handler's own included.

This package imports neither kopf nor kubernetes: only the standard library and pydantic.
"""

from backgroundjobs.runtime._context import CurrentJob, cancelled, current_job, parent_result
from backgroundjobs.runtime._logging import progress
from backgroundjobs.runtime._main import (
    EXIT_CANCELLED,
    EXIT_FAILED,
    EXIT_PERMANENT,
    EXIT_SUCCEEDED,
    main,
)

__all__ = [
    "EXIT_CANCELLED",
    "EXIT_FAILED",
    "EXIT_PERMANENT",
    "EXIT_SUCCEEDED",
    "CurrentJob",
    "cancelled",
    "current_job",
    "main",
    "parent_result",
    "progress",
]
