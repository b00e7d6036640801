"""The Kueue hand-off: a queue with ``spec.kueue`` leaves admission to Kueue.

Its runs skip the operator's own admission: their Jobs are made suspended with the
LocalQueue's label, Kueue makes a Workload for each, and unsuspends the Job once its
ClusterQueue admits it (or suspends it again when it evicts or preempts it). A run whose Job
is suspended is ``Queued``; the reason is the Workload's (read by the reconciler into
``Observed.workload``): ``WaitingForQuota``, ``QuotaReserved`` (admission checks pending),
``Evicted``, ``Preempted``, or ``KueueNotInstalled`` when the Workload API is not served.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from backgroundjobs.api import constants as c
from backgroundjobs.api.constants import ConditionType, EventReason, Phase, Reason
from backgroundjobs.controller.decisions.observed import ObservedJob
from backgroundjobs.controller.decisions.plan import Plan
from backgroundjobs.controller.decisions.state import Decision
from backgroundjobs.controller.decisions.workload import WorkloadState

Body = dict[str, Any]

# A held run is looked at again this often: a Workload's waiting message changes without the
# Job changing. Sooner while Kueue has not made the Job's Workload yet (it does within
# moments), so that the reason Kueue gives shows at once.
LOOK_AGAIN = timedelta(seconds=30)
LOOK_AGAIN_NO_WORKLOAD = timedelta(seconds=2)


def hand_off(job: Body, local_queue: str) -> Body:
    """``job`` as Kueue takes it: suspended, labelled with its LocalQueue."""
    job["spec"]["suspend"] = True
    job["metadata"].setdefault("labels", {})[c.KUEUE_QUEUE_LABEL] = local_queue
    return job


def why_held(local_queue: str, state: WorkloadState | None) -> tuple[Reason, str]:
    """Why Kueue holds a run's Job suspended: a reason and a message."""
    if state is None or not state.found:
        if state is not None and not state.installed:
            return (
                Reason.KUEUE_NOT_INSTALLED,
                f"the Job waits for Kueue (LocalQueue {local_queue}), but the Workload API"
                " (workloads.kueue.x-k8s.io) is not served: install Kueue, or remove"
                " spec.kueue from the queue",
            )
        return Reason.WAITING_FOR_QUOTA, f"waiting for Kueue's Workload (LocalQueue {local_queue})"
    for ctype, reason in (
        ("Preempted", Reason.PREEMPTED),
        ("Evicted", Reason.EVICTED),
    ):
        cnd = state.true(ctype)
        if cnd is not None:
            return reason, f"{ctype.lower()} by Kueue ({cnd.reason}): {cnd.message}".rstrip(": ")
    if state.true("QuotaReserved") is not None and state.true("Admitted") is None:
        where = f" in ClusterQueue {state.cluster_queue}" if state.cluster_queue else ""
        return Reason.QUOTA_RESERVED, f"quota reserved{where}; waiting for admission checks"
    pending = state.conditions.get("QuotaReserved")
    detail = pending.message if pending is not None and pending.message else "no quota yet"
    return Reason.WAITING_FOR_QUOTA, f"waiting for quota (LocalQueue {local_queue}): {detail}"


def held(d: Decision, local_queue: str, job: ObservedJob) -> Plan:
    """The run's Job exists, suspended by Kueue: the run is Queued for the Workload's reason."""
    reason, msg = why_held(local_queue, d.obs.workload)
    msg = f"Job {job.name}: {msg}"
    if d.old_phase != Phase.QUEUED:
        d.note(EventReason.QUEUED, msg)
    d.phase(Phase.QUEUED, msg)
    d.set(ConditionType.QUEUED, True, reason, msg)
    d.set(ConditionType.ADMITTED, False, reason, msg)
    d.unset(ConditionType.RUNNING, reason, msg)
    state = d.obs.workload
    soon = state is not None and state.installed and not state.found
    d.plan.look_again(d.now + (LOOK_AGAIN_NO_WORKLOAD if soon else LOOK_AGAIN))
    return d.plan


def created_held(d: Decision, local_queue: str, job_name: str) -> None:
    """A run's Job was just made for Kueue: it waits for its Workload's admission."""
    msg = f"Job {job_name} created suspended for Kueue (LocalQueue {local_queue})"
    d.phase(Phase.QUEUED, msg)
    d.set(ConditionType.QUEUED, True, Reason.WAITING_FOR_QUOTA, msg)
    d.set(ConditionType.ADMITTED, False, Reason.WAITING_FOR_QUOTA, msg)
    d.set(ConditionType.RUNNING, False, Reason.WAITING_FOR_QUOTA, msg)


def admitted(d: Decision, job: ObservedJob) -> None:
    """Kueue unsuspended the run's Job: its Admitted condition says so."""
    state = d.obs.workload
    where = f" by ClusterQueue {state.cluster_queue}" if state and state.cluster_queue else ""
    msg = f"Job {job.name} admitted{where}"
    old = d.condition(ConditionType.ADMITTED)
    if old is None or old.status != "True":
        if d.old_phase != Phase.RUNNING:
            d.note(EventReason.STARTED, msg)
        d.phase(Phase.RUNNING, msg)
        d.set(ConditionType.RUNNING, True, Reason.ADMITTED, msg)
        d.set(ConditionType.ADMITTED, True, Reason.ADMITTED, msg)
        d.unset(ConditionType.QUEUED, Reason.ADMITTED, msg)
