"""The operator as a process and the CRD on a cluster: shared by the integration tests and
the benchmarks (bench/), which import them instead of keeping copies."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import yaml
from kubernetes import client
from kubernetes.client.rest import ApiException
from tests.integration.bgj import wait_for

REPO_ROOT = Path(__file__).resolve().parents[2]
CRD_FILE = REPO_ROOT / "crds" / "backgroundjobs.dev_backgroundjobs.yaml"
QUEUE_CRD_FILE = REPO_ROOT / "crds" / "backgroundjobs.dev_backgroundjobqueues.yaml"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def apply_crd(api: client.ApiClient, crd_file: Path = CRD_FILE) -> dict:
    """The generated CRD applied (created or replaced) and Established; its manifest."""
    body = yaml.safe_load(crd_file.read_text())
    ext = client.ApiextensionsV1Api(api)
    name = body["metadata"]["name"]
    try:
        existing = ext.read_custom_resource_definition(name)
        body["metadata"]["resourceVersion"] = existing.metadata.resource_version
        ext.replace_custom_resource_definition(name, body)
    except ApiException as exc:
        if exc.status != 404:
            raise
        ext.create_custom_resource_definition(body)

    def established() -> bool:
        crd = ext.read_custom_resource_definition(name)
        return any(
            c.type == "Established" and c.status == "True" for c in crd.status.conditions or []
        )

    wait_for("the CRD to be Established", established, timeout=60)
    time.sleep(1)  # discovery catches up
    return body


class OperatorProcess:
    """The operator as a subprocess (``python -m backgroundjobs.controller``) that can be
    stopped, killed and started again; its log is ``log_dir/operator.log`` (with
    ``--verbose`` when $BGJ_OPERATOR_VERBOSE is set: kopf's and the queue slots' debug lines)."""

    def __init__(
        self,
        kubeconfig: str,
        log_dir: Path,
        extra_env: dict[str, str] | None = None,
        namespaces: list[str] | None = None,
        *,
        source: str | None = None,
    ) -> None:
        """``namespaces``: watch only these (``-n``) instead of all (``--all-namespaces``).
        ``source``: the operator/ directory to run (default this checkout's)."""
        self.kubeconfig = kubeconfig
        self.log_path = log_dir / "operator.log"
        self.extra_env = extra_env or {}
        self.scope = (
            [a for ns in namespaces for a in ("-n", ns)] if namespaces else ["--all-namespaces"]
        )
        self.source = source or str(REPO_ROOT / "operator")
        self.proc: subprocess.Popen[bytes] | None = None
        self.health_port = 0
        self.metrics_port = 0
        self.starts = 0
        self.started_at = 0.0

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def command(self) -> list[str]:
        """The operator's command line."""
        return [
            sys.executable,
            "-m",
            "backgroundjobs.controller",
            *self.scope,
            "--liveness",
            f"http://127.0.0.1:{self.health_port}/healthz",
            *(["--verbose"] if os.environ.get("BGJ_OPERATOR_VERBOSE") else []),
        ]

    def start(self, timeout: float = 60) -> float:
        """Start it and wait for its health endpoint; the wall time it was launched at."""
        assert self.proc is None or self.proc.poll() is not None, "already running"
        self.health_port = free_port()
        self.metrics_port = free_port()
        env = {
            **os.environ,
            "KUBECONFIG": self.kubeconfig,
            "BACKGROUNDJOBS_METRICS_PORT": str(self.metrics_port),
            "PYTHONUNBUFFERED": "1",
            # this checkout's code (or ``source``), whichever one the venv's editable install
            # points at; the checkout itself for the tests/ and bench/ packages
            "PYTHONPATH": os.pathsep.join(
                p for p in (self.source, str(REPO_ROOT), os.environ.get("PYTHONPATH")) if p
            ),
            **self.extra_env,
        }
        log = self.log_path.open("ab")
        self.starts += 1
        header = f"\n===== operator start #{self.starts} {time.strftime('%H:%M:%S')} ====="
        log.write(f"{header} {self.extra_env}\n".encode())
        log.flush()
        self.started_at = time.time()
        self.proc = subprocess.Popen(
            self.command(), env=env, stdout=log, stderr=subprocess.STDOUT, cwd=REPO_ROOT
        )

        def healthy() -> bool:
            if self.proc is not None and self.proc.poll() is not None:
                raise AssertionError(
                    f"operator exited with {self.proc.returncode}:\n{self.log_tail()}"
                )
            try:
                with urllib.request.urlopen(
                    f"http://127.0.0.1:{self.health_port}/healthz", timeout=1
                ) as r:
                    return bool(r.status == 200)
            except OSError:
                return False

        wait_for("the operator's health endpoint", healthy, timeout=timeout, interval=0.1)
        return self.started_at

    def kill(self) -> None:
        """SIGKILL: no clean-up at all, as a crash or an OOM kill."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20) -> None:
        """Stop it as Kubernetes would (SIGTERM), killing it after ``timeout`` seconds."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()

    def metrics(self) -> str:
        with urllib.request.urlopen(
            f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5
        ) as r:
            return str(r.read().decode())

    def log_tail(self, lines: int = 60) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""
