"""``bgjobs dashboard`` and ``python -m backgroundjobs.dashboard``: flags, start, stop."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import webbrowser
from typing import TextIO

from aiohttp import web

from backgroundjobs.client import AsyncClient
from backgroundjobs.dashboard._flags import add_arguments
from backgroundjobs.dashboard._kube import Kube, load_api_client
from backgroundjobs.dashboard._server import Dashboard, Settings
from backgroundjobs.errors import BackgroundJobsError

EXIT_ERROR = 1
EXIT_USAGE = 2


def settings_from(args: argparse.Namespace, default_namespace: str) -> Settings:
    """The settings for parsed flags; ``default_namespace`` unless -n or -A."""
    all_namespaces = bool(getattr(args, "all_namespaces", False))
    return Settings(
        namespace=None
        if all_namespaces
        else (getattr(args, "namespace", None) or default_namespace),
        kubeconfig=getattr(args, "kubeconfig", None),
        context=getattr(args, "context", None),
        in_cluster=args.in_cluster,
        address=args.address,
        port=args.port,
        auth=args.auth,
        read_only=args.read_only,
        impersonate=args.impersonate,
        user_header=args.user_header,
        groups_header=args.groups_header,
        prometheus_url=args.prometheus,
    )


async def serve(args: argparse.Namespace, out: TextIO) -> None:
    """Run the dashboard until cancelled (Ctrl-C)."""
    client = AsyncClient(
        kubeconfig=None if args.in_cluster else getattr(args, "kubeconfig", None),
        context=None if args.in_cluster else getattr(args, "context", None),
        namespace=getattr(args, "namespace", None),
    )
    settings = settings_from(args, client.namespace)
    settings.check()
    kube = Kube(await load_api_client(settings.kubeconfig, settings.context, settings.in_cluster))
    dashboard = Dashboard(settings, kube, client)
    await dashboard.start()
    runner = web.AppRunner(dashboard.app(), access_log=None)
    await runner.setup()
    health = web.AppRunner(dashboard.health_app(), access_log=None)
    await health.setup()
    try:
        site = web.TCPSite(runner, settings.address, settings.port)
        await site.start()
        if args.health_port is not None:
            await web.TCPSite(health, None, args.health_port).start()
        host, port = runner.addresses[0][:2]
        shown_host = f"[{host}]" if ":" in host else host
        url = f"http://{shown_host}:{port}/"
        if settings.auth == "token":
            url += f"?token={settings.token}"
        scope = f"namespace {settings.namespace}" if settings.namespace else "all namespaces"
        print(f"Dashboard of {scope}: {url}", file=out, flush=True)
        print("Press Ctrl-C to stop.", file=out, flush=True)
        if not args.no_browser:
            await asyncio.get_running_loop().run_in_executor(None, webbrowser.open, url)
        await asyncio.Event().wait()
    finally:
        await health.cleanup()
        await runner.cleanup()
        await dashboard.stop()


def run(args: argparse.Namespace) -> int:
    """Run the dashboard for parsed ``bgjobs dashboard`` flags; returns the exit code."""
    # Actions (who did what) and watch failures go to stderr.
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    try:
        asyncio.run(serve(args, sys.stdout))
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except (BackgroundJobsError, OSError) as exc:  # no kubeconfig, the port is taken, ...
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        return 0
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The parser of ``python -m backgroundjobs.dashboard`` (the chart's container)."""
    parser = argparse.ArgumentParser(
        prog="python -m backgroundjobs.dashboard",
        description="The backgroundjobs web dashboard.",
    )
    parser.add_argument("-n", "--namespace", help="namespace of the jobs")
    parser.add_argument(
        "-A", "--all-namespaces", action="store_true", help="jobs of every namespace"
    )
    parser.add_argument("--context", help="kubeconfig context")
    parser.add_argument("--kubeconfig", help="kubeconfig file")
    add_arguments(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    """``python -m backgroundjobs.dashboard``."""
    return run(build_parser().parse_args(argv))
