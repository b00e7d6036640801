"""The bgjobs command line: parsing, value conventions, usage errors and exit codes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from backgroundjobs import SecretKey, handler
from backgroundjobs.cli import main
from backgroundjobs.cli._parser import build_parser
from backgroundjobs.cli._values import (
    UsageError,
    parse_at,
    parse_kwargs,
    parse_kwargs_from,
    parse_labels,
    parse_seconds,
    parse_value,
)

pytestmark = pytest.mark.unit


@handler("test-cli.greet")
def greet(name: str, times: int = 1) -> None:
    """A handler whose arguments the CLI checks before calling the API."""


@pytest.fixture(autouse=True)
def offline_kubeconfig(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A kubeconfig pointing nowhere: these tests must fail before any request."""
    config = tmp_path / "config"
    config.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: c\n"
        "clusters: [{name: c, cluster: {server: 'https://127.0.0.1:9'}}]\n"
        "users: [{name: u, user: {token: t}}]\n"
        "contexts: [{name: c, context: {cluster: c, user: u, namespace: cli}}]\n"
    )
    monkeypatch.setenv("KUBECONFIG", str(config))


def test_enqueue_flags_and_arguments() -> None:
    args = build_parser().parse_args(
        [
            "-n",
            "shop",
            "enqueue",
            "mail.send",
            "a@b.c",
            "42",
            "--queue",
            "critical",
            "-k",
            "subject=Hi",
            "--kwarg",
            "n=3",
            "--label",
            "team=a",
            "--timeout",
            "30m",
            "--retries",
            "5",
            "--name",
            "w1",
        ]
    )
    assert args.command == "enqueue" and args.handler == "mail.send"
    assert args.args == ["a@b.c", "42"] and args.namespace == "shop"
    assert (args.queue, args.timeout, args.retries, args.name) == ("critical", "30m", 5, "w1")
    assert args.kwarg == ["subject=Hi", "n=3"] and args.label == ["team=a"]


def test_cluster_flags_go_before_or_after_the_command() -> None:
    parser = build_parser()
    before = parser.parse_args(["--context", "kind", "-n", "a", "get"])
    after = parser.parse_args(["get", "--context", "kind", "-n", "a", "-o", "wide"])
    assert (before.context, before.namespace) == (after.context, after.namespace) == ("kind", "a")
    assert parser.parse_args(["list", "-A"]).all_namespaces is True
    assert not hasattr(parser.parse_args(["get"]), "namespace")  # unset: the kubeconfig decides


def test_every_command_of_the_contract_parses() -> None:
    parser = build_parser()
    for argv in (
        ["schedule", "unregistered.echo", "--delay", "90s"],
        ["schedule", "unregistered.echo", "--at", "2030-01-02T03:04:05Z"],
        [
            "recurring",
            "add",
            "cleanup",
            "cleanup.temp_files",
            "--cron",
            "0 2 * * *",
            "--tz",
            "Europe/Berlin",
        ],
        ["recurring", "remove", "cleanup"],
        ["recurring", "trigger", "cleanup"],
        ["continue", "report-1", "mail.send", "a@b.c", "--when", "Finished"],
        ["requeue", "a", "b"],
        ["cancel", "a"],
        ["delete", "a"],
        ["get", "a", "-o", "yaml"],
        ["get", "-w", "--phase", "Failed", "-l", "team=a"],
        ["list", "-o", "name", "--type", "Recurring", "--queue", "low"],
        ["describe", "a"],
        ["logs", "a", "-f", "--run", "2"],
        ["wait", "a", "--for", "Succeeded", "--timeout", "60s"],
        ["top", "--once", "-A"],
        ["operator", "run", "--verbose"],
    ):
        parser.parse_args(argv)


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["enqueue"],
        ["schedule", "unregistered.echo"],
        ["schedule", "unregistered.echo", "--delay", "1s", "--at", "2030-01-01T00:00:00Z"],
        ["recurring", "add", "x", "h"],
        ["continue", "p", "h", "--when", "Later"],
        ["get", "-o", "table"],
        ["wait", "x", "--for", "Done"],
        ["nonsense"],
    ],
)
def test_usage_errors_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    assert "usage:" in capsys.readouterr().err


def test_help_and_version_exit_0(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert "exit codes:" in out and "enqueue" in out and "top" in out
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.startswith("bgjobs ")


def test_bad_values_exit_2_before_any_request(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["enqueue", "unregistered.echo", "--kwargs", "[1]"]) == 2
    assert "--kwargs must be a JSON object" in capsys.readouterr().err
    assert main(["enqueue", "unregistered.echo", "-k", "novalue"]) == 2
    assert "expects key=value" in capsys.readouterr().err
    assert main(["schedule", "unregistered.echo", "--at", "2030-01-01T00:00:00"]) == 2
    assert "no time zone" in capsys.readouterr().err
    assert main(["wait", "x", "--timeout", "soon"]) == 2
    assert "--timeout" in capsys.readouterr().err
    assert main(["get", "a", "-A"]) == 2


def test_invalid_handler_arguments_exit_4_before_any_request(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["enqueue", "test-cli.greet", "Ann", "-k", "times=often"]) == 4
    err = capsys.readouterr().err
    assert "InvalidArguments" in err and "parameter 'times'" in err
    assert main(["enqueue", "test-cli.greet"]) == 4
    assert "missing a required argument: 'name'" in capsys.readouterr().err
    assert main(["enqueue", "unregistered.echo", "--name", "Bad_Name"]) == 4
    assert "name 'Bad_Name' is not valid" in capsys.readouterr().err


def test_unreachable_api_server_exits_1(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["get", "x"]) == 1
    assert "error:" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("42", 42),
        ("4.5", 4.5),
        ("true", True),
        ("null", None),
        ('"42"', "42"),
        ("a@b.c", "a@b.c"),
        ('{"a": [1]}', {"a": [1]}),
        ("[1, 2]", [1, 2]),
        ("hello world", "hello world"),
        ("", ""),
    ],
)
def test_argument_values_are_json_else_strings(text: str, value: object) -> None:
    assert parse_value(text) == value


def test_kwargs_from_json_and_pairs() -> None:
    assert parse_kwargs('{"subject": "Hi"}', ["n=3", "to=a@b.c", "eq=a=b"]) == {
        "subject": "Hi",
        "n": 3,
        "to": "a@b.c",
        "eq": "a=b",
    }
    with pytest.raises(UsageError, match="given twice"):
        parse_kwargs('{"n": 1}', ["n=2"])
    with pytest.raises(UsageError, match="not valid JSON"):
        parse_kwargs("{", [])
    assert parse_labels(["a=1", "b=x=y"]) == {"a": "1", "b": "x=y"}


def test_kwargs_from_secrets() -> None:
    assert parse_kwargs_from(["body=reset-42/body", "pin=reset-42/p.in"], {"to": "a"}) == {
        "body": SecretKey("reset-42", "body"),
        "pin": SecretKey("reset-42", "p.in"),
    }
    with pytest.raises(UsageError, match="given twice"):
        parse_kwargs_from(["to=s/k"], {"to": "a"})
    for bad in ("body=reset-42", "body=/k", "body=s/", "body"):
        with pytest.raises(UsageError, match="--kwarg-from expects"):
            parse_kwargs_from([bad], {})
    args = build_parser().parse_args(
        ["enqueue", "mail.send", "--kwarg-from", "body=s/k", "--kwarg-from", "pin=s/p"]
    )
    assert args.kwarg_from == ["body=s/k", "pin=s/p"]


def test_times_and_durations() -> None:
    assert parse_at("2030-01-02T03:04:05Z") == datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert parse_at("2030-01-02T05:04:05+02:00").utcoffset() == timedelta(hours=2)
    assert parse_at("2030-01-02T05:04:05+02:00") == datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
    with pytest.raises(UsageError, match="RFC 3339"):
        parse_at("tomorrow")
    assert parse_seconds("90", "--timeout") == timedelta(seconds=90)
    assert parse_seconds("1m30s", "--timeout") == timedelta(seconds=90)


# ------------------------------------------------------------------ kubectl conventions


@pytest.mark.parametrize(
    ("argv0", "prog"),
    [
        ("/usr/local/bin/kubectl-bgjobs", "kubectl bgjobs"),
        ("kubectl-bgjobs", "kubectl bgjobs"),
        ("/venv/bin/bgjobs", "bgjobs"),
    ],
)
def test_help_names_the_program_as_it_was_run(
    argv0: str, prog: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("sys.argv", [argv0, "--help"])
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: {prog} ")
    assert main(["get", "--help"]) == 0
    assert capsys.readouterr().out.startswith(f"usage: {prog} get ")


def test_dry_run_client_prints_the_manifest_and_sends_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The kubeconfig points at no server: any request would fail the command (exit 1)."""
    import yaml

    template = tmp_path / "pod.yaml"
    template.write_text(
        "metadata: {labels: {team: a}}\n"
        "spec:\n  containers:\n  - name: handler\n    env: [{name: A, value: old}]\n"
    )
    code = main(
        [
            "enqueue", "test-cli.greet", "ann", "--name", "greet-1", "--dry-run=client",
            "-o", "yaml", "--env", "A=1", "--env", "B=two=2", "--pod-template", str(template),
        ]
    )  # fmt: skip
    captured = capsys.readouterr()
    assert code == 0, captured.err
    manifest = yaml.safe_load(captured.out)
    assert manifest["kind"] == "BackgroundJob"
    assert manifest["metadata"]["name"] == "greet-1"
    assert manifest["metadata"]["namespace"] == "cli"
    spec = manifest["spec"]
    assert spec["handler"] == "test-cli.greet" and spec["args"] == ["ann"]
    assert spec["podTemplate"]["metadata"] == {"labels": {"team": "a"}}
    (container,) = spec["podTemplate"]["spec"]["containers"]
    assert container["env"] == [{"name": "A", "value": "1"}, {"name": "B", "value": "two=2"}]


def test_dry_run_keeps_the_checks(capsys: pytest.CaptureFixture[str]) -> None:
    """A dry run refuses what a real create would: bad handler arguments exit 4."""
    assert main(["enqueue", "test-cli.greet", "--dry-run=client", "-o", "json"]) == 4
    assert "name" in capsys.readouterr().err


def test_dry_run_recurring_add_prints_the_applied_object(
    capsys: pytest.CaptureFixture[str],
) -> None:
    import json

    code = main(
        ["recurring", "add", "nightly", "test-cli.greet", "bob", "--cron", "0 2 * * *",
         "--dry-run", "-o", "json"]
    )  # fmt: skip
    captured = capsys.readouterr()
    assert code == 0, captured.err
    manifest = json.loads(captured.out)
    assert manifest["metadata"]["name"] == "nightly"
    assert manifest["spec"]["schedule"] == "0 2 * * *"


def test_dry_run_without_output_says_so(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["enqueue", "test-cli.greet", "x", "--name", "g", "--dry-run=client"]) == 0
    assert capsys.readouterr().out == "backgroundjob.backgroundjobs.dev/g created (dry run)\n"


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--env", "NOEQUALS"], "--env expects key=value"),
        (["--pod-template", "/nonexistent/pod.yaml"], "--pod-template"),
    ],
)
def test_bad_env_or_pod_template_is_a_usage_error(
    flags: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["enqueue", "test-cli.greet", "x", "--dry-run=client", *flags]) == 2
    assert message in capsys.readouterr().err


# ------------------------------------------------------------------ completion


def completions(*words: str) -> tuple[list[str], int]:
    from backgroundjobs.cli._completion import complete

    candidates, directive = complete(build_parser("bgjobs"), list(words))
    return [c.split("\t", 1)[0] for c in candidates], directive


def test_completion_of_commands_flags_and_choices() -> None:
    assert completions("de") == (["delete", "describe"], 4)
    assert "completion" in completions("")[0]
    assert completions("get", "--no-h") == (["--no-headers"], 4)
    assert completions("-n", "shop", "get", "--phase", "Su") == (["Succeeded", "Suspended"], 4)
    assert completions("recurring", "") == (["add", "remove", "trigger"], 4)
    # a flag's free value: nothing to offer; a file flag: the shell completes file names
    assert completions("enqueue", "h", "--queue", "") == ([], 4)
    assert completions("enqueue", "h", "--pod-template", "") == ([], 0)


def test_kubectl_complete_script_speaks_cobras_protocol(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """kubectl runs ``kubectl_complete-bgjobs ARGS... WORD`` and reads candidates, then
    ``:<directive>``."""
    from backgroundjobs.cli import complete_main

    monkeypatch.setattr("sys.argv", ["kubectl_complete-bgjobs", "get", "-o", ""])
    assert complete_main() == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines == ["wide", "json", "yaml", "name", "jsonpath=", ":4"]


def test_completion_script_completes_in_a_real_shell(tmp_path: Path) -> None:
    """The script of ``bgjobs completion bash`` run by bash: COMPREPLY for ``bgjobs des``."""
    import shutil
    import subprocess
    import sys

    shell = "bash"  # zsh runs the same function through bashcompinit
    runner = shutil.which(shell)
    assert runner is not None
    bgjobs = Path(sys.executable).parent / "bgjobs"
    out = subprocess.run(
        [sys.executable, "-m", "backgroundjobs.cli", "completion", shell],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    script = tmp_path / "completion.sh"
    script.write_text(out)
    check = (
        f"source {script}; COMP_WORDS=({bgjobs} des); COMP_CWORD=1; _bgjobs_complete;"
        ' printf "%s\\n" "${COMPREPLY[@]}"'
    )
    done = subprocess.run(
        [runner, "-c", check], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.stdout.split() == ["describe"], done.stderr


# ------------------------------------------------------------------ per-request flags


class RecordingRest:
    """Stands in for kubernetes_asyncio's RESTClientObject: keeps what a request carried."""

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []

    async def request(self, method: str, url: str, **kwargs: Any) -> str:
        self.sent.append(kwargs)
        return "answer"


class RecordingApi:
    def __init__(self) -> None:
        self.rest_client = RecordingRest()


def test_request_timeout_and_impersonation_reach_every_request() -> None:
    import asyncio

    from backgroundjobs.cli._requests import apply_request_flags

    api = RecordingApi()
    recorder = api.rest_client
    apply_request_flags(api, 7.5, "jane", ["devs", "ops"])
    assert asyncio.run(api.rest_client.request("GET", "u", headers={"Accept": "a"})) == "answer"
    asyncio.run(api.rest_client.request("GET", "u", _request_timeout=300))  # a watch's own
    first, second = recorder.sent
    assert first["_request_timeout"] == 7.5 and second["_request_timeout"] == 300
    assert first["headers"].getall("Impersonate-Group") == ["devs", "ops"]
    assert first["headers"]["Impersonate-User"] == "jane"
    assert first["headers"]["Accept"] == "a"


def test_cluster_flags_parse_like_kubectl() -> None:
    args = build_parser().parse_args(
        ["get", "--request-timeout", "30s", "--as", "jane", "--as-group", "a", "--as-group", "b"]
    )
    assert (args.request_timeout, args.as_user, args.as_groups) == ("30s", "jane", ["a", "b"])
