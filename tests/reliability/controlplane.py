"""The local cluster's control plane as a test drives it: hang, kill, stop and start its
components (``hack/cluster.sh component``), and wait for the API server to answer again.

The cluster's supervisor (hack/cluster.sh) restarts a component that exits, as a node's
kubelet restarts a static pod; ``stop`` keeps one down until ``start``.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from kubernetes import client, config

REPO_ROOT = Path(__file__).resolve().parents[2]
CLUSTER_SH = REPO_ROOT / "hack" / "cluster.sh"
COMPONENTS = (
    "etcd",
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "kwok-controller",
)


class ControlPlane:
    """One local cluster (``BGJ_CLUSTER``) made by hack/cluster.sh."""

    def __init__(self, cluster: str, kubeconfig: str) -> None:
        self.cluster = cluster
        self.kubeconfig = kubeconfig
        self.workdir = Path(kubeconfig).parent
        self.pki = self.workdir / "pki"
        self.audit_log = self.workdir / "logs" / "audit.log"

    def _run(self, *args: str) -> str:
        out = subprocess.run(
            ["bash", str(CLUSTER_SH), *args],
            check=True,
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, "BGJ_CLUSTER": self.cluster},
        )
        return out.stdout.strip()

    def pid(self, component: str) -> int:
        return int(self._run("component", component, "pid"))

    def hang(self, component: str) -> None:
        """SIGSTOP: the process keeps its sockets and answers nothing."""
        self._run("component", component, "hang")

    def resume(self, component: str) -> None:
        self._run("component", component, "resume")

    def kill(self, component: str) -> None:
        """SIGKILL: a crash; the supervisor starts it again within seconds."""
        self._run("component", component, "kill")

    def stop(self, component: str) -> None:
        """Kill it and keep it down until ``start``."""
        self._run("component", component, "stop")

    def start(self, component: str) -> None:
        self._run("component", component, "start")

    @contextmanager
    def hung(self, component: str) -> Iterator[None]:
        self.hang(component)
        try:
            yield
        finally:
            self.resume(component)

    def answers(self) -> bool:
        """The API server answers a read from etcd (a GET is a quorum read)."""
        try:
            api = config.new_client_from_config(config_file=self.kubeconfig)
            with api:
                client.CoreV1Api(api).read_namespace("default", _request_timeout=3)
        except Exception:
            return False
        return True

    def wait_ready(self, timeout: float = 180) -> float:
        """Seconds until the API server answers."""
        t0 = time.monotonic()
        while not self.answers():
            if time.monotonic() - t0 > timeout:
                raise AssertionError(f"the API server did not answer within {timeout}s")
            time.sleep(0.5)
        return time.monotonic() - t0

    def alive(self, component: str) -> bool:
        try:
            pid = self.pid(component)
        except (subprocess.CalledProcessError, ValueError):
            return False
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            return False
        return state not in ("Z", "X")

    def heal(self) -> None:
        """Every component running and resumed (a test's clean-up after its faults)."""
        for component in COMPONENTS:
            if self.alive(component):
                self.resume(component)
            else:
                self.start(component)
        self.wait_ready()
