"""The dashboard's command-line flags (argparse only: the ``bgjobs`` parser imports this
without the web server's dependencies)."""

from __future__ import annotations

import argparse

AUTH_MODES = ("token", "proxy", "none")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The dashboard's own flags (the cluster flags -n/-A/--context/--kubeconfig are the
    caller's)."""
    group = parser.add_argument_group("dashboard")
    group.add_argument(
        "--address", default="127.0.0.1", help="address to listen on (default 127.0.0.1)"
    )
    group.add_argument(
        "--port", type=int, default=0, help="port to listen on (default: a free one)"
    )
    group.add_argument(
        "--no-browser", action="store_true", help="print the URL, do not open a browser"
    )
    group.add_argument(
        "--read-only", action="store_true", help="no actions (trigger, requeue, cancel, ...)"
    )
    group.add_argument(
        "--prometheus", metavar="URL",
        help="draw the 24 h graph from this Prometheus (default: from the watch)",
    )  # fmt: skip
    group.add_argument(
        "--auth", choices=AUTH_MODES, default="token",
        help="token: a random token in the URL (default); proxy: an authenticating proxy in"
        " front names the user in --user-header; none: anyone who reaches it (needs --read-only)",
    )  # fmt: skip
    group.add_argument(
        "--impersonate", action="store_true",
        help="with --auth proxy: do actions as the proxy's user (Impersonate-User/-Group)",
    )  # fmt: skip
    group.add_argument("--user-header", default="X-Forwarded-User", help=argparse.SUPPRESS)
    group.add_argument("--groups-header", default="X-Forwarded-Groups", help=argparse.SUPPRESS)
    group.add_argument(
        "--health-port", type=int, metavar="PORT",
        help="also serve /healthz (synced) and /livez on this port of every address (probes)",
    )  # fmt: skip
    group.add_argument(
        "--in-cluster", action="store_true",
        help="use the pod's ServiceAccount instead of a kubeconfig",
    )  # fmt: skip
