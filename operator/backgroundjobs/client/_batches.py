"""A batch's items made ready for its manifest: every item checked against the handler's
signature (as ``enqueue`` checks one call) before anything is created."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from backgroundjobs._credentials import SecretKey
from backgroundjobs.api.constants import MAX_BATCH_BYTES, MAX_BATCH_ITEMS
from backgroundjobs.client._arguments import HandlerRef, prepare_call
from backgroundjobs.errors import InvalidArguments, InvalidSpec

BatchItem = tuple[Sequence[Any], Mapping[str, Any]] | Mapping[str, Any]
"""One call of a batch: an ``(args, kwargs)`` pair or a ``{"args": [...], "kwargs": {...}}``
mapping (the form of a JSON line of ``bgjobs batch --items``)."""


def prepare_items(
    handler: HandlerRef, items: Iterable[BatchItem], common: Mapping[str, Any]
) -> tuple[str, list[dict[str, Any]], dict[str, Any]]:
    """The handler's name, the items as the spec's ``{args, kwargs}`` JSON values, and the
    options the handler declared (``@handler(name, queue=...)``).

    ``common`` keyword arguments go into every item (an item's own win). Raises
    ``InvalidArguments`` naming the item at fault, ``InvalidSpec`` when the batch is empty or
    over the limits (``MAX_BATCH_ITEMS`` items, ``MAX_BATCH_BYTES`` as JSON lines)."""
    prepared: list[dict[str, Any]] = []
    name = ""
    defaults: dict[str, Any] = {}
    size = 0
    for index, item in enumerate(items):
        args, kwargs = _pair(index, item)
        merged = {**common, **kwargs}
        if any(isinstance(v, SecretKey) for v in merged.values()):
            raise InvalidArguments(
                f"item {index}: a batch item cannot pass a SecretKey (the items are stored in"
                " a ConfigMap); read the secret in the handler instead"
            )
        try:
            call = prepare_call(handler, args, merged)
        except InvalidArguments as exc:
            raise InvalidArguments(f"item {index}: {exc}") from None
        name, defaults = call.handler, call.defaults
        entry: dict[str, Any] = {"args": call.args, "kwargs": call.kwargs}
        prepared.append(entry)
        size += len(json.dumps(entry, separators=(",", ":"))) + 1
        if len(prepared) > MAX_BATCH_ITEMS:
            raise InvalidSpec(
                f"a batch holds at most {MAX_BATCH_ITEMS} items: split them into several batches"
            )
    if not prepared:
        raise InvalidSpec("a batch needs at least one item")
    if size > MAX_BATCH_BYTES:
        raise InvalidSpec(
            f"the items take {size} bytes as JSON lines, more than the {MAX_BATCH_BYTES} a"
            " batch holds: split them into several batches, or pass references (ids) instead"
            " of data"
        )
    return name, prepared, defaults


def _pair(index: int, item: BatchItem) -> tuple[Sequence[Any], Mapping[str, Any]]:
    if isinstance(item, Mapping):
        unknown = set(item) - {"args", "kwargs"}
        if unknown:
            raise InvalidArguments(
                f"item {index}: only args and kwargs are allowed, not {sorted(unknown)}"
            )
        args, kwargs = item.get("args", []), item.get("kwargs", {})
    elif isinstance(item, tuple | list) and len(item) == 2:
        args, kwargs = item
    else:
        raise InvalidArguments(f"item {index}: expected an (args, kwargs) pair, got {item!r:.60}")
    if isinstance(args, str | bytes) or not isinstance(args, Sequence):
        raise InvalidArguments(f"item {index}: args must be a sequence (a list)")
    if not isinstance(kwargs, Mapping):
        raise InvalidArguments(f"item {index}: kwargs must be a mapping (an object)")
    return args, kwargs
