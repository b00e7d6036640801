"""A handler's arguments against its signature: the one rule set of the client (before a job
is created) and of the runtime (before the handler runs), so that a call the client accepts
is a call the runtime runs.

The rules, on the arguments' JSON values (what the runtime receives):

- they must bind to the signature: a missing, unexpected or extra argument is refused;
- each value of an annotated parameter is validated, and coerced, by pydantic; each item of
  ``*args`` and each value of ``**kwargs`` by that parameter's annotation;
- a parameter without annotation, annotated ``Any``, or whose annotation cannot be resolved
  (a forward reference) is not checked;
- a parameter whose annotation pydantic cannot validate is refused: the runtime could not
  check it either;
- every problem is reported, each naming the parameter and the value given.
"""

from __future__ import annotations

import functools
import inspect
import typing
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pydantic

from backgroundjobs.errors import InvalidArguments


@dataclass(frozen=True)
class _Parameter:
    """One parameter of a handler and how its values are checked."""

    name: str
    kind: inspect._ParameterKind
    # None: not checked; a str: why it cannot be checked
    adapter: pydantic.TypeAdapter[Any] | str | None


class SignatureCheck:
    """The checks of one handler's signature, built once per handler (bulk enqueues reuse it)."""

    def __init__(self, fn: Callable[..., Any]) -> None:
        try:
            self.signature: inspect.Signature | None = inspect.signature(fn)
        except (TypeError, ValueError):  # a builtin without a signature: nothing to check
            self.signature = None
            self.parameters: dict[str, _Parameter] = {}
            return
        hints = _type_hints(fn)
        self.parameters = {
            param.name: _Parameter(param.name, param.kind, _adapter(hints.get(param.name)))
            for param in self.signature.parameters.values()
        }

    def bind(
        self,
        handler: str,
        args: Sequence[Any],
        kwargs: Mapping[str, Any],
        unchecked: Collection[str] = (),
    ) -> tuple[tuple[Any, ...], dict[str, Any]]:
        """The positional and keyword arguments to call the handler with, each validated and
        coerced; ``InvalidArguments`` (``handler <name>: ...``) listing every problem.
        ``unchecked``: keyword arguments that must bind but whose values are not known here
        (Secret keys, read in the pod): their placeholders are not validated."""
        if self.signature is None:
            return tuple(args), dict(kwargs)
        try:
            bound = self.signature.bind(*args, **kwargs)
        except TypeError as exc:
            raise InvalidArguments(f"handler {handler}: {exc}") from None
        problems: list[str] = []
        for name, value in list(bound.arguments.items()):
            adapter, kind = self.parameters[name].adapter, self.parameters[name].kind
            if kind is inspect.Parameter.VAR_POSITIONAL:
                items = enumerate(value)
                checked = [_validate(adapter, f"{name}[{i}]", v, problems) for i, v in items]
                bound.arguments[name] = tuple(checked)
            elif kind is inspect.Parameter.VAR_KEYWORD:
                bound.arguments[name] = {
                    key: v if key in unchecked else _validate(adapter, key, v, problems)
                    for key, v in value.items()
                }
            elif name in unchecked:
                continue
            else:
                bound.arguments[name] = _validate(adapter, name, value, problems)
        if problems:
            raise InvalidArguments(f"handler {handler}: " + "; ".join(problems))
        return bound.args, bound.kwargs


@functools.lru_cache(maxsize=256)
def signature_check(fn: Callable[..., Any]) -> SignatureCheck:
    """The (cached) checks of ``fn``'s signature."""
    return SignatureCheck(fn)


def bind_arguments(
    fn: Callable[..., Any],
    handler: str,
    args: Sequence[Any],
    kwargs: Mapping[str, Any],
    unchecked: Collection[str] = (),
) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """Check the JSON arguments of a call of ``fn`` (the handler ``handler``) by the rules
    above; the arguments to call it with, coerced by its annotations. ``unchecked``: as in
    ``SignatureCheck.bind``."""
    return signature_check(fn).bind(handler, args, kwargs, unchecked)


def _validate(
    adapter: pydantic.TypeAdapter[Any] | str | None, label: str, value: Any, problems: list[str]
) -> Any:
    """``value`` coerced by ``adapter``; what is wrong with it is added to ``problems``."""
    if adapter is None:
        return value
    if isinstance(adapter, str):
        problems.append(f"parameter {label!r} cannot be checked: {adapter}")
        return value
    try:
        return adapter.validate_python(value)
    except pydantic.ValidationError as exc:
        for error in exc.errors(include_url=False):
            where = ".".join(str(part) for part in error.get("loc", ()))
            at = f" at {where}" if where else ""
            problems.append(
                f"parameter {label!r}{at}: {error['msg']} (got {_short(error.get('input'))})"
            )
        return value


def _short(value: Any, limit: int = 40) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _type_hints(fn: Callable[..., Any]) -> dict[str, Any]:
    try:
        return typing.get_type_hints(fn, include_extras=True)
    except Exception:  # an unresolvable forward reference: check only what resolves
        annotations = getattr(fn, "__annotations__", {})
        return {k: v for k, v in annotations.items() if not isinstance(v, str)}


def _adapter(annotation: Any) -> pydantic.TypeAdapter[Any] | str | None:
    if annotation is None or annotation is Any or isinstance(annotation, str):
        return None
    try:
        return pydantic.TypeAdapter(annotation)
    except Exception as exc:  # a type without a pydantic validator
        return f"pydantic cannot validate {annotation!r} ({type(exc).__name__})"
