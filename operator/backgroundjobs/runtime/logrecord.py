"""The JSON log records of the runtime and the operator: one JSON object per line.

Defined once for its writers (``runtime._logging`` on the handler container's stderr, the
operator with ``BACKGROUNDJOBS_LOG_FORMAT=json``) and its reader (``bgjobs logs``). Every
record has ``time``, ``level``, ``logger``, ``message`` and the job's identity (``job``,
``namespace``, ``run``, ``handler``; null where unknown); the runtime's own records name an
``event`` (``started``, ``progress``, ``succeeded``, ``failed``, ``cancelled``, ...); a
progress record has ``done``, ``total`` and ``percent``; a traceback is in ``exception``;
anything passed as ``extra=`` is kept.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
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


# Attributes every logging.LogRecord has; anything else on a record came from ``extra=``.
_STANDARD_ATTRS = frozenset(
    vars(logging.LogRecord("x", logging.INFO, "x", 0, "x", None, None)).keys()
) | {"message", "asctime", "taskName"}


class JsonFormatter(logging.Formatter):
    """Formats a ``logging`` record as one JSON line of the shape above.

    ``identity`` gives the job's fields of a record (the runtime: the job it runs; the
    operator: the BackgroundJob a kopf object logger names); extras never replace them.
    """

    omitted: frozenset[str] = frozenset()
    """Extras not to log (a library's bookkeeping)."""

    def identity(self, record: logging.LogRecord) -> LogRecord:
        return {"job": None, "namespace": None, "run": None, "handler": None}

    def format(self, record: logging.LogRecord) -> str:
        fields: LogRecord = {
            "time": format_timestamp(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry: dict[str, Any] = {**fields, **self.identity(record)}
        for key, value in vars(record).items():  # the extra= of the call (event, done, ...)
            if key in _STANDARD_ATTRS or key in self.omitted or key.startswith("_"):
                continue
            if key not in entry:
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        # default=str: an extra that JSON cannot hold is logged as its str(), never lost.
        return json.dumps(entry, default=str, ensure_ascii=False)


def format_timestamp(created: float) -> str:
    """A record's time as RFC 3339 in UTC with milliseconds."""
    moment = datetime.fromtimestamp(created, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_record(line: str) -> dict[str, Any] | None:
    """A log line as its record; None when the line is not a JSON object."""
    try:
        record = json.loads(line)
    except ValueError:
        return None
    return record if isinstance(record, dict) else None


def is_progress(record: dict[str, Any]) -> bool:
    return record.get("event") == PROGRESS
