"""kubectl's JSONPath templates, the part ``-o jsonpath=`` and ``--sort-by`` use: text with
``{...}`` expressions; a path of ``.field``, ``[n]`` and ``[*]`` (from the object, or ``@``
inside a range); ``{range PATH}...{end}``; string literals ``{"\\n"}``. A path that finds
nothing prints nothing."""

from __future__ import annotations

import json
import re
from typing import Any

_SEGMENT = re.compile(r"\.([A-Za-z0-9_-]+)|\[(\*|-?\d+)\]|\.\*")
_EXPRESSION = re.compile(r"\{((?:\"(?:\\.|[^\"\\])*\"|[^{}])*)\}")


class JsonPathError(ValueError):
    """A template kubectl's JSONPath subset here cannot read."""


def find(path: str, obj: Any) -> list[Any]:
    """The values at ``path`` in ``obj`` (several for ``[*]``)."""
    path = path.strip()
    if path.startswith(("@", "$")):
        path = path[1:]
    if path in ("", "."):
        return [obj]
    values = [obj]
    pos = 0
    while pos < len(path):
        match = _SEGMENT.match(path, pos)
        if match is None:
            raise JsonPathError(f"cannot read the path {path!r} at {path[pos:]!r}")
        key, index = match.group(1), match.group(2)
        found: list[Any] = []
        for value in values:
            if key is not None:
                if isinstance(value, dict) and key in value:
                    found.append(value[key])
            elif index is None or index == "*":  # .* or [*]
                if isinstance(value, dict):
                    found.extend(value.values())
                elif isinstance(value, list):
                    found.extend(value)
            elif isinstance(value, list):
                i = int(index)
                if -len(value) <= i < len(value):
                    found.append(value[i])
        values = found
        pos = match.end()
    return values


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return json.dumps(value)
    return str(value)


def render(template: str, obj: Any) -> str:
    """``template`` filled in from ``obj``."""
    parts: list[tuple[str, str]] = []  # (kind, text): text, literal, path, range, end
    pos = 0
    for match in _EXPRESSION.finditer(template):
        parts.append(("text", template[pos : match.start()]))
        expr = match.group(1).strip()
        if expr.startswith('"'):
            parts.append(("text", json.loads(expr)))
        elif expr.startswith("range "):
            parts.append(("range", expr[len("range ") :]))
        elif expr == "end":
            parts.append(("end", ""))
        else:
            parts.append(("path", expr))
        pos = match.end()
    if "{" in template[pos:] or "}" in template[pos:]:
        raise JsonPathError(f"unbalanced braces in {template!r}")
    parts.append(("text", template[pos:]))
    out: list[str] = []
    rest = _fill(parts, obj, out)
    if rest:
        raise JsonPathError("{end} without {range}")
    return "".join(out)


def _fill(parts: list[tuple[str, str]], obj: Any, out: list[str]) -> list[tuple[str, str]]:
    """Fill ``parts`` up to an unmatched ``{end}``; returns the parts after it."""
    while parts:
        (kind, text), parts = parts[0], parts[1:]
        if kind == "text":
            out.append(text)
        elif kind == "path":
            out.append(" ".join(_text(v) for v in find(text, obj)))
        elif kind == "range":
            body, after = _split_range(parts)
            for item in find(text, obj):
                _fill(list(body), item, out)
            parts = after
        else:  # end
            return [(kind, text), *parts]
    return []


def _split_range(
    parts: list[tuple[str, str]],
) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    depth = 0
    for i, (kind, _) in enumerate(parts):
        if kind == "range":
            depth += 1
        elif kind == "end":
            if depth == 0:
                return parts[:i], parts[i + 1 :]
            depth -= 1
    raise JsonPathError("{range} without {end}")


def sort_key(path: str) -> Any:
    """A sort key for objects by the (first) value at ``path`` (``--sort-by``): absent
    values first, numbers by value, the rest by text."""
    path = path.strip()
    if path.startswith("{") and path.endswith("}"):
        path = path[1:-1]

    def key(obj: Any) -> tuple[int, float, str]:
        values = find(path, obj)
        if not values or values[0] is None:
            return (0, 0.0, "")
        value = values[0]
        if isinstance(value, int | float) and not isinstance(value, bool):
            return (1, float(value), "")
        return (2, 0.0, _text(value))

    find(path, {})  # refuse a path it cannot read before any listing
    return key
