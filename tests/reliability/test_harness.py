"""The fault harness itself: a killed control-plane component comes back by itself (the
cluster's supervisor), a hung API server answers nothing until resumed, and the proxy cuts
one client off while the others work. Without these, a fault test could pass because its
fault never happened."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import pytest
from kubernetes import client, config
from tests.integration.bgj import wait_for
from tests.reliability.accounts import service_account_kubeconfig
from tests.reliability.conftest import ProxyFactory
from tests.reliability.controlplane import ControlPlane


def _job(name: str) -> dict:
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name},
        "spec": {
            "backoffLimit": 0,
            "template": {
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [{"name": "handler", "image": "busybox"}],
                }
            },
        },
    }


def _job_runs(batch: client.BatchV1Api, namespace: str) -> None:
    """A Job created now runs to completion: the Job controller, scheduler and kwok work."""
    name = f"probe-{uuid.uuid4().hex[:6]}"
    batch.create_namespaced_job(namespace, _job(name))
    wait_for(
        f"Job {name} to succeed",
        lambda: (batch.read_namespaced_job_status(name, namespace).status.succeeded or 0) >= 1,
        timeout=120,
    )


@pytest.mark.parametrize(
    "component", ["kube-controller-manager", "kube-scheduler", "kube-apiserver", "etcd"]
)
def test_a_killed_component_is_restarted(
    control_plane: ControlPlane, batch_v1: client.BatchV1Api, namespace: str, component: str
) -> None:
    before = control_plane.pid(component)
    control_plane.kill(component)
    wait_for(
        f"{component} to run again",
        lambda: control_plane.alive(component) and control_plane.pid(component) != before,
        timeout=60,
    )
    control_plane.wait_ready()
    _job_runs(batch_v1, namespace)


def test_a_hung_api_server_answers_nothing_until_resumed(control_plane: ControlPlane) -> None:
    with control_plane.hung("kube-apiserver"):
        assert not control_plane.answers()
    assert control_plane.wait_ready(timeout=60) < 60


def test_a_stopped_component_stays_down_until_started(
    control_plane: ControlPlane, batch_v1: client.BatchV1Api, namespace: str
) -> None:
    control_plane.stop("kube-scheduler")
    time.sleep(5)  # several supervisor rounds
    assert not control_plane.alive("kube-scheduler")
    control_plane.start("kube-scheduler")
    assert control_plane.alive("kube-scheduler")
    _job_runs(batch_v1, namespace)


def test_the_proxy_cuts_one_client_off(
    api_proxy: ProxyFactory,
    kubeconfig: str,
    api_client: client.ApiClient,
    tmp_path: Path,
    core_v1: client.CoreV1Api,
) -> None:
    proxy = api_proxy()
    token = service_account_kubeconfig(api_client, kubeconfig, "proxied", tmp_path / "sa")
    proxied = config.new_client_from_config(
        config_file=str(proxy.kubeconfig(token, tmp_path / "proxied.kubeconfig"))
    )
    through = client.CoreV1Api(proxied)
    assert through.read_namespace("default").metadata.name == "default"

    proxy.blackhole(r"/namespaces/default$")
    with pytest.raises(Exception):  # noqa: B017  (a read timeout, whatever the library calls it)
        through.read_namespace("default", _request_timeout=3)
    assert through.read_namespace("kube-system").metadata.name == "kube-system"

    with proxy.partitioned():
        with pytest.raises(Exception):  # noqa: B017
            through.read_namespace("kube-system", _request_timeout=3)
        assert core_v1.read_namespace("default").metadata.name == "default"  # others work
    assert through.read_namespace("default", _request_timeout=10).metadata.name == "default"
    assert proxy.held >= 2
