"""Recurring runs through queue admission, as Kueue does: when a job's queue may hold a run
(a concurrency limit, a rate limit, a pause, or the operator-wide cap), the CronJob makes its
Jobs suspended (``jobTemplate.spec.suspend: true``; the operator's own triggered and catch-up
runs too) and the operator admits each in the queue's order by setting ``spec.suspend: false``.

Each such Job is a run of its own in the ``Admitter``, keyed ``(namespace, "<job>/<Job>")``
(a ``/`` never occurs in an object name, so the key is nobody else's): it waits while its Job is
suspended and holds a slot while it runs. Everything is read from the Jobs, so a restarted
operator counts the unsuspended ones as running and admits the suspended ones again in order;
unsuspending is idempotent, so a grant repeated after a restart never starts a second run.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from backgroundjobs.api.times import parse_time
from backgroundjobs.controller.queueing import Place, Want
from backgroundjobs.controller.settings import Settings

Body = dict[str, Any]
Key = tuple[str, str]


def holds_recurring_runs(settings: Settings, queue: str) -> bool:
    """Whether ``queue`` may hold a run back, so that recurring runs are made suspended."""
    config = settings.queue(queue)
    return settings.max_running is not None or config.max_concurrency is not None or config.holds


def run_key(owner: Key, job_name: str) -> Key:
    """The admission key of the recurring run of Job ``job_name`` of ``owner``."""
    return (owner[0], f"{owner[1]}/{job_name}")


def owner_key(key: Key) -> Key:
    """The BackgroundJob of an admission key (itself, unless a recurring run's)."""
    return (key[0], key[1].split("/", 1)[0])


def owners(keys: list[Key]) -> list[Key]:
    """The BackgroundJobs to reconcile for admission keys (a recurring run's is its job's)."""
    return [owner_key(k) for k in keys]


def is_suspended(job: Body) -> bool:
    return bool((job.get("spec") or {}).get("suspend"))


def want_of_job(key: Key, job: Body, queue: str, concurrency_key: str | None) -> Want:
    """A held run's place: its Job's creation time, then its key."""
    created = (job.get("metadata") or {}).get("creationTimestamp") or ""
    at: datetime | None = parse_time(created)
    return Want(
        queue,
        Place(created, key[1]),
        concurrency_key or None,
        at.timestamp() if at is not None else 0.0,
    )


def admitted_message(job_name: str, want: Want, now: float) -> str:
    """The ``Admitted`` Event's text: which run started, in which queue, and how long it
    was held (from its Job's creation to ``now``, wall-clock seconds)."""
    if not want.ready_since:
        return f"run {job_name} admitted by queue {want.queue}"
    held = max(0.0, now - want.ready_since)
    return f"run {job_name} admitted by queue {want.queue} after waiting {held:.0f}s"
