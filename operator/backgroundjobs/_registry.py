"""The handler registry shared by the client (argument checks) and the runtime (dispatch)."""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable
from typing import Any, TypeVar

from backgroundjobs.api.constants import HANDLER_MAX_LENGTH, HANDLER_PATTERN

F = TypeVar("F", bound=Callable[..., Any])

HANDLER_NAME_RE = re.compile(HANDLER_PATTERN)

_HANDLERS: dict[str, Callable[..., Any]] = {}


def handler(name: str) -> Callable[[F], F]:
    """Register the decorated function as the job handler called ``name`` (``"mail.send"``)."""
    if not HANDLER_NAME_RE.match(name) or len(name) > HANDLER_MAX_LENGTH:
        raise ValueError(f"invalid handler name {name!r}: must match {HANDLER_NAME_RE.pattern}")

    def register(fn: F) -> F:
        existing = _HANDLERS.get(name)
        if existing is not None and existing is not fn and _qualname(existing) != _qualname(fn):
            raise ValueError(f"handler {name!r} is already registered to {_qualname(existing)}")
        _HANDLERS[name] = fn
        fn.__backgroundjobs_handler__ = name  # type: ignore[attr-defined]
        return fn

    return register


def registered_handlers() -> dict[str, Callable[..., Any]]:
    """A copy of the registry: handler name to function."""
    return dict(_HANDLERS)


def handler_name(fn: Callable[..., Any] | str) -> str:
    """The name a job uses for ``fn``: its registered name, else ``module:function``."""
    if isinstance(fn, str):
        return fn
    name = getattr(fn, "__backgroundjobs_handler__", None)
    if isinstance(name, str):
        return name
    return f"{fn.__module__}:{fn.__qualname__}"


def resolve(name: str) -> Callable[[...], Any] | None:  # type: ignore[misc]
    """Find the function for a handler name: the registry first, then ``module:function``."""
    fn = _HANDLERS.get(name)
    if fn is not None:
        return fn
    if ":" in name:
        module_name, _, attr_path = name.partition(":")
        try:
            obj: Any = importlib.import_module(module_name)
        except ImportError:
            return None
        for part in attr_path.split("."):
            obj = getattr(obj, part, None)
            if obj is None:
                return None
        return obj if callable(obj) else None
    return None


def _qualname(fn: Callable[..., Any]) -> str:
    return f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', '?')}"
