"""The web dashboard: ``bgjobs dashboard`` on 127.0.0.1 with the user's kubeconfig, or
in-cluster from the chart (``python -m backgroundjobs.dashboard``).

One watch of the BackgroundJobs feeds a cache of compact rows (``_store``); the pages read
from it through a small JSON API (``_server``, aiohttp) and get changes as server-sent
events. The front end is plain HTML, CSS and JavaScript in ``static/``: nothing is fetched
from the internet at run time.
"""

from __future__ import annotations

import argparse

from backgroundjobs.dashboard._flags import add_arguments


def run(args: argparse.Namespace) -> int:
    """Run the dashboard for parsed ``bgjobs dashboard`` flags; returns the exit code."""
    from backgroundjobs.dashboard._cli import run as run_dashboard

    return run_dashboard(args)


__all__ = ["add_arguments", "run"]
