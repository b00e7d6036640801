"""``python -m backgroundjobs.controller``: run the operator with the BACKGROUNDJOBS_* settings."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys

from backgroundjobs.controller import settings as config


def run(argv: list[str] | None = None) -> int:
    """Run the operator until interrupted; flags override the environment."""
    parser = argparse.ArgumentParser(prog="bgjobs operator run", description=run.__doc__)
    parser.add_argument("-n", "--namespace", action="append", default=[], help="watch only these")
    parser.add_argument("-A", "--all-namespaces", action="store_true", help="watch all namespaces")
    parser.add_argument(
        "--liveness", default="http://0.0.0.0:8081/healthz", help="kopf health endpoint"
    )
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args(argv)
    try:
        cfg = config.load()
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2

    import kopf

    import backgroundjobs.controller.handlers  # noqa: F401  (registers the handlers)
    from backgroundjobs.controller import logs

    logs.configure(cfg.log_format, logging.DEBUG if args.verbose else logging.INFO)
    namespaces = args.namespace or ([] if args.all_namespaces else list(cfg.namespaces))
    # The control loop reads its settings from the environment: it lists (queue warm-up,
    # resync) where kopf watches, not the whole cluster a namespaced identity may not list.
    os.environ["BACKGROUNDJOBS_NAMESPACES"] = ",".join(namespaces)
    settings = kopf.OperatorSettings()
    # Watching only listed namespaces needs no cluster-wide list/watch of Namespaces and
    # CRDs (kopf's scanning), so the namespaced RBAC stays namespaced. Globs (team-*) need it.
    settings.scanning.disabled = bool(namespaces) and not any(
        set(ns) & set("*?[]!") for ns in namespaces
    )
    asyncio.run(
        kopf.operator(
            standalone=True,
            clusterwide=not namespaces,
            namespaces=namespaces,
            liveness_endpoint=args.liveness or None,
            settings=settings,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(run())
