"""Operator configuration, read from ``BACKGROUNDJOBS_*`` environment variables (API.md §6)."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from backgroundjobs._connection import service_account_namespace
from backgroundjobs._version import __version__
from backgroundjobs.api.durations import parse_duration
from backgroundjobs.api.podpolicy import PodPolicy

DEFAULT_IMAGE = f"backgroundjobs/examples:{__version__}"


@dataclass(frozen=True)
class QueueConfig:
    """What a queue maps to: a PriorityClass and a limit of concurrently running Jobs."""

    priority_class_name: str | None = None
    max_concurrency: int | None = None
    # The queue's BackgroundJobQueue can hold a run otherwise (a rate limit, a pause).
    holds: bool = False


@dataclass(frozen=True)
class Settings:
    """Every knob of the operator. Each attribute names its environment variable."""

    namespaces: tuple[str, ...] = ()
    """BACKGROUNDJOBS_NAMESPACES: comma-separated namespaces to watch; empty or ``*`` = all."""
    exclude_namespaces: tuple[str, ...] = ("kube-system",)
    """BACKGROUNDJOBS_EXCLUDE_NAMESPACES: namespaces never served in cluster-wide mode; unset:
    the operator's own (its ServiceAccount's) and kube-system. Listed namespaces are served."""
    pod_policy: PodPolicy = field(default_factory=PodPolicy)
    """BACKGROUNDJOBS_POD_POLICY: the pod policy's allow-lists and rules (JSON, api.podpolicy)."""
    pod_policy_check: bool = True
    """BACKGROUNDJOBS_POD_POLICY_CHECK: check the pod policy in the operator for jobs the
    admission policy did not vouch for (Failed/PolicyDenied); false leaves it to admission."""
    default_image: str = DEFAULT_IMAGE
    """BACKGROUNDJOBS_DEFAULT_IMAGE: image for jobs that name none."""
    retention: timedelta = timedelta(hours=168)
    """BACKGROUNDJOBS_RETENTION: how long finished jobs are kept (unless ttlAfterFinished)."""
    queues: Mapping[str, QueueConfig] = field(default_factory=dict)
    """BACKGROUNDJOBS_QUEUES: JSON ``{"critical": {"priorityClassName": "high",
    "maxConcurrency": 10}}``."""
    metrics_port: int = 8080
    """BACKGROUNDJOBS_METRICS_PORT: Prometheus metrics port; 0 disables the endpoint."""
    log_format: str = "text"
    """BACKGROUNDJOBS_LOG_FORMAT: ``json`` or ``text``."""
    workers: int = 32
    """BACKGROUNDJOBS_WORKERS: reconciliations that may run at once."""
    events: str = "all"
    """BACKGROUNDJOBS_EVENTS: ``all`` posts an Event per transition; ``failures`` only Warnings."""
    status_hold: float = 10.0
    """BACKGROUNDJOBS_STATUS_HOLD: seconds the status write that follows a Job's creation may
    wait while other objects wait for a worker (Jobs first in a burst); 0 = never wait."""
    leader_election: bool = False
    """BACKGROUNDJOBS_LEADER_ELECTION: take a coordination.k8s.io Lease before acting (HA)."""
    lease_name: str = "backgroundjobs-operator"
    """BACKGROUNDJOBS_LEASE_NAME: name of the Lease used for leader election."""
    lease_namespace: str = "default"
    """BACKGROUNDJOBS_LEASE_NAMESPACE: namespace of that Lease (the operator's own)."""
    lease_duration: float = 15.0
    """BACKGROUNDJOBS_LEASE_DURATION: seconds a leader's Lease lasts without renewal."""
    resync_period: float = 300.0
    """BACKGROUNDJOBS_RESYNC_PERIOD: seconds between two relists that compare the API
    server's BackgroundJobs and Jobs with the cache (what a watch gap hid); 0 = never."""
    pod_start_grace: timedelta = timedelta(seconds=60)
    """BACKGROUNDJOBS_POD_START_GRACE: how long a run's pod may stay unable to start its
    containers (an image that cannot be pulled, a missing Secret or ConfigMap) before the job
    fails (ImagePullFailed, ConfigError)."""
    unschedulable_timeout: timedelta | None = None
    """BACKGROUNDJOBS_UNSCHEDULABLE_TIMEOUT: how long a run's pod may stay unschedulable before
    the job fails (Unschedulable); empty or 0 = it waits for ever."""
    kstatus_conditions: bool = True
    """Not from the environment: false while the installed CRD predates the Reconciling and
    Stalled condition types (controller/crdcheck.py), so that status writes stay accepted."""

    progress_interval: float = 5.0
    """BACKGROUNDJOBS_PROGRESS_INTERVAL: seconds between two reads of the running handlers'
    progress (their log's last lines) into status.progress; 0 = never."""
    progress_max_reads: int = 100
    """BACKGROUNDJOBS_PROGRESS_MAX_READS: pod logs read at most per interval (the pods read
    longest ago first): bounds the cost when many jobs run."""

    max_running: int | None = None
    """BACKGROUNDJOBS_MAX_RUNNING: runs of all queues running at once (the operator-wide
    cap, shared by priority); empty or 0 = no cap."""
    concurrency_key_limit: int = 1
    """BACKGROUNDJOBS_CONCURRENCY_KEY_LIMIT: runs of one namespace's spec.concurrencyKey that
    may run at once."""
    queue_aging: float = 60.0
    """BACKGROUNDJOBS_QUEUE_AGING: seconds a queue's first waiting job waits per priority
    level it gains against other queues (no starvation); 0 = no aging."""
    requester_checked: bool = False
    """BACKGROUNDJOBS_REQUESTER_CHECKED: the chart's admission policy checks the requester
    named in a requeue annotation (status.runHistory says AdmissionPolicy, else Client)."""

    def queue(self, name: str) -> QueueConfig:
        return self.queues.get(name, QueueConfig())

    @property
    def clusterwide(self) -> bool:
        return not self.namespaces

    def serves(self, namespace: str) -> bool:
        """Whether BackgroundJobs in ``namespace`` are served: listed namespaces (or globs)
        are watched only, so all they bring is served; cluster-wide, all but the excluded."""
        return bool(self.namespaces) or namespace not in self.exclude_namespaces


def _queues(text: str) -> dict[str, QueueConfig]:
    if not text.strip():
        return {}
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"BACKGROUNDJOBS_QUEUES is not valid JSON: {exc}") from exc
    if not isinstance(raw, dict):
        raise ValueError("BACKGROUNDJOBS_QUEUES must be a JSON object of queue name to config")
    out: dict[str, QueueConfig] = {}
    for name, cfg in raw.items():
        if not isinstance(cfg, dict):
            raise ValueError(f"BACKGROUNDJOBS_QUEUES[{name!r}] must be an object")
        limit = cfg.get("maxConcurrency")
        if limit is not None and (
            not isinstance(limit, int) or isinstance(limit, bool) or limit < 1
        ):
            raise ValueError(f"BACKGROUNDJOBS_QUEUES[{name!r}].maxConcurrency must be an int >= 1")
        out[name] = QueueConfig(cfg.get("priorityClassName"), limit)
    return out


def load(env: Mapping[str, str] | None = None) -> Settings:
    """Read the settings from the environment; a bad value raises ValueError naming it."""
    env = os.environ if env is None else env

    def get(key: str, default: str = "") -> str:
        return env.get(f"BACKGROUNDJOBS_{key}", default).strip()

    namespaces_text = get("NAMESPACES")
    namespaces = tuple(
        n.strip() for n in namespaces_text.split(",") if n.strip() and n.strip() != "*"
    )
    log_format = get("LOG_FORMAT", "text").lower()
    if log_format not in ("json", "text"):
        raise ValueError("BACKGROUNDJOBS_LOG_FORMAT must be json or text")
    events = get("EVENTS", "all").lower()
    if events not in ("all", "failures"):
        raise ValueError("BACKGROUNDJOBS_EVENTS must be all or failures")
    try:
        retention = parse_duration(get("RETENTION", "168h"))
    except ValueError as exc:
        raise ValueError(f"BACKGROUNDJOBS_RETENTION: {exc}") from exc

    def number(key: str, default: str, kind: type[int] | type[float], minimum: float) -> Any:
        text = get(key, default)
        try:
            value = kind(text)
        except ValueError:
            value = None
        if value is None or value < minimum or value != value:  # value != value: NaN
            raise ValueError(
                f"BACKGROUNDJOBS_{key} must be {'an integer' if kind is int else 'a number'}"
                f" >= {minimum:g}, not {text!r}"
            )
        return value

    def flag(key: str, default: str) -> bool:
        text = (get(key) or default).lower()
        if text not in ("1", "true", "yes", "0", "false", "no"):
            raise ValueError(f"BACKGROUNDJOBS_{key} must be true or false, not {text!r}")
        return text in ("1", "true", "yes")

    metrics_port = number("METRICS_PORT", "8080", int, 0)
    if metrics_port > 65535:
        raise ValueError(f"BACKGROUNDJOBS_METRICS_PORT must be a port <= 65535, not {metrics_port}")
    workers = number("WORKERS", "32", int, 1)
    status_hold = number("STATUS_HOLD", "10", float, 0)
    lease_duration = number("LEASE_DURATION", "15", float, 1)
    resync_period = number("RESYNC_PERIOD", "300", float, 0)
    progress_interval = number("PROGRESS_INTERVAL", "5", float, 0)
    progress_max_reads = number("PROGRESS_MAX_READS", "100", int, 1)
    if "BACKGROUNDJOBS_EXCLUDE_NAMESPACES" in env:
        excluded = tuple(n.strip() for n in get("EXCLUDE_NAMESPACES").split(",") if n.strip())
    else:
        own = service_account_namespace()
        excluded = tuple(dict.fromkeys(n for n in (own, "kube-system") if n))
    pod_start_grace = _duration(get("POD_START_GRACE", "60s"), "POD_START_GRACE")
    unschedulable_timeout = _duration(get("UNSCHEDULABLE_TIMEOUT", "0"), "UNSCHEDULABLE_TIMEOUT")
    return Settings(
        namespaces=namespaces,
        exclude_namespaces=excluded,
        pod_policy=PodPolicy.from_json(get("POD_POLICY")),
        pod_policy_check=flag("POD_POLICY_CHECK", "true"),
        default_image=get("DEFAULT_IMAGE") or DEFAULT_IMAGE,
        retention=retention,
        queues=_queues(get("QUEUES")),
        metrics_port=metrics_port,
        log_format=log_format,
        workers=workers,
        events=events,
        status_hold=status_hold,
        leader_election=flag("LEADER_ELECTION", "false"),
        lease_name=get("LEASE_NAME") or "backgroundjobs-operator",
        lease_namespace=get("LEASE_NAMESPACE") or service_account_namespace() or "default",
        lease_duration=lease_duration,
        resync_period=resync_period,
        pod_start_grace=pod_start_grace or timedelta(0),
        unschedulable_timeout=unschedulable_timeout,
        progress_interval=progress_interval,
        progress_max_reads=progress_max_reads,
        max_running=number("MAX_RUNNING", "0", int, 0) or None,
        concurrency_key_limit=number("CONCURRENCY_KEY_LIMIT", "1", int, 1),
        queue_aging=number("QUEUE_AGING", "60", float, 0),
        requester_checked=flag("REQUESTER_CHECKED", "false"),
    )


def _duration(text: str, key: str) -> timedelta | None:
    """A Go-style duration setting; empty or zero is None (off)."""
    if text in ("", "0"):
        return None
    try:
        value = parse_duration(text)
    except ValueError as exc:
        raise ValueError(f"BACKGROUNDJOBS_{key}: {exc}") from exc
    return value or None
