"""Checking a job's JSON arguments against the handler's signature, with pydantic."""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable
from typing import Any

from pydantic import TypeAdapter, ValidationError

from backgroundjobs.errors import InvalidArguments


def bind_arguments(
    fn: Callable[..., Any], args: list[Any], kwargs: dict[str, Any]
) -> inspect.BoundArguments:
    """Bind ``args``/``kwargs`` to ``fn``'s parameters, each validated (and coerced) by pydantic.

    Raises InvalidArguments listing every parameter that is missing, unexpected or invalid.
    """
    signature = inspect.signature(fn)
    try:
        bound = signature.bind(*args, **kwargs)
    except TypeError as exc:
        raise InvalidArguments(f"arguments do not fit {_describe(fn, signature)}: {exc}") from exc
    hints = _type_hints(fn)
    problems: list[str] = []
    for name, value in list(bound.arguments.items()):
        parameter = signature.parameters[name]
        annotation = hints.get(name, Any)
        if parameter.kind is inspect.Parameter.VAR_POSITIONAL:
            annotation = tuple[annotation, ...]  # type: ignore[valid-type]
        elif parameter.kind is inspect.Parameter.VAR_KEYWORD:
            annotation = dict[str, annotation]  # type: ignore[valid-type]
        if annotation is Any:
            continue
        try:
            bound.arguments[name] = TypeAdapter(annotation).validate_python(value)
        except ValidationError as exc:
            for error in exc.errors(include_url=False):
                where = ".".join(str(part) for part in (name, *error["loc"]))
                problems.append(f"{where}: {error['msg']} (got {_short(error.get('input'))})")
        except Exception as exc:  # an annotation pydantic cannot build a validator for
            raise InvalidArguments(
                f"cannot check parameter {name!r} of {_describe(fn, signature)}: {exc}"
            ) from exc
    if problems:
        raise InvalidArguments(
            f"invalid arguments for {_describe(fn, signature)}: " + "; ".join(problems)
        )
    return bound


def _type_hints(fn: Callable[..., Any]) -> dict[str, Any]:
    try:
        return typing.get_type_hints(fn, include_extras=True)
    except Exception:  # unresolvable forward references: check what can be checked
        annotations = getattr(fn, "__annotations__", {})
        return {k: v for k, v in annotations.items() if not isinstance(v, str)}


def _describe(fn: Callable[..., Any], signature: inspect.Signature) -> str:
    return f"{getattr(fn, '__qualname__', repr(fn))}{signature}"


def _short(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
