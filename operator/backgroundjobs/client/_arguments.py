"""Checking a handler's arguments before a job is created.

The runtime validates the JSON arguments against the handler's signature with pydantic; the
client does the same check first, so a bad call fails at ``enqueue`` (``InvalidArguments``
naming the parameter) instead of as a failed pod minutes later.
"""

from __future__ import annotations

import functools
import inspect
import json
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pydantic
from pydantic_core import PydanticSerializationError, to_jsonable_python

from backgroundjobs._registry import handler_name, resolve
from backgroundjobs.api.constants import MAX_ARGS_BYTES
from backgroundjobs.errors import InvalidArguments

HandlerRef = Callable[..., Any] | str
"""A handler: the registered function, or its name (``"mail.send"`` or ``"module:function"``)."""


@dataclass(frozen=True)
class PreparedCall:
    """A handler call ready for a manifest: the handler's name and JSON-ready arguments."""

    handler: str
    args: list[Any]
    kwargs: dict[str, Any]


def prepare_call(
    handler: HandlerRef, args: Sequence[Any], kwargs: Mapping[str, Any]
) -> PreparedCall:
    """Bind and validate the arguments; convert them to JSON values (``InvalidArguments``).

    When the handler is a function, or a name whose function is known in this process, the
    arguments must fit its signature and annotations. In every case they must be JSON
    serialisable and at most 64 KiB together.
    """
    name = handler_name(handler)
    fn = handler if callable(handler) else _resolve_quietly(name)
    if callable(handler) and getattr(handler, "__module__", None) == "__main__" and ":" in name:
        raise InvalidArguments(
            f"handler {name}: a function defined in __main__ cannot be found by the job's"
            " runtime; register it with @backgroundjobs.handler('some.name') in an importable"
            " module"
        )
    if fn is not None:
        _signature_checker(fn)(name, args, kwargs)
    json_args = [_to_json(value, name, f"argument {i}") for i, value in enumerate(args)]
    json_kwargs = {
        key: _to_json(value, name, f"parameter {key!r}") for key, value in kwargs.items()
    }
    check_size(name, json_args, json_kwargs)
    return PreparedCall(name, json_args, json_kwargs)


def check_size(handler: str, args: list[Any], kwargs: dict[str, Any]) -> None:
    """Refuse arguments over 64 KiB of JSON, or with values JSON cannot express (NaN)."""
    try:
        size = len(json.dumps(args, allow_nan=False)) + len(json.dumps(kwargs, allow_nan=False))
    except ValueError as exc:
        raise InvalidArguments(f"handler {handler}: arguments are not valid JSON: {exc}") from None
    if size > MAX_ARGS_BYTES:
        raise InvalidArguments(
            f"handler {handler}: arguments are {size} bytes as JSON, more than the"
            f" {MAX_ARGS_BYTES} allowed; pass a reference (an id, an object-store key) instead"
        )


def _resolve_quietly(name: str) -> Callable[..., Any] | None:
    try:
        return resolve(name)
    except Exception:  # importing someone's module may fail in many ways; then skip the check
        return None


def _to_json(value: Any, handler: str, where: str) -> Any:
    try:
        return to_jsonable_python(value)
    except (PydanticSerializationError, TypeError, ValueError) as exc:
        raise InvalidArguments(
            f"handler {handler}: {where}: a {type(value).__name__} is not JSON-serialisable ({exc})"
        ) from None


Checker = Callable[[str, Sequence[Any], Mapping[str, Any]], None]


@functools.lru_cache(maxsize=256)
def _signature_checker(fn: Callable[..., Any]) -> Checker:
    """A function checking a call of ``fn``; built once per handler (bulk enqueues reuse it)."""
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):
        return lambda name, args, kwargs: None
    hints = _type_hints(fn)
    adapters: dict[str, pydantic.TypeAdapter[Any] | None] = {}
    for param in signature.parameters.values():
        annotation = hints.get(param.name, param.annotation)
        adapters[param.name] = _adapter(annotation)

    def check(name: str, args: Sequence[Any], kwargs: Mapping[str, Any]) -> None:
        try:
            bound = signature.bind(*args, **kwargs)
        except TypeError as exc:
            raise InvalidArguments(f"handler {name}: {exc}") from None
        problems: list[str] = []
        for pname, value in bound.arguments.items():
            adapter = adapters.get(pname)
            kind = signature.parameters[pname].kind
            if kind is inspect.Parameter.VAR_POSITIONAL:
                items = [(f"{pname}[{i}]", v) for i, v in enumerate(value)]
            elif kind is inspect.Parameter.VAR_KEYWORD:
                items = [(key, v) for key, v in value.items()]
            else:
                items = [(pname, value)]
            for label, item in items:
                problem = _validate(adapter, item, name, label)
                if problem:
                    problems.append(problem)
        if problems:
            raise InvalidArguments(f"handler {name}: " + "; ".join(problems))

    return check


def _validate(
    adapter: pydantic.TypeAdapter[Any] | None, value: Any, handler: str, label: str
) -> str | None:
    # Validate what the runtime will see: the JSON form of the value.
    jsonable = _to_json(value, handler, f"parameter {label!r}")
    if adapter is None:
        return None
    try:
        adapter.validate_python(jsonable)
    except pydantic.ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first.get("loc", ()))
        at = f" at {where}" if where else ""
        return f"parameter {label!r}{at}: {first['msg']} (got {_short(value)})"
    return None


def _short(value: Any, limit: int = 40) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _type_hints(fn: Callable[..., Any]) -> dict[str, Any]:
    try:
        return typing.get_type_hints(fn, include_extras=True)
    except Exception:  # an unresolvable forward reference: check only what resolves
        hints: dict[str, Any] = {}
        for key, value in getattr(fn, "__annotations__", {}).items():
            if not isinstance(value, str):
                hints[key] = value
        return hints


def _adapter(annotation: Any) -> pydantic.TypeAdapter[Any] | None:
    if annotation is inspect.Parameter.empty or annotation is Any or isinstance(annotation, str):
        return None
    try:
        return pydantic.TypeAdapter(annotation)
    except Exception:  # a type pydantic cannot validate: the runtime cannot either; skip it
        return None
