"""Helpers of the e2e tests that run on a cluster with real nodes (any cluster in KUBECONFIG:
the local one of `REAL_NODES=1 hack/cluster.sh up`, or kind).

Everything goes through the API server as a user's tools would: kubectl for manifests and
logs, the Kubernetes client for reads. Waits poll with generous limits: timing goals live
in bench/, not here.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException
from tests.integration.bgj import wait_for

ROOT = Path(__file__).resolve().parents[2]
GROUP, VERSION, PLURAL = "backgroundjobs.dev", "v1alpha1", "backgroundjobs"
KWOK_NODE_ANNOTATION = "kwok.x-k8s.io/node"
FINISHED = ("Succeeded", "Failed", "Cancelled")

T = TypeVar("T")


def kubectl(
    *args: str, input: str | None = None, check: bool = True, timeout: float = 180
) -> subprocess.CompletedProcess[str]:
    """Run kubectl against KUBECONFIG; a failure raises with its stderr."""
    done = subprocess.run(
        ["kubectl", *args], input=input, capture_output=True, text=True, timeout=timeout
    )
    if check and done.returncode != 0:
        raise AssertionError(f"kubectl {' '.join(args)} failed: {done.stderr.strip()}")
    return done


def apply(namespace: str, *objects: dict[str, Any]) -> None:
    kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump_all(objects))


def wait_until(
    what: str, probe: Callable[[], T | None], timeout: float = 180, every: float = 1
) -> T:
    """``wait_for`` of the integration tests, with the slower pace of a real node."""
    return wait_for(what, probe, timeout=timeout, interval=every)


def real_ready_nodes(core_v1: client.CoreV1Api) -> list[str]:
    """Ready nodes that a kubelet runs (kwok's fake nodes carry its annotation)."""
    names = []
    for node in core_v1.list_node().items:
        if (node.metadata.annotations or {}).get(KWOK_NODE_ANNOTATION):
            continue
        ready = [c for c in node.status.conditions or [] if c.type == "Ready"]
        if ready and ready[0].status == "True":
            names.append(node.metadata.name)
    return names


def background_job(
    name: str,
    handler: str,
    args: list[Any] | None = None,
    kwargs: dict[str, Any] | None = None,
    **spec: Any,
) -> dict[str, Any]:
    body: dict[str, Any] = {"handler": handler, **spec}
    if args is not None:
        body["args"] = args
    if kwargs is not None:
        body["kwargs"] = kwargs
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "BackgroundJob",
        "metadata": {"name": name},
        "spec": body,
    }


@dataclass
class Jobs:
    """BackgroundJobs of one namespace."""

    custom: client.CustomObjectsApi
    core: client.CoreV1Api
    namespace: str

    def create(self, *bodies: dict[str, Any]) -> None:
        for body in bodies:
            self.custom.create_namespaced_custom_object(
                GROUP, VERSION, self.namespace, PLURAL, body
            )

    def get(self, name: str) -> dict[str, Any]:
        return self.custom.get_namespaced_custom_object(
            GROUP, VERSION, self.namespace, PLURAL, name
        )

    def list(self) -> list[dict[str, Any]]:
        out = self.custom.list_namespaced_custom_object(GROUP, VERSION, self.namespace, PLURAL)
        return list(out["items"])

    def status(self, name: str) -> dict[str, Any]:
        return dict(self.get(name).get("status") or {})

    def wait_phase(self, name: str, *phases: str, timeout: float = 300) -> dict[str, Any]:
        phases = phases or FINISHED
        return wait_until(
            f"BackgroundJob {self.namespace}/{name} in {'/'.join(phases)}",
            lambda: (s := self.status(name)).get("phase") in phases and s,
            timeout=timeout,
        )

    def condition(self, name: str, type_: str) -> dict[str, Any] | None:
        for c in self.status(name).get("conditions") or []:
            if c.get("type") == type_:
                return dict(c)
        return None

    def annotate(self, name: str, key: str, value: str) -> None:
        self.custom.patch_namespaced_custom_object(
            GROUP,
            VERSION,
            self.namespace,
            PLURAL,
            name,
            {"metadata": {"annotations": {key: value}}},
        )

    def pods(self, name: str) -> list[client.V1Pod]:
        selector = f"backgroundjobs.dev/name={name}"
        return list(self.core.list_namespaced_pod(self.namespace, label_selector=selector).items)

    def handler_exit_codes(self, name: str) -> list[int]:
        codes = []
        for pod in self.pods(name):
            for cs in pod.status.container_statuses or []:
                if cs.name == "handler" and cs.state.terminated is not None:
                    codes.append(cs.state.terminated.exit_code)
        return sorted(codes)

    def logs(self, pod: str) -> list[dict[str, Any]]:
        """The handler container's JSON log records (non-JSON lines are kept as {"line"})."""
        text = kubectl("logs", "-n", self.namespace, pod, "-c", "handler").stdout
        return [_record(line) for line in text.splitlines() if line.strip()]


def _record(line: str) -> dict[str, Any]:
    try:
        value = json.loads(line)
    except ValueError:
        return {"line": line}
    return value if isinstance(value, dict) else {"line": line}


def pod_events(core: client.CoreV1Api, namespace: str, pod: str) -> list[client.CoreV1Event]:
    selector = f"involvedObject.name={pod},involvedObject.kind=Pod"
    return list(core.list_namespaced_event(namespace, field_selector=selector).items)


def delete_quietly(fn: Callable[[], Any]) -> None:
    try:
        fn()
    except ApiException as e:
        if e.status != 404:
            raise


RESTRICTED_CONTAINER = {
    "allowPrivilegeEscalation": False,
    "runAsNonRoot": True,
    "capabilities": {"drop": ["ALL"]},
    "seccompProfile": {"type": "RuntimeDefault"},
}
