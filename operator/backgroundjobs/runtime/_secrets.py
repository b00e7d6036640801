"""Secret keyword arguments (``spec.kwargsFrom``): read from the env, kept out of what the
runtime writes.

The operator gives the handler container one env variable per secret keyword argument,
``BACKGROUNDJOBS_SECRET_KWARG_<name>``, whose value comes from the Secret key
(``valueFrom.secretKeyRef``), and lists their names in ``BACKGROUNDJOBS_SECRET_KWARGS``. The
runtime passes them to the handler with the other keyword arguments, and replaces their values
in the termination message (a failure's error, the result) and in every log line, so that a
handler error quoting an argument does not carry a secret into the job's status.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping

from backgroundjobs.api.constants import ENV_SECRET_KWARG_PREFIX, ENV_SECRET_KWARGS

# Shorter values would turn ordinary words of a message into the mark, and hide little.
MIN_REDACTED_LENGTH = 4
REDACTED = "<secret>"


class InvalidSecretKwargs(ValueError):
    """The env names a secret keyword argument it does not carry, or one given twice."""


def secret_kwargs_from_env(
    environ: Mapping[str, str], kwargs: Mapping[str, object]
) -> dict[str, str]:
    """The secret keyword arguments named in ``BACKGROUNDJOBS_SECRET_KWARGS``."""
    names = [n.strip() for n in environ.get(ENV_SECRET_KWARGS, "").split(",") if n.strip()]
    out: dict[str, str] = {}
    for name in names:
        variable = ENV_SECRET_KWARG_PREFIX + name
        if variable not in environ:
            raise InvalidSecretKwargs(
                f"{variable} is not set: the Secret key of keyword argument {name!r}"
                " (spec.kwargsFrom) did not reach the container"
            )
        if name in kwargs:
            raise InvalidSecretKwargs(
                f"keyword argument {name!r} is given both in spec.kwargs and in spec.kwargsFrom"
            )
        out[name] = environ[variable]
    return out


class Redactor:
    """Replaces secret values in text: as they are, and as they appear inside JSON strings."""

    def __init__(self, values: Iterable[str] = ()) -> None:
        forms: set[str] = set()
        for value in values:
            if len(value) >= MIN_REDACTED_LENGTH:
                forms.add(value)
                forms.add(json.dumps(value, ensure_ascii=False)[1:-1])
                forms.add(json.dumps(value)[1:-1])
        # Longest first: a value that contains another is replaced whole.
        self._forms = sorted(forms, key=len, reverse=True)

    def __bool__(self) -> bool:
        return bool(self._forms)

    def text(self, text: str) -> str:
        for form in self._forms:
            text = text.replace(form, REDACTED)
        return text

    def json_bytes(self, payload: bytes) -> bytes:
        """A JSON document with the values replaced inside its strings (still valid JSON)."""
        if not self._forms:
            return payload
        return self.text(payload.decode("utf-8")).encode("utf-8")


redactor = Redactor()


def redact_secrets(values: Iterable[str]) -> None:
    """Redact ``values`` from everything the runtime writes from now on."""
    global redactor
    redactor = Redactor(values)
