"""A handler call made ready for a job: its name, and its arguments as JSON values checked
before anything is created.

The arguments are checked against the handler's signature by the runtime's own rules
(``backgroundjobs._arguments``), so a bad call fails at ``enqueue`` (``InvalidArguments``
naming the parameter) instead of as a failed pod minutes later.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic_core import PydanticSerializationError, to_jsonable_python

from backgroundjobs._arguments import bind_arguments
from backgroundjobs._credentials import CredentialWarning, SecretKey, credential_findings
from backgroundjobs._registry import handler_defaults, handler_name, resolve
from backgroundjobs.api.constants import MAX_ARGS_BYTES
from backgroundjobs.errors import InvalidArguments

HandlerRef = Callable[..., Any] | str
"""A handler: the registered function, or its name (``"mail.send"`` or ``"module:function"``)."""


@dataclass(frozen=True)
class PreparedCall:
    """A handler call ready for a manifest: the handler's name, JSON-ready arguments, and the
    keyword arguments passed by reference (Secret keys)."""

    handler: str
    args: list[Any]
    kwargs: dict[str, Any]
    kwargs_from: dict[str, SecretKey] = field(default_factory=dict)
    defaults: dict[str, Any] = field(default_factory=dict)
    """The options the handler declared (``@handler(name, queue=...)``): call options win."""

    def kwargs_from_spec(self) -> list[dict[str, Any]]:
        """``spec.kwargsFrom``."""
        return [
            {"name": name, "secretKeyRef": {"name": ref.secret, "key": ref.key}}
            for name, ref in self.kwargs_from.items()
        ]


def prepare_call(
    handler: HandlerRef, args: Sequence[Any], kwargs: Mapping[str, Any]
) -> PreparedCall:
    """Bind and validate the arguments; convert them to JSON values (``InvalidArguments``).

    When the handler is a function, or a name whose function is known in this process, the
    arguments must fit its signature and annotations. In every case they must be JSON
    serialisable and at most 64 KiB together.
    """
    name = handler_name(handler)
    for i, value in enumerate(args):
        if isinstance(value, SecretKey):
            raise InvalidArguments(
                f"handler {name}: argument {i} is a SecretKey: a Secret key can only be passed"
                " as a keyword argument"
            )
    kwargs_from = {k: v for k, v in kwargs.items() if isinstance(v, SecretKey)}
    kwargs = {k: v for k, v in kwargs.items() if k not in kwargs_from}
    fn = handler if callable(handler) else _resolve_quietly(name)
    if callable(handler) and getattr(handler, "__module__", None) == "__main__" and ":" in name:
        raise InvalidArguments(
            f"handler {name}: a function defined in __main__ cannot be found by the job's"
            " runtime; register it with @backgroundjobs.handler('some.name') in an importable"
            " module"
        )
    json_args = [_to_json(value, name, f"argument {i}") for i, value in enumerate(args)]
    json_kwargs = {
        key: _to_json(value, name, f"parameter {key!r}") for key, value in kwargs.items()
    }
    if fn is not None:
        placeholders = dict.fromkeys(kwargs_from, "")
        bind_arguments(fn, name, json_args, {**json_kwargs, **placeholders}, kwargs_from)
    check_size(name, json_args, json_kwargs)
    warn_credentials(name, json_args, json_kwargs)
    return PreparedCall(name, json_args, json_kwargs, kwargs_from, handler_defaults(fn, name))


def warn_credentials(handler: str, args: list[Any], kwargs: dict[str, Any]) -> None:
    """A ``CredentialWarning`` when arguments look like credentials (never quoting them)."""
    found = credential_findings(args, kwargs)
    if found:
        warnings.warn(
            CredentialWarning(
                f"handler {handler}: {', '.join(found)} may be a credential, which would be"
                " stored in plain text in the BackgroundJob, its Jobs and its pods; pass it by"
                " reference: a keyword argument SecretKey(secret, key) (spec.kwargsFrom;"
                " docs/SECURITY.md)"
            ),
            stacklevel=4,
        )


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
