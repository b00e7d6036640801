"""What the standalone sync benches (bench_handoff, bench_queue, bench_retry) share: their
scratch namespace's removal."""

from __future__ import annotations

from kubernetes import client
from kubernetes.client.rest import ApiException


def delete_namespace_quietly(core: client.CoreV1Api, namespace: str) -> None:
    """Delete the bench's namespace in the background; one already gone is fine."""
    try:
        core.delete_namespace(namespace, propagation_policy="Background")
    except ApiException as exc:
        if exc.status != 404:
            raise
