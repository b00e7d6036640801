"""Where the held runs of a Recurring job stand (``describe``, ``get -o wide``): a run the
CronJob made suspended because its queue is limited waits in that queue beside the Queued
jobs, in the operator's order (creation time, then name; a held run's name is
``<job>/<Job>``), and why it waits is its job's ``Queued`` condition."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from backgroundjobs.api.constants import JobType, Phase
from backgroundjobs.api.times import format_time, parse_time
from backgroundjobs.client import AsyncClient, JobInfo

Body = dict[str, Any]
Place = tuple[str, str]  # (creationTimestamp, name): RFC 3339 UTC sorts as the time it is


@dataclass(frozen=True)
class HeldRun:
    """One held run: its Job, place in its queue, and how many wait there."""

    job_name: str
    position: int
    waiting: int
    queue: str
    why: str

    def line(self) -> str:
        """``run tick-1: position 2 of 5 in queue bulk (QueueFull: ...)``."""
        where = f"position {self.position} of {self.waiting} in queue {self.queue}"
        return f"run {self.job_name}: {where}{self.why}"


def is_held(run: Body) -> bool:
    """A Job suspended and not finished: a recurring run its queue holds back."""
    conditions = (run.get("status") or {}).get("conditions") or []
    finished = any(
        cnd.get("type") in ("Complete", "Failed") and cnd.get("status") == "True"
        for cnd in conditions
    )
    return bool((run.get("spec") or {}).get("suspend")) and not finished


def created(obj: Body) -> str:
    """An object's creation time as the API server writes it (``...Z``): the client gives
    a Job's as ``...+00:00``, which would sort before a custom object's of the same second."""
    value = (obj.get("metadata") or {}).get("creationTimestamp")
    at = parse_time(value)
    return format_time(at) if at is not None else str(value or "")


def held_places(owner: str, runs: list[Body]) -> list[Place]:
    """The places of ``owner``'s held runs in their queue."""
    return [(created(r), f"{owner}/{r['metadata']['name']}") for r in runs if is_held(r)]


def queued_condition(job: JobInfo) -> Body:
    """The job's ``Queued`` condition when it is True, else empty."""
    for cnd in (job.raw.get("status") or {}).get("conditions") or []:
        if cnd.get("type") == "Queued" and cnd.get("status") == "True":
            return cnd  # type: ignore[no-any-return]
    return {}


def why_held(condition: Body) -> str:
    """`` (reason: why)`` from a ``Queued`` condition ``held: a, b (why)``; empty if none."""
    if not condition:
        return ""
    message = str(condition.get("message") or "")
    if message.startswith("held: ") and message.endswith(")") and " (" in message:
        message = message.split(" (", 1)[1][:-1]
    return f" ({condition.get('reason')}: {message})"


def held_runs(job: JobInfo, runs: list[Body], order: list[Place]) -> list[HeldRun]:
    """The held runs of ``job`` (its Jobs ``runs``), each with its place in ``order``
    (every waiting run of the queue, any order)."""
    ordered = sorted(set(order))
    index = {name: i for i, (_, name) in enumerate(ordered)}
    why = why_held(queued_condition(job))
    out = []
    for _, name in held_places(job.name, runs):
        if name in index:
            job_name = name.split("/", 1)[1]
            out.append(HeldRun(job_name, index[name] + 1, len(ordered), job.queue, why))
    return out


async def queue_order(client: AsyncClient, namespace: str, queue: str) -> list[Place]:
    """Every run waiting in ``queue``: its Queued jobs and the held runs of its Recurring
    jobs (those whose ``Queued`` condition is True)."""
    queued = await client.list(namespace=namespace, queue=queue, phase=Phase.QUEUED)
    order = [(created(j.raw), j.name) for j in queued]
    order += await held_order(client, namespace, queue)
    return order


async def held_order(client: AsyncClient, namespace: str, queue: str) -> list[Place]:
    """The places of the held runs of ``queue``'s Recurring jobs."""
    recurring = await client.list(namespace=namespace, queue=queue, type=JobType.RECURRING)
    places: list[Place] = []
    for job in recurring:
        if queued_condition(job):
            places += held_places(job.name, await client.runs(job.name, namespace=namespace))
    return places


async def held_run_lines(client: AsyncClient, job: JobInfo) -> list[str]:
    """Where each held run of ``job`` stands (none unless it is a Recurring job whose
    ``Queued`` condition is True)."""
    if job.type != JobType.RECURRING or not queued_condition(job):
        return []
    runs = await client.runs(job.name, namespace=job.namespace)
    if not any(is_held(r) for r in runs):
        return []
    order = await queue_order(client, job.namespace, job.queue)
    return [held.line() for held in held_runs(job, runs, order)]


async def with_held_runs(client: AsyncClient, job: JobInfo) -> JobInfo:
    """``job`` with where its held runs stand before its message (``get -o wide``)."""
    lines = await held_run_lines(client, job)
    if not lines:
        return job
    return replace(job, message="; ".join([*lines, *([job.message] if job.message else [])]))
