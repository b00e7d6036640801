"""The bgjobs CLI against the local cluster and the running operator: the main flows, output
formats and exit codes, in-process (``main([...])``) and as the installed scripts."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from backgroundjobs.cli import main
from backgroundjobs.client import Client

pytestmark = pytest.mark.integration

BIN = Path(sys.executable).parent
RESOURCE = "backgroundjob.backgroundjobs.dev"
RUN_LONG = {"metadata": {"annotations": {"kwok.backgroundjobs.dev/duration": "120s"}}}
FAIL_AT_ONCE = {"metadata": {"annotations": {"kwok.backgroundjobs.dev/exit-code": "2"}}}


class Cli:
    """Runs ``bgjobs -n <namespace> ...`` in-process and captures its output."""

    def __init__(self, namespace: str, capsys: pytest.CaptureFixture[str]) -> None:
        self.namespace = namespace
        self.capsys = capsys

    def __call__(self, *argv: str, code: int = 0) -> str:
        self.capsys.readouterr()
        rc = main(["-n", self.namespace, *argv])
        out, err = self.capsys.readouterr()
        assert rc == code, (
            f"bgjobs {' '.join(argv)} exited {rc}, wanted {code}\nstdout: {out}\nstderr: {err}"
        )
        self.err = err
        return out

    def name_of(self, created: str) -> str:
        line = created.strip()
        assert line.startswith(f"{RESOURCE}/"), line
        return line.split()[0].split("/", 1)[1]

    def job(self, name: str) -> dict[str, Any]:
        return dict(json.loads(self("get", name, "-o", "json")))


@pytest.fixture
def cli(
    kubeconfig: str, namespace: str, operator: object, capsys: pytest.CaptureFixture[str]
) -> Cli:
    return Cli(namespace, capsys)


def test_enqueue_wait_get_describe(cli: Cli) -> None:
    out = cli(
        "enqueue",
        "mail.send",
        "new.user@example.com",
        "-k",
        "subject=Welcome",
        "--kwargs",
        '{"body": "<h1>Hi</h1>", "html": true}',
        "--label",
        "team=growth",
        "--queue",
        "critical",
    )
    name = cli.name_of(out)
    assert out.strip() == f"{RESOURCE}/{name} created"
    assert cli("wait", name, "--timeout", "90s").strip() == f"{RESOURCE}/{name} Succeeded"
    obj = cli.job(name)
    assert obj["spec"]["args"] == ["new.user@example.com"]
    assert obj["spec"]["kwargs"] == {"subject": "Welcome", "body": "<h1>Hi</h1>", "html": True}
    assert obj["spec"]["queue"] == "critical" and obj["metadata"]["labels"]["team"] == "growth"
    table = cli("get")
    header, row = table.splitlines()
    assert header.split() == ["NAME", "TYPE", "HANDLER", "PHASE", "DUE", "PROGRESS", "AGE"]
    assert row.split()[:4] == [name, "Immediate", "mail.send", "Succeeded"]
    assert all(len(line) <= 80 for line in table.splitlines())
    wide = cli("list", "-o", "wide")
    assert wide.splitlines()[0].split()[7:] == ["QUEUE", "JOB", "RUNS", "MESSAGE"]
    assert f"{name}-1" in wide and "critical" in wide
    assert cli("get", "-o", "name").strip() == f"{RESOURCE}/{name}"
    assert yaml.safe_load(cli("get", name, "-o", "yaml"))["metadata"]["name"] == name
    assert yaml.safe_load(cli("list", "-o", "yaml"))["kind"] == "List"
    assert cli("get", "--phase", "Failed") == "" and "No resources found" in cli.err
    described = cli("describe", name)
    assert f"Name:       {name}" in described and "Phase:      Succeeded" in described
    timeline = described.split("Timeline:")[1]
    for step in ("bgjob", "Created", "run 1", "pod", "Exited: exit code 0", "Succeeded=True"):
        assert step in timeline, step


def test_schedule_and_reschedule_by_trigger(cli: Cli) -> None:
    name = cli.name_of(
        cli(
            "schedule",
            "mail.send",
            "u@example.com",
            "-k",
            "subject=Reminder",
            "-k",
            "body=...",
            "--delay",
            "1h",
            "--name",
            "reminder",
        )
    )
    assert name == "reminder"
    cli("wait", name, "--for", "Scheduled", "--timeout", "30s")
    row = cli("get", name).splitlines()[1].split()
    assert row[1:4] == ["Delayed", "mail.send", "Scheduled"] and row[4] == "in"  # "in 59m"
    cli("wait", name, "--timeout", "1s", code=6)
    assert "did not reach" in cli.err
    assert cli("logs", name, code=3) == "" and "no run yet" in cli.err
    at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 2))
    later = cli.name_of(cli("schedule", "test.echo", "--at", at))
    assert cli.job(later)["spec"]["runAt"] == at
    assert cli("trigger", name).strip() == f"{RESOURCE}/{name} triggered"  # Delayed: start now
    cli("wait", name, "--timeout", "90s")
    cli("wait", later, "--timeout", "90s")


def test_recurring_add_update_trigger_remove(cli: Cli) -> None:
    out = cli(
        "recurring",
        "add",
        "cleanup-temp-files",
        "cleanup.temp_files",
        "--cron",
        "0 2 * * *",
        "-k",
        "older_than_hours=24",
    )
    assert out.strip() == f"{RESOURCE}/cleanup-temp-files configured"
    uid = cli.job("cleanup-temp-files")["metadata"]["uid"]
    cli(
        "recurring",
        "add",
        "cleanup-temp-files",
        "cleanup.temp_files",
        "--cron",
        "@hourly",
        "--tz",
        "Europe/Berlin",
    )
    obj = cli.job("cleanup-temp-files")
    assert obj["metadata"]["uid"] == uid
    assert obj["spec"]["schedule"] == "@hourly" and obj["spec"]["timeZone"] == "Europe/Berlin"
    assert "kwargs" not in obj["spec"]  # add-or-update: what is not given any more is gone
    assert (
        cli("recurring", "trigger", "cleanup-temp-files").strip()
        == f"{RESOURCE}/cleanup-temp-files triggered"
    )
    deadline = time.monotonic() + 90
    while not (cli.job("cleanup-temp-files").get("status") or {}).get("lastSuccessAt"):
        assert time.monotonic() < deadline, "the triggered run did not succeed"
        time.sleep(0.5)
    assert "deleted" in cli("recurring", "remove", "cleanup-temp-files")
    assert "not found (nothing to remove)" in cli("recurring", "remove", "cleanup-temp-files")


def test_continuation_requeue_cancel_delete(cli: Cli) -> None:
    parent = cli.name_of(cli("enqueue", "report.generate", "7", "-o", "name"))
    child = cli.name_of(
        cli(
            "continue",
            parent,
            "mail.send",
            "u7@example.com",
            "-k",
            "subject=Ready",
            "-k",
            "body=see link",
            "--when",
            "Succeeded",
        )
    )
    cli("wait", child, "--timeout", "120s")
    assert cli.job(child)["spec"]["after"] == {"name": parent, "when": "Succeeded"}
    cli("requeue", parent)
    deadline = time.monotonic() + 90
    while (cli.job(parent).get("status") or {}).get("runs") != 2:
        assert time.monotonic() < deadline, "the requeue made no second run"
        time.sleep(0.5)
    with Client(namespace=cli.namespace) as jobs:  # the CLI has no flag for kwok's pod outcome
        long = jobs.enqueue("test.echo", name="long-one", pod_template=RUN_LONG)
    assert cli("cancel", long).strip() == f"{RESOURCE}/long-one cancelled"
    cli("wait", long, "--for", "Cancelled", "--timeout", "60s")
    assert cli("delete", parent, child, "missing-one", code=3).count("deleted") == 2
    assert 'backgroundjob "missing-one" not found' in cli.err
    cli("get", parent, code=3)


def test_wait_for_a_failed_job_exits_7(cli: Cli, namespace: str) -> None:
    with Client(namespace=namespace) as jobs:
        name = jobs.enqueue("test.echo", pod_template=FAIL_AT_ONCE)
    cli("wait", name, "--timeout", "90s", code=7)
    assert "Failed" in cli.err


def test_errors_and_exit_codes(cli: Cli) -> None:
    cli("get", "no-such-job", code=3)
    assert 'backgroundjob "no-such-job" not found' in cli.err
    cli("describe", "no-such-job", code=3)
    cli("enqueue", "test.echo", "--timeout", "0s", code=4)
    assert "spec.timeout" in cli.err and "InvalidSpec" in cli.err
    cli("enqueue", "test.echo", "--queue", "Bad_Queue", code=4)
    assert "spec.queue" in cli.err
    cli("schedule", "test.echo", "--delay", "soon", code=4)
    assert "spec.delay" in cli.err
    cli("enqueue", "test.echo", "--name", "taken")
    cli("enqueue", "test.echo", "--name", "taken", code=5)
    assert "already exists" in cli.err
    cli("recurring", "add", "taken", "test.echo", "--cron", "@daily", code=4)
    assert "job type cannot change" in cli.err


def test_top_once(cli: Cli) -> None:
    for queue in ("critical", "low", "low"):
        cli("enqueue", "test.echo", "--queue", queue)
    frame = cli("top", "--once")
    assert f"namespace {cli.namespace}: 3 jobs" in frame
    header = frame.splitlines()[2].split()
    assert header == ["PHASE", "CRITICAL", "LOW", "TOTAL"]
    assert frame.splitlines()[-1].split() == ["TOTAL", "1", "2", "3"]
    assert "all namespaces" in cli("top", "--once", "-A")


def _env(kubeconfig: str) -> dict[str, str]:
    return {
        **os.environ,
        "KUBECONFIG": kubeconfig,
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
    }


def test_installed_scripts_and_kubectl_plugin(
    kubeconfig: str, namespace: str, operator: object
) -> None:
    env = _env(kubeconfig)
    created = subprocess.run(
        [str(BIN / "bgjobs"), "-n", namespace, "enqueue", "test.echo", "hello", "-o", "name"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    name = created.stdout.strip().split("/", 1)[1]
    kubectl = shutil.which("kubectl", path=env["PATH"])
    if kubectl is None:
        pytest.skip("kubectl is not installed")
    listed = subprocess.run(
        [kubectl, "bgjobs", "get", "-n", namespace, "-o", "name"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.strip() == f"{RESOURCE}/{name}"
    helped = subprocess.run(
        [kubectl, "bgjobs", "--help"], env=env, capture_output=True, text=True, timeout=60
    )
    assert helped.stdout.startswith("usage: kubectl bgjobs "), helped.stdout[:200]
    # --dry-run=client prints what the API server accepts as it is, and creates nothing
    manifest = subprocess.run(
        [kubectl, "bgjobs", "-n", namespace, "enqueue", "test.echo", "--name", "dry",
         "--env", "A=1", "--dry-run=client", "-o", "yaml"],
        env=env, capture_output=True, text=True, timeout=60, check=True,
    ).stdout  # fmt: skip
    accepted = subprocess.run(
        [kubectl, "create", "--dry-run=server", "-o", "name", "-f", "-"],
        input=manifest, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert accepted.returncode == 0, accepted.stderr
    assert accepted.stdout.strip() == f"{RESOURCE}/dry"
    absent = subprocess.run(
        [kubectl, "get", "bgj", "dry", "-n", namespace, "--ignore-not-found", "-o", "name"],
        env=env, capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    assert absent.stdout == ""
    missing = subprocess.run(
        [str(BIN / "bgjobs"), "-n", namespace, "get", "nope"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert missing.returncode == 3 and "not found" in missing.stderr and missing.stdout == ""


def test_get_watch_streams_rows(kubeconfig: str, namespace: str, operator: object) -> None:
    env = {**_env(kubeconfig), "PYTHONUNBUFFERED": "1"}
    watcher = subprocess.Popen(
        [str(BIN / "bgjobs"), "-n", namespace, "get", "-w"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert watcher.stdout is not None
        assert watcher.stdout.readline().split() == [
            "NAME",
            "TYPE",
            "HANDLER",
            "PHASE",
            "DUE",
            "PROGRESS",
            "AGE",
        ]
        subprocess.run(
            [str(BIN / "bgjobs"), "-n", namespace, "enqueue", "test.echo", "--name", "watched"],
            env=env,
            check=True,
            capture_output=True,
            timeout=60,
        )
        phases = []
        deadline = time.monotonic() + 90
        while "Succeeded" not in phases:
            assert time.monotonic() < deadline, f"no Succeeded row; saw {phases}"
            line = watcher.stdout.readline()
            assert line, watcher.stderr.read() if watcher.stderr else "watch ended"
            cells = line.split()
            assert cells[0] == "watched" and len(line.rstrip("\n")) <= 80
            if len(cells) > 3 and cells[3] in ("Pending", "Running", "Succeeded"):
                phases.append(cells[3])
        assert "Running" in phases
    finally:
        watcher.terminate()
        watcher.wait(10)


def test_impersonation_and_request_timeout_flags(
    kubeconfig: str, namespace: str, operator: object
) -> None:
    """--as/--as-group reach the API server as impersonation headers (a user with no rights
    is refused; the same user in system:masters is not); --request-timeout bounds a request."""
    env = _env(kubeconfig)

    def bgjobs(*flags: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(BIN / "bgjobs"), "-n", namespace, "get", *flags],
            env=env, capture_output=True, text=True, timeout=120,
        )  # fmt: skip

    refused = bgjobs("--as", "nobody")
    assert refused.returncode == 1, refused.stderr
    assert "not allowed (403" in refused.stderr and '"nobody"' in refused.stderr
    allowed = bgjobs("--as", "nobody", "--as-group", "system:authenticated",
                     "--as-group", "system:masters")  # fmt: skip
    assert allowed.returncode == 0, allowed.stderr
    assert bgjobs("--request-timeout", "60s").returncode == 0
    timed_out = bgjobs("--request-timeout", "0.000001")
    assert timed_out.returncode != 0 and "Traceback" not in timed_out.stderr, timed_out.stderr


def test_get_jsonpath_sort_by_no_headers_and_field_filters(cli: Cli) -> None:
    cli("enqueue", "test.echo", "--name", "zz-done", "--queue", "low")
    cli("wait", "zz-done", "--timeout", "90s")
    cli("schedule", "test.echo", "--name", "aa-later", "--delay", "1h", "--queue", "low")
    cli("schedule", "test.other", "--name", "mm-mail", "--delay", "1h")

    names = cli("get", "--sort-by", ".metadata.name", "-o", "jsonpath={.items[*].metadata.name}")
    assert names == "aa-later mm-mail zz-done"
    rows = cli(
        "get", "--queue", "low", "--sort-by", "{.metadata.creationTimestamp}",
        "-o", 'jsonpath={range .items[*]}{.metadata.name}={.spec.queue}{"\\n"}{end}',
    )  # fmt: skip
    assert rows == "zz-done=low\naa-later=low\n"
    assert cli("get", "zz-done", "-o", "jsonpath={.status.phase}") == "Succeeded"
    table = cli("get", "--handler", "test.other", "--no-headers")
    assert table.split()[0] == "mm-mail" and "NAME" not in table
    assert cli("get", "--phase", "Succeeded", "-o", "name") == f"{RESOURCE}/zz-done\n"
    cli("get", "-o", "jsonpath={.items[*", code=2)
