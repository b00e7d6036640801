"""The observer: its own process and its own watch connections, stamping event arrivals.

``python -m bench.watcher KUBECONFIG`` watches Jobs, probe ConfigMaps and BackgroundJobs in
all namespaces and prints one JSON line per interesting first: a Job seen (``J+``), a Job
finished (``J=``), a probe ConfigMap seen (``C+``), a BackgroundJob seen (``B+``) or its
phase changed (``B~``). ``t`` is ``time.time()`` when the event's line arrived; object
timestamps (1-second resolution) are only carried along (``c``: creationTimestamp).

:class:`Watcher` runs it as a subprocess and indexes its lines for the suite. Being a
separate process, the load generators' CPU use does not delay its stamps beyond what the
OS scheduler does; the probe (a ConfigMap round trip) measures that floor.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any

from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException

from backgroundjobs.api import constants as c
from bench.k8s import PROBE_LABEL, REPO, api_client, body

Key = tuple[str, str]


def _emit(record: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(record, separators=(",", ":")) + "\n")
    sys.stdout.flush()


TRANSIENT = {429, 500, 502, 503, 504}


class _Stream:
    """One resource's list+watch loop; ``on_object(type, obj, t)`` gets every event."""

    def __init__(
        self,
        name: str,
        lister: Callable[..., Any],
        on_object: Callable[[str, dict[str, Any], float], None],
        ready: asyncio.Event,
        label_selector: str | None = None,
    ) -> None:
        self.name = name
        self.lister = lister
        self.on_object = on_object
        self.ready = ready
        self.selector = label_selector

    async def run(self) -> None:
        rv: str | None = None
        while True:
            if rv is None:
                kwargs: dict[str, Any] = {"_preload_content": False}
                if self.selector:
                    kwargs["label_selector"] = self.selector
                try:
                    listed = await body(await self.lister(**kwargs))
                except ApiException as exc:
                    # 429 right after a new CRD is Established (its storage still starting,
                    # seen on a fresh cluster), or a server error: try again.
                    if exc.status not in TRANSIENT:
                        raise
                    await asyncio.sleep(0.5)
                    continue
                rv = listed["metadata"]["resourceVersion"]
                now = time.time()
                if self.ready.is_set():  # a re-list after 410: report what we missed
                    for obj in listed.get("items") or []:
                        self.on_object("RELISTED", obj, now)
            kwargs = {
                "watch": True,
                "resource_version": rv,
                "allow_watch_bookmarks": True,
                "timeout_seconds": 600,
                "_preload_content": False,
            }
            if self.selector:
                kwargs["label_selector"] = self.selector
            try:
                resp = await self.lister(**kwargs)
            except ApiException as exc:
                if exc.status == 410:
                    rv = None
                    continue
                if exc.status not in TRANSIENT:
                    raise
                await asyncio.sleep(0.5)
                continue
            self.ready.set()
            try:
                async for line in resp.content:
                    t = time.time()
                    if not line.strip():
                        continue
                    event = json.loads(line)
                    etype = event.get("type")
                    obj = event.get("object") or {}
                    if etype == "ERROR":
                        if obj.get("code") == 410:
                            rv = None
                        break
                    new_rv = (obj.get("metadata") or {}).get("resourceVersion")
                    if new_rv:
                        rv = new_rv
                    if etype != "BOOKMARK":
                        self.on_object(etype, obj, t)
            finally:
                resp.release()


class _State:
    def __init__(self) -> None:
        self.jobs_seen: set[str] = set()
        self.jobs_done: set[str] = set()
        self.cms: set[str] = set()
        self.bgj_phase: dict[str, str] = {}

    def job(self, etype: str, obj: dict[str, Any], t: float) -> None:
        meta = obj["metadata"]
        uid = meta.get("uid", "")
        ns, name = meta.get("namespace", ""), meta.get("name", "")
        if etype == "DELETED":
            return
        if uid not in self.jobs_seen:
            self.jobs_seen.add(uid)
            _emit({"k": "J+", "ns": ns, "n": name, "t": t, "c": meta.get("creationTimestamp")})
        if uid not in self.jobs_done:
            for cond in (obj.get("status") or {}).get("conditions") or []:
                if cond.get("status") == "True" and cond.get("type") in ("Complete", "Failed"):
                    self.jobs_done.add(uid)
                    _emit(
                        {"k": "J=", "ns": ns, "n": name, "t": t, "ok": cond["type"] == "Complete"}
                    )
                    break

    def configmap(self, etype: str, obj: dict[str, Any], t: float) -> None:
        meta = obj["metadata"]
        if etype == "DELETED" or meta.get("uid") in self.cms:
            return
        self.cms.add(meta.get("uid", ""))
        _emit({"k": "C+", "ns": meta.get("namespace"), "n": meta.get("name"), "t": t})

    def bgj(self, etype: str, obj: dict[str, Any], t: float) -> None:
        meta = obj["metadata"]
        uid = meta.get("uid", "")
        ns, name = meta.get("namespace", ""), meta.get("name", "")
        if etype == "DELETED":
            self.bgj_phase.pop(uid, None)
            return
        phase = (obj.get("status") or {}).get("phase") or ""
        if uid not in self.bgj_phase:
            self.bgj_phase[uid] = phase
            _emit({"k": "B+", "ns": ns, "n": name, "t": t, "p": phase})
        elif self.bgj_phase[uid] != phase:
            self.bgj_phase[uid] = phase
            _emit({"k": "B~", "ns": ns, "n": name, "t": t, "p": phase})


async def _main(kubeconfig: str) -> None:
    api = await api_client(kubeconfig, pool=8)
    batch = client.BatchV1Api(api)
    core = client.CoreV1Api(api)
    custom = client.CustomObjectsApi(api)
    state = _State()
    ready = [asyncio.Event() for _ in range(3)]

    def list_bgjs(**kwargs: Any) -> Any:
        return custom.list_cluster_custom_object(c.GROUP, c.VERSION, c.PLURAL, **kwargs)

    streams = [
        _Stream("jobs", batch.list_job_for_all_namespaces, state.job, ready[0]),
        _Stream(
            "configmaps", core.list_config_map_for_all_namespaces, state.configmap, ready[1],
            label_selector=PROBE_LABEL,
        ),
        _Stream("backgroundjobs", list_bgjs, state.bgj, ready[2]),
    ]  # fmt: skip
    tasks = [asyncio.create_task(s.run(), name=s.name) for s in streams]
    await asyncio.wait_for(asyncio.gather(*(e.wait() for e in ready)), timeout=60)
    _emit({"k": "ready", "t": time.time()})
    done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
    for task in done:
        task.result()


class Watcher:
    """The watcher subprocess and an index of what it reported, safe to read from any thread."""

    def __init__(self, kubeconfig: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bench.watcher", kubeconfig],
            cwd=REPO,
            stdout=subprocess.PIPE,
            text=True,
            bufsize=1,
        )
        self.cond = threading.Condition()
        self.job_added: dict[Key, float] = {}
        self.job_created_ts: dict[Key, str] = {}
        self.job_finished: dict[Key, tuple[float, bool]] = {}
        self.cm_added: dict[Key, float] = {}
        self.bgj_added: dict[Key, float] = {}
        self.bgj_phase: dict[Key, tuple[str, float]] = {}
        self.phase_counts: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        self.jobs_per_ns: dict[str, int] = defaultdict(int)
        self.finished_per_ns: dict[str, int] = defaultdict(int)
        self.ready = False
        self.exited = False
        self._thread = threading.Thread(target=self._read, name="watcher-reader", daemon=True)
        self._thread.start()
        if not self.wait(lambda: self.ready, timeout=90):
            raise RuntimeError("the watcher did not become ready in 90s")

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            rec = json.loads(line)
            kind = rec["k"]
            with self.cond:
                if kind == "ready":
                    self.ready = True
                else:
                    key = (rec["ns"], rec["n"])
                    if kind == "J+":
                        self.job_added[key] = rec["t"]
                        self.job_created_ts[key] = rec.get("c") or ""
                        self.jobs_per_ns[key[0]] += 1
                    elif kind == "J=":
                        self.job_finished[key] = (rec["t"], rec["ok"])
                        self.finished_per_ns[key[0]] += 1
                    elif kind == "C+":
                        self.cm_added[key] = rec["t"]
                    elif kind == "B+":
                        self.bgj_added[key] = rec["t"]
                        self._phase(key, rec["p"], rec["t"])
                    elif kind == "B~":
                        self._phase(key, rec["p"], rec["t"])
                self.cond.notify_all()
        with self.cond:
            self.exited = True
            self.cond.notify_all()

    def _phase(self, key: Key, phase: str, t: float) -> None:
        old = self.bgj_phase.get(key)
        counts = self.phase_counts[key[0]]
        if old is not None:
            counts[old[0]] -= 1
        counts[phase] += 1
        self.bgj_phase[key] = (phase, t)

    def wait(self, predicate: Callable[[], bool], timeout: float) -> bool:
        """Wait until ``predicate()`` (called under the lock) holds; False on timeout."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while not predicate():
                if self.exited:
                    raise RuntimeError("the watcher process exited")
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self.cond.wait(min(left, 1.0))
        return True

    async def await_(self, predicate: Callable[[], bool], timeout: float) -> bool:  # noqa: ASYNC109
        """``wait`` without blocking the event loop (polls every 20 ms)."""
        deadline = time.monotonic() + timeout
        while True:
            with self.cond:
                if predicate():
                    return True
                if self.exited:
                    raise RuntimeError("the watcher process exited")
            if time.monotonic() > deadline:
                return False
            await asyncio.sleep(0.02)

    def jobs_in(self, ns: str) -> dict[str, float]:
        """Job name -> arrival of its first event, for one namespace."""
        with self.cond:
            return {n: t for (s, n), t in self.job_added.items() if s == ns}

    def finished_in(self, ns: str) -> dict[str, tuple[float, bool]]:
        with self.cond:
            return {n: v for (s, n), v in self.job_finished.items() if s == ns}

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_main(sys.argv[1]))
