"""Continuations after a group of separate jobs (``spec.after.selector``): which group."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from backgroundjobs.api.constants import LABEL_BATCH
from backgroundjobs.errors import BackgroundJobsError, InvalidSpec

Group = str | Mapping[str, str] | Sequence[str | BackgroundJobsError]


def group_after(group: Group, count: int | None, when: str) -> dict[str, Any]:
    """``spec.after`` for a continuation after ``group``: the results of ``enqueue_many``
    (the jobs it created; ``count`` defaults to how many), the ``name_prefix`` of an
    ``enqueue_many`` (its ``backgroundjobs.dev/batch`` label), or labels every member has."""
    if isinstance(group, str):
        labels: dict[str, str] = {LABEL_BATCH: group}
    elif isinstance(group, Mapping):
        labels = dict(group)
    else:
        names = [name for name in group if isinstance(name, str)]
        prefixes = {name.rsplit("-", 1)[0] for name in names}
        if len(prefixes) != 1:
            raise InvalidSpec(
                "group: expected the results of one enqueue_many with at least one job created"
            )
        labels = {LABEL_BATCH: prefixes.pop()}
        count = len(names) if count is None else count
    if count is None:
        raise InvalidSpec(
            "count: how many jobs the group has is required (the continuation never starts"
            " on a group still being created)"
        )
    if not labels:
        raise InvalidSpec("group: at least one label is needed")
    return {"selector": {"matchLabels": labels}, "count": count, "when": when}
