"""Parsing command-line values: handler arguments, key=value pairs, times, durations."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from backgroundjobs._credentials import SecretKey
from backgroundjobs.api.constants import HANDLER_CONTAINER
from backgroundjobs.api.durations import parse_duration
from backgroundjobs.api.times import parse_rfc3339


class UsageError(Exception):
    """A command line that cannot be used as given (exit code 2)."""


def parse_value(text: str) -> Any:
    """A handler argument: JSON when it parses (``42``, ``true``, ``'{"a": 1}'``, ``'"42"'``),
    else the text itself as a string (``a@b.c``)."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def parse_kwargs(kwargs_json: str | None, pairs: Sequence[str]) -> dict[str, Any]:
    """Handler keyword arguments from ``--kwargs '{...}'`` and ``-k key=value`` (value as in
    ``parse_value``); a key given twice is an error."""
    kwargs: dict[str, Any] = {}
    if kwargs_json is not None:
        try:
            loaded = json.loads(kwargs_json)
        except ValueError as exc:
            raise UsageError(f"--kwargs is not valid JSON: {exc}") from None
        if not isinstance(loaded, dict):
            raise UsageError('--kwargs must be a JSON object, like \'{"subject": "Hi"}\'')
        kwargs.update(loaded)
    for pair in pairs:
        key, value = split_pair(pair, "-k/--kwarg")
        if key in kwargs:
            raise UsageError(f"keyword argument {key!r} is given twice")
        kwargs[key] = parse_value(value)
    return kwargs


def parse_kwargs_from(pairs: Sequence[str], kwargs: Mapping[str, Any]) -> dict[str, SecretKey]:
    """Keyword arguments by reference from ``--kwarg-from name=secret/key``; a name also in
    ``kwargs`` (or given twice) is an error."""
    out: dict[str, SecretKey] = {}
    for pair in pairs:
        name, ref = split_pair(pair, "--kwarg-from")
        secret, sep, key = ref.partition("/")
        if not sep or not secret or not key:
            raise UsageError(f"--kwarg-from expects name=secret/key, got {pair!r}")
        if name in kwargs or name in out:
            raise UsageError(f"keyword argument {name!r} is given twice")
        out[name] = SecretKey(secret, key)
    return out


def split_pair(pair: str, flag: str) -> tuple[str, str]:
    """``key=value`` split at the first ``=``."""
    key, sep, value = pair.partition("=")
    if not sep or not key:
        raise UsageError(f"{flag} expects key=value, got {pair!r}")
    return key, value


def parse_labels(pairs: Sequence[str]) -> dict[str, str]:
    """Labels from ``--label key=value`` flags."""
    return dict(split_pair(pair, "--label") for pair in pairs)


def parse_at(text: str) -> datetime:
    """``--at``: an RFC 3339 time with a zone (``2030-01-02T03:04:05Z``, ``...+02:00``)."""
    try:
        moment = parse_rfc3339(text)
    except ValueError:
        raise UsageError(
            f"--at {text!r} is not an RFC 3339 time like 2030-01-02T03:04:05Z"
        ) from None
    if moment.tzinfo is None:
        raise UsageError(f"--at {text!r} has no time zone: add Z or an offset like +02:00")
    return moment


def parse_seconds(text: str, flag: str) -> timedelta:
    """A client-side duration: ``90s``, ``1h30m``, or a number of seconds."""
    try:
        return timedelta(seconds=float(text))
    except ValueError:
        pass
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise UsageError(f"{flag}: {exc}") from None


def pod_template_of(path: str | None, env: Sequence[str]) -> dict[str, Any] | None:
    """The ``podTemplate`` of ``--pod-template FILE`` (YAML or JSON) with ``--env K=V`` added
    to its ``handler`` container; None when neither flag is given."""
    template: dict[str, Any] = {}
    if path:
        import yaml

        try:
            with open(path, encoding="utf-8") as stream:
                loaded = yaml.safe_load(stream)
        except OSError as exc:
            raise UsageError(f"--pod-template: {exc}") from None
        except yaml.YAMLError as exc:
            raise UsageError(f"--pod-template {path}: not YAML or JSON: {exc}") from None
        if not isinstance(loaded, dict):
            raise UsageError(f"--pod-template {path}: must hold a PodTemplateSpec (a mapping)")
        template = loaded
    if env:
        spec = template.setdefault("spec", {})
        containers = spec.setdefault("containers", [])
        handler = next((x for x in containers if x.get("name") == HANDLER_CONTAINER), None)
        if handler is None:
            handler = {"name": HANDLER_CONTAINER}
            containers.append(handler)
        variables = handler.setdefault("env", [])
        for pair in env:
            key, value = split_pair(pair, "--env")
            variables[:] = [v for v in variables if v.get("name") != key]
            variables.append({"name": key, "value": value})
    return template or None
