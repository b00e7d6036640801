"""Helpers for integration tests: create BackgroundJobs and wait for outcomes on the cluster."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

from kubernetes import client
from kubernetes.client.rest import ApiException

from backgroundjobs.api import constants as c

T = TypeVar("T")
Body = dict[str, Any]

FAIL_EXIT = "kwok.backgroundjobs.dev/exit-code"
RUN_FOR = "kwok.backgroundjobs.dev/duration"
MESSAGE = "kwok.backgroundjobs.dev/message"


def wait_for(
    what: str, probe: Callable[[], T | None], timeout: float = 90.0, interval: float = 0.2
) -> T:
    """Poll ``probe`` until it returns a truthy value; fail with ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


def manifest(
    name: str,
    handler: str = "test.echo",
    annotations: dict[str, str] | None = None,
    pod_annotations: dict[str, str] | None = None,
    **spec: Any,
) -> Body:
    """A BackgroundJob manifest; ``pod_annotations`` drive the kwok pod outcome."""
    body_spec: Body = {"handler": handler, **spec}
    if pod_annotations:
        tpl = body_spec.setdefault("podTemplate", {})
        tpl.setdefault("metadata", {}).setdefault("annotations", {}).update(pod_annotations)
    meta: Body = {"name": name}
    if annotations:
        meta["annotations"] = annotations
    return {"apiVersion": c.API_VERSION, "kind": c.KIND, "metadata": meta, "spec": body_spec}


class Jobs:
    """BackgroundJobs, Jobs and Events of one namespace."""

    def __init__(self, api: client.ApiClient, namespace: str) -> None:
        self.ns = namespace
        self.custom = client.CustomObjectsApi(api)
        self.batch = client.BatchV1Api(api)
        self.core = client.CoreV1Api(api)

    def create(self, body: Body) -> Body:
        return self.custom.create_namespaced_custom_object(
            c.GROUP, c.VERSION, self.ns, c.PLURAL, body
        )  # type: ignore[no-any-return]

    def get(self, name: str) -> Body | None:
        try:
            return self.custom.get_namespaced_custom_object(
                c.GROUP, c.VERSION, self.ns, c.PLURAL, name
            )  # type: ignore[no-any-return]
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise

    def patch(self, name: str, patch: Body) -> Body:
        return self.custom.patch_namespaced_custom_object(
            c.GROUP, c.VERSION, self.ns, c.PLURAL, name, patch
        )  # type: ignore[no-any-return]

    def annotate(self, name: str, key: str, value: str) -> Body:
        return self.patch(name, {"metadata": {"annotations": {key: value}}})

    def delete(self, name: str) -> None:
        self.custom.delete_namespaced_custom_object(c.GROUP, c.VERSION, self.ns, c.PLURAL, name)

    def status(self, name: str) -> Body:
        return (self.get(name) or {}).get("status") or {}

    def condition(self, name: str, ctype: str) -> Body | None:
        for cond in self.status(name).get("conditions") or []:
            if cond["type"] == ctype:
                return cond  # type: ignore[no-any-return]
        return None

    def wait_phase(self, name: str, *phases: str, timeout: float = 90.0) -> Body:
        def probe() -> Body | None:
            st = self.status(name)
            return st if st.get("phase") in phases else None

        return wait_for(f"{self.ns}/{name} to reach {phases}", probe, timeout)

    def jobs(self, bgj_name: str | None = None) -> list[Any]:
        selector = (
            f"{c.LABEL_NAME}={bgj_name}" if bgj_name else f"{c.LABEL_MANAGED_BY}={c.MANAGED_BY}"
        )
        return list(self.batch.list_namespaced_job(self.ns, label_selector=selector).items)

    def job(self, name: str) -> Any | None:
        try:
            return self.batch.read_namespaced_job(name, self.ns)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise

    def pods(self, job_name: str) -> list[Any]:
        return list(
            self.core.list_namespaced_pod(
                self.ns, label_selector=f"batch.kubernetes.io/job-name={job_name}"
            ).items
        )

    def events(self, name: str) -> list[Any]:
        evs = self.core.list_namespaced_event(
            self.ns, field_selector=f"involvedObject.kind={c.KIND},involvedObject.name={name}"
        ).items
        return sorted(evs, key=lambda e: e.event_time or e.last_timestamp or e.first_timestamp)

    def event_reasons(self, name: str) -> list[str]:
        return [e.reason for e in self.events(name)]
