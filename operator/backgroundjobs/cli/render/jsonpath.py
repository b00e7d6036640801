"""kubectl's JSONPath templates, the part ``-o jsonpath=`` and ``--sort-by`` use: text with
``{...}`` expressions; a path of ``.field``, ``..field`` (at any depth), ``.*``, ``[n]``,
``[*]``, slices ``[start:end:step]`` and filters ``[?(@.path OP value)]`` (``==``, ``!=``,
``<``, ``<=``, ``>``, ``>=``; or ``[?(@.path)]``: the path exists), from the object, or ``@``
inside a range; ``{range PATH}...{end}``; string literals ``{"\\n"}``. A path that finds
nothing prints nothing."""

from __future__ import annotations

import json
import re
from typing import Any

_SEGMENT = re.compile(
    r"\.\.(?P<deep>[A-Za-z0-9_-]+)"
    r"|\.(?P<key>[A-Za-z0-9_-]+)"
    r"|\[(?P<index>\*|-?\d+)\]"
    r"|\[(?P<slice>-?\d*:-?\d*(?::-?\d*)?)\]"
    r"|\[\?\((?P<filter>(?:\"(?:\\.|[^\"\\])*\"|'[^']*'|[^)\"'])*)\)\]"
    r"|\.\*"
)
_FILTER = re.compile(r"^\s*(@[^=!<>\s]*)\s*(?:(==|!=|<=|>=|<|>)\s*(.+?))?\s*$")
_EXPRESSION = re.compile(r"\{((?:\"(?:\\.|[^\"\\])*\"|[^{}])*)\}")


class JsonPathError(ValueError):
    """A template kubectl's JSONPath subset here cannot read."""


def find(path: str, obj: Any) -> list[Any]:
    """The values at ``path`` in ``obj`` (several for ``[*]``, ``..``, slices, filters)."""
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
        found: list[Any] = []
        for value in values:
            found.extend(_step(match, value))
        values = found
        pos = match.end()
    return values


def _step(match: re.Match[str], value: Any) -> list[Any]:
    """What one segment of a path finds in one value."""
    key, deep, index = match.group("key"), match.group("deep"), match.group("index")
    if key is not None:
        return [value[key]] if isinstance(value, dict) and key in value else []
    if deep is not None:
        return _descend(deep, value)
    if match.group("slice") is not None:
        return _slice(match.group("slice"), value)
    if match.group("filter") is not None:
        items = value if isinstance(value, list) else [value] if isinstance(value, dict) else []
        test = _filter(match.group("filter"))
        return [item for item in items if test(item)]
    if index is None or index == "*":  # .* or [*]
        if isinstance(value, dict):
            return list(value.values())
        return list(value) if isinstance(value, list) else []
    if isinstance(value, list):
        i = int(index)
        if -len(value) <= i < len(value):
            return [value[i]]
    return []


def _descend(key: str, value: Any) -> list[Any]:
    """``..key``: the values of ``key`` at any depth, outermost first (iterative: an object
    nested thousands of levels deep is read, not a RecursionError)."""
    found: list[Any] = []
    stack = [value]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if key in node:
                found.append(node[key])
            stack.extend(reversed(list(node.values())))
        elif isinstance(node, list):
            stack.extend(reversed(node))
    return found


def _slice(spec: str, value: Any) -> list[Any]:
    if not isinstance(value, list):
        return []
    parts = [int(p) if p.strip() else None for p in spec.split(":")]
    if len(parts) == 3 and parts[2] == 0:
        raise JsonPathError("a slice's step cannot be 0")
    return value[slice(*parts)]


def _literal(text: str) -> Any:
    text = text.strip()
    if text.startswith("'") and text.endswith("'") and len(text) >= 2:
        return text[1:-1]
    try:
        return json.loads(text)
    except ValueError:
        raise JsonPathError(f"cannot read the value {text!r} in a filter") from None


_COMPARE: dict[str, Any] = {
    "==": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
}


def _filter(expr: str) -> Any:
    """The test of one item that ``[?(expr)]`` keeps."""
    match = _FILTER.match(expr)
    if match is None:
        raise JsonPathError(f"cannot read the filter {expr!r}")
    path, op, literal = match.groups()
    find(path, {})  # refuse a path it cannot read now, not per item
    if op is None:
        return lambda item: bool(find(path, item))
    want, compare = _literal(literal), _COMPARE[op]

    def test(item: Any) -> bool:
        for got in find(path, item):
            try:
                if compare(got, want):
                    return True
            except TypeError:  # e.g. a string against a number: not kept, as kubectl
                continue
        return False

    return test


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
