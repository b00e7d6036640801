"""Queue admission: which waiting runs start, and in which order. Pure: no I/O, the clocks
are passed in. The one place where queue slots are taken and released, on every path: a run
granted, its Job seen running, finished or deleted, its BackgroundJob deleted.

- A queue is ``(namespace, spec.queue)``; its ``QueuePolicy`` comes from its
  ``BackgroundJobQueue`` object, else from the operator's defaults.
- Within a queue: strict FIFO by ``(creationTimestamp, name)`` (a heap, O(log n) per
  admission). A head whose concurrency key is busy is set aside (not blocking the queue) until
  a run of that key ends, then goes back in its place.
- Across queues, for the operator-wide cap (``max_running``): the queue whose head has the
  highest effective priority first: its ``priority`` plus one level per ``aging`` seconds
  its head has waited (since its creation or due time), so a low queue is never starved.
- Slots are granted by the admitter itself (as Kueue does): a freed slot, a token of a rate
  limit, a resumed queue grant the next heads and return exactly those keys to wake.
- Nothing is granted until ``ready`` (the operator has seen what runs and waits after a
  start): the order and the counts after a restart are derived from the objects.
"""

from __future__ import annotations

import heapq
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from backgroundjobs.api.constants import Reason
from backgroundjobs.api.times import parse_time

# Seconds a granted run waits for a run of its queue granted before it whose reconcile failed
# (a healthy one, however slow, is waited for: that keeps the order exact under load).
TURN_PATIENCE = 5.0

log = logging.getLogger("backgroundjobs.operator")

Key = tuple[str, str]
QueueId = tuple[str, str]  # (namespace, queue name)
KeyId = tuple[str, str]  # (namespace, concurrency key)


@dataclass(frozen=True)
class QueuePolicy:
    """How a queue admits: from its BackgroundJobQueue, else the operator's defaults."""

    max_concurrency: int | None = None
    priority: int = 0
    paused: bool = False
    rate_per_second: float | None = None
    burst: int = 1
    priority_class_name: str | None = None
    kueue_local_queue: str | None = None  # admission left to Kueue (decisions.kueue)


@dataclass(frozen=True, order=True)
class Place:
    """A run's place in its queue: creation time (RFC 3339, sorts as time), then name."""

    created: str
    name: str


@dataclass(frozen=True)
class Want:
    """A run waiting for a slot: its queue, place, concurrency key and since when it is
    ready (wall-clock seconds: the creation or due time), for aging and the wait metric."""

    queue: str
    place: Place
    concurrency_key: str | None = None
    ready_since: float = 0.0


@dataclass(frozen=True)
class Verdict:
    """The answer to a run asking for a slot."""

    admitted: bool
    reason: Reason | None = None
    message: str = ""


@dataclass(frozen=True)
class Grant:
    """A slot granted: to whom, in which queue, after how long a wait (seconds)."""

    key: Key
    queue: QueueId
    waited: float


@dataclass
class _Bucket:
    tokens: float
    at: float  # monotonic seconds of the last refill


@dataclass
class _Holder:
    queue: QueueId
    key_id: KeyId | None
    job_seen: bool = False


@dataclass
class Dispatch:
    """What one round of granting did: the grants, and when a rate limit next has a token
    (monotonic seconds; None when no queue waits on one)."""

    grants: list[Grant] = field(default_factory=list)
    retry_at: float | None = None
    retry_key: Key | None = None
    turns: list[Key] = field(default_factory=list)

    @property
    def keys(self) -> list[Key]:
        """The runs to reconcile: those granted a slot, and those whose turn to make
        their Job came."""
        return [g.key for g in self.grants] + self.turns


def want_of(body: dict[str, Any], queue: str) -> Want:
    """What a ready run of ``body`` asks ``queue`` for: its place (creation time, name), its
    concurrency key, and since when it is ready (a Delayed job's due time, else its
    creation)."""
    meta = body.get("metadata") or {}
    created = meta.get("creationTimestamp") or ""
    ready = parse_time((body.get("status") or {}).get("dueAt")) or parse_time(created)
    return Want(
        queue,
        Place(created, meta.get("name") or ""),
        (body.get("spec") or {}).get("concurrencyKey") or None,
        ready.timestamp() if ready is not None else time.time(),
    )


class Admitter:
    """The slots of every queue, the runs waiting for one, and the order they get them in."""

    def __init__(
        self,
        policy_of: Callable[[QueueId], QueuePolicy],
        *,
        max_running: int | None = None,
        key_limit: int = 1,
        aging: float = 60.0,
        ready: bool = True,
    ) -> None:
        self.policy_of = policy_of
        self.max_running = max_running
        self.key_limit = key_limit
        self.aging = aging
        self.ready = ready
        # Called with each grant (the loop records the wait metric).
        self.on_grant: Callable[[Grant], None] | None = None
        self._holders: dict[Key, _Holder] = {}
        self._running: dict[QueueId, int] = {}
        self._key_running: dict[KeyId, int] = {}
        self._wants: dict[Key, Want] = {}
        self._waiting: dict[QueueId, list[tuple[Place, Key]]] = {}
        self._pending: dict[QueueId, int] = {}
        self._parked: dict[KeyId, list[tuple[Place, Key]]] = {}
        self._parked_keys: set[Key] = set()
        self._buckets: dict[QueueId, _Bucket] = {}
        # Granted runs whose Job is not seen yet, by queue, in the order granted, with the
        # monotonic time their reconcile first failed (None while none did): Jobs are made in
        # that order (``has_turn``), so runs granted in one round start in order.
        self._unstarted: dict[QueueId, dict[Key, float | None]] = {}

    # ------------------------------------------------------------ asking

    def want(self, key: Key, want: Want, mono: float, wall: float) -> tuple[Verdict, Dispatch]:
        """``key``'s run is ready to start: whether it may now (it holds a slot), and what
        the round of granting this caused (its grants include ``key``'s own, if any: the
        others are the keys to wake)."""
        if key in self._holders:
            return Verdict(True), Dispatch()
        self._register(key, want)
        dispatch = self.dispatch(mono, wall)
        if key in self._holders:
            return Verdict(True), dispatch
        return self._why_waiting(key, want, mono), dispatch

    def withdraw(self, key: Key, mono: float, wall: float) -> Dispatch:
        """``key`` no longer waits (cancelled, suspended, not due); a slot granted to it
        whose Job was never seen is given back."""
        self._unregister(key)
        holder = self._holders.get(key)
        if holder is not None and not holder.job_seen:
            return self.release(key, mono, wall)
        return Dispatch()

    def register(self, key: Key, want: Want) -> None:
        """``key`` waits in its place (no granting now: seen by a watch, before its
        reconcile asks)."""
        self._register(key, want)

    def _register(self, key: Key, want: Want) -> None:
        old = self._wants.get(key)
        if old == want:
            return
        if old is not None:
            self._unregister(key)
        queue = (key[0], want.queue)
        self._wants[key] = want
        self._pending[queue] = self._pending.get(queue, 0) + 1
        heapq.heappush(self._waiting.setdefault(queue, []), (want.place, key))

    def _unregister(self, key: Key) -> None:
        old = self._wants.pop(key, None)
        self._parked_keys.discard(key)
        if old is None:
            return
        queue = (key[0], old.queue)
        left = self._pending.get(queue, 1) - 1
        if left:
            self._pending[queue] = left
        else:
            self._pending.pop(queue, None)
        # Its heap entry stays, stale, and is dropped when it reaches the top.

    # ------------------------------------------------------------ running

    def hold(self, key: Key, queue: QueueId, concurrency_key: str | None) -> list[Key]:
        """``key``'s Job was seen unfinished: it holds a slot of ``queue`` (whatever the
        limit: after a restart or a limit lowered, runs over it finish normally). The run
        whose turn to make its Job came, if any."""
        holder = self._holders.get(key)
        if holder is not None:
            holder.job_seen = True
            return self._started(key, holder.queue)
        self._unregister(key)
        self._take(key, queue, concurrency_key).job_seen = True
        log.debug("slots: %s/%s holds %s/%s by its Job (%d held)", *key, *queue, len(self._holders))
        return []

    def holds(self, key: Key, queue: str | None = None) -> bool:
        """Whether ``key`` holds a slot (of the queue named ``queue``, if given)."""
        holder = self._holders.get(key)
        return holder is not None and (queue is None or holder.queue[1] == queue)

    def granted_without_job(self, key: Key) -> bool:
        """A slot was granted to ``key`` and no Job of it has been seen yet."""
        holder = self._holders.get(key)
        return holder is not None and not holder.job_seen

    def release(self, key: Key, mono: float, wall: float) -> Dispatch:
        """``key``'s run no longer holds a slot: grant the next runs; the keys to wake."""
        holder = self._holders.pop(key, None)
        if holder is None:
            return Dispatch()
        log.debug("slots: %s/%s released %s/%s (%d held)", *key, *holder.queue, len(self._holders))
        turns = self._started(key, holder.queue)
        self._count(self._running, holder.queue, -1)
        if holder.key_id is not None:
            self._count(self._key_running, holder.key_id, -1)
            self._unpark(holder.key_id)
        dispatch = self.dispatch(mono, wall)
        dispatch.turns += turns
        return dispatch

    def has_turn(self, key: Key, mono: float) -> float | None:
        """None when ``key`` may make its Job now: no run of its queue granted before it
        still has its Job to make (in a queue with a limit, or under the operator-wide
        cap). Else the seconds after which to ask again (it is also woken when its turn
        comes). The first such run is waited for however slow its reconcile is; only once
        that reconcile failed (``turn_failed``) does the wait end, ``TURN_PATIENCE``
        seconds later, so that one failing run cannot hold its queue back for ever."""
        holder = self._holders.get(key)
        if holder is None:
            return None
        if self.max_running is None and self.policy_of(holder.queue).max_concurrency is None:
            return None
        unstarted = self._unstarted.get(holder.queue)
        if not unstarted:
            return None
        first, failed_at = next(iter(unstarted.items()))
        if first == key:
            return None
        log.debug("slots: %s/%s waits for %s/%s to make its Job first", *key, *first)
        if failed_at is None:
            return TURN_PATIENCE
        left = failed_at + TURN_PATIENCE - mono
        return None if left <= 0 else left

    def turn_failed(self, key: Key, mono: float) -> None:
        """A reconcile of ``key`` failed while it held a slot and had its Job to make: the
        runs granted after it wait for it only ``TURN_PATIENCE`` seconds more (counted from
        its first failure; a retry that makes the Job ends the wait too)."""
        holder = self._holders.get(key)
        unstarted = self._unstarted.get(holder.queue) if holder is not None else None
        if unstarted is not None and key in unstarted and unstarted[key] is None:
            unstarted[key] = mono

    def first_unstarted(self) -> list[Key]:
        """The first granted run still to make its Job, of every queue."""
        return [next(iter(keys)) for keys in self._unstarted.values()]

    def _started(self, key: Key, queue: QueueId) -> list[Key]:
        """``key`` made its Job (or gave its grant back): the next run whose turn came."""
        unstarted = self._unstarted.get(queue)
        if not unstarted or key not in unstarted:
            return []
        first = next(iter(unstarted)) == key
        del unstarted[key]
        if not unstarted:
            del self._unstarted[queue]
            return []
        return [next(iter(unstarted))] if first else []

    def forget(self, key: Key, mono: float, wall: float) -> Dispatch:
        """``key`` is gone: it waits no more and its slot is released."""
        self._unregister(key)
        return self.release(key, mono, wall)

    def _take(self, key: Key, queue: QueueId, concurrency_key: str | None) -> _Holder:
        key_id = (key[0], concurrency_key) if concurrency_key else None
        holder = _Holder(queue, key_id)
        self._holders[key] = holder
        self._count(self._running, queue, 1)
        if key_id is not None:
            self._count(self._key_running, key_id, 1)
        return holder

    @staticmethod
    def _count(counts: dict[tuple[str, str], int], at: tuple[str, str], delta: int) -> None:
        value = counts.get(at, 0) + delta
        if value > 0:
            counts[at] = value
        else:
            counts.pop(at, None)

    # ------------------------------------------------------------ granting

    def dispatch(self, mono: float, wall: float) -> Dispatch:
        """Grant slots to the heads that may start now, best queue first, until none may."""
        out = Dispatch()
        if not self.ready:
            return out
        while self.max_running is None or len(self._holders) < self.max_running:
            best: tuple[float, Place, QueueId, Key] | None = None
            for queue in list(self._waiting):
                head = self._head(queue)
                if head is None:
                    continue
                blocked = self._blocked(queue, mono)
                if blocked is not None:
                    if blocked == Reason.RATE_LIMITED:
                        at = self._next_token_at(queue)
                        if out.retry_at is None or at < out.retry_at:
                            out.retry_at, out.retry_key = at, head[1]
                    continue
                if self.max_running is None:
                    self._grant(queue, head, mono, wall, out)
                    break
                rank = -self.effective_priority(queue, wall)
                candidate = (rank, head[0], queue, head[1])
                if best is None or candidate < best:
                    best = candidate
            else:
                if best is None:
                    return out
                self._grant(best[2], (best[1], best[3]), mono, wall, out)
        return out

    def effective_priority(self, queue: QueueId, wall: float) -> float:
        """The queue's priority plus one level per ``aging`` seconds its head has waited."""
        priority = float(self.policy_of(queue).priority)
        head = self._head(queue)
        if head is None or self.aging <= 0:
            return priority
        waited = max(0.0, wall - self._wants[head[1]].ready_since)
        return priority + waited // self.aging

    def _grant(
        self, queue: QueueId, head: tuple[Place, Key], mono: float, wall: float, out: Dispatch
    ) -> None:
        heapq.heappop(self._waiting[queue])
        key = head[1]
        want = self._wants[key]
        self._unregister(key)
        if not self._waiting[queue]:
            del self._waiting[queue]
        self._take(key, queue, want.concurrency_key)
        self._unstarted.setdefault(queue, {})[key] = None
        policy = self.policy_of(queue)
        if policy.rate_per_second is not None:
            self._bucket(queue, policy, mono).tokens -= 1
        grant = Grant(key, queue, max(0.0, wall - want.ready_since))
        log.debug("slots: %s/%s granted %s/%s (%d held)", *key, *queue, len(self._holders))
        out.grants.append(grant)
        if self.on_grant is not None:
            self.on_grant(grant)

    def _head(self, queue: QueueId) -> tuple[Place, Key] | None:
        """The first valid waiting entry of ``queue``: stale entries dropped, heads whose
        concurrency key is busy set aside."""
        heap = self._waiting.get(queue)
        while heap:
            place, key = heap[0]
            want = self._wants.get(key)
            if (
                want is None
                or (key[0], want.queue) != queue
                or want.place != place
                or key in self._parked_keys
            ):
                heapq.heappop(heap)
                continue
            if want.concurrency_key is not None:
                key_id = (key[0], want.concurrency_key)
                if self._key_running.get(key_id, 0) >= self.key_limit:
                    heapq.heappop(heap)
                    self._parked_keys.add(key)
                    heapq.heappush(self._parked.setdefault(key_id, []), (place, key))
                    continue
            return place, key
        if heap is not None:
            del self._waiting[queue]
        return None

    def _unpark(self, key_id: KeyId) -> None:
        """A run of ``key_id`` ended: its first waiting run goes back to its place."""
        heap = self._parked.get(key_id)
        while heap:
            place, key = heapq.heappop(heap)
            want = self._wants.get(key)
            if key not in self._parked_keys or want is None or want.place != place:
                continue
            self._parked_keys.discard(key)
            heapq.heappush(self._waiting.setdefault((key[0], want.queue), []), (place, key))
            break
        if not heap:
            self._parked.pop(key_id, None)

    def _blocked(self, queue: QueueId, mono: float) -> Reason | None:
        policy = self.policy_of(queue)
        if policy.paused:
            return Reason.QUEUE_PAUSED
        if (
            policy.max_concurrency is not None
            and self._running.get(queue, 0) >= policy.max_concurrency
        ):
            return Reason.QUEUE_FULL
        if policy.rate_per_second is not None and self._bucket(queue, policy, mono).tokens < 1:
            return Reason.RATE_LIMITED
        return None

    def _bucket(self, queue: QueueId, policy: QueuePolicy, mono: float) -> _Bucket:
        """The queue's token bucket, refilled up to ``mono`` (it starts full)."""
        rate = policy.rate_per_second or 0.0
        bucket = self._buckets.get(queue)
        if bucket is None:
            bucket = self._buckets[queue] = _Bucket(float(policy.burst), mono)
        elif mono > bucket.at:
            bucket.tokens = min(float(policy.burst), bucket.tokens + (mono - bucket.at) * rate)
            bucket.at = mono
        return bucket

    def _next_token_at(self, queue: QueueId) -> float:
        bucket = self._buckets[queue]
        rate = self.policy_of(queue).rate_per_second or 1.0
        return bucket.at + max(0.0, 1 - bucket.tokens) / rate

    # ------------------------------------------------------------ telling

    def _why_waiting(self, key: Key, want: Want, mono: float) -> Verdict:
        queue = (key[0], want.queue)
        if not self.ready:
            return Verdict(False, Reason.OPERATOR_STARTING, "the operator is starting up")
        if key in self._parked_keys:
            return Verdict(
                False,
                Reason.CONCURRENCY_KEY_BUSY,
                f"concurrency key {want.concurrency_key} is busy",
            )
        policy = self.policy_of(queue)
        blocked = self._blocked(queue, mono)
        if blocked == Reason.QUEUE_PAUSED:
            return Verdict(False, blocked, f"queue {want.queue} is paused")
        if blocked == Reason.RATE_LIMITED:
            return Verdict(
                False,
                blocked,
                f"queue {want.queue} is at its rate limit ({policy.rate_per_second:g}/s)",
            )
        if blocked == Reason.QUEUE_FULL:
            return Verdict(
                False,
                blocked,
                f"queue {want.queue} is at its concurrency limit ({policy.max_concurrency})",
            )
        if self.max_running is not None and len(self._holders) >= self.max_running:
            return Verdict(
                False,
                Reason.QUEUE_FULL,
                f"the operator runs its maximum ({self.max_running}); queue {want.queue}"
                " waits its turn",
            )
        return Verdict(False, Reason.QUEUE_FULL, f"waiting behind earlier jobs of {want.queue}")

    def pending(self, queue: QueueId) -> int:
        return self._pending.get(queue, 0)

    def running(self, queue: QueueId) -> int:
        return self._running.get(queue, 0)

    def oldest_pending(self, queue: QueueId) -> Place | None:
        """The place of the queue's first waiting run (runs set aside for a busy key
        excepted)."""
        head = self._head(queue)
        return head[0] if head is not None else None

    def queues(self) -> set[QueueId]:
        """Every queue with a run waiting or running."""
        return set(self._pending) | set(self._running)

    def heads(self) -> list[Key]:
        """The first waiting run of every queue (to wake when policies change)."""
        return [head[1] for queue in list(self._waiting) if (head := self._head(queue))]
