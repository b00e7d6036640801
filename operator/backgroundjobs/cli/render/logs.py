"""``logs``: the runtime's log records (``runtime.logrecord``) for people."""

from __future__ import annotations

import textwrap
from datetime import UTC

from backgroundjobs.api.times import parse_time
from backgroundjobs.runtime.logrecord import is_progress, parse_record


def progress_bar(done: float, total: float, width: int = 20) -> str:
    """``[##########..........] 50/100``: ``done`` of ``total`` as a bar ``width`` wide."""
    fraction = min(max(done / total, 0.0), 1.0) if total else 0.0
    filled = round(fraction * width)
    return f"[{'#' * filled}{'.' * (width - filled)}] {_number(done)}/{_number(total)}"


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def render_log_line(line: str, bar_width: int = 20) -> str:
    """A runtime log line for people: a progress record as a bar, another JSON record as
    ``time level message`` (with its exception), anything else as it is."""
    text = line.rstrip("\n")
    record = parse_record(text)
    if record is None:
        return text
    # (msg, timestamp and levelname: other JSON loggers' names, shown as well)
    message = str(record.get("message") or record.get("msg") or "")
    if is_progress(record):
        try:
            bar = progress_bar(
                float(record.get("done", 0)), float(record.get("total", 0)), bar_width
            )
        except (TypeError, ValueError):
            bar = "[?]"
        return f"{bar} {message}".rstrip()
    moment = parse_time(record.get("time") or record.get("timestamp"))
    when = moment.astimezone(UTC).strftime("%H:%M:%S") if moment else "--:--:--"
    level = str(record.get("level") or record.get("levelname") or "info").upper()
    out = f"{when} {level:<7} {message}".rstrip()
    if record.get("exception"):
        out += "\n" + textwrap.indent(str(record["exception"]).rstrip(), "    ")
    return out
