"""Shared fixtures: the local cluster and synchronous Kubernetes API clients.

Every cluster fixture derives from the session-scoped `kubeconfig`, which is only set up when
a test asks for it: `pytest -m unit` never starts a cluster. `kubeconfig` uses the cluster in
$KUBECONFIG when it answers, otherwise starts (or reuses) the local one with
`hack/cluster.sh up`, and exports KUBECONFIG for the session so that subprocesses and
in-process operators (kopf.testing.KopfRunner) talk to the same cluster.
"""

from __future__ import annotations

import os
import re
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

REPO_ROOT = Path(__file__).resolve().parent.parent
CLUSTER_SH = REPO_ROOT / "hack" / "cluster.sh"
CLUSTER_UP_TIMEOUT_S = 600
DEFAULT_SA_TIMEOUT_S = 120


def _api_server_answers(kubeconfig: str) -> bool:
    try:
        api = config.new_client_from_config(config_file=kubeconfig)
        with api:
            client.VersionApi(api).get_code(_request_timeout=5)
    except Exception:
        return False
    return True


def _local_cluster_kubeconfig() -> str:
    """Start or reuse the tests' local cluster (hack/cluster.sh up) and return its kubeconfig.

    Its name is BGJ_CLUSTER, default `backgroundjobs-test`: never the cluster `make demo`
    leaves its operator on, whose operator would act on the tests' objects too.
    """
    env = {**os.environ, "BGJ_CLUSTER": os.environ.get("BGJ_CLUSTER", "backgroundjobs-test")}
    subprocess.run(
        ["bash", str(CLUSTER_SH), "up"], check=True, timeout=CLUSTER_UP_TIMEOUT_S, env=env
    )
    out = subprocess.run(
        ["bash", str(CLUSTER_SH), "kubeconfig"],
        check=True,
        capture_output=True,
        text=True,
        timeout=30,
        env=env,
    )
    return out.stdout.strip()


@pytest.fixture(scope="session")
def kubeconfig() -> Iterator[str]:
    """Path of the kubeconfig of a reachable cluster, exported as KUBECONFIG for the session."""
    path = os.environ.get("KUBECONFIG", "")
    if not (path and _api_server_answers(path)):
        path = _local_cluster_kubeconfig()
        if not _api_server_answers(path):
            pytest.fail(f"the local cluster does not answer (kubeconfig {path})")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("KUBECONFIG", path)
        yield path


@pytest.fixture(scope="session")
def api_client(kubeconfig: str) -> Iterator[client.ApiClient]:
    api = config.new_client_from_config(config_file=kubeconfig)
    with api:
        yield api


@pytest.fixture(scope="session")
def core_v1(api_client: client.ApiClient) -> client.CoreV1Api:
    return client.CoreV1Api(api_client)


@pytest.fixture(scope="session")
def batch_v1(api_client: client.ApiClient) -> client.BatchV1Api:
    return client.BatchV1Api(api_client)


@pytest.fixture(scope="session")
def apiextensions_v1(api_client: client.ApiClient) -> client.ApiextensionsV1Api:
    return client.ApiextensionsV1Api(api_client)


@pytest.fixture(scope="session")
def custom_objects(api_client: client.ApiClient) -> client.CustomObjectsApi:
    return client.CustomObjectsApi(api_client)


def _namespace_name(test_name: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", test_name.lower()).strip("-")[:40].strip("-")
    return f"t-{slug}-{uuid.uuid4().hex[:6]}"


@pytest.fixture
def namespace(core_v1: client.CoreV1Api, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh namespace, usable once its `default` ServiceAccount exists; deleted afterwards.

    Deletion is not awaited: the namespace controller finishes it in the background.
    """
    name = _namespace_name(request.node.name)
    core_v1.create_namespace(
        client.V1Namespace(
            metadata=client.V1ObjectMeta(name=name, labels={"backgroundjobs.dev/test": "true"})
        )
    )
    try:
        deadline = time.monotonic() + DEFAULT_SA_TIMEOUT_S
        while True:
            try:
                core_v1.read_namespaced_service_account("default", name)
                break
            except ApiException as e:
                if e.status != 404:
                    raise
            if time.monotonic() > deadline:
                pytest.fail(
                    f"namespace {name}: no 'default' ServiceAccount after {DEFAULT_SA_TIMEOUT_S}s"
                    " (is kube-controller-manager's serviceaccount controller running?)"
                )
            time.sleep(0.2)
        yield name
    finally:
        try:
            core_v1.delete_namespace(name, propagation_policy="Background")
        except ApiException as e:
            if e.status != 404:
                raise
