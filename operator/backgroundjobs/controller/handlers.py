"""The kopf handlers: thin. They feed watch events into the control loop and manage its life.

Run with ``python -m backgroundjobs.controller``, ``bgjobs operator run`` or
``kopf run -m backgroundjobs.controller.handlers --all-namespaces``.
"""

from __future__ import annotations

import dataclasses
import logging
from types import SimpleNamespace
from typing import Any

import aiohttp
import kopf
from kopf._cogs.clients import api as kopf_api

from backgroundjobs import _json
from backgroundjobs.api import constants as c
from backgroundjobs.controller import crdcheck, leader, memory, metrics
from backgroundjobs.controller import settings as config
from backgroundjobs.controller.kube import Kube, operator_api_client
from backgroundjobs.controller.loop import ControlLoop

log = logging.getLogger("backgroundjobs.operator")

MANAGED = {c.LABEL_MANAGED_BY: c.MANAGED_BY}


def decode_json_of_any_depth() -> None:
    """Make kopf's watches decode objects nested deeper than Python's recursion limit.

    The API server stores a BackgroundJob whose kwargs nest 10,000 levels deep; kopf decodes
    watch events with ``json.loads`` (``kopf._cogs.clients.api``) and lists with aiohttp's
    ``ClientResponse.json``, both recursive: the RecursionError ended kopf's watch, and so
    the operator, while such an object existed. kopf offers no setting for its decoder, so
    both are pointed at ``_json.loads`` (the C decoder, and an iterative one only when that
    runs out of recursion). Checked by tests/unit/test_poison_decoding.py against the kopf
    and aiohttp installed.
    """
    kopf_api.json = SimpleNamespace(loads=_json.loads)  # type: ignore[attr-defined,assignment]
    defaults = aiohttp.ClientResponse.json.__kwdefaults__
    assert defaults is not None and "loads" in defaults
    defaults["loads"] = _json.loads


decode_json_of_any_depth()


@kopf.on.startup()
async def startup(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    cfg = config.load()
    # kopf's own bookkeeping stays under our prefix and out of status; the control loop is
    # level-based, so no progress or diff-base annotation is written on the hot path.
    settings.persistence.finalizer = f"{c.GROUP}/kopf-finalizer"
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=c.GROUP)
    settings.persistence.diffbase_storage = NoDiffBase()
    settings.posting.level = logging.WARNING
    # Memory (bench M6): list in chunks instead of one response holding every object, and
    # let kopf's per-object worker tasks (a task, a queue and an event each) end 0.1 s after
    # their last event instead of 5 s: with thousands of objects at once those idle workers
    # set the high-water mark of the heap.
    settings.watching.chunk_size = 500
    settings.queueing.idle_timeout = 0.1
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    settings.watching.connect_timeout = 10
    settings.networking.request_timeout = 60
    api = await operator_api_client()
    if not settings.scanning.disabled:  # else namespaced: no rights on cluster-scoped CRDs
        crd = await crdcheck.installed_crd(api)
        if crd is not None:
            problems = crdcheck.warn_if_outdated(crd)
            if problems:
                await crdcheck.post_outdated_event(api, crd, problems)
            if not crdcheck.accepts_kstatus_conditions(crd):
                cfg = dataclasses.replace(cfg, kstatus_conditions=False)
        await crdcheck.warn_if_no_queue_crd(api)
    kube = Kube(api)
    loop = ControlLoop(cfg, kube, leading=not cfg.leader_election, progress_reads=kube)
    if cfg.leader_election:
        memo["elector"] = await leader.elect(loop, cfg)  # acts only while it leads
    await loop.start()
    loop.watch_backgroundjobs(api)  # its own watch, not kopf's (controller/reflector.py)
    memo["loop"] = loop
    metrics.serve(cfg.metrics_port)
    frozen = memory.freeze_start_up()  # out of every full collection's scan (memory.py)
    log.info(
        "backgroundjobs operator started: namespaces=%s workers=%d metrics=:%d"
        " (%d start-up objects frozen)",
        ",".join(cfg.namespaces) or "all",
        cfg.workers,
        cfg.metrics_port,
        frozen,
    )


@kopf.on.cleanup()
async def cleanup(memo: kopf.Memo, **_: Any) -> None:
    elector: leader.LeaderElector | None = memo.get("elector")
    if elector is not None:
        await elector.stop()  # stop acting and release the Lease: a standby takes over now
    loop: ControlLoop | None = memo.get("loop")
    if loop is not None:
        await loop.stop()


class NoDiffBase(kopf.DiffBaseStorage):
    """No diff-base at all: there are only event handlers, which kopf never diffs.

    kopf still builds the "essence" of every event's body (a deep copy) and diffs it against
    the stored one; with the annotation storage that was about a third of the operator's CPU
    under load (bench/profiles/). Nothing is stored, nothing is fetched.
    """

    def build(self, *, body: kopf.Body, extra_fields: Any = None) -> kopf.BodyEssence:
        return kopf.BodyEssence()

    def fetch(self, *, body: kopf.Body) -> kopf.BodyEssence | None:
        return None

    def store(self, *, body: kopf.Body, patch: kopf.Patch, essence: kopf.BodyEssence) -> None:
        pass


# Coroutines, not functions: kopf runs a sync handler in its thread pool, one hop per event.
# BackgroundJobs are not among them: the loop lists and watches them itself (reflector.py).
@kopf.on.event("batch", "v1", "jobs", labels=MANAGED)
async def job_event(event: kopf.RawEvent, memo: kopf.Memo, **_: Any) -> None:
    memo["loop"].on_job_event(dict(event))


@kopf.on.event(c.GROUP, c.VERSION, c.QUEUE_PLURAL)
async def queue_event(event: kopf.RawEvent, memo: kopf.Memo, **_: Any) -> None:
    memo["loop"].on_queue_event(dict(event))


@kopf.on.event("batch", "v1", "cronjobs", labels=MANAGED)
async def cronjob_event(event: kopf.RawEvent, memo: kopf.Memo, **_: Any) -> None:
    memo["loop"].on_cronjob_event(dict(event))


@kopf.on.probe(id="healthy")
def healthy(memo: kopf.Memo, **_: Any) -> bool:
    """Fails (so does the liveness endpoint) when a watch or the workers are stuck."""
    loop: ControlLoop | None = memo.get("loop")
    problems = loop.problems() if loop is not None else []
    if problems:
        raise kopf.PermanentError("; ".join(problems))
    return True


@kopf.on.probe(id="queue")
def queue_depth(memo: kopf.Memo, **_: Any) -> int:
    loop: ControlLoop | None = memo.get("loop")
    return len(loop.work) if loop is not None else -1
