"""``test.echo``: the admin's test job (scenario 6): log a message, sleep, optionally fail."""

from __future__ import annotations

import logging
import os
import time
from typing import Any, Literal

from backgroundjobs import PermanentError, handler
from backgroundjobs.runtime import cancelled, current_job, parent_result, progress

log = logging.getLogger(__name__)


@handler("test.echo")
def echo(
    message: str,
    sleep: float = 2.0,
    fail: Literal["exception", "permanent"] | None = None,
) -> dict[str, Any]:
    """Log ``message``, sleep ``sleep`` seconds (cancellable), then fail if asked to.

    ``fail="exception"`` raises a RuntimeError (exit 1, retried); ``fail="permanent"`` raises
    PermanentError (exit 2, not retried). Returns the message, the uid the job ran as, and the
    parent's result of a continuation.
    """
    log.info("echo: %s", message, extra={"echo": message})
    started = time.monotonic()
    steps = max(1, round(sleep))
    reported = -1
    while (elapsed := time.monotonic() - started) < sleep:
        if cancelled():
            log.info("echo: cancelled after %.1fs", elapsed)
            break
        if int(elapsed) > reported:  # one progress record a second
            reported = int(elapsed)
            progress(min(reported, steps), steps, "sleeping")
        time.sleep(min(0.1, sleep - elapsed))
    if fail == "exception":
        raise RuntimeError(f"test.echo failed on request: {message}")
    if fail == "permanent":
        raise PermanentError(f"test.echo failed permanently on request: {message}")
    job = current_job()
    return {
        "message": message,
        "slept": round(time.monotonic() - started, 3),
        "uid": os.getuid(),
        "run": job.run if job else None,
        "parentResult": parent_result(),
    }
