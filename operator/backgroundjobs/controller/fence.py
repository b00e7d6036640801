"""Fencing: the operator's writes go out only while this replica may act.

Leadership is lost between two checks of the elector (every ``lease_duration / 3``); a
process paused for longer than that (SIGSTOP, a stalled VM, a long GC) wakes up with
reconciles half done and would write on after another replica took over. So every write
checks first that the Lease was renewed within the renew deadline, by this process's
monotonic clock (which a pause advances); when it was not, the write is not sent and the
replica stops acting at once.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from backgroundjobs.controller.kube import KubeApi

Body = dict[str, Any]


class NotLeading(Exception):
    """A write was withheld: this replica may no longer act."""


class FencedKube:
    """A ``KubeApi`` whose writes raise ``NotLeading`` (unsent) when ``may_write`` says no."""

    def __init__(self, kube: KubeApi, may_write: Callable[[], bool]) -> None:
        self.inner = kube
        self.may_write = may_write

    def _check(self, what: str) -> None:
        if not self.may_write():
            raise NotLeading(f"{what} withheld: this replica no longer holds the Lease")

    # reads
    async def get(self, kind: str, namespace: str, name: str) -> Body | None:
        return await self.inner.get(kind, namespace, name)

    async def termination_message(
        self,
        namespace: str,
        job_name: str,
        job_uid: str,
        succeeded: bool,
        not_older_than: str | None = None,
    ) -> str | None:
        return await self.inner.termination_message(
            namespace, job_name, job_uid, succeeded, not_older_than
        )

    async def admission_policy(self, name: str, binding: str) -> tuple[Body | None, Body | None]:
        return await self.inner.admission_policy(name, binding)

    async def job_pods(self, namespace: str, job_name: str) -> list[Body]:
        return await self.inner.job_pods(namespace, job_name)

    async def job_events(self, namespace: str, job_uid: str, reason: str) -> list[Body]:
        return await self.inner.job_events(namespace, job_uid, reason)

    async def workloads(self, namespace: str, job_uid: str) -> list[Body] | None:
        return await self.inner.workloads(namespace, job_uid)

    async def owned_job_pods(
        self, namespace: str, job_uid: str, not_older_than: str | None = None
    ) -> list[Body]:
        return await self.inner.owned_job_pods(namespace, job_uid, not_older_than)

    async def list_versions(
        self, kind: str, namespace: str | None, label_selector: str | None = None
    ) -> tuple[dict[tuple[str, str], str], int]:
        return await self.inner.list_versions(kind, namespace, label_selector)

    async def list_queues(self, namespace: str | None) -> list[Body]:
        return await self.inner.list_queues(namespace)

    # writes
    async def create(self, obj: Body) -> Body:
        self._check("create")
        return await self.inner.create(obj)

    async def replace_cronjob(self, obj: Body, observed: Body) -> Body:
        self._check("replace_cronjob")
        return await self.inner.replace_cronjob(obj, observed)

    async def delete_job(self, namespace: str, name: str) -> None:
        self._check("delete_job")
        await self.inner.delete_job(namespace, name)

    async def unsuspend_job(self, namespace: str, name: str) -> tuple[Body | None, bool]:
        self._check("unsuspend_job")
        return await self.inner.unsuspend_job(namespace, name)

    async def patch_status(
        self, namespace: str, name: str, status_patch: Body, resource_version: str | None = None
    ) -> Body:
        self._check("patch_status")
        return await self.inner.patch_status(namespace, name, status_patch, resource_version)

    async def patch_queue_status(self, namespace: str, name: str, status: Body) -> None:
        self._check("patch_queue_status")
        await self.inner.patch_queue_status(namespace, name, status)

    async def delete_bgj(self, namespace: str, name: str, uid: str) -> None:
        self._check("delete_bgj")
        await self.inner.delete_bgj(namespace, name, uid)

    async def post_event(self, obj: Body, etype: str, reason: str, message: str) -> None:
        self._check("post_event")
        await self.inner.post_event(obj, etype, reason, message)

    async def close(self) -> None:
        await self.inner.close()
