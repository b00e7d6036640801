"""Where the client connects: kubeconfig (``--kubeconfig``, ``$KUBECONFIG``, ``~/.kube/config``),
else the in-cluster service account; and the default namespace that goes with it."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kubernetes_asyncio import client as k8s
from kubernetes_asyncio import config as k8s_config

from backgroundjobs.errors import BackgroundJobsError

SERVICE_ACCOUNT_NAMESPACE_FILE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
DEFAULT_NAMESPACE = "default"
# enqueue_many runs up to this many requests at once over one connection pool.
CONNECTION_POOL_SIZE = 64


@dataclass(frozen=True)
class ConnectionSource:
    """A kubeconfig (path, possibly ``:``-separated, and context) or the in-cluster config."""

    kubeconfig: str | None
    context: str | None

    @property
    def in_cluster(self) -> bool:
        """True when no kubeconfig was found and the pod's service account is used."""
        return self.kubeconfig is None


def find_source(kubeconfig: str | os.PathLike[str] | None, context: str | None) -> ConnectionSource:
    """The kubeconfig to use: the argument, else ``$KUBECONFIG``, else ``~/.kube/config``
    when it exists; else the in-cluster config (``ConnectionSource(None, None)``)."""
    if kubeconfig is not None:
        return ConnectionSource(os.fspath(kubeconfig), context)
    env = os.environ.get("KUBECONFIG", "")
    paths = [p for p in env.split(os.pathsep) if p]
    if any(Path(p).expanduser().exists() for p in paths):
        return ConnectionSource(env, context)
    default = Path.home() / ".kube" / "config"
    if default.exists():
        return ConnectionSource(str(default), context)
    if "KUBERNETES_SERVICE_HOST" in os.environ:
        return ConnectionSource(None, None)
    if context is not None:
        raise BackgroundJobsError(
            f"context {context!r} requested but no kubeconfig found: pass kubeconfig=..., set"
            " KUBECONFIG or create ~/.kube/config"
        )
    return ConnectionSource(None, None)


def default_namespace(source: ConnectionSource) -> str:
    """The namespace of the kubeconfig context, else the pod's namespace, else ``default``."""
    if source.kubeconfig is not None:
        try:
            contexts, current = k8s_config.list_kube_config_contexts(source.kubeconfig)
        except Exception:  # an unreadable kubeconfig is reported when connecting
            return DEFAULT_NAMESPACE
        chosen: Any = current
        if source.context is not None:
            chosen = next((c for c in contexts if c.get("name") == source.context), None)
        if chosen:
            namespace = (chosen.get("context") or {}).get("namespace")
            if isinstance(namespace, str) and namespace:
                return namespace
        return DEFAULT_NAMESPACE
    try:
        namespace = SERVICE_ACCOUNT_NAMESPACE_FILE.read_text().strip()
    except OSError:
        return DEFAULT_NAMESPACE
    return namespace or DEFAULT_NAMESPACE


async def new_api_client(source: ConnectionSource) -> k8s.ApiClient:
    """An ApiClient for the source, with a connection pool sized for bulk enqueues."""
    configuration = type.__call__(k8s.Configuration)
    try:
        if source.kubeconfig is not None:
            await k8s_config.load_kube_config(
                config_file=source.kubeconfig,
                context=source.context,
                client_configuration=configuration,
                persist_config=False,
            )
        else:
            k8s_config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
    except k8s_config.ConfigException as exc:
        where = source.kubeconfig or "the in-cluster service account"
        raise BackgroundJobsError(
            f"cannot load the Kubernetes configuration from {where}: {exc}. Pass kubeconfig=...,"
            " set KUBECONFIG, or run in a pod with a service account"
        ) from exc
    configuration.connection_pool_maxsize = CONNECTION_POOL_SIZE
    return k8s.ApiClient(configuration=configuration)
