"""Reliability fixtures: a local cluster of the suite's own (its processes are hung and
killed), operators as processes with identities of their own, and a proxy per operator for
its network faults.

The cluster is BGJ_CLUSTER (default ``backgroundjobs-reliability``), started or reused with
hack/cluster.sh; a KUBECONFIG given from outside is not used, since the suite must reach the
cluster's processes. ``RELIABILITY_SCALE`` (default 1) scales the job counts: CI runs a
smaller version (see docs/RELIABILITY.md).
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml
from kubernetes import client
from tests.integration.conftest import OperatorProcess, crd  # noqa: F401  (fixture)
from tests.reliability.accounts import service_account_kubeconfig
from tests.reliability.audit import Audit
from tests.reliability.controlplane import CLUSTER_SH, ControlPlane
from tests.reliability.proxy import ApiProxy

CLUSTER = os.environ.get("BGJ_CLUSTER", "backgroundjobs-reliability")
SCALE = float(os.environ.get("RELIABILITY_SCALE", "1"))


def scaled(n: int, minimum: int = 1) -> int:
    """``n`` jobs at the suite's scale."""
    return max(minimum, round(n * SCALE))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if Path(str(item.fspath)).is_relative_to(here):
            item.add_marker(pytest.mark.reliability)


@pytest.fixture(scope="session")
def kubeconfig() -> Iterator[str]:
    """The suite's own local cluster (overrides tests/conftest.py's, which may take any)."""
    env = {**os.environ, "BGJ_CLUSTER": CLUSTER}
    subprocess.run(["bash", str(CLUSTER_SH), "up"], check=True, timeout=600, env=env)
    path = subprocess.run(
        ["bash", str(CLUSTER_SH), "kubeconfig"],
        check=True,
        capture_output=True,
        text=True,
        timeout=30,
        env=env,
    ).stdout.strip()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("KUBECONFIG", path)
        mp.setenv("BGJ_CLUSTER", CLUSTER)
        yield path


@pytest.fixture(scope="session")
def control_plane(kubeconfig: str) -> ControlPlane:
    return ControlPlane(CLUSTER, kubeconfig)


@pytest.fixture(autouse=True)
def healed_control_plane(request: pytest.FixtureRequest) -> Iterator[None]:
    """After each test, every component of the cluster runs again and answers."""
    yield
    if "control_plane" in request.fixturenames:
        request.getfixturevalue("control_plane").heal()


@pytest.fixture
def audit(control_plane: ControlPlane) -> Audit:
    """The audit log from the start of the test on."""
    return Audit(control_plane.audit_log)


ProxyFactory = Callable[[], ApiProxy]


@pytest.fixture
def api_proxy(control_plane: ControlPlane) -> Iterator[ProxyFactory]:
    """Proxies in front of the API server (one per client whose network is to fail)."""
    proxies: list[ApiProxy] = []
    server = yaml.safe_load(Path(control_plane.kubeconfig).read_text())["clusters"][0]["cluster"]

    def make() -> ApiProxy:
        proxy = ApiProxy(server["server"], control_plane.pki).start()
        proxies.append(proxy)
        return proxy

    yield make
    for proxy in proxies:
        proxy.stop()


OperatorFactory = Callable[..., OperatorProcess]


@pytest.fixture
def operators(
    kubeconfig: str,
    api_client: client.ApiClient,
    crd: dict,  # noqa: F811
    tmp_path: Path,
) -> Iterator[OperatorFactory]:
    """Operators as processes, each with a ServiceAccount of its own (``identity``), optionally
    through a proxy; all stopped at the end of the test."""
    started: list[OperatorProcess] = []

    def make(
        identity: str,
        proxy: ApiProxy | None = None,
        env: dict[str, str] | None = None,
        namespaces: list[str] | None = None,
    ) -> OperatorProcess:
        config = service_account_kubeconfig(
            api_client, kubeconfig, identity, tmp_path / f"{identity}.kubeconfig"
        )
        if proxy is not None:
            config = proxy.kubeconfig(config, tmp_path / f"{identity}-proxied.kubeconfig")
        log_dir = tmp_path / identity
        log_dir.mkdir(exist_ok=True)
        op = OperatorProcess(str(config), log_dir, env or {}, namespaces)
        started.append(op)
        return op

    yield make
    for op in started:
        op.stop()
