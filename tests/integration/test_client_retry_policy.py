"""``retry_policy`` from the client and ``--retry-*`` from the CLI: the API server accepts
the policy, the operator runs each attempt as a Job of its own, and ``JobInfo.attempts``
shows them typed."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from tests.integration.bgj import FAIL_EXIT, Jobs, wait_for

from backgroundjobs import RetryPolicy
from backgroundjobs.cli import main
from backgroundjobs.client import Client

pytestmark = pytest.mark.integration

FAILING = {"metadata": {"annotations": {FAIL_EXIT: "1"}}}


def test_enqueue_with_a_retry_policy_runs_its_attempts(
    kubeconfig: str, namespace: str, bgjobs: Jobs
) -> None:
    with Client(kubeconfig=kubeconfig, namespace=namespace) as jobs:
        name = jobs.enqueue(
            "test.echo", "x", name="relay", retries=1, pod_template=FAILING,
            retry_policy=RetryPolicy(initial="2s", factor=3, max="10s", jitter=0.25),
        )  # fmt: skip
        spec = jobs.get(name).raw["spec"]
        assert spec["retryPolicy"] == {
            "backoff": {"initial": "2s", "factor": 3.0, "max": "10s", "jitter": 0.25}
        }
        info = jobs.wait(name, timeout=240)
        assert info.phase == "Failed"
        assert sorted(j.metadata.name for j in bgjobs.jobs(name)) == ["relay-1", "relay-1-a2"]
        assert [(a.attempt, a.job, a.exit_code) for a in info.attempts] == [
            (1, "relay-1", 1), (2, "relay-1-a2", 1),
        ]  # fmt: skip
        assert info.attempts_total == 2


def test_cli_retry_flags_make_the_policy(
    namespace: str, tmp_path: Path, bgjobs: Jobs, capsys: pytest.CaptureFixture[str]
) -> None:
    template = tmp_path / "pod.yaml"
    template.write_text(yaml.safe_dump(FAILING))
    rc = main(
        ["-n", namespace, "enqueue", "test.echo", "--name", "cli-relay", "--retries", "1",
         "--retry-initial", "2s", "--retry-max", "5s", "--pod-template", str(template)]
    )  # fmt: skip
    _, err = capsys.readouterr()
    assert rc == 0, err
    body = bgjobs.get("cli-relay")
    assert body is not None
    assert body["spec"]["retryPolicy"]["backoff"] == {
        "initial": "2s", "factor": 2.0, "max": "5s", "jitter": 0.0,
    }  # fmt: skip
    bgjobs.wait_phase("cli-relay", "Failed", timeout=240)
    wait_for("the second attempt's Job", lambda: bgjobs.job("cli-relay-1-a2"), timeout=30)
    # a policy the API server refuses names the field, and nothing is created
    rc = main(["-n", namespace, "enqueue", "test.echo", "--name", "bad-relay",
               "--retry-initial", "5s", "--retry-max", "2s"])  # fmt: skip
    _, err = capsys.readouterr()
    assert rc == 4 and "retryPolicy.backoff.max must be at least" in err, err
    assert bgjobs.get("bad-relay") is None
