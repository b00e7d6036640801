"""Fixtures for the image tests: the images built by hack/build-images.sh, and running them.

The session builds (or refreshes: a warm build takes seconds) the images with the project's
own script, which installs and starts Docker when the machine has none. The tests are skipped
only when no Docker engine can run here at all (no engine answers and this user cannot
install or start one); a failing image build is a test error.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from kubernetes import client, config
from tests.e2e.docker_jobs import BASE, EXAMPLES, OPERATOR, ROOT, JobRunner
from tests.e2e.realcluster import Jobs, delete_quietly, real_ready_nodes, wait_until

BUILD_TIMEOUT_S = 1200
CACHE = Path(os.environ.get("BACKGROUNDJOBS_CACHE", Path.home() / ".cache" / "backgroundjobs"))


def _docker_answers() -> bool:
    if shutil.which("docker") is None:
        return False
    try:
        probe = subprocess.run(["docker", "info"], capture_output=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return probe.returncode == 0


def _why_docker_cannot_run() -> str | None:
    """None when the build script can get an engine; else why not."""
    if _docker_answers():
        return None
    if os.geteuid() != 0:
        return "no Docker engine answers and, not being root, the tests cannot install or start one"
    if shutil.which("dockerd") is None and shutil.which("apt-get") is None:
        return "no Docker engine, no dockerd and no apt-get to install docker.io"
    return None


@pytest.fixture(scope="session")
def images() -> dict[str, str]:
    """The three images, freshly built from the work tree."""
    reason = _why_docker_cannot_run()
    if reason:
        pytest.skip(reason)
    log_path = CACHE / "e2e-build-images.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "w") as log:
        build = subprocess.run(
            ["bash", str(ROOT / "hack" / "build-images.sh")],
            stdout=log,
            stderr=subprocess.STDOUT,
            timeout=BUILD_TIMEOUT_S,
        )
    output = log_path.read_text()
    if build.returncode != 0:
        if not _docker_answers() and "dockerd did not come up" in output:
            dockerd_log = CACHE / "dockerd.log"
            tail = dockerd_log.read_text()[-2000:] if dockerd_log.exists() else ""
            pytest.skip(f"Docker cannot run on this machine: dockerd did not start:\n{tail}")
        pytest.fail(f"hack/build-images.sh failed (log {log_path}):\n{output[-4000:]}")
    return {"base": BASE, "examples": EXAMPLES, "operator": OPERATOR}


@pytest.fixture
def job_runner(images: dict[str, str], tmp_path: Path) -> Iterator[JobRunner]:
    tmp_path.chmod(0o755)
    yield JobRunner(tmp_path)


# ---------------------------------------------------------------- a cluster with real nodes
# The tests in test_cluster_*.py run the images on real nodes: the cluster in KUBECONFIG when
# it is set (kind, or any cluster with the images loaded), else the local cluster with a real
# node on this machine (REAL_NODES=1 hack/cluster.sh up, named $BGJ_E2E_CLUSTER, default
# backgroundjobs-e2e: its own, apart from the integration tests' and the demo's).

CLUSTER_SH = ROOT / "hack" / "cluster.sh"
NODE_SH = ROOT / "hack" / "node.sh"
CLUSTER_UP_TIMEOUT_S = 2400  # a cold machine compiles the node's binaries first
OPERATOR_NAMESPACE = "bgj-e2e-system"
RELEASE = "bgj"


@dataclass(frozen=True)
class RealCluster:
    kubeconfig: str
    local: bool  # the node runs on this machine (hack/node.sh): images are loaded into it
    name: str


def e2e_cluster_name() -> str:
    return os.environ.get("BGJ_E2E_CLUSTER") or "backgroundjobs-e2e"


def _why_no_real_node() -> str:
    done = subprocess.run(["bash", str(NODE_SH), "why-not"], capture_output=True, text=True)
    return done.stdout.strip() or done.stderr.strip()


@pytest.fixture(scope="session")
def real_cluster() -> Iterator[RealCluster]:
    """A cluster with a Ready real node, exported as KUBECONFIG for the session."""
    path = os.environ.get("KUBECONFIG", "")
    name = e2e_cluster_name()
    local = not path
    if local:
        reason = _why_no_real_node()
        if reason:
            pytest.skip(f"no real node can run on this machine: {reason}")
        env = {**os.environ, "REAL_NODES": "1", "BGJ_CLUSTER": name}
        subprocess.run(
            ["bash", str(CLUSTER_SH), "up"], env=env, check=True, timeout=CLUSTER_UP_TIMEOUT_S
        )
        path = subprocess.run(
            ["bash", str(CLUSTER_SH), "kubeconfig"],
            env=env,
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
    api = config.new_client_from_config(config_file=path)
    with api:
        nodes = real_ready_nodes(client.CoreV1Api(api))
    if not nodes:
        pytest.skip(f"KUBECONFIG={path}: no Ready real node (kwok's fake nodes run no container)")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("KUBECONFIG", path)
        yield RealCluster(path, local, name)


@pytest.fixture(scope="session")
def kubeconfig(real_cluster: RealCluster) -> str:
    """The e2e tests' cluster (overrides the kwok cluster of tests/conftest.py)."""
    return real_cluster.kubeconfig


@pytest.fixture(scope="session")
def cluster_images(real_cluster: RealCluster, images: dict[str, str]) -> dict[str, str]:
    """The images, in the local node's containerd (another cluster must have them loaded)."""
    if real_cluster.local:
        env = {**os.environ, "BGJ_CLUSTER": real_cluster.name}
        names = [images["base"], images["examples"], images["operator"]]
        load = ["bash", str(NODE_SH), "load-images", *names]
        subprocess.run(load, env=env, check=True, timeout=900)
    return images


@dataclass(frozen=True)
class OperatorRelease:
    namespace: str
    release: str
    deployment: str
    metrics_service: str


def helm(*args: str, timeout: float = 900) -> str:
    done = subprocess.run(["helm", *args], capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        raise AssertionError(f"helm {' '.join(args)} failed: {done.stderr.strip()}")
    return done.stdout


def helm_install(images: dict[str, str], *values: str) -> None:
    repository, tag = images["operator"].rsplit(":", 1)
    helm(
        "upgrade", "--install", RELEASE, str(ROOT / "charts" / "backgroundjobs-operator"),
        "--namespace", OPERATOR_NAMESPACE, "--create-namespace", "--wait", "--timeout", "10m",
        "--set", f"image.repository={repository}", "--set", f"image.tag={tag}",
        "--set", f"defaultImage={images['examples']}",
        *values,
    )  # fmt: skip


@pytest.fixture(scope="session")
def operator_release(cluster_images: dict[str, str]) -> OperatorRelease:
    """The chart installed with the operator image (two replicas, leader election)."""
    helm_install(cluster_images)
    fullname = "bgj-backgroundjobs-operator"
    return OperatorRelease(OPERATOR_NAMESPACE, RELEASE, fullname, f"{fullname}-metrics")


@pytest.fixture
def restricted_namespace(
    core_v1: client.CoreV1Api, operator_release: OperatorRelease, request
) -> Iterator[str]:
    """A fresh namespace enforcing the `restricted` Pod Security Standard; deleted afterwards."""
    slug = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")[:40].strip("-")
    name = f"e2e-{slug}-{uuid.uuid4().hex[:5]}"
    labels = {
        "backgroundjobs.dev/test": "true",
        "pod-security.kubernetes.io/enforce": "restricted",
        "pod-security.kubernetes.io/enforce-version": "latest",
    }
    core_v1.create_namespace(
        client.V1Namespace(metadata=client.V1ObjectMeta(name=name, labels=labels))
    )
    wait_until(
        f"the default ServiceAccount of {name}",
        lambda: any(
            sa.metadata.name == "default"
            for sa in core_v1.list_namespaced_service_account(name).items
        ),
        timeout=120,
    )
    yield name
    delete_quietly(lambda: core_v1.delete_namespace(name, propagation_policy="Background"))


@pytest.fixture
def jobs(
    custom_objects: client.CustomObjectsApi, core_v1: client.CoreV1Api, restricted_namespace: str
) -> Jobs:
    return Jobs(custom_objects, core_v1, restricted_namespace)


_MODULE_ORDER = (
    "test_images",
    "test_cluster_operator",
    "test_cluster_failures",
    "test_cluster_scenarios",
    "test_cluster_examples",
    "test_cluster_kueue",
    "test_cluster_upgrade",  # last: it rolls the operator's Deployment
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Images first, then the chart's own checks, the scenarios, and the upgrade last."""
    here = Path(__file__).parent

    def rank(item: pytest.Item) -> int:
        module = item.path.stem
        return _MODULE_ORDER.index(module) if module in _MODULE_ORDER else len(_MODULE_ORDER)

    ours = [item for item in items if item.path.parent == here]
    others = [item for item in items if item.path.parent != here]
    items[:] = others + sorted(ours, key=rank)
