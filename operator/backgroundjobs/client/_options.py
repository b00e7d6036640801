"""The options of the methods that create jobs, declared once.

Every create method takes the handler's keyword arguments as its own ``**kwargs``, so the
options share that namespace: they are reserved names, taken out of ``**kwargs`` here (a
handler parameter with one of these names goes into ``handler_kwargs={...}``). Each method's
signature (``help()``, ``inspect.signature``, the sync facade) lists them as keyword-only
parameters, generated from ``JobOptions``.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import Any, TypedDict, TypeVar, cast

from backgroundjobs.client._arguments import PreparedCall
from backgroundjobs.client._retry import RetryPolicy
from backgroundjobs.errors import InvalidArguments

F = TypeVar("F", bound=Callable[..., Any])


class ManifestOptions(TypedDict, total=False):
    """The options that go into the BackgroundJob (given ones only; None is not given)."""

    queue: str | None
    """The queue (``spec.queue``); default ``default``."""
    retries: int | None
    """Pod failures retried before the job fails; default 3."""
    timeout: timedelta | str | None
    """Time limit of one run: a timedelta or ``"30m"``."""
    image: str | None
    """The image whose runtime has the handler; default the operator's."""
    labels: Mapping[str, str] | None
    """Labels of the BackgroundJob."""
    pod_template: Mapping[str, Any] | None
    """A PodTemplateSpec merged into the Job's pod."""
    keep_succeeded: timedelta | str | None
    """How long the job is kept once it succeeded (``spec.ttlAfterSucceeded``; 0: deleted
    at once); default ``ttl_after_finished``, else the operator's retention."""
    keep_failed: timedelta | str | None
    """How long the job is kept once it failed or was cancelled (``spec.ttlAfterFailed``)."""
    concurrency_key: str | None
    """Jobs of a namespace with the same key (``f"user-{uid}"``) do not run at once."""
    retry_policy: RetryPolicy | None
    """Retry timing of your own (``spec.retryPolicy``): each attempt a Job the operator
    creates when the backoff says; default the Job controller's backoff."""


class JobOptions(ManifestOptions, total=False):
    """Every option of a create method."""

    name: str | None
    """The job's name; default ``<handler>-<random>``."""
    namespace: str | None
    """The namespace; default the client's."""
    handler_kwargs: Mapping[str, Any] | None
    """Handler keyword arguments whose names are options (or any others)."""


OPTIONS = tuple(JobOptions.__annotations__)


def split_options(
    kwargs: Mapping[str, Any], *, without: tuple[str, ...] = ()
) -> tuple[JobOptions, dict[str, Any]]:
    """A create method's ``**kwargs`` as (its options, the handler's keyword arguments, with
    ``handler_kwargs`` merged in; a name given both ways is ``InvalidArguments``)."""
    reserved = [name for name in OPTIONS if name not in without]
    options: dict[str, Any] = {k: kwargs[k] for k in reserved if kwargs.get(k) is not None}
    handler_kwargs = {k: v for k, v in kwargs.items() if k not in reserved}
    for key, value in (options.pop("handler_kwargs", None) or {}).items():
        if key in handler_kwargs:
            raise InvalidArguments(f"handler keyword argument {key!r} is given twice")
        handler_kwargs[key] = value
    return cast(JobOptions, options), handler_kwargs


def manifest_options(options: JobOptions) -> ManifestOptions:
    """The options of ``options`` that go into the BackgroundJob."""
    keys = ManifestOptions.__annotations__
    return cast(ManifestOptions, {k: v for k, v in options.items() if k in keys})


def with_defaults(call: PreparedCall, options: JobOptions) -> ManifestOptions:
    """The manifest options of a call: the handler's declared defaults, then the options
    given to the call (which win)."""
    keys = ManifestOptions.__annotations__
    declared = {k: v for k, v in call.defaults.items() if k in keys}
    return cast(ManifestOptions, {**declared, **manifest_options(options)})


def with_options(*, without: tuple[str, ...] = ()) -> Callable[[F], F]:
    """Declare the options in the signature of a create method (before its ``**kwargs``)."""

    def declare(fn: F) -> F:
        signature = inspect.signature(fn)
        params = [p for p in signature.parameters.values() if p.kind is not p.VAR_KEYWORD]
        var_keyword = [p for p in signature.parameters.values() if p.kind is p.VAR_KEYWORD]
        annotations = JobOptions.__annotations__
        params += [
            inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=None,
                              annotation=annotations[name])
            for name in OPTIONS
            if name not in without
        ]  # fmt: skip
        fn.__signature__ = signature.replace(parameters=params + var_keyword)  # type: ignore[attr-defined]
        return fn

    return declare
