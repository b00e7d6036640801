"""What looking into runs whose pod cannot start costs, and how fast it shows the cause.

    BGJ_CLUSTER=NAME bash hack/cluster.sh up
    BGJ_CLUSTER=NAME python -m bench.pod_probe_cost [quick] [long] [stuck] [seconds]

Runs the operator (a subprocess of this checkout) on the kwok cluster ``$BGJ_CLUSTER`` and
creates, in a fresh namespace, ``quick`` jobs (their pod runs 1 s), ``long`` jobs (their pod
is ready and runs for the whole measurement) and ``stuck`` jobs (a nodeSelector no node
matches). For ``seconds`` it records when each stuck job first shows Running/Unschedulable;
then it counts, in the API server's audit log, the operator's pod lists of the probe
(``resourceVersion=0``, one Job's pods) and its FailedCreate Event lists. Expected: none for
quick and long jobs; for each stuck job one read 5 s after its Job's creation and one every
15 s after.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from kubernetes import client, config
from tests.integration.harness import OperatorProcess, apply_crd

from backgroundjobs.api import constants as c
from backgroundjobs.api.times import parse_time
from bench.audit import AuditLog

REPO = Path(__file__).resolve().parent.parent


def main(quick: int = 100, long: int = 20, stuck: int = 20, seconds: float = 75) -> None:
    kubeconfig = subprocess.run(
        ["bash", str(REPO / "hack" / "cluster.sh"), "kubeconfig"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    audit = AuditLog(Path(kubeconfig).parent / "logs" / "audit.log")
    api = config.new_client_from_config(config_file=kubeconfig)
    core, custom = client.CoreV1Api(api), client.CustomObjectsApi(api)
    apply_crd(api)
    ns = f"probe-cost-{uuid.uuid4().hex[:6]}"
    core.create_namespace({"metadata": {"name": ns}})
    operator = OperatorProcess(kubeconfig, Path(tempfile.mkdtemp()), namespaces=[ns])
    operator.start()
    try:
        mark = audit.mark()

        def create(name: str, **spec: Any) -> None:
            body = {
                "apiVersion": c.API_VERSION,
                "kind": c.KIND,
                "metadata": {"name": name},
                "spec": {"handler": "test.echo", **spec},
            }
            custom.create_namespaced_custom_object(c.GROUP, c.VERSION, ns, c.PLURAL, body)

        running = {"metadata": {"annotations": {"kwok.backgroundjobs.dev/duration": "1h"}}}
        nowhere = {"spec": {"nodeSelector": {"probe-cost.backgroundjobs.dev/none": "x"}}}
        for i in range(quick):
            create(f"quick-{i}")
        for i in range(long):
            create(f"long-{i}", podTemplate=running)
        for i in range(stuck):
            create(f"stuck-{i}", podTemplate=nowhere)

        shown: dict[str, datetime] = {}
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            items = custom.list_namespaced_custom_object(c.GROUP, c.VERSION, ns, c.PLURAL)
            for obj in items["items"]:
                name = obj["metadata"]["name"]
                conds = (obj.get("status") or {}).get("conditions") or []
                if name not in shown and any(
                    x["type"] == "Running" and x["reason"] == "Unschedulable" for x in conds
                ):
                    shown[name] = datetime.now(UTC)
            time.sleep(0.5)

        delays = []
        for pod in core.list_namespaced_pod(ns).items:
            name = pod.metadata.labels.get(c.LABEL_NAME, "")
            for cnd in pod.status.conditions or []:
                if cnd.type == "PodScheduled" and cnd.reason == "Unschedulable" and name in shown:
                    since = parse_time(cnd.last_transition_time.isoformat())
                    assert since is not None
                    delays.append((shown[name] - since).total_seconds())

        pod_reads: Counter[str] = Counter()  # by kind of job
        event_reads = 0
        for event in audit.since(mark, None, ns):
            uri = unquote(event.get("requestURI", ""))
            if event.get("verb") != "list":
                continue
            if "/pods?" in uri and "resourceVersion=0" in uri and "job-name=" in uri:
                pod_reads[uri.split("job-name=")[1].split("-")[0]] += 1
            elif "/events?" in uri and "involvedObject.uid" in uri:
                event_reads += 1
        print(f"jobs: {quick} quick, {long} long-running (ready), {stuck} unschedulable;")
        print(f"  watched for {seconds:.0f}s")
        print(
            f"  probe reads: {sum(pod_reads.values())} pod lists ({dict(pod_reads)}),"
            f" {event_reads} FailedCreate Event lists"
        )
        expected = stuck * (1 + int((seconds - 5) // 15))
        print(f"  (at most ~{expected} expected: stuck jobs only, 1 + one per 15 s each)")
        if delays:
            print(
                f"  pod unschedulable -> condition Unschedulable: {len(delays)} of {stuck};"
                f" median {statistics.median(delays):.1f}s, max {max(delays):.1f}s"
                " (pod times have 1 s resolution)"
            )
    finally:
        operator.stop()
        core.delete_namespace(ns)


if __name__ == "__main__":
    counts = [int(a) for a in sys.argv[1:4]]
    main(*counts, *(float(a) for a in sys.argv[4:5]))
