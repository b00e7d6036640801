"""The ``bgjobs`` command line (argparse): commands, flags and their help."""

from __future__ import annotations

import argparse
import os
import sys

from backgroundjobs._version import __version__
from backgroundjobs.api.constants import PHASES
from backgroundjobs.cli._batch import add_batch_flags
from backgroundjobs.cli._queues import add_queue_command
from backgroundjobs.cli._requeue import add_requeue_flags
from backgroundjobs.cli._retry import add_retry_flags
from backgroundjobs.dashboard import add_arguments as add_dashboard_arguments

EXIT_CODES = """\
exit codes:
  0    success
  1    error (API server, connection, unexpected)
  2    usage: bad flags or values
  3    not found: no such job (or run)
  4    invalid: arguments do not fit the handler, or the API server refused the job
  5    conflict: a job of that name exists already
  6    wait: timed out
  7    wait: the job finished in another phase (e.g. Failed)
  130  interrupted (Ctrl-C)
"""

ARGS_HELP = (
    "handler arguments: each is parsed as JSON (42, true, '{\"a\": 1}', '\"42\"'),"
    " else taken as a string (a@b.c)"
)


class _Formatter(argparse.RawDescriptionHelpFormatter):
    def __init__(self, prog: str) -> None:
        super().__init__(prog, max_help_position=30, width=100)


def _connection_flags(parser: argparse.ArgumentParser, *, all_namespaces: bool) -> None:
    # SUPPRESS: a flag given before the command is not reset by the command's own parser.
    group = parser.add_argument_group("cluster flags (as kubectl)")
    group.add_argument("-n", "--namespace", default=argparse.SUPPRESS, help="namespace of the jobs")
    if all_namespaces:
        group.add_argument(
            "-A", "--all-namespaces", action="store_true", default=argparse.SUPPRESS,
            help="jobs of every namespace",
        )  # fmt: skip
    group.add_argument("--context", default=argparse.SUPPRESS, help="kubeconfig context")
    group.add_argument("--kubeconfig", default=argparse.SUPPRESS, help="kubeconfig file")
    group.add_argument(
        "--request-timeout", default=argparse.SUPPRESS, metavar="DURATION",
        help="give up on one API request after this long: 30s, 1m"
        " (default: $BACKGROUNDJOBS_REQUEST_TIMEOUT seconds, else 30s)",
    )  # fmt: skip
    group.add_argument(
        "--as", dest="as_user", default=argparse.SUPPRESS, metavar="USER",
        help="act as this user (impersonation)",
    )  # fmt: skip
    group.add_argument(
        "--as-group", dest="as_groups", action="append", default=argparse.SUPPRESS,
        metavar="GROUP", help="act as a member of this group (impersonation); repeatable",
    )  # fmt: skip


OUTPUT_FORMATS = ("wide", "json", "yaml", "name")


def _output_format(value: str) -> str:
    """``-o`` of get/list: a format name or ``jsonpath=TEMPLATE``."""
    if value in OUTPUT_FORMATS or value.startswith("jsonpath="):
        return value
    raise argparse.ArgumentTypeError(
        f"invalid choice: {value!r} (choose from wide, json, yaml, name, jsonpath=TEMPLATE)"
    )


def _job_flags(parser: argparse.ArgumentParser, *, with_name: bool = True) -> None:
    parser.add_argument("args", nargs="*", metavar="ARG", help=ARGS_HELP)
    group = parser.add_argument_group("job options")
    group.add_argument("--kwargs", metavar="JSON", help="keyword arguments as a JSON object")
    group.add_argument(
        "-k", "--kwarg", action="append", default=[], metavar="KEY=VALUE",
        help="a keyword argument (VALUE parsed like ARG); repeatable",
    )  # fmt: skip
    group.add_argument(
        "--kwarg-from", action="append", default=[], metavar="KEY=SECRET/KEY",
        help="a keyword argument read in the pod from a Secret's key, never stored in the"
        " job (spec.kwargsFrom); repeatable",
    )  # fmt: skip
    group.add_argument(
        "--queue", help="queue name (default: the handler's @handler(queue=...), else default)"
    )
    group.add_argument(
        "--retries", type=int, help="pod failures retried (default: the handler's, else 3)"
    )
    add_retry_flags(group)
    group.add_argument(
        "--concurrency-key", metavar="KEY",
        help="jobs with the same key (user-42) do not run at once (spec.concurrencyKey)",
    )  # fmt: skip
    group.add_argument("--timeout", metavar="DURATION", help="time limit of a run: 30m, 2h")
    group.add_argument(
        "--keep-succeeded", metavar="DURATION",
        help="keep the job this long once it succeeded (0: delete at once)",
    )  # fmt: skip
    group.add_argument(
        "--keep-failed", metavar="DURATION",
        help="keep the job this long once it failed or was cancelled (720h)",
    )  # fmt: skip
    group.add_argument("--image", help="image whose runtime has the handler")
    if with_name:
        group.add_argument("--name", help="the job's name (default: <handler>-<random>)")
    group.add_argument(
        "--label", action="append", default=[], metavar="KEY=VALUE", help="a label; repeatable"
    )
    group.add_argument(
        "--env", action="append", default=[], metavar="KEY=VALUE",
        help="an environment variable of the handler container; repeatable",
    )  # fmt: skip
    group.add_argument(
        "--pod-template", metavar="FILE",
        help="a PodTemplateSpec (YAML or JSON) for the job's pod (spec.podTemplate)",
    )  # fmt: skip
    group.add_argument(
        "-o", "--output", choices=["name", "json", "yaml"],
        help="print the job's name or the created object",
    )  # fmt: skip
    group.add_argument(
        "--dry-run", nargs="?", const="client", default="none", choices=["none", "client"],
        help="client: print the object that would be sent (with -o yaml|json), create nothing",
    )  # fmt: skip


def program_name(argv0: str) -> str:
    """``kubectl bgjobs`` when run as the kubectl plugin (kubectl runs ``kubectl-bgjobs``),
    else ``bgjobs``."""
    return "kubectl bgjobs" if os.path.basename(argv0).startswith("kubectl-") else "bgjobs"


def build_parser(prog: str | None = None) -> argparse.ArgumentParser:
    """The ``bgjobs`` parser (also the ``kubectl bgjobs`` plugin); ``prog`` defaults to the
    name it was run by (``program_name``)."""
    prog = prog or program_name(sys.argv[0])
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Background jobs on Kubernetes: enqueue, schedule, inspect and manage"
        " BackgroundJobs (backgroundjobs.dev/v1alpha1).",
        epilog=EXIT_CODES,
        formatter_class=_Formatter,
    )
    parser.add_argument("--version", action="version", version=f"{prog} {__version__}")
    _connection_flags(parser, all_namespaces=True)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def command(
        name: str, help_text: str, *, all_namespaces: bool = False
    ) -> argparse.ArgumentParser:
        sub = commands.add_parser(
            name,
            help=help_text,
            description=help_text,
            formatter_class=_Formatter,
            epilog=EXIT_CODES,
        )
        _connection_flags(sub, all_namespaces=all_namespaces)
        return sub

    sub = command("enqueue", "run a handler now (fire-and-forget)")
    sub.add_argument(
        "handler", metavar="HANDLER", help="registered name (mail.send) or module:function"
    )
    _job_flags(sub)

    sub = command("batch", "run a handler once per item of a JSON-lines file, as one batch")
    sub.add_argument("handler", metavar="HANDLER")
    _job_flags(sub)
    add_batch_flags(sub)

    sub = command("schedule", "run a handler after a delay or at a time")
    sub.add_argument("handler", metavar="HANDLER")
    _job_flags(sub)
    when = sub.add_mutually_exclusive_group(required=True)
    when.add_argument(
        "--delay", metavar="DURATION", help="due this long after creation: 90s, 1h30m"
    )
    when.add_argument("--at", metavar="TIME", help="due at an RFC 3339 time: 2030-01-02T03:04:05Z")

    recurring = command("recurring", "add, remove or trigger recurring (cron) jobs")
    actions = recurring.add_subparsers(dest="recurring_command", metavar="ACTION", required=True)
    sub = actions.add_parser(
        "add", help="add or update a recurring job (idempotent)", formatter_class=_Formatter
    )
    _connection_flags(sub, all_namespaces=False)
    sub.add_argument("id", metavar="ID", help="the recurring job's stable id (its name)")
    sub.add_argument("handler", metavar="HANDLER")
    _job_flags(sub, with_name=False)
    sub.add_argument("--cron", required=True, metavar="EXPR", help="'0 2 * * *', @hourly, ...")
    sub.add_argument("--tz", default="UTC", metavar="ZONE", help="IANA time zone (default UTC)")
    sub.add_argument(
        "--misfire",
        choices=("Latest", "Skip", "All"),
        help="times missed while the cluster was down: Latest (default) runs the most recent"
        " once, Skip none, All each once",
    )
    sub.add_argument(
        "--max-catch-up",
        type=int,
        metavar="N",
        help="with --misfire All: at most N catch-up runs waiting at once (1-100, default 10)",
    )
    for action, text in (
        ("remove", "delete a recurring job (absent is fine)"),
        ("trigger", "run a recurring job once now"),
    ):
        sub = actions.add_parser(action, help=text, description=text, formatter_class=_Formatter)
        _connection_flags(sub, all_namespaces=False)
        sub.add_argument("id", metavar="ID")

    sub = command("continue", "run a handler when another job finishes (continuation)")
    sub.add_argument(
        "parent", metavar="PARENT", help="the parent job's name (with --group: the HANDLER)"
    )
    sub.add_argument("handler", metavar="HANDLER", nargs="?")
    _job_flags(sub)
    sub.add_argument(
        "--when", choices=["Succeeded", "Failed", "Finished"], default="Succeeded",
        help="the parent's state that starts this job (default Succeeded)",
    )  # fmt: skip
    sub.add_argument(
        "--group", metavar="PREFIX|KEY=VALUE,...",
        help="continue after a group of jobs instead of one parent: an enqueue_many's name"
        " prefix (its backgroundjobs.dev/batch label) or labels every member has; then"
        " the first argument is the HANDLER: bgjobs continue --group notify-x --count 200"
        " report.send",
    )  # fmt: skip
    sub.add_argument(
        "--count", type=int, metavar="N",
        help="with --group: how many jobs the group has (required); the child waits until"
        " that many exist",
    )  # fmt: skip

    for name, text in (
        ("requeue", "run finished jobs again"),
        ("trigger", "start delayed jobs now; recurring jobs: one extra run now"),
        ("cancel", "stop pending or running jobs, keeping their records"),
        ("delete", "delete jobs with their Jobs and pods"),
    ):
        sub = command(name, text)
        sub.add_argument("names", nargs="+", metavar="NAME")
        if name == "requeue":
            add_requeue_flags(sub)

    sub = command("suspend", "pause jobs: not started, no new recurring runs (until --until)")
    sub.add_argument("names", nargs="+", metavar="NAME")
    sub.add_argument(
        "--until", metavar="TIME",
        help="resume then: an RFC 3339 instant (2030-01-02T03:04:05Z) or a duration from now"
        " (90m, 2h); default: until `resume`",
    )  # fmt: skip
    sub = command("resume", "undo suspend now")
    sub.add_argument("names", nargs="+", metavar="NAME")

    for name, text in (("get", "show jobs (all, or the NAMEs)"), ("list", "list jobs")):
        sub = command(name, text, all_namespaces=True)
        if name == "get":
            sub.add_argument("names", nargs="*", metavar="NAME")
        output = sub.add_argument(
            "-o", "--output", type=_output_format, metavar="FORMAT",
            help="wide, json, yaml, name or jsonpath=TEMPLATE (kubectl's JSONPath)",
        )  # fmt: skip
        # the values completion offers (-o takes open values, so it has no choices)
        setattr(output, "suggestions", [*OUTPUT_FORMATS, "jsonpath="])  # noqa: B010
        sub.add_argument(
            "--sort-by", metavar="JSONPATH",
            help="sort by this field: .metadata.creationTimestamp, .status.phase",
        )  # fmt: skip
        sub.add_argument(
            "--no-headers", action="store_true", help="print the table without its header row"
        )
        sub.add_argument("-w", "--watch", action="store_true", help="then stream changes")
        sub.add_argument("-l", "--selector", metavar="SELECTOR", help="label selector: k=v,k2=v2")
        sub.add_argument("--phase", choices=PHASES, help="only jobs in this phase")
        sub.add_argument("--type", choices=["Immediate", "Delayed", "Recurring", "Continuation"])
        sub.add_argument("--queue", help="only jobs of this queue")
        sub.add_argument("--handler", help="only jobs of this handler")

    sub = command("describe", "a job's details and timeline (conditions, Events, Jobs, pods)")
    sub.add_argument("name", metavar="NAME")

    sub = command("logs", "the handler's log of the current run (progress as a bar)")
    sub.add_argument("name", metavar="NAME")
    sub.add_argument("-f", "--follow", action="store_true", help="stream until the run ends")
    sub.add_argument("--run", type=int, metavar="N", help="run N instead of the current one")
    sub.add_argument("--raw", action="store_true", help="print the JSON lines as they are")

    sub = command("wait", "wait until a job finishes (or reaches --for)")
    sub.add_argument("name", metavar="NAME")
    sub.add_argument(
        "--for", dest="for_phase", choices=PHASES, metavar="PHASE", help="a phase to wait for"
    )
    sub.add_argument(
        "--timeout", metavar="DURATION", help="give up after: 60s, 5m (default: never)"
    )

    sub = command("top", "live job counts by phase and queue", all_namespaces=True)
    sub.add_argument("--once", action="store_true", help="print one frame and exit")
    sub.add_argument(
        "--interval", type=float, default=2.0, metavar="SECONDS", help="refresh period (2)"
    )

    sub = command(
        "dashboard", "the web dashboard on 127.0.0.1 (opens a browser)", all_namespaces=True
    )
    add_dashboard_arguments(sub)

    add_queue_command(commands, _connection_flags, _Formatter)

    sub = commands.add_parser(
        "completion",
        help="print the shell completion script (bash or zsh)",
        description="print the shell completion script: source <(bgjobs completion bash)",
        formatter_class=_Formatter,
    )
    sub.add_argument("shell", choices=["bash", "zsh"])

    sub = commands.add_parser("operator", help="run the operator (needs the [operator] extra)")
    sub.add_argument("operator_command", choices=["run"], metavar="run")
    sub.add_argument("operator_args", nargs=argparse.REMAINDER, help="flags of the operator")
    return parser
