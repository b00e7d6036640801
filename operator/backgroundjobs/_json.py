"""JSON of any depth: decoding and depth checks that never hit Python's recursion limit.

The API server stores JSON nested thousands of levels deep in a custom resource's free-form
fields (``args``, ``kwargs``, ``podTemplate``, ``status.result``); Go's decoder allows 10,000.
Python's ``json`` module, ``copy.deepcopy``, ``==`` and most code that walks a value recurse
once per level and raise ``RecursionError`` near 1,000 (often much less). So:

- ``loads`` decodes anything: the C decoder first, and when that runs out of recursion an
  iterative decoder (pure Python, slow, only for such documents);
- ``lines`` splits a watch response into its lines whatever their length (aiohttp's own
  line reader refuses a line over 128 KiB, and a BackgroundJob may be a megabyte);
- ``deeper_than`` and ``check_depth`` measure a value without recursion, so that a value is
  refused by a clear error (``TooDeep``) before anything recursive touches it.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterable, AsyncIterator
from json.decoder import scanstring  # type: ignore[attr-defined]
from typing import Any

_WS = re.compile(r"[ \t\n\r]*")
_NUMBER = re.compile(r"(-?(?:0|[1-9][0-9]*))(\.[0-9]+)?([eE][-+]?[0-9]+)?")
_LITERALS = {"true": True, "false": False, "null": None}


class TooDeep(ValueError):
    """A JSON value nested deeper than allowed."""


def loads(data: str | bytes) -> Any:
    """``json.loads`` for any depth."""
    text = data.decode() if isinstance(data, bytes | bytearray) else data
    try:
        return json.loads(text)
    except RecursionError:
        return _loads_iterative(text)


def _loads_iterative(text: str) -> Any:
    """Decode with an explicit stack instead of recursion (strict JSON, as the API server
    writes it)."""
    stack: list[tuple[list[Any] | dict[str, Any], str | None]] = []  # (container, pending key)
    pos = _WS.match(text, 0).end()  # type: ignore[union-attr]
    result: Any = None
    done = False
    while not done:
        # one value at ``pos``
        char = text[pos : pos + 1]
        value: Any
        if char == "{" or char == "[":
            container: list[Any] | dict[str, Any] = {} if char == "{" else []
            pos = _WS.match(text, pos + 1).end()  # type: ignore[union-attr]
            closing = "}" if char == "{" else "]"
            if text[pos : pos + 1] == closing:
                value = container
                pos += 1
            else:
                key = None
                if char == "{":
                    key, pos = _key(text, pos)
                stack.append((container, key))
                continue
        elif char == '"':
            value, pos = scanstring(text, pos + 1)
        else:
            m = _NUMBER.match(text, pos)
            if m:
                integer, fraction, exponent = m.groups()
                value = (
                    float(integer + (fraction or "") + (exponent or ""))
                    if fraction or exponent
                    else int(integer)
                )
                pos = m.end()
            else:
                for word, literal in _LITERALS.items():
                    if text.startswith(word, pos):
                        value = literal
                        pos += len(word)
                        break
                else:
                    raise json.JSONDecodeError("Expecting value", text, pos)
        # hand the value to its container, closing containers that end here
        while True:
            if not stack:
                result, done = value, True
                break
            container, key = stack[-1]
            if isinstance(container, dict):
                container[key] = value  # type: ignore[index]
            else:
                container.append(value)
            pos = _WS.match(text, pos).end()  # type: ignore[union-attr]
            sep = text[pos : pos + 1]
            if sep == ",":
                pos = _WS.match(text, pos + 1).end()  # type: ignore[union-attr]
                if isinstance(container, dict):
                    key, pos = _key(text, pos)
                    stack[-1] = (container, key)
                break
            if sep == ("}" if isinstance(container, dict) else "]"):
                stack.pop()
                value = container
                pos += 1
                continue
            raise json.JSONDecodeError("Expecting ',' or a closing bracket", text, pos)
    if _WS.match(text, pos).end() != len(text):  # type: ignore[union-attr]
        raise json.JSONDecodeError("Extra data", text, pos)
    return result


def _key(text: str, pos: int) -> tuple[str, int]:
    """An object's key and its colon; the position of its value."""
    if text[pos : pos + 1] != '"':
        raise json.JSONDecodeError("Expecting property name enclosed in double quotes", text, pos)
    key, pos = scanstring(text, pos + 1)
    pos = _WS.match(text, pos).end()  # type: ignore[union-attr]
    if text[pos : pos + 1] != ":":
        raise json.JSONDecodeError("Expecting ':' delimiter", text, pos)
    return key, _WS.match(text, pos + 1).end()  # type: ignore[union-attr]


def deeper_than(value: Any, limit: int) -> bool:
    """Whether ``value`` nests lists and objects more than ``limit`` levels deep (a scalar is
    0 levels, ``[1]`` one). Stops as soon as it knows."""
    level: list[tuple[Any, int]] = [(value, 0)]
    while level:
        node, depth = level.pop()
        if isinstance(node, dict):
            children: Any = node.values()
        elif isinstance(node, list | tuple):
            children = node
        else:
            continue
        if depth + 1 > limit:
            return True
        level.extend((child, depth + 1) for child in children)
    return False


def check_depth(value: Any, limit: int, what: str) -> None:
    """Raise ``TooDeep`` naming ``what`` when ``value`` nests deeper than ``limit``."""
    if deeper_than(value, limit):
        raise TooDeep(f"{what} is nested more than {limit} levels deep")


def unstorable(value: Any, depth: int) -> str | None:
    """Why the API server (or the operator reading it back) cannot take ``value`` as strict
    JSON: nested deeper than ``depth``, or a NaN or infinity; None when it can."""
    if deeper_than(value, depth):
        return f"nested more than {depth} levels deep"
    try:
        json.dumps(value, allow_nan=False)
    except ValueError:
        return "not strict JSON (NaN or Infinity)"
    except TypeError as exc:
        return f"not JSON ({exc})"
    return None


async def lines(chunks: AsyncIterable[bytes]) -> AsyncIterator[bytes]:
    """The non-blank lines of a stream of ``chunks`` (a watch response's body, one JSON
    document per line), each whole whatever its length."""
    pending: list[bytes] = []
    async for chunk in chunks:
        start = 0
        while (end := chunk.find(b"\n", start)) >= 0:
            pending.append(chunk[start:end])
            line = b"".join(pending)
            pending.clear()
            if line.strip():
                yield line
            start = end + 1
        if start < len(chunk):
            pending.append(chunk[start:])
    line = b"".join(pending)
    if line.strip():
        yield line
