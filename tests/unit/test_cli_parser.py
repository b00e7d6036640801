"""The bgjobs command line: parsing, value conventions, usage errors and exit codes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

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
