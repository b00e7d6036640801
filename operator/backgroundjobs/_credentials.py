"""Credentials in handler arguments: ``SecretKey`` passes one by reference (``spec.kwargsFrom``);
``credential_findings`` finds plain arguments that look like credentials, which the client
warns about (``CredentialWarning``) before they are stored in plain text in a BackgroundJob,
its Jobs and its pods (docs/SECURITY.md).

A heuristic, tuned to be quiet on ordinary data: a string value whose key names a credential
(``password``, ``api_key``, ``reset_token``, ...), or any string shaped like one (a private
key, a JSON Web Token, a bearer token, a URL with a password, a token query parameter or a
long one-time path, well-known API key prefixes). The warning never quotes the value.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any


class CredentialWarning(UserWarning):
    """An argument looks like a credential: it would be stored in plain text.

    Turn it into an error with ``warnings.simplefilter("error", CredentialWarning)``, or
    silence it for a value you know is not secret with ``"ignore"``.
    """


@dataclass(frozen=True)
class SecretKey:
    """A keyword argument's value kept in a Secret of the job's namespace: ``body=SecretKey(
    "reset-42", "body")``. The job refers to the key (``spec.kwargsFrom``); the value is read
    in the pod and never written to the BackgroundJob, its Jobs or its pods' specs."""

    secret: str
    key: str


_SECRET_KEY = re.compile(
    r"(?:^|[_-])(?:password|passwd|passphrase|secret|token|api[_-]?key|access[_-]?key"
    r"|private[_-]?key|credentials?|bearer)$",
    re.IGNORECASE,
)
# Every check is linear in the length of the value (a client checks each argument, and an
# argument may be megabytes): no pattern may rescan the rest of the string from each start.
_B64URL_RUN = re.compile(r"(?<![A-Za-z0-9_-])(?>[A-Za-z0-9_-]{8,})(?=\.eyJ(?>[A-Za-z0-9_-]{5,})\.)")
_JWT_START = re.compile(r"\beyJ")


def _jwt(value: str) -> bool:
    """A JSON Web Token: eyJ + at least 5 base64url characters, '.', eyJ + 5 more, '.'.
    Each run of base64url characters is read once (atomic groups; a run is tried only from
    its first character), with the one after it when that follows as '.eyJ...'; the token's
    header starts at a word boundary inside the run with at least 5 characters after eyJ."""
    for run in _B64URL_RUN.finditer(value):
        header = run.group(0)
        start = _JWT_START.search(header)
        if start is not None and len(header) - start.end() >= 5:
            return True
    return False


_SHAPES: list[tuple[str, Callable[[str], object]]] = [
    ("a private key", re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----").search),
    ("a JSON Web Token", _jwt),
    ("a bearer token", re.compile(r"(?i)\bbearer\s+[A-Za-z0-9._~+/-]{16,}").search),
    # a scheme is at most 32 characters: an unbounded one rescanned every letter run
    ("a URL with a password", re.compile(r"[a-z][a-z0-9+.-]{0,31}://[^/\s:@]+:[^/\s@]+@").search),
    (
        "a URL with a token",
        re.compile(
            r"(?i)[?&](?:token|access_token|auth|api_?key|key|sig|signature|password|secret|code)"
            r"=[^&\s#]{8,}"
        ).search,
    ),
    (
        "a one-time link",
        re.compile(
            r"(?i)/(?:reset|verify|confirm|magic|invite|token|activate|unsubscribe)[^/\s]*"
            r"/[A-Za-z0-9_-]{16,}"
        ).search,
    ),
    (
        "an API key",
        re.compile(
            r"\b(?:AKIA[0-9A-Z]{16}|gh[pousr]_[A-Za-z0-9]{36,}|xox[abprs]-[A-Za-z0-9-]{10,}"
            r"|sk_live_[A-Za-z0-9]{16,}|AIza[0-9A-Za-z_-]{35})"
        ).search,
    ),
]
_MAX_DEPTH = 8
_CAMEL_HUMP = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


def credential_findings(args: Sequence[Any], kwargs: Mapping[str, Any]) -> list[str]:
    """Where and why arguments look like credentials: ``kwargs['password'] (its name)``."""
    found = [f"{where} ({why})" for where, why in _walk("args", list(args), None, 0)]
    for name, value in kwargs.items():
        found += [f"{where} ({why})" for where, why in _walk(f"kwargs[{name!r}]", value, name, 0)]
    return found


def _walk(where: str, value: Any, key: str | None, depth: int) -> Iterator[tuple[str, str]]:
    if depth > _MAX_DEPTH:
        return
    if isinstance(value, str):
        if value and key is not None and _SECRET_KEY.search(_snake(key)):
            yield where, "its name"
            return
        for why, looks_like in _SHAPES:
            if looks_like(value):
                yield where, f"it looks like {why}"
                return
    elif isinstance(value, Mapping):
        for k, v in value.items():
            yield from _walk(f"{where}[{k!r}]", v, str(k), depth + 1)
    elif isinstance(value, list | tuple):
        for i, v in enumerate(value):
            yield from _walk(f"{where}[{i}]", v, None, depth + 1)


def _snake(key: str) -> str:
    """``clientSecret`` -> ``client_Secret``: camelCase words are words too."""
    return _CAMEL_HUMP.sub("_", key)
