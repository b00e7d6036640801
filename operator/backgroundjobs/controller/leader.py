"""Leader election over a coordination.k8s.io/v1 Lease: of several replicas, one acts.

Every replica runs the watches and keeps its cache warm; only the holder of the Lease
reconciles: the elector calls ``start_leading``/``stop_leading`` of a ``Leadership`` (the
control loop). The algorithm is client-go's:

- The holder renews the Lease every ``lease_duration / 3`` (an update with the Lease's
  resourceVersion, so two writers never both succeed).
- A candidate takes the Lease when its holder is empty (released), or when the Lease has not
  changed for ``leaseDurationSeconds`` of the candidate's *own* clock since it last saw it
  change: comparing our clock with the holder's ``renewTime`` would trust two clocks to agree.
- A holder that cannot renew for ``2/3`` of the lease duration (the renew deadline) stops
  acting before anyone else may take over, also when a renewal hangs: each attempt is given
  up at the deadline; one that finds another holder stops at once. Stopping cancels what the
  control loop has in flight (``ControlLoop.stop_leading``).
- On shutdown (SIGTERM: kopf runs the cleanup handler) the holder stops acting, then releases
  the Lease (empty holder), so a standby takes over within its retry period instead of waiting
  for the Lease to expire.

On becoming the leader the control loop reconciles every cached BackgroundJob again, so
nothing that happened while this replica stood by (a job created, a due time passed) is
missed; timers are re-armed by those reconciliations.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import socket
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Protocol

from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException

from backgroundjobs.api.times import micro_time
from backgroundjobs.controller.kube import operator_api_client, response_json
from backgroundjobs.controller.settings import Settings

Body = dict[str, Any]
log = logging.getLogger("backgroundjobs.leader")


class Leadership(Protocol):
    """What acts only while this replica leads."""

    holds_lease: Callable[[], bool] | None

    def start_leading(self) -> None: ...

    def stop_leading(self) -> None: ...


def default_identity() -> str:
    """``<pod name>_<pid>``: the pod name is the hostname in a pod (``POD_NAME`` if set)."""
    return f"{os.environ.get('POD_NAME') or socket.gethostname()}_{os.getpid()}"


class LeaderElector:
    """Holds or waits for one Lease; calls ``on_started_leading``/``on_stopped_leading``."""

    def __init__(
        self,
        api: client.ApiClient,
        *,
        name: str,
        namespace: str,
        identity: str,
        lease_duration: float,
        on_started_leading: Callable[[], None],
        on_stopped_leading: Callable[[], None],
        owns_api: bool = False,
    ) -> None:
        self.api = api
        self.owns_api = owns_api
        # Typed as Any: the Lease goes out and comes back as raw JSON, not the client's model.
        self.coordination: Any = client.CoordinationV1Api(api)
        self.name = name
        self.namespace = namespace
        self.identity = identity
        self.lease_duration = lease_duration
        self.renew_period = lease_duration / 3
        self.retry_period = min(2.0, self.renew_period)
        self.renew_deadline = lease_duration * 2 / 3
        self.on_started_leading = on_started_leading
        self.on_stopped_leading = on_stopped_leading
        self.is_leader = False
        self._last_renewal = 0.0  # loop time of the last successful acquire or renew
        self._observed_version: str | None = None
        self._observed_at = 0.0  # loop time when the Lease was last seen to change
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="leader-election")

    async def stop(self, release: bool = True) -> None:
        """Stop campaigning; a leader stops acting first, then releases the Lease."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        try:
            if self.is_leader:
                self._step_down("shutting down", logging.INFO)
                if release:
                    await self._release()
        finally:
            if self.owns_api:
                await self.api.close()

    # ------------------------------------------------------------------ the loop
    async def _run(self) -> None:
        log.info(
            "leader election: identity=%s lease=%s/%s duration=%.1fs",
            self.identity,
            self.namespace,
            self.name,
            self.lease_duration,
        )
        loop = asyncio.get_running_loop()
        while True:
            held: bool | None
            # A renewal that hangs (a black-holed connection) must not keep a leader acting
            # past its renew deadline: the attempt is given up when the deadline comes.
            if self.is_leader:
                bound = self._last_renewal + self.renew_deadline - loop.time()
            else:
                bound = self.renew_deadline
            try:
                async with asyncio.timeout(max(bound, 0.05)):
                    held = await self._try_acquire_or_renew()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the API server is unreachable, a timeout, a 5xx ...
                reason = "no answer in time" if isinstance(exc, TimeoutError) else exc
                log.warning("leader election: cannot read or update the Lease: %s", reason)
                held = None
            now = loop.time()
            if held:
                self._last_renewal = now
                if not self.is_leader:
                    self.is_leader = True
                    log.info("became the leader (%s)", self.identity)
                    self.on_started_leading()
            elif self.is_leader and (
                held is False or now - self._last_renewal > self.renew_deadline
            ):
                self._step_down(
                    "another replica holds the Lease" if held is False else "cannot renew the Lease"
                )
            await asyncio.sleep(self.renew_period if held else self.retry_period)

    def holds_lease(self) -> bool:
        """Whether this replica leads and renewed the Lease within the renew deadline, by
        the monotonic clock. After a pause longer than that it steps down at once, before
        the election loop notices (it may lead again once it renews)."""
        if not self.is_leader:
            return False
        if asyncio.get_running_loop().time() - self._last_renewal < self.renew_deadline:
            return True
        self._step_down("the Lease was not renewed within the renew deadline")
        return False

    def _step_down(self, why: str, level: int = logging.WARNING) -> None:
        self.is_leader = False
        log.log(level, "stopped leading (%s): %s", self.identity, why)
        self.on_stopped_leading()

    async def _try_acquire_or_renew(self) -> bool:
        """True when this replica holds the Lease after the call, False when another does."""
        loop = asyncio.get_running_loop()
        now = datetime.now(UTC)
        lease = await self._read()
        if lease is None:
            body = {
                "apiVersion": "coordination.k8s.io/v1",
                "kind": "Lease",
                "metadata": {"name": self.name, "namespace": self.namespace},
                "spec": self._spec({}, now, acquired=True),
            }
            try:
                created = await response_json(
                    await self.coordination.create_namespaced_lease(
                        self.namespace, body, _preload_content=False
                    )
                )
            except ApiException as exc:
                if exc.status == 409:  # another replica created it first
                    return False
                raise
            self._observe(created, loop.time())
            return True

        spec = lease.get("spec") or {}
        version = str(lease["metadata"].get("resourceVersion"))
        if version != self._observed_version:
            self._observe(lease, loop.time())
        holder = spec.get("holderIdentity") or ""
        if holder and holder != self.identity:
            duration = float(spec.get("leaseDurationSeconds") or self.lease_duration)
            if loop.time() < self._observed_at + duration:
                return False  # held, and renewed within its duration as far as we have seen
            log.info("the Lease of %s expired; taking it over", holder)
        body = {
            **lease,
            "spec": self._spec(spec, now, acquired=holder != self.identity),
        }
        try:
            updated = await response_json(
                await self.coordination.replace_namespaced_lease(
                    self.name, self.namespace, body, _preload_content=False
                )
            )
        except ApiException as exc:
            if exc.status == 409:  # someone else wrote it since we read it
                return False
            raise
        self._observe(updated, loop.time())
        return True

    def _spec(self, old: Body, now: datetime, acquired: bool) -> Body:
        spec = {
            **old,
            "holderIdentity": self.identity,
            "leaseDurationSeconds": max(1, math.ceil(self.lease_duration)),
            "renewTime": micro_time(now),
        }
        if acquired:
            spec["acquireTime"] = micro_time(now)
            spec["leaseTransitions"] = int(old.get("leaseTransitions") or 0) + (
                1 if old.get("holderIdentity") else 0
            )
        return spec

    def _observe(self, lease: Body, at: float) -> None:
        self._observed_version = str(lease["metadata"].get("resourceVersion"))
        self._observed_at = at

    async def _read(self) -> Body | None:
        try:
            return await response_json(
                await self.coordination.read_namespaced_lease(
                    self.name, self.namespace, _preload_content=False
                )
            )
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise

    async def _release(self) -> None:
        """Empty the holder so that a standby need not wait for the Lease to expire."""
        try:
            lease = await self._read()
            if lease is None or (lease.get("spec") or {}).get("holderIdentity") != self.identity:
                return
            spec = {
                **lease["spec"],
                "holderIdentity": None,
                "leaseDurationSeconds": 1,
                "renewTime": micro_time(datetime.now(UTC)),
            }
            await response_json(
                await self.coordination.replace_namespaced_lease(
                    self.name, self.namespace, {**lease, "spec": spec}, _preload_content=False
                )
            )
            log.info("released the Lease %s/%s", self.namespace, self.name)
        except Exception as exc:  # best effort: the Lease expires anyway
            log.warning("could not release the Lease: %s", exc)


async def elect(leadership: Leadership, settings: Settings) -> LeaderElector:
    """Start campaigning: ``leadership`` acts only while this replica leads (it must start
    out not leading).

    The elector has its own API client (closed by ``stop``), so releasing the Lease on shutdown
    does not depend on the control loop's, which closes when the loop stops.
    """
    elector = LeaderElector(
        await operator_api_client(),
        name=settings.lease_name,
        namespace=settings.lease_namespace,
        identity=default_identity(),
        lease_duration=settings.lease_duration,
        on_started_leading=leadership.start_leading,
        on_stopped_leading=leadership.stop_leading,
        owns_api=True,
    )
    leadership.holds_lease = elector.holds_lease
    elector.start()
    return elector
