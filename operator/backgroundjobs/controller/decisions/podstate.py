"""Why a run's pod cannot start, read off the Job's pods and its FailedCreate Events (pure).

The reconciler lists them when a plan asks (``Plan.need_pods``) and hands the raw bodies to
:meth:`JobPods.from_bodies`; ``decisions.pods`` decides what each problem means for the job.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from backgroundjobs.api.times import parse_time

Body = dict[str, Any]


class Problem(StrEnum):
    """What keeps a run's pod from starting, by what it means for the job."""

    CREATE_REFUSED = "CreateRefused"  # admission (Pod Security, a webhook) refused the pod
    IMAGE_INVALID = "ImageInvalid"  # an image name that cannot be pulled, ever
    IMAGE_PULL = "ImagePull"  # pulling the image fails (the kubelet keeps trying)
    CONFIG = "Config"  # a missing Secret/ConfigMap (key) or a container that cannot be made
    UNSCHEDULABLE = "Unschedulable"  # no node fits the pod
    QUOTA = "Quota"  # a ResourceQuota has no room for the pod now
    CREATE_FAILED = "CreateFailed"  # another refusal of the pod's create, retried


# The kubelet's waiting reasons of a container, by what they mean.
_WAITING = {
    "ErrImagePull": Problem.IMAGE_PULL,
    "ImagePullBackOff": Problem.IMAGE_PULL,
    "InvalidImageName": Problem.IMAGE_INVALID,
    "ErrImageNeverPull": Problem.IMAGE_INVALID,
    "CreateContainerConfigError": Problem.CONFIG,
    "CreateContainerError": Problem.CONFIG,
}
# The most telling first, when a pod shows several.
_ORDER = list(Problem)


@dataclass(frozen=True)
class PodProblem:
    """One reason a pod cannot start: what, the kubelet's (or the API server's) words, since."""

    problem: Problem
    message: str
    since: datetime | None


@dataclass(frozen=True)
class JobPods:
    """What the pods of one Job show: the problems of its live pods, or, when it has none, of
    its pod creates (its FailedCreate Events)."""

    problems: tuple[PodProblem, ...] = ()

    @property
    def worst(self) -> PodProblem | None:
        """The problem that decides the job's fate (a permanent one before a transient one)."""
        if not self.problems:
            return None
        return min(self.problems, key=lambda p: _ORDER.index(p.problem))

    @classmethod
    def from_bodies(cls, pods: list[Body], failed_creates: list[Body]) -> JobPods:
        """From the Job's pods and its FailedCreate Events (read only when it has no pod)."""
        live = [p for p in pods if _live(p)]
        problems = [problem for pod in live for problem in _pod_problems(pod)]
        if not live and failed_creates:
            latest = max(failed_creates, key=_event_time)
            problems.append(_create_problem(latest))
        return cls(tuple(problems))


def _live(pod: Body) -> bool:
    phase = (pod.get("status") or {}).get("phase")
    return not (pod.get("metadata") or {}).get("deletionTimestamp") and phase not in (
        "Succeeded",
        "Failed",
    )


def _pod_problems(pod: Body) -> list[PodProblem]:
    status = pod.get("status") or {}
    meta = pod.get("metadata") or {}
    out = []
    for cnd in status.get("conditions") or []:
        if (
            cnd.get("type") == "PodScheduled"
            and cnd.get("status") == "False"
            and cnd.get("reason") == "Unschedulable"
        ):
            since = parse_time(cnd.get("lastTransitionTime")) or parse_time(
                meta.get("creationTimestamp")
            )
            message = cnd.get("message") or "no node fits the pod"
            out.append(
                PodProblem(Problem.UNSCHEDULABLE, f"pod {meta.get('name')}: {message}", since)
            )
    started = parse_time(status.get("startTime")) or parse_time(meta.get("creationTimestamp"))
    for cs in [
        *(status.get("initContainerStatuses") or []),
        *(status.get("containerStatuses") or []),
    ]:
        waiting = (cs.get("state") or {}).get("waiting") or {}
        problem = _WAITING.get(waiting.get("reason") or "")
        if problem is None:
            continue
        detail = waiting.get("message") or waiting["reason"]
        message = (
            f"container {cs.get('name')} of pod {meta.get('name')}: {waiting['reason']}: {detail}"
        )
        out.append(PodProblem(problem, message, started))
    return out


def _create_problem(event: Body) -> PodProblem:
    message = str(event.get("message") or event.get("note") or "")
    message = message.removeprefix("Error creating: ")
    if "exceeded quota" in message:
        problem = Problem.QUOTA
    elif "violates PodSecurity" in message or "denied the request" in message:
        problem = Problem.CREATE_REFUSED
    else:
        problem = Problem.CREATE_FAILED
    first = parse_time(event.get("firstTimestamp")) or parse_time(event.get("eventTime"))
    return PodProblem(problem, f"the pod's create was refused: {message}", first)


def _event_time(event: Body) -> datetime:
    """When the Event was last seen (an aggregated Event counts up in ``series``)."""
    for value in (
        (event.get("series") or {}).get("lastObservedTime"),
        event.get("lastTimestamp"),
        event.get("eventTime"),
    ):
        moment = parse_time(value)
        if moment is not None:
            return moment
    return datetime.min.replace(tzinfo=UTC)
