"""``status.attempts``: the finished attempts (pods) of the current or last run, kept after the
pods are gone (pure).

Fed from what the operator reads anyway: a Job's status counts its finished pods (``failed``
+ ``succeeded``); when that count passes what the status has recorded for the Job, the plan
asks for the Job's pods (``Plan.need_attempts``: one list from the API server's watch cache,
which for a finished Job also serves its termination message) and the new ones are recorded.
No pod is watched: an attempt costs one list when it ends. Either way of running attempts
feeds it: several pods of one Job (``backoffLimit``), or one Job per attempt.

The rules that keep it exact across restarts and re-reads: a pod is recorded once (found
again by its name, its record is updated in place, never added twice); records are numbered
in the order the pods were made; the list keeps the newest ``MAX_ATTEMPTS_KEPT`` (a pod whose
record was dropped is not taken for a new one); a run starts a new list; a pod the Job counts
but that was deleted before it could be read gets a record without a pod (reason
``PodDeleted``, or ``DeadlineExceeded`` when the Job's deadline ended it), so the count
catches up and the pods are not listed again and again.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from backgroundjobs.api.models import MAX_ATTEMPT_MESSAGE_BYTES, MAX_ATTEMPTS_KEPT, Attempt
from backgroundjobs.controller.decisions.podattempts import PodAttempt
from backgroundjobs.controller.decisions.state import error_text

if TYPE_CHECKING:
    from backgroundjobs.controller.decisions.observed import ObservedJob
    from backgroundjobs.controller.decisions.state import Decision

DEADLINE_EXCEEDED = "DeadlineExceeded"
POD_DELETED = "PodDeleted"
_DELETED_MESSAGE = "the pod was deleted before the operator read it"


def record_attempts(d: Decision, job: ObservedJob) -> None:
    """Bring ``status.attempts`` up to date with ``job``, a Job of the current run (``runs``):
    its newly finished pods recorded, or, when it has some the status lacks and its pods
    were not read yet, the plan asks for them (``need_attempts``)."""
    records, total = current_run(d.st.attempts, d.st.attempts_total, d.st.runs)
    finished = job.failed + job.succeeded
    pods = d.obs.attempt_pods.get(job.name)
    if pods is None:
        if finished > recorded_for(records, total, job.name):
            d.plan.need_attempts = job.name
    else:
        ending = job.failure_reason or job.failure_target
        records, total = merge(records, total, d.st.runs, job.name, finished, ending, pods)
    if records != d.st.attempts or total != d.st.attempts_total:
        d.st.attempts = records
        d.st.attempts_total = total


def current_run(records: Sequence[Attempt], total: int, run: int) -> tuple[list[Attempt], int]:
    """The records of run ``run`` and their total: a new run starts with none."""
    kept = [r for r in records if r.run == run]
    return kept, (total if kept else 0)


def recorded_for(records: Sequence[Attempt], total: int, job: str) -> int:
    """How many of ``job``'s attempts the status has recorded, counting those the bound
    dropped. Dropped records are the oldest: they are ``job``'s when the oldest kept one is
    (one Job per run: exact; one Job per attempt: a Job has one pod, never 10 dropped)."""
    ours = sum(1 for r in records if r.job == job)
    dropped = total - len(records)
    if dropped > 0 and records and records[0].job == job:
        ours += dropped
    return ours


def merge(
    records: Sequence[Attempt],
    total: int,
    run: int,
    job: str,
    finished: int,
    failure_reason: str | None,
    pods: Sequence[PodAttempt],
) -> tuple[list[Attempt], int]:
    """``records`` (of run ``run``) with ``job``'s finished ``pods`` (in the order they were
    made) merged in: known pods updated in place, new ones appended, numbered on from
    ``total``; pods the Job counts (``finished``) that are gone get a record without a pod.
    ``failure_reason``: why the Job failed or is failing (its Failed, else FailureTarget
    condition). The newest ``MAX_ATTEMPTS_KEPT`` are kept; returns them and the new total."""
    out = list(records)
    recorded = recorded_for(records, total, job)
    index = {r.pod: i for i, r in enumerate(out) if r.job == job and r.pod}
    known = [p for p in pods if p.pod in index]
    for pod in known:
        old = out[index[pod.pod]]
        out[index[pod.pod]] = attempt_record(pod, old.attempt, old.run, job, failure_reason)
    new = [p for p in pods if p.pod not in index]
    if new and recorded > sum(1 for r in records if r.job == job):
        # Some of the Job's records were dropped by the bound: their pods are older than any
        # kept one, so only pods made after a kept one are new; with none of those left to
        # compare with, the newest pods the count says are unrecorded.
        if known:
            oldest_known = min(p.order for p in known)
            new = [p for p in new if p.order > oldest_known]
        else:
            unrecorded = max(0, finished - recorded)
            new = new[len(new) - unrecorded :] if unrecorded else []
    for pod in new:
        total += 1
        out.append(attempt_record(pod, total, run, job, failure_reason))
    missing = max(0, finished - recorded - len(new))
    total += max(0, missing - MAX_ATTEMPTS_KEPT)  # counted, not built: only 10 are kept
    for _ in range(min(missing, MAX_ATTEMPTS_KEPT)):
        total += 1
        reason = DEADLINE_EXCEEDED if failure_reason == DEADLINE_EXCEEDED else POD_DELETED
        out.append(
            Attempt(attempt=total, run=run, job=job, reason=reason, message=_DELETED_MESSAGE)
        )
    return out[-MAX_ATTEMPTS_KEPT:], total


def attempt_record(
    pod: PodAttempt, attempt: int, run: int, job: str, failure_reason: str | None
) -> Attempt:
    """The status record of one finished pod."""
    reason = pod.reason
    if pod.deleted and not pod.succeeded and failure_reason == DEADLINE_EXCEEDED:
        reason = DEADLINE_EXCEEDED  # the Job controller deleted it when the run's time ran out
    return Attempt(
        attempt=attempt,
        run=run,
        job=job,
        pod=pod.pod or None,
        node=pod.node,
        started_at=pod.started_at,
        finished_at=pod.finished_at,
        exit_code=pod.exit_code,
        reason=reason[:128],
        message=error_of(pod),
    )


def error_of(pod: PodAttempt) -> str:
    """A failed attempt's error for people: the handler's (``type: error`` from its
    termination message), else the pod's status message; its first bytes."""
    if pod.succeeded:
        return ""
    text = error_text(pod.termination) if pod.termination else ""
    return cut_bytes(" ".join((text or pod.pod_message).split()), MAX_ATTEMPT_MESSAGE_BYTES)


def cut_bytes(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` bytes of UTF-8, never inside a character."""
    return text.encode("utf-8", "replace")[:limit].decode("utf-8", "ignore")
