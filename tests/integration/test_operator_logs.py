"""With ``BACKGROUNDJOBS_LOG_FORMAT=json`` (the chart's default) every line the operator
writes is one JSON object of the runtime's record shape, whatever its messages hold."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from kubernetes import client
from tests.integration.bgj import FAIL_EXIT, MESSAGE, Jobs, manifest
from tests.integration.harness import OperatorProcess

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("session_operator_paused")]

# The harness's own marker between runs in operator.log, not the operator's output.
HARNESS_HEADER = "===== operator start"


def test_every_line_of_the_json_log_is_a_json_record(
    kubeconfig: str, api_client: client.ApiClient, namespace: str, crd: dict, tmp_path: Path
) -> None:
    op = OperatorProcess(
        kubeconfig,
        tmp_path,
        {"BACKGROUNDJOBS_LOG_FORMAT": "json"},
        namespaces=[namespace],
    )
    op.start()
    try:
        jobs = Jobs(api_client, namespace)
        jobs.create(manifest("fine"))
        message = 'handler said "no": {"code": 7}\nsecond line \\ end'
        jobs.create(manifest("broken", pod_annotations={FAIL_EXIT: "2", MESSAGE: message}))
        jobs.wait_phase("fine", "Succeeded")
        jobs.wait_phase("broken", "Failed")
    finally:
        op.stop()  # the shutdown's lines too

    lines = [
        line
        for line in op.log_path.read_text().splitlines()
        if line and not line.startswith(HARNESS_HEADER)
    ]
    assert len(lines) >= 3, lines  # kopf's start, the leader line, the shutdown
    shape = {"time", "level", "logger", "message", "job", "namespace", "run", "handler"}
    for line in lines:
        record = json.loads(line)  # fails naming the line that is not JSON
        assert isinstance(record, dict), line
        assert shape <= set(record), line
        assert record["level"] in ("debug", "info", "warning", "error", "critical"), line
    assert any(r["logger"].startswith("kopf") for r in map(json.loads, lines))
