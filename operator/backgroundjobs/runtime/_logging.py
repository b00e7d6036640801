"""JSON-lines logging: each record, the runtime's and the handler's own ``logging``, as one
line of the format in ``runtime.logrecord``."""

from __future__ import annotations

import logging
import sys
from typing import Any, TextIO

from backgroundjobs.runtime import _secrets
from backgroundjobs.runtime._context import CurrentJob
from backgroundjobs.runtime.logrecord import PROGRESS, JsonFormatter, LogRecord

RUNTIME_LOGGER = "backgroundjobs.runtime"


class RuntimeFormatter(JsonFormatter):
    """The record format of ``logrecord``, stamped with the job this container runs."""

    def __init__(self) -> None:
        super().__init__()
        self.job: CurrentJob | None = None
        self.handler_name: str | None = None

    def identity(self, record: logging.LogRecord) -> LogRecord:
        job = self.job
        return {
            "job": job.name if job else None,
            "namespace": job.namespace if job else None,
            "run": job.run if job else None,
            "handler": job.handler if job else self.handler_name,
        }

    def format(self, record: logging.LogRecord) -> str:
        # Secret keyword arguments' values never reach a log line, whoever logs them.
        return _secrets.redactor.text(super().format(record))


_formatter = RuntimeFormatter()


def configure(level: str = "INFO", stream: TextIO | None = None) -> None:
    """Route the root logger (so the handler's ``logging`` too) through the JSON formatter."""
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(_formatter)
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler)
    try:
        root.setLevel(level.upper())
    except ValueError:
        root.setLevel(logging.INFO)
        logging.getLogger(RUNTIME_LOGGER).warning("unknown log level %r: using INFO", level)
    logging.captureWarnings(True)


def set_job(job: CurrentJob | None, handler_name: str | None = None) -> None:
    """Stamp every following record with ``job``'s name, namespace, run and handler."""
    _formatter.job = job
    _formatter.handler_name = handler_name


def progress(done: float, total: float, message: str = "") -> None:
    """Log a progress record ``{"event": "progress", "done", "total", "message"}``.

    ``bgjobs logs`` renders these as a progress bar.
    """
    extra: dict[str, Any] = {"event": PROGRESS, "done": done, "total": total}
    if total:
        extra["percent"] = round(100.0 * done / total, 1)
    # "message" is a reserved LogRecord attribute; the formatter's message is the text itself.
    logging.getLogger(RUNTIME_LOGGER).info(message, extra=extra)
