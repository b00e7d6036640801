"""A batch's item: the pod of completion index i runs line i of the mounted items file (a
rerun of failed items: line i names the item's index in the batch, which the job reports)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from backgroundjobs.api.constants import ENV_COMPLETION_INDEX, ENV_ITEMS_FILE


class InvalidBatchItem(ValueError):
    """The pod's item cannot be read: no index, no such line, or not an {args, kwargs} object."""


def batch_item(environ: Mapping[str, str]) -> tuple[int, list[Any], dict[str, Any]] | None:
    """The index (in the batch), args and kwargs of this pod's item, or None when the job is
    not a batch."""
    path = environ.get(ENV_ITEMS_FILE)
    if not path:
        return None
    raw_index = environ.get(ENV_COMPLETION_INDEX, "")
    try:
        index = int(raw_index)
    except ValueError:
        raise InvalidBatchItem(
            f"{ENV_COMPLETION_INDEX}={raw_index!r} is not an index: a batch runs in an Indexed Job"
        ) from None
    line = _line(path, index)
    try:
        item = json.loads(line)
    except json.JSONDecodeError as exc:
        raise InvalidBatchItem(f"item {index} is not valid JSON: {exc}") from exc
    if not isinstance(item, dict):
        raise InvalidBatchItem(f"item {index} must be an object with args and kwargs")
    args = item.get("args", [])
    kwargs = item.get("kwargs", {})
    if not isinstance(args, list) or not isinstance(kwargs, dict):
        raise InvalidBatchItem(f"item {index}: args must be an array and kwargs an object")
    # A rerun of failed items holds only those: each line names its index in the batch.
    original = item.get("index", index)
    if type(original) is not int or original < 0:
        raise InvalidBatchItem(f"item {index}: index must be a non-negative integer")
    return original, args, kwargs


def _line(path: str, index: int) -> str:
    """Line ``index`` (0-based) of the file, read line by line (the file can hold 1 MB)."""
    try:
        with open(path, encoding="utf-8") as items:
            for number, line in enumerate(items):
                if number == index:
                    return line
    except OSError as exc:
        raise InvalidBatchItem(f"cannot read the batch's items at {path}: {exc}") from exc
    raise InvalidBatchItem(f"the batch has no item {index} (in {path})")
