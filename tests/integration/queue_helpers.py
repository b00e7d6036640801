"""Helpers for the queue tests and the queue bench: BackgroundJobQueue objects, and the
order and concurrency of a namespace's Jobs as a watch shows them."""

from __future__ import annotations

import threading
import time
from typing import Any

from kubernetes import client, watch

from backgroundjobs.api import constants as c

Body = dict[str, Any]


class JobLog:
    """The namespace's Jobs as a watch shows them: the order they were created in and the
    most that ran at once (overall, and by BackgroundJob label value ``by``)."""

    def __init__(self, api: client.ApiClient, namespace: str) -> None:
        self.batch = client.BatchV1Api(api)
        self.ns = namespace
        self.created: list[str] = []
        self.created_at: list[float] = []  # the watch's monotonic time of each ADDED
        self.added_at: dict[str, float] = {}  # the same, by Job name
        self.owner_of: dict[str, str] = {}
        self.key_of: dict[str, str | None] = {}
        self.running: set[str] = set()
        self.finished_at: dict[str, float] = {}  # monotonic time each was seen finished
        self.max_running = 0
        self.max_by_key: dict[str, int] = {}
        self._watch = watch.Watch()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._ready = threading.Event()

    def __enter__(self) -> JobLog:
        self._thread.start()
        self._ready.wait(10)
        return self

    def __exit__(self, *_: object) -> None:
        self._watch.stop()

    def _run(self) -> None:
        listed = self.batch.list_namespaced_job(self.ns)
        version = listed.metadata.resource_version
        self._ready.set()
        while True:
            try:
                for event in self._watch.stream(
                    self.batch.list_namespaced_job,
                    self.ns,
                    resource_version=version,
                    timeout_seconds=300,
                ):
                    self._seen(event["type"], event["object"])
                    version = event["object"].metadata.resource_version
            except Exception:  # a dropped watch: go on from where it was
                pass
            if self._watch._stop:  # else the server ended the watch (timeout_seconds): again
                return

    def _seen(self, kind: str, job: Any) -> None:
        name = job.metadata.name
        labels = job.metadata.labels or {}
        if kind == "ADDED" and name not in self.owner_of:
            self.created.append(labels.get(c.LABEL_NAME, name))
            self.created_at.append(time.monotonic())
            self.added_at[name] = self.created_at[-1]
            self.owner_of[name] = labels.get(c.LABEL_NAME, name)
            self.key_of[name] = labels.get(c.LABEL_CONCURRENCY_KEY)
            self.running.add(name)
        conditions = {cond.type for cond in (job.status.conditions or []) if cond.status == "True"}
        if kind == "DELETED" or conditions & {"Complete", "Failed"}:
            self.running.discard(name)
            self.finished_at.setdefault(name, time.monotonic())
        self.max_running = max(self.max_running, len(self.running))
        keys: dict[str, int] = {}
        for running in self.running:
            key = self.key_of.get(running)
            if key:
                keys[key] = keys.get(key, 0) + 1
        for key, count in keys.items():
            self.max_by_key[key] = max(self.max_by_key.get(key, 0), count)


class Queues:
    """BackgroundJobQueue objects of one namespace."""

    def __init__(self, api: client.ApiClient, namespace: str) -> None:
        self.custom = client.CustomObjectsApi(api)
        self.ns = namespace

    def create(self, name: str, **spec: Any) -> Body:
        body = {
            "apiVersion": c.API_VERSION,
            "kind": c.QUEUE_KIND,
            "metadata": {"name": name},
            "spec": spec,
        }
        return self.custom.create_namespaced_custom_object(  # type: ignore[no-any-return]
            c.GROUP, c.VERSION, self.ns, c.QUEUE_PLURAL, body
        )

    def patch(self, name: str, spec: Body) -> Body:
        return self.custom.patch_namespaced_custom_object(  # type: ignore[no-any-return]
            c.GROUP, c.VERSION, self.ns, c.QUEUE_PLURAL, name, {"spec": spec}
        )

    def get(self, name: str) -> Body:
        return self.custom.get_namespaced_custom_object(  # type: ignore[no-any-return]
            c.GROUP, c.VERSION, self.ns, c.QUEUE_PLURAL, name
        )
