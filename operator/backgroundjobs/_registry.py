"""The handler registry shared by the client (argument checks) and the runtime (dispatch)."""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable
from datetime import timedelta
from typing import Any, TypeVar

from backgroundjobs.api.constants import DNS_LABEL_PATTERN, HANDLER_MAX_LENGTH, HANDLER_PATTERN
from backgroundjobs.api.durations import format_duration, parse_duration

F = TypeVar("F", bound=Callable[..., Any])

HANDLER_NAME_RE = re.compile(HANDLER_PATTERN)

_HANDLERS: dict[str, Callable[..., Any]] = {}
# The job options a handler declared (``@handler(name, queue=..., ...)``), by handler name.
_DEFAULTS: dict[str, dict[str, Any]] = {}


def handler(
    name: str,
    *,
    queue: str | None = None,
    retries: int | None = None,
    timeout: timedelta | str | None = None,
    keep_succeeded: timedelta | str | None = None,
    keep_failed: timedelta | str | None = None,
) -> Callable[[F], F]:
    """Register the decorated function as the job handler called ``name`` (``"mail.send"``).

    ``queue``, ``retries``, ``timeout``, ``keep_succeeded`` and ``keep_failed`` are the
    defaults of its jobs (Hangfire's ``[Queue]``, ``[AutomaticRetry(Attempts)]``): the client
    applies them when it creates a job of this handler in a process where the handler is
    registered (or importable as ``module:function``); options given to the call win."""
    if not HANDLER_NAME_RE.match(name) or len(name) > HANDLER_MAX_LENGTH:
        raise ValueError(f"invalid handler name {name!r}: must match {HANDLER_NAME_RE.pattern}")
    defaults = _check_defaults(name, queue, retries, timeout)
    for option, keep in (("keep_succeeded", keep_succeeded), ("keep_failed", keep_failed)):
        if keep is not None:
            defaults[option] = _duration(name, option, keep, timedelta(0))

    def register(fn: F) -> F:
        existing = _HANDLERS.get(name)
        if existing is not None and existing is not fn and _qualname(existing) != _qualname(fn):
            raise ValueError(f"handler {name!r} is already registered to {_qualname(existing)}")
        _HANDLERS[name] = fn
        _DEFAULTS[name] = defaults
        fn.__backgroundjobs_handler__ = name  # type: ignore[attr-defined]
        fn.__backgroundjobs_defaults__ = defaults  # type: ignore[attr-defined]
        return fn

    return register


def _check_defaults(
    name: str, queue: str | None, retries: int | None, timeout: timedelta | str | None
) -> dict[str, Any]:
    """The declared defaults, checked at import time by the spec's own rules."""
    out: dict[str, Any] = {}
    if queue is not None:
        if not isinstance(queue, str) or not re.match(DNS_LABEL_PATTERN, queue) or len(queue) > 63:
            raise ValueError(f"handler {name!r}: queue={queue!r} must be a DNS label like critical")
        out["queue"] = queue
    if retries is not None:
        if isinstance(retries, bool) or not isinstance(retries, int) or not 0 <= retries <= 100:
            raise ValueError(f"handler {name!r}: retries={retries!r} must be an int, 0 to 100")
        out["retries"] = retries
    if timeout is not None:
        out["timeout"] = _duration(name, "timeout", timeout, timedelta(seconds=1))
    return out


def _duration(name: str, option: str, value: timedelta | str, minimum: timedelta) -> str:
    """A declared duration as the spec's text; at least ``minimum``."""
    try:
        delta = value if isinstance(value, timedelta) else parse_duration(value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"handler {name!r}: {option}={value!r}: {exc}") from None
    if delta < minimum:
        raise ValueError(
            f"handler {name!r}: {option}={value!r} must be at least {format_duration(minimum)}"
        )
    return format_duration(delta)


def handler_defaults(fn: Callable[..., Any] | None, name: str) -> dict[str, Any]:
    """The job options the handler declared: from the function, else from the registry by
    name; {} when neither knows it."""
    declared = getattr(fn, "__backgroundjobs_defaults__", None)
    if isinstance(declared, dict):
        return dict(declared)
    return dict(_DEFAULTS.get(name) or {})


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
