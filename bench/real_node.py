"""Figures of a cluster with a real node (the e2e cluster, operator installed by the chart).

    KUBECONFIG=$(BGJ_CLUSTER=backgroundjobs-e2e hack/cluster.sh kubeconfig) \\
        python -m bench.real_node [--jobs 50] [--namespace bgj-bench-node]

- start latency: BackgroundJob created (the client's clock, before the create call) to the
  handler's first log line (the `time` of its first JSON record: the node is this machine,
  one clock), one job after another so that no job waits for another; p50/p99/max.
- the operator pods' memory: the kubelet's working set of each operator container (the
  node's stats summary through the API server), after the run.

Prints a JSON document; bench/README.md quotes it.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
import uuid
from datetime import datetime
from typing import Any

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

GROUP, VERSION, PLURAL = "backgroundjobs.dev", "v1alpha1", "backgroundjobs"
OPERATOR_NAMESPACE = "bgj-e2e-system"


def first_log_time(core: client.CoreV1Api, namespace: str, name: str, deadline: float) -> float:
    """The `time` of the first JSON record of the job's handler container."""
    while time.monotonic() < deadline:
        pods = core.list_namespaced_pod(namespace, label_selector=f"backgroundjobs.dev/name={name}")
        for pod in pods.items:
            try:
                text = core.read_namespaced_pod_log(
                    pod.metadata.name, namespace, container="handler"
                )
            except ApiException:
                continue
            for line in (text or "").splitlines():
                if line.startswith("{"):
                    stamp = json.loads(line)["time"]
                    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()
        time.sleep(0.1)
    raise TimeoutError(f"no log line from {namespace}/{name}")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def operator_memory(core: client.CoreV1Api) -> dict[str, int]:
    out: dict[str, int] = {}
    for node in core.list_node().items:
        if (node.metadata.annotations or {}).get("kwok.x-k8s.io/node"):
            continue
        response = core.connect_get_node_proxy_with_path(
            node.metadata.name, "stats/summary", _preload_content=False
        )
        summary = json.loads(response.data)
        for pod in summary.get("pods", []):
            if pod["podRef"]["namespace"] != OPERATOR_NAMESPACE:
                continue
            for container in pod.get("containers", []):
                out[pod["podRef"]["name"]] = int(container["memory"]["workingSetBytes"])
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=50)
    parser.add_argument("--namespace", default="bgj-bench-node")
    options = parser.parse_args()
    api = config.new_client_from_config()
    core = client.CoreV1Api(api)
    custom = client.CustomObjectsApi(api)
    namespace = options.namespace
    try:
        core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=namespace)))
    except ApiException as e:
        if e.status != 409:
            raise
    while not any(
        sa.metadata.name == "default"
        for sa in core.list_namespaced_service_account(namespace).items
    ):
        time.sleep(0.2)
    latencies = []
    run = uuid.uuid4().hex[:6]
    for i in range(options.jobs):
        name = f"latency-{run}-{i:03d}"
        body = {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "BackgroundJob",
            "metadata": {"name": name},
            "spec": {"handler": "test.echo", "args": [name], "kwargs": {"sleep": 0}},
        }
        created = time.time()
        custom.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, body)
        first = first_log_time(core, namespace, name, time.monotonic() + 300)
        latencies.append(first - created)
    result: dict[str, Any] = {
        "jobs": options.jobs,
        "created_to_first_log_line_s": {
            "p50": round(statistics.median(latencies), 2),
            "p99": round(percentile(latencies, 0.99), 2),
            "max": round(max(latencies), 2),
            "min": round(min(latencies), 2),
        },
        "operator_working_set_bytes": operator_memory(core),
    }
    print(json.dumps(result, indent=2))
    core.delete_namespace(namespace)


if __name__ == "__main__":
    main()
