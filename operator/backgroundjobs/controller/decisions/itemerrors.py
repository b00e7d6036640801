"""The last error of each failed item of a batch, from its Indexed Job's failed pods."""

from __future__ import annotations

from backgroundjobs.api.constants import HANDLER_CONTAINER
from backgroundjobs.api.models import MAX_ITEM_ERROR_BYTES, MAX_ITEM_ERRORS, ItemError
from backgroundjobs.controller.decisions.observed import Body
from backgroundjobs.controller.decisions.state import error_text

COMPLETION_INDEX_ANNOTATION = "batch.kubernetes.io/job-completion-index"


def _terminated_message(pod: Body) -> str | None:
    for cs in (pod.get("status") or {}).get("containerStatuses") or []:
        if cs.get("name") != HANDLER_CONTAINER:
            continue
        state = (cs.get("state") or {}).get("terminated") or (cs.get("lastState") or {}).get(
            "terminated"
        )
        if state:
            return str(state.get("message") or "")
    return None


def cut(text: str, limit: int = MAX_ITEM_ERROR_BYTES) -> str:
    """``text`` in at most ``limit`` bytes of UTF-8, never splitting a character."""
    return text.encode()[:limit].decode(errors="ignore")


def item_errors(pods: list[Body], failed: set[int] | None = None) -> list[ItemError]:
    """Per failed item (``failed``: the Job's failed indexes; None: every failed pod's), the
    error of its newest failed pod: the lowest ``MAX_ITEM_ERRORS`` indexes."""
    newest: dict[int, tuple[str, str]] = {}
    for pod in pods:
        meta = pod.get("metadata") or {}
        if (pod.get("status") or {}).get("phase") != "Failed":
            continue
        try:
            index = int((meta.get("annotations") or {})[COMPLETION_INDEX_ANNOTATION])
        except (KeyError, TypeError, ValueError):
            continue
        if failed is not None and index not in failed:
            continue
        created = str(meta.get("creationTimestamp") or "")
        message = _terminated_message(pod)
        if index not in newest or created >= newest[index][0]:
            newest[index] = (created, error_text(message) if message else "")
    return [
        ItemError(index=index, error=cut(newest[index][1]))
        for index in sorted(newest)[:MAX_ITEM_ERRORS]
    ]


def indexes_of(intervals: str) -> set[int]:
    """The indexes an interval list of the Job's status holds ("1,3-5")."""
    out: set[int] = set()
    for part in intervals.split(","):
        low, _, high = part.strip().partition("-")
        if low:
            out.update(range(int(low), int(high or low) + 1))
    return out
