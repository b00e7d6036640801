"""What one finished pod of a Job says about its attempt, read off the pod's body (pure).

The reconciler lists a Job's pods when a plan asks (``Plan.need_attempts``) and hands the raw
bodies to :func:`pod_attempts`; ``decisions.attempts`` turns them into ``status.attempts``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from backgroundjobs.api import constants as c
from backgroundjobs.api.times import parse_time

Body = dict[str, Any]

# The most of a termination message kept until it is turned into a record's error (the
# runtime writes at most 4 KiB; a hostile pod could write more).
MESSAGE_KEPT = 4096


@dataclass(frozen=True)
class PodAttempt:
    """One pod that finished (or is being deleted): who, where, when, how it ended.

    ``termination``: the handler container's termination message (the runtime's result or
    ``{"error", "type"}``); ``pod_message``: the pod's own status message (an eviction's
    words); ``deleted``: its deletion was asked for (a deadline, an eviction, a person)."""

    pod: str
    created: datetime | None
    node: str | None
    started_at: str | None
    finished_at: str | None
    exit_code: int | None
    reason: str
    succeeded: bool
    deleted: bool
    termination: str = ""
    pod_message: str = ""

    @property
    def order(self) -> tuple[datetime, str]:
        """Pods of one Job in the order the Job controller made them."""
        return (self.created or datetime.min.replace(tzinfo=UTC), self.pod)


def pod_attempts(pods: list[Body]) -> tuple[PodAttempt, ...]:
    """The finished pods among ``pods`` (phase Succeeded or Failed, or being deleted), in the
    order they were made; pods still pending or running are not attempts yet."""
    found = [attempt for pod in pods if (attempt := pod_attempt(pod)) is not None]
    return tuple(sorted(found, key=lambda a: a.order))


def pod_attempt(pod: Body) -> PodAttempt | None:
    """``pod`` as an attempt, None while it has not finished."""
    meta = pod.get("metadata") or {}
    status = pod.get("status") or {}
    phase = status.get("phase")
    deleted = bool(meta.get("deletionTimestamp"))
    if phase not in ("Succeeded", "Failed") and not deleted:
        return None
    terminated = _handler_terminated(status)
    exit_code = terminated.get("exitCode")
    return PodAttempt(
        pod=str(meta.get("name") or ""),
        created=parse_time(meta.get("creationTimestamp")),
        node=(pod.get("spec") or {}).get("nodeName") or None,
        started_at=terminated.get("startedAt") or status.get("startTime"),
        finished_at=terminated.get("finishedAt"),
        exit_code=exit_code if isinstance(exit_code, int) else None,
        reason=_reason(status, terminated, deleted),
        succeeded=phase == "Succeeded",
        deleted=deleted,
        termination=str(terminated.get("message") or "")[:MESSAGE_KEPT],
        pod_message=str(status.get("message") or "")[:MESSAGE_KEPT],
    )


def _handler_terminated(status: Body) -> Body:
    """The handler container's terminated state (its last one if it was restarted)."""
    for cs in status.get("containerStatuses") or []:
        if cs.get("name") != c.HANDLER_CONTAINER:
            continue
        state = (cs.get("state") or {}).get("terminated") or (cs.get("lastState") or {}).get(
            "terminated"
        )
        return state if isinstance(state, dict) else {}
    return {}


def _reason(status: Body, terminated: Body, deleted: bool) -> str:
    """Why the pod ended, the most telling first: the pod's own reason (Evicted,
    DeadlineExceeded), a disruption (preempted, drained), the container's (Error, OOMKilled,
    Completed)."""
    if status.get("reason"):
        return str(status["reason"])
    for cnd in status.get("conditions") or []:
        if cnd.get("type") == "DisruptionTarget" and cnd.get("status") == "True":
            return str(cnd.get("reason") or "DisruptionTarget")
    if terminated.get("reason"):
        return str(terminated["reason"])
    if deleted and status.get("phase") not in ("Succeeded", "Failed"):
        return "Deleted"
    return str(status.get("phase") or "Unknown")
