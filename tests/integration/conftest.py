"""Integration fixtures: the CRD installed, the operator running as a real process."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from kubernetes import client
from kubernetes.client.rest import ApiException
from tests.integration.bgj import Jobs, wait_for

REPO_ROOT = Path(__file__).resolve().parents[2]
CRD_FILE = REPO_ROOT / "crds" / "backgroundjobs.dev_backgroundjobs.yaml"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def crd(api_client: client.ApiClient) -> dict:
    """The generated CRD applied (created or replaced) and Established."""
    body = yaml.safe_load(CRD_FILE.read_text())
    ext = client.ApiextensionsV1Api(api_client)
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
    """The operator as a subprocess (python -m backgroundjobs.controller) that tests can kill."""

    def __init__(
        self,
        kubeconfig: str,
        log_dir: Path,
        extra_env: dict[str, str] | None = None,
        namespaces: list[str] | None = None,
    ) -> None:
        """``namespaces``: watch only these (``-n``) instead of all (``--all-namespaces``)."""
        self.kubeconfig = kubeconfig
        self.log_path = log_dir / "operator.log"
        self.extra_env = extra_env or {}
        self.scope = (
            [a for ns in namespaces for a in ("-n", ns)] if namespaces else ["--all-namespaces"]
        )
        self.proc: subprocess.Popen[bytes] | None = None
        self.health_port = 0
        self.metrics_port = 0
        self.starts = 0

    def start(self) -> None:
        assert self.proc is None or self.proc.poll() is not None, "already running"
        self.health_port = free_port()
        self.metrics_port = free_port()
        env = {
            **os.environ,
            "KUBECONFIG": self.kubeconfig,
            "BACKGROUNDJOBS_METRICS_PORT": str(self.metrics_port),
            "PYTHONUNBUFFERED": "1",
            # this checkout's code, whichever checkout the venv's editable install points at
            "PYTHONPATH": os.pathsep.join(
                p for p in (str(REPO_ROOT / "operator"), os.environ.get("PYTHONPATH")) if p
            ),
            **self.extra_env,
        }
        log = self.log_path.open("ab")
        self.starts += 1
        log.write(f"\n===== operator start #{self.starts} =====\n".encode())
        log.flush()
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "backgroundjobs.controller",
                *self.scope,
                "--liveness",
                f"http://127.0.0.1:{self.health_port}/healthz",
            ],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=REPO_ROOT,
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

        wait_for("the operator's health endpoint", healthy, timeout=60, interval=0.2)

    def kill(self) -> None:
        """SIGKILL: no clean-up at all, as a crash or an OOM kill."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
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


@pytest.fixture(scope="session")
def operator(
    kubeconfig: str, crd: dict, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[OperatorProcess]:
    """The operator running against the test cluster for the whole session."""
    op = OperatorProcess(
        kubeconfig,
        tmp_path_factory.mktemp("operator"),
        # a queue with a concurrency limit for the queue tests
        {"BACKGROUNDJOBS_QUEUES": '{"limited": {"maxConcurrency": 1}}'},
    )
    op.start()
    yield op
    op.stop()


@pytest.fixture
def bgjobs(api_client: client.ApiClient, namespace: str, operator: OperatorProcess) -> Jobs:
    """BackgroundJobs of this test's namespace, with the operator running."""
    return Jobs(api_client, namespace)


@pytest.fixture
def bgjobs_no_operator(api_client: client.ApiClient, namespace: str, crd: dict) -> Jobs:
    """BackgroundJobs of this test's namespace; the operator is not required."""
    return Jobs(api_client, namespace)


@pytest.fixture(scope="module")
def session_operator_paused(operator: OperatorProcess) -> Iterator[None]:
    """The session's operator stopped for a module that runs operators of its own (another
    identity, leader election), so that only those act; started again afterwards."""
    operator.stop()
    try:
        yield
    finally:
        operator.start()
