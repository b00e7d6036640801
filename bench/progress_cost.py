"""What progress in status costs, and how soon it shows (API.md "progress").

    BGJ_CLUSTER=NAME bash hack/cluster.sh up
    BGJ_CLUSTER=NAME python -m bench.progress_cost [running] [seconds] [max_reads]

Runs the operator (a subprocess of this checkout, BACKGROUNDJOBS_PROGRESS_INTERVAL=5 and
BACKGROUNDJOBS_PROGRESS_MAX_READS=``max_reads``) on the kwok cluster ``$BGJ_CLUSTER`` with
``running`` jobs whose pods run for the whole measurement, writes one progress record per
job into the simulated handler log (hack/cluster.sh: every fake pod logs that file), and
records when each job's status.progress shows it. Then it counts, in the API server's audit
log over ``seconds``, the operator's running-pod lists, pod log reads and status patches.
Expected: one list and min(running, max_reads) log reads every 5 s, one patch per job per
change.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import unquote

from kubernetes import client, config
from tests.integration.harness import OperatorProcess, apply_crd

from backgroundjobs.api import constants as c
from bench.audit import AuditLog

REPO = Path(__file__).resolve().parent.parent
INTERVAL = 5.0


def main(running: int = 20, seconds: float = 60, max_reads: int = 100) -> None:
    kubeconfig = subprocess.run(
        ["bash", str(REPO / "hack" / "cluster.sh"), "kubeconfig"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    pod_log = Path(kubeconfig).parent / "logs" / "handler.log"
    audit = AuditLog(Path(kubeconfig).parent / "logs" / "audit.log")
    api = config.new_client_from_config(config_file=kubeconfig)
    core, custom = client.CoreV1Api(api), client.CustomObjectsApi(api)
    apply_crd(api)
    ns = f"progress-cost-{uuid.uuid4().hex[:6]}"
    core.create_namespace({"metadata": {"name": ns}})
    settings = {
        "BACKGROUNDJOBS_PROGRESS_INTERVAL": str(INTERVAL),
        "BACKGROUNDJOBS_PROGRESS_MAX_READS": str(max_reads),
        "BACKGROUNDJOBS_NAMESPACES": ns,
    }
    operator = OperatorProcess(kubeconfig, Path(tempfile.mkdtemp()), settings, namespaces=[ns])
    operator.start()
    try:
        names = [f"long-{i}" for i in range(running)]
        template = {"metadata": {"annotations": {"kwok.backgroundjobs.dev/duration": "1h"}}}
        for name in names:
            body = {
                "apiVersion": c.API_VERSION,
                "kind": c.KIND,
                "metadata": {"name": name},
                "spec": {"handler": "test.echo", "podTemplate": template},
            }
            custom.create_namespaced_custom_object(c.GROUP, c.VERSION, ns, c.PLURAL, body)

        def phases() -> Counter[str]:
            items = custom.list_namespaced_custom_object(c.GROUP, c.VERSION, ns, c.PLURAL)
            return Counter((o.get("status") or {}).get("phase") for o in items["items"])

        while phases()["Running"] < running:
            time.sleep(0.5)
        mark = audit.mark()
        written = datetime.now(UTC)
        with pod_log.open("a") as f:
            stamp = written.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            for name in names:
                record = {"event": "progress", "job": name, "namespace": ns, "done": 1, "total": 2}
                f.write(f"{stamp} stdout F {json.dumps(record)}\n")

        shown: dict[str, float] = {}
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            items = custom.list_namespaced_custom_object(c.GROUP, c.VERSION, ns, c.PLURAL)
            for obj in items["items"]:
                name = obj["metadata"]["name"]
                if name not in shown and (obj.get("status") or {}).get("progress"):
                    shown[name] = (datetime.now(UTC) - written).total_seconds()
            time.sleep(0.25)

        calls: Counter[str] = Counter()
        for event in audit.since(mark, None, ns):
            uri = unquote(event.get("requestURI", ""))
            ref = event.get("objectRef") or {}
            if ref.get("subresource") == "log":
                calls["pods/log get"] += 1
            elif event.get("verb") == "list" and "status.phase=Running" in uri:
                calls["running pod list"] += 1
            elif ref.get("subresource") == "status" and event.get("verb") == "patch":
                calls["status patch"] += 1
        rounds = seconds / INTERVAL
        print(f"{running} running jobs, max {max_reads} log reads a round, {seconds:.0f}s")
        print(f"  requests: {dict(calls)} (~{rounds:.0f} rounds of {INTERVAL:g}s)")
        print(
            f"  per round: {calls['pods/log get'] / rounds:.1f} log reads,"
            f" {calls['running pod list'] / rounds:.1f} lists"
        )
        if shown:
            delays = sorted(shown.values())
            print(
                f"  record written -> status.progress: {len(delays)} of {running};"
                f" median {statistics.median(delays):.1f}s, max {max(delays):.1f}s"
            )
    finally:
        operator.stop()
        core.delete_namespace(ns)


if __name__ == "__main__":
    arguments = sys.argv[1:]
    main(
        int(arguments[0]) if arguments else 20,
        float(arguments[1]) if len(arguments) > 1 else 60,
        int(arguments[2]) if len(arguments) > 2 else 100,
    )
