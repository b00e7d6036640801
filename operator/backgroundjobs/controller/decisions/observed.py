"""What ``decide`` looks at: the BackgroundJob, its observed Jobs and CronJob, its parent."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from backgroundjobs.api import constants as c
from backgroundjobs.api.models import BackgroundJobSpec, ItemError
from backgroundjobs.api.podpolicy import AdmissionInForce
from backgroundjobs.api.times import parse_time
from backgroundjobs.controller.decisions.podattempts import PodAttempt
from backgroundjobs.controller.decisions.podstate import JobPods
from backgroundjobs.controller.decisions.workload import WorkloadState

Body = dict[str, Any]


def _int_or_none(text: Any) -> int | None:
    try:
        return int(text)
    except (TypeError, ValueError):
        return None


@dataclass(frozen=True)
class ObservedJob:
    """The parts of an observed batch/v1 Job that decisions need."""

    name: str
    uid: str
    owner_uid: str | None
    created: datetime | None
    start_time: datetime | None = None
    completion_time: datetime | None = None
    active_pods: int = 0
    ready_pods: int = 0
    succeeded: int = 0
    failed: int = 0
    complete: bool = False
    failure_reason: str | None = None
    failure_message: str = ""
    failure_time: datetime | None = None
    scheduled_time: datetime | None = None
    completed_indexes: str = ""
    failed_indexes: str = ""
    failure_target: str | None = None
    generation: int | None = None  # c.ANNOTATION_GENERATION: the spec a Recurring run ran
    catch_up: bool = False  # made by the misfire policy All, not by the CronJob
    # spec.suspend: a recurring run held by its queue (controller.heldruns), or a Job
    # Kueue holds (a queue with spec.kueue)
    suspended: bool = False

    @property
    def finished(self) -> bool:
        return self.complete or self.failure_reason is not None

    @property
    def finish_time(self) -> datetime | None:
        return self.completion_time if self.complete else self.failure_time

    @classmethod
    def from_body(cls, job: Body) -> ObservedJob:
        meta = job.get("metadata") or {}
        status = job.get("status") or {}
        owner = next(
            (o.get("uid") for o in meta.get("ownerReferences") or [] if o.get("controller")), None
        )
        complete = False
        failure_reason = None
        failure_message = ""
        failure_time = None
        failure_target = None
        for cnd in status.get("conditions") or []:
            if cnd.get("status") != "True":
                continue
            if cnd.get("type") == "Complete":
                complete = True
            elif cnd.get("type") == "Failed":
                failure_reason = cnd.get("reason") or "Failed"
                failure_message = cnd.get("message") or ""
                failure_time = parse_time(cnd.get("lastTransitionTime"))
            elif cnd.get("type") == "FailureTarget":
                # set before the Job controller ends the pods (a deadline): the Job's Failed
                # condition follows only once they are gone
                failure_target = cnd.get("reason") or "Failed"
        annotations = meta.get("annotations") or {}
        return cls(
            name=meta.get("name", ""),
            uid=meta.get("uid", ""),
            owner_uid=owner,
            created=parse_time(meta.get("creationTimestamp")),
            start_time=parse_time(status.get("startTime")),
            completion_time=parse_time(status.get("completionTime")),
            active_pods=int(status.get("active") or 0),
            ready_pods=int(status.get("ready") or 0),
            succeeded=int(status.get("succeeded") or 0),
            failed=int(status.get("failed") or 0),
            complete=complete,
            failure_reason=failure_reason,
            failure_message=failure_message,
            failure_time=failure_time,
            scheduled_time=parse_time(annotations.get(c.ANNOTATION_CRONJOB_SCHEDULED)),
            completed_indexes=str(status.get("completedIndexes") or ""),
            failed_indexes=str(status.get("failedIndexes") or ""),
            failure_target=failure_target,
            generation=_int_or_none(annotations.get(c.ANNOTATION_GENERATION)),
            catch_up=(meta.get("labels") or {}).get(c.LABEL_RUN) == "catch-up",
            suspended=bool((job.get("spec") or {}).get("suspend")),
        )


@dataclass
class Observed:
    """Everything ``decide`` looks at, gathered by the reconciler.

    ``termination``: the handler's termination message of a finished Job, by Job name, once
    the reconciler fetched it (a plan asks with ``need_termination``). ``admitted``: the
    answer of the queue to a plan's ``admission`` request (None: not asked yet). ``cycle``:
    the names of a chain of continuations that leads back to this job (``spec.after``), as
    the cache knows them: it can never start. ``pod_policy_admission``: whether the chart's
    pod policy is in force, once the reconciler read it (a plan asks with
    ``need_pod_policy_admission``). ``pods``: what keeps a Job's pod from starting, by Job
    name, once read (asked with ``need_pods``). ``wait_reason``/``wait_message``: why the
    queue did not admit the run (``admitted`` False): QueueFull, QueuePaused, RateLimited,
    ConcurrencyKeyBusy, OperatorStarting. ``attempt_pods``: a Job's finished pods, by Job
    name, once read (asked with ``need_attempts``; ``decisions.attempts``). ``group``: the
    members (name -> phase) of the group a continuation waits for (``spec.after.selector``),
    as the cache knows them. ``item_errors``: a finished batch Job's failed items and their
    last errors, by Job name, read with its termination message.
    """

    bgj: Body
    now: datetime
    jobs: dict[str, ObservedJob] = field(default_factory=dict)
    cronjob: Body | None = None
    parent: Body | None = None
    termination: dict[str, str | None] = field(default_factory=dict)
    admitted: bool | None = None
    cycle: list[str] | None = None
    pod_policy_admission: AdmissionInForce | None = None
    pods: dict[str, JobPods] = field(default_factory=dict)
    wait_reason: c.Reason | None = None
    wait_message: str | None = None
    attempt_pods: dict[str, tuple[PodAttempt, ...]] = field(default_factory=dict)
    group: dict[str, str] | None = None
    item_errors: dict[str, list[ItemError]] = field(default_factory=dict)
    # A queue with spec.kueue: its LocalQueue, and the Workload of the run's Job once read.
    kueue_local_queue: str | None = None
    workload: WorkloadState | None = None


# Parsed specs of large batches, by (uid, generation): a 10,000-item spec takes about 70 ms
# to parse (more on a loaded machine), and one reconcile parses it three times or more, on
# the event loop, at every change of the batch's Job. The spec of one generation never
# changes (the API server bumps generation with every spec change), so its model is reused.
# Bounded: a 10,000-item model takes about 7 MB; smaller specs parse in microseconds.
PARSED_SPECS_MAX = 8
PARSED_SPEC_MIN_ITEMS = 500
_parsed_specs: OrderedDict[tuple[str, int], BackgroundJobSpec] = OrderedDict()


def parse_spec(bgj: Body) -> BackgroundJobSpec:
    """The object's spec as the model (pydantic's ValidationError when it does not fit).
    The model is shared between calls for a large batch: callers never change it (they
    take ``model_copy`` for a variant)."""
    raw = bgj.get("spec") or {}
    meta = bgj.get("metadata") or {}
    uid, generation = meta.get("uid"), meta.get("generation")
    items = raw.get("items") if isinstance(raw, dict) else None
    if (
        not isinstance(uid, str)
        or not isinstance(generation, int)
        or not isinstance(items, list)
        or len(items) < PARSED_SPEC_MIN_ITEMS
    ):
        return BackgroundJobSpec.model_validate(raw)
    key = (uid, generation)
    spec = _parsed_specs.get(key)
    if spec is None:
        spec = BackgroundJobSpec.model_validate(raw)  # a ValidationError is not kept
        _parsed_specs[key] = spec
        while len(_parsed_specs) > PARSED_SPECS_MAX:
            _parsed_specs.popitem(last=False)
    else:
        _parsed_specs.move_to_end(key)
    return spec
