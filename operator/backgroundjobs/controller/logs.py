"""The operator's logging: text, or JSON lines in the runtime's record shape
(``runtime.logrecord``) so one log pipeline reads both."""

from __future__ import annotations

import logging
from typing import TextIO

from backgroundjobs.api.constants import KIND
from backgroundjobs.runtime.logrecord import JsonFormatter, LogRecord

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"


class OperatorJsonFormatter(JsonFormatter):
    """JSON lines; a kopf object logger's record names its BackgroundJob as ``job`` and
    ``namespace`` (and keeps the object's reference as ``k8s_ref``)."""

    # kopf's bookkeeping on its records: whether to post it as an Event, and its settings.
    omitted = frozenset({"k8s_skip", "settings"})

    def identity(self, record: logging.LogRecord) -> LogRecord:
        fields = super().identity(record)
        ref = getattr(record, "k8s_ref", None)
        if isinstance(ref, dict) and ref.get("kind") == KIND:
            fields["job"] = ref.get("name")
            fields["namespace"] = ref.get("namespace")
        return fields


def configure(log_format: str, level: int = logging.INFO, stream: TextIO | None = None) -> None:
    """Send every record (the operator's, kopf's, aiohttp's) to ``stream`` (stderr) as
    ``log_format`` (``json`` or ``text``)."""
    handler = logging.StreamHandler(stream)
    if log_format == "json":
        handler.setFormatter(OperatorJsonFormatter())
    else:
        handler.setFormatter(logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(level)
    logging.captureWarnings(True)
    logging.getLogger("kopf.objects").setLevel(logging.WARNING)
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
