"""The runtime's log records: one JSON object per line on the handler container's stderr.

Defined once for its writer (``runtime._logging``) and its reader (``bgjobs logs``). Every
record has ``time``, ``level``, ``logger``, ``message`` and the job's identity (``job``,
``namespace``, ``run``, ``handler``); the runtime's own records name an ``event``
(``started``, ``progress``, ``succeeded``, ``failed``, ``cancelled``, ...); a progress record
has ``done``, ``total`` and ``percent``; anything the handler passed as ``extra=`` is kept.
"""

from __future__ import annotations

import json
from typing import Any, TypedDict

PROGRESS = "progress"


class LogRecord(TypedDict, total=False):
    """One line of the runtime's log."""

    time: str  # RFC 3339, milliseconds, UTC
    level: str  # debug, info, warning, error, critical
    logger: str
    message: str
    job: str | None
    namespace: str | None
    run: int | None
    handler: str | None
    event: str  # the runtime's records: started, progress, succeeded, failed, ...
    done: float  # progress
    total: float  # progress
    percent: float  # progress, when total is not 0
    exception: str  # a traceback
    stack: str


def parse_record(line: str) -> dict[str, Any] | None:
    """A log line as its record; None when the line is not a JSON object."""
    try:
        record = json.loads(line)
    except ValueError:
        return None
    return record if isinstance(record, dict) else None


def is_progress(record: dict[str, Any]) -> bool:
    return record.get("event") == PROGRESS
