"""The state of the job this process runs: who it is, whether it was cancelled."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class CurrentJob:
    """The job this process runs, as the operator described it in the container's env."""

    handler: str
    name: str | None = None
    namespace: str | None = None
    run: int | None = None
    job: str | None = None  # a scheduled run of a Recurring job: its batch Job's name
    parent: str | None = None
    parent_result: Any = None
    args: list[Any] = field(default_factory=list)
    kwargs: dict[str, Any] = field(default_factory=dict)
    # spec.kwargsFrom, read from the Secret keys: never printed, never written out.
    secret_kwargs: dict[str, str] = field(default_factory=dict, repr=False)
    item: int | None = None  # a batch: the index of this pod's item

    @property
    def key(self) -> str | None:
        """``namespace/name/run``: the same for every retry of one run, new for a requeue;
        in a batch ``namespace/name/run/item``, one per item.

        A scheduled run of a Recurring job has its batch Job's name in place of the run
        number, so each run (each Job of the CronJob) has its own key. None outside a job
        created by the operator (no name in the env).
        """
        if not self.name:
            return None
        run = self.job if self.run is None and self.job else self.run or 0
        key = f"{self.namespace or 'default'}/{self.name}/{run}"
        return key if self.item is None else f"{key}/{self.item}"


class _Cancellation:
    """A SIGTERM-driven flag that handlers poll and the runner subscribes to."""

    def __init__(self) -> None:
        self._event = threading.Event()
        # Re-entrant: request() runs in a signal handler, maybe while the main thread holds it.
        self._lock = threading.RLock()
        self._callbacks: list[Callable[[], None]] = []
        self.signal_name: str | None = None
        self.signal_number: int | None = None

    def is_set(self) -> bool:
        return self._event.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        return self._event.wait(timeout)

    def request(self, signal_name: str, signal_number: int) -> None:
        with self._lock:
            if self._event.is_set():
                return
            self.signal_name = signal_name
            self.signal_number = signal_number
            self._event.set()
            callbacks = list(self._callbacks)
        for callback in callbacks:
            callback()

    def subscribe(self, callback: Callable[[], None]) -> None:
        with self._lock:
            already = self._event.is_set()
            self._callbacks.append(callback)
        if already:
            callback()

    def unsubscribe(self, callback: Callable[[], None]) -> None:
        with self._lock:
            if callback in self._callbacks:
                self._callbacks.remove(callback)


cancellation = _Cancellation()
_current: CurrentJob | None = None


def set_current_job(job: CurrentJob | None) -> None:
    global _current
    _current = job


def current_job() -> CurrentJob | None:
    """The job this process runs (None outside ``python -m backgroundjobs.runtime``)."""
    return _current


def cancelled() -> bool:
    """True once the pod was asked to stop (SIGTERM): a sync handler should return soon.

    Whatever the handler then returns, the run ends as cancelled (exit code 143 after SIGTERM).
    """
    return cancellation.is_set()


def parent_result() -> Any:
    """The parent job's result (JSON, from ``BACKGROUNDJOBS_PARENT_RESULT``) of a continuation.

    None when this job is not a continuation or the parent returned nothing.
    """
    return _current.parent_result if _current is not None else None
