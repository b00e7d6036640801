"""Who asked for a requeue: carried in the requeue annotation's own value
(``<time> by <user>``), so one annotation write holds both and an old requester can never
be taken for a new request's."""

from __future__ import annotations

from enum import StrEnum

REQUESTER_SEPARATOR = " by "
# A requeue value whose first word this is reruns only a batch's failed items.
FAILED_ONLY = "failed-only"


class RequesterSource(StrEnum):
    """Where a run record's ``requestedBy`` came from."""

    # The chart's ValidatingAdmissionPolicy refused any requester but the request's user.
    ADMISSION_POLICY = "AdmissionPolicy"
    # As the client wrote it: nothing checked it (the policy is off, or not installed).
    CLIENT = "Client"


def requeue_value(stamp: str, user: str | None) -> str:
    """The requeue annotation's value: a fresh ``stamp``, and the requester when known."""
    return f"{stamp}{REQUESTER_SEPARATOR}{user}" if user else stamp


def is_failed_only(value: str) -> bool:
    """Whether a requeue annotation's value asks for a failed-only rerun (``failed-only``,
    or ``failed-only <anything that makes it new>``)."""
    words = value.split(maxsplit=1)
    return bool(words) and words[0] == FAILED_ONLY


def requester_of(value: str) -> str | None:
    """The requester named in a requeue annotation's value; None when it names nobody
    (``kubectl annotate ... requeue=now``)."""
    _, separator, user = value.partition(REQUESTER_SEPARATOR)
    return user.strip() or None if separator else None
