"""Pure rendering for the CLI: data in, text out (unit-tested with golden files).

``table`` (the table engine, ``get``'s jobs and ``top``), ``timeline`` (``describe``),
``logs`` (the runtime's log records for people), ``output`` (``-o name|json|yaml``) and
``text`` (ages, due times, cutting).
"""

from backgroundjobs.cli.render.logs import progress_bar, render_log_line
from backgroundjobs.cli.render.output import as_list, resource_name, to_json, to_yaml
from backgroundjobs.cli.render.table import (
    GAP,
    Column,
    format_row,
    job_columns,
    job_row,
    layout,
    render_jobs,
    render_table,
    render_top,
    watch_widths,
)
from backgroundjobs.cli.render.text import ELLIPSIS, age, clock, cut, due, human_duration, one_line
from backgroundjobs.cli.render.timeline import TimelineEntry, build_timeline, render_describe

__all__ = [
    "ELLIPSIS",
    "GAP",
    "Column",
    "TimelineEntry",
    "age",
    "as_list",
    "build_timeline",
    "clock",
    "cut",
    "due",
    "format_row",
    "human_duration",
    "job_columns",
    "job_row",
    "layout",
    "one_line",
    "progress_bar",
    "render_describe",
    "render_jobs",
    "render_log_line",
    "render_table",
    "render_top",
    "resource_name",
    "to_json",
    "to_yaml",
    "watch_widths",
]
