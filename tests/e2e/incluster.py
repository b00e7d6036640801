"""What the e2e scenarios run inside the cluster besides the jobs: an SMTP sink behind a
Service, and directories on the node shared by a job's pods (a PersistentVolume per test)."""

from __future__ import annotations

import json
import textwrap
import uuid
from dataclasses import dataclass
from typing import Any

from kubernetes import client
from tests.e2e.realcluster import (
    RESTRICTED_CONTAINER,
    ROOT,
    apply,
    delete_quietly,
    kubectl,
    wait_until,
)

SMTP_PORT = 2525
# Where the tests' volumes live on the node (the local node is this machine).
NODE_VOLUMES = "/var/tmp/bgj-e2e-volumes"


def _pod_phase(namespace: str, name: str) -> str:
    return kubectl(
        "get", "pod", name, "-n", namespace, "-o", "jsonpath={.status.phase}", check=False
    ).stdout


def wait_pod_finished(namespace: str, name: str, timeout: float = 180) -> str:
    return wait_until(
        f"pod {namespace}/{name} to finish",
        lambda: (p := _pod_phase(namespace, name)) in ("Succeeded", "Failed") and p,
        timeout=timeout,
    )


@dataclass
class SmtpSinkPod:
    """tests/e2e/smtp_sink.py in a pod of the examples image, at smtp:2525 in its namespace."""

    namespace: str
    host: str = "smtp"
    port: int = SMTP_PORT

    def records(self) -> list[dict[str, Any]]:
        text = kubectl("logs", "-n", self.namespace, "smtp").stdout
        return [json.loads(line) for line in text.splitlines() if line.startswith("{")]

    def messages(self) -> list[dict[str, Any]]:
        return [r for r in self.records() if r.get("event") == "message"]

    def refused(self) -> list[dict[str, Any]]:
        return [r for r in self.records() if r.get("event") == "refused"]

    def env(self) -> list[dict[str, str]]:
        """The handler's settings to send through this sink."""
        return [
            {"name": "BGJ_SMTP_HOST", "value": self.host},
            {"name": "BGJ_SMTP_PORT", "value": str(self.port)},
            {"name": "BGJ_SMTP_TIMEOUT", "value": "10"},
            {"name": "BGJ_SMTP_FROM", "value": "Shop <noreply@shop.example>"},
        ]


def start_smtp_sink(namespace: str, image: str, fail_first: int = 0) -> SmtpSinkPod:
    source = (ROOT / "tests" / "e2e" / "smtp_sink.py").read_text()
    configmap = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "smtp-sink"},
        "data": {"smtp_sink.py": source},
    }
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "smtp", "labels": {"app": "smtp-sink"}},
        "spec": {
            "containers": [
                {
                    "name": "sink",
                    "image": image,
                    "command": ["python3", "/sink/smtp_sink.py"],
                    "args": ["--port", str(SMTP_PORT), "--fail-first", str(fail_first)],
                    "ports": [{"containerPort": SMTP_PORT}],
                    "readinessProbe": {"tcpSocket": {"port": SMTP_PORT}, "periodSeconds": 1},
                    "securityContext": RESTRICTED_CONTAINER,
                    "volumeMounts": [{"name": "sink", "mountPath": "/sink"}],
                }
            ],
            "volumes": [{"name": "sink", "configMap": {"name": "smtp-sink"}}],
        },
    }
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "smtp"},
        "spec": {"selector": {"app": "smtp-sink"}, "ports": [{"port": SMTP_PORT}]},
    }
    apply(namespace, configmap, pod, service)
    kubectl("wait", "-n", namespace, "--for=condition=Ready", "pod/smtp", "--timeout=180s")
    # The Service routes to the pod only once its EndpointSlice lists the pod's address as
    # ready (kube-proxy follows within a moment); a handler started before that is refused.
    pod_ip = kubectl("get", "pod", "smtp", "-n", namespace, "-o", "jsonpath={.status.podIP}").stdout
    wait_until(
        "the smtp Service's endpoint",
        lambda: _ready_endpoint(namespace, "smtp") == pod_ip.strip(),
        timeout=120,
    )
    return SmtpSinkPod(namespace)


def _ready_endpoint(namespace: str, service: str) -> str:
    """The first ready address of ``service``'s EndpointSlices ('' while there is none)."""
    text = kubectl(
        "get",
        "endpointslices",
        "-n",
        namespace,
        "-l",
        f"kubernetes.io/service-name={service}",
        "-o",
        "json",
        check=False,
    ).stdout
    try:
        slices = json.loads(text).get("items", [])
    except ValueError:
        return ""
    for slice_ in slices:
        for endpoint in slice_.get("endpoints") or []:
            if (endpoint.get("conditions") or {}).get("ready") and endpoint.get("addresses"):
                return str(endpoint["addresses"][0])
    return ""


@dataclass
class NodeVolume:
    """A directory on the node, owned by the jobs' user 65532, as PVC ``claim`` in the test's
    namespace; ``run_as_root`` runs a script beside it (seeding, inspecting) from a namespace
    that allows hostPath, since the test's own namespace enforces `restricted`."""

    core: client.CoreV1Api
    namespace: str
    claim: str
    path: str
    helper_namespace: str
    image: str

    def run_as_root(self, script: str, timeout: float = 180) -> str:
        name = f"vol-{uuid.uuid4().hex[:8]}"
        pod = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": name},
            "spec": {
                "restartPolicy": "Never",
                "containers": [
                    {
                        "name": "script",
                        "image": self.image,
                        "command": ["python3", "-c", textwrap.dedent(script)],
                        "securityContext": {"runAsUser": 0, "runAsNonRoot": False},
                        "env": [{"name": "VOLUME", "value": "/volume/data"}],
                        "volumeMounts": [{"name": "volume", "mountPath": "/volume"}],
                    }
                ],
                "volumes": [
                    {
                        "name": "volume",
                        "hostPath": {"path": self.path, "type": "DirectoryOrCreate"},
                    }
                ],
            },
        }
        apply(self.helper_namespace, pod)
        try:
            phase = wait_pod_finished(self.helper_namespace, name, timeout)
            out = kubectl("logs", "-n", self.helper_namespace, name).stdout
            assert phase == "Succeeded", out
            return out
        finally:
            kubectl("delete", "pod", "-n", self.helper_namespace, name, "--wait=false", check=False)

    def mount(self, mount_path: str) -> tuple[dict[str, Any], dict[str, Any]]:
        """The pod volume and the handler's volumeMount of this directory."""
        volume = {"name": "shared", "persistentVolumeClaim": {"claimName": self.claim}}
        return volume, {"name": "shared", "mountPath": mount_path}

    def delete(self) -> None:
        self.run_as_root("import os, shutil; shutil.rmtree(os.environ['VOLUME'])")
        pv = f"{self.namespace}-{self.claim}"
        delete_quietly(lambda: self.core.delete_persistent_volume(pv))


def node_volume(
    core: client.CoreV1Api, namespace: str, helper_namespace: str, image: str, claim: str = "shared"
) -> NodeVolume:
    """A PersistentVolume on the node bound to PVC ``claim`` in ``namespace``."""
    path = f"{NODE_VOLUMES}/{namespace}-{claim}"
    volume = NodeVolume(core, namespace, claim, path, helper_namespace, image)
    # The helper mounts the volume's parent: the PV is its `data` subdirectory ($VOLUME in
    # the helper's scripts), created here and given to the jobs' user.
    volume.run_as_root(
        "import os; d = os.environ['VOLUME']; os.makedirs(d, exist_ok=True); "
        "os.chown(d, 65532, 65532); os.chmod(d, 0o775)"
    )
    pv_name = f"{namespace}-{claim}"
    pv = {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {"name": pv_name, "labels": {"backgroundjobs.dev/test": "true"}},
        "spec": {
            "capacity": {"storage": "1Gi"},
            "accessModes": ["ReadWriteMany"],
            "persistentVolumeReclaimPolicy": "Retain",
            "storageClassName": "bgj-e2e-node",
            "hostPath": {"path": f"{path}/data", "type": "Directory"},
            "claimRef": {"namespace": namespace, "name": claim},
        },
    }
    pvc = {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": claim},
        "spec": {
            "accessModes": ["ReadWriteMany"],
            "storageClassName": "bgj-e2e-node",
            "volumeName": pv_name,
            "resources": {"requests": {"storage": "1Gi"}},
        },
    }
    kubectl("apply", "-f", "-", input=json.dumps(pv))
    apply(namespace, pvc)
    wait_until(
        f"PVC {namespace}/{claim} Bound",
        lambda: (
            kubectl("get", "pvc", claim, "-n", namespace, "-o", "jsonpath={.status.phase}").stdout
            == "Bound"
        ),
        timeout=120,
    )
    return volume
