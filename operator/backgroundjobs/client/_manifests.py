"""Pure builders of BackgroundJob manifests and job names (unit-tested with golden files)."""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any, Unpack

import pydantic

from backgroundjobs.api.constants import API_VERSION, DNS_LABEL_PATTERN, KIND, MAX_NAME_LENGTH
from backgroundjobs.api.durations import format_duration
from backgroundjobs.api.models import BackgroundJobSpec
from backgroundjobs.api.times import format_time
from backgroundjobs.client._arguments import PreparedCall
from backgroundjobs.client._options import ManifestOptions
from backgroundjobs.errors import InvalidSpec

FIELD_MANAGER = "backgroundjobs-client"
LABEL_CREATED_BY = "app.kubernetes.io/created-by"
CREATED_BY = "backgroundjobs-client"
NAME_RE = re.compile(DNS_LABEL_PATTERN)
SLUG_LENGTH = 30
SUFFIX_LENGTH = 5
# generateName's alphabet: no vowels (no words), no 0/1/3 (confusable).
SUFFIX_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"


def slug(handler: str) -> str:
    """A DNS-label fragment from a handler name: ``notifications.send_to_user`` ->
    ``notifications-send-to-user`` (at most 30 characters, cut at a dash when possible)."""
    text = re.sub(r"[^a-z0-9]+", "-", handler.lower()).strip("-")
    if len(text) > SLUG_LENGTH:
        cut = text[:SLUG_LENGTH]
        text = cut.rsplit("-", 1)[0] if "-" in cut[SLUG_LENGTH // 2 :] else cut
        text = text.strip("-")
    return text or "job"


def random_suffix(length: int = SUFFIX_LENGTH) -> str:
    """Random characters from Kubernetes' generateName alphabet."""
    return "".join(secrets.choice(SUFFIX_ALPHABET) for _ in range(length))


def generate_name(handler: str) -> str:
    """``<handler-slug>-<random suffix>``, like ``mail-send-x7k2m``: a valid, short job name."""
    return f"{slug(handler)}-{random_suffix()}"


def check_name(name: str, what: str = "name") -> str:
    """Refuse a name that is not a DNS label of at most ``MAX_NAME_LENGTH`` characters
    (``InvalidSpec``)."""
    if not isinstance(name, str) or not NAME_RE.match(name) or len(name) > MAX_NAME_LENGTH:
        raise InvalidSpec(
            f"{what} {name!r} is not valid: use at most {MAX_NAME_LENGTH} lowercase letters,"
            " digits and '-', starting and ending with a letter or digit (the Jobs' names are"
            " derived from it)"
        )
    return name


def duration_text(value: timedelta | str | None, field: str) -> str | None:
    """A duration option as the spec's string: timedeltas are formatted (``1h30m``), strings
    are passed as they are for the API server to check."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, timedelta):
        if value < timedelta(0):
            raise InvalidSpec(f"spec.{field} must not be negative (got {value})")
        return format_duration(value)
    raise InvalidSpec(f"spec.{field} must be a timedelta or a duration string like 90s or 1h30m")


def _retry_policy_spec(policy: Any) -> dict[str, Any] | None:
    if policy is None:
        return None
    if not hasattr(policy, "to_spec"):
        raise InvalidSpec("retry_policy must be a RetryPolicy(initial=..., factor=..., max=...)")
    spec: dict[str, Any] = policy.to_spec()
    return spec


def rfc3339(moment: datetime, field: str = "runAt") -> str:
    """An aware datetime as an RFC 3339 UTC string (``2030-01-02T03:04:05Z``)."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise InvalidSpec(
            f"spec.{field} needs an aware datetime (with tzinfo), e.g."
            " datetime(2030, 1, 2, 3, 4, tzinfo=timezone.utc); got a naive one"
        )
    return format_time(moment)


def build_manifest(
    *,
    name: str,
    namespace: str,
    call: PreparedCall,
    when: Mapping[str, Any] | None = None,
    **options: Unpack[ManifestOptions],
) -> dict[str, Any]:
    """The BackgroundJob object for a call.

    ``when`` holds the type's fields in spec form: ``{}`` (Immediate), ``{"delay": "1h"}`` or
    ``{"runAt": ...}`` (Delayed), ``{"schedule": ..., "timeZone": ...}`` (Recurring) or
    ``{"after": {"name": ..., "when": ...}}`` (Continuation). Only the options given appear
    in the manifest, so the CRD's defaults (and, with server-side apply, the removal of an
    option no longer given) apply to the rest.
    """
    # Empty args/kwargs are left out (the spec's defaults): server-side apply turns an applied
    # empty object whose keys it removes into null, which the schema refuses.
    fields: dict[str, Any] = {"handler": call.handler}
    if call.args:
        fields["args"] = call.args
    if call.kwargs:
        fields["kwargs"] = call.kwargs
    if call.kwargs_from:
        fields["kwargsFrom"] = call.kwargs_from_spec()
    fields.update(when or {})
    pod_template = options.get("pod_template")
    optional = {
        "queue": options.get("queue"),
        "retries": options.get("retries"),
        "timeout": duration_text(options.get("timeout"), "timeout"),
        "image": options.get("image"),
        "podTemplate": dict(pod_template) if pod_template is not None else None,
        "ttlAfterSucceeded": duration_text(options.get("keep_succeeded"), "keep_succeeded"),
        "ttlAfterFailed": duration_text(options.get("keep_failed"), "keep_failed"),
        "concurrencyKey": options.get("concurrency_key"),
        "retryPolicy": _retry_policy_spec(options.get("retry_policy")),
    }
    fields.update({key: value for key, value in optional.items() if value is not None})
    try:
        spec = BackgroundJobSpec.model_validate(fields)
    except pydantic.ValidationError as exc:
        raise InvalidSpec(_validation_message(exc)) from None
    spec_dict = spec.model_dump(mode="json", by_alias=True, exclude_none=True, exclude_unset=True)
    metadata: dict[str, Any] = {
        "name": name,
        "namespace": namespace,
        "labels": {LABEL_CREATED_BY: CREATED_BY, **dict(options.get("labels") or {})},
    }
    return {"apiVersion": API_VERSION, "kind": KIND, "metadata": metadata, "spec": spec_dict}


def _validation_message(exc: pydantic.ValidationError) -> str:
    parts = []
    for error in exc.errors():
        where = ".".join(str(p) for p in error.get("loc", ()))
        parts.append(f"spec.{where}: {error['msg']} (got {error.get('input')!r})")
    return "; ".join(parts)
