"""Where the operator and the client connect, and the API client they connect with.

A kubeconfig (``kubeconfig=``, ``$KUBECONFIG``, ``~/.kube/config``) or the pod's service
account; the default namespace that goes with it. The client prefers a kubeconfig, as kubectl
does. The operator prefers the service account when it runs in a pod, as kopf's login does:
kopf's watches and the operator's own requests must reach the same cluster.

kubernetes_asyncio is imported where it is used: ``settings`` (which the pure decisions read)
takes the pod's namespace from here without loading the client library.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from backgroundjobs.errors import BackgroundJobsError

if TYPE_CHECKING:
    from kubernetes_asyncio import client as k8s

SERVICE_ACCOUNT_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")
DEFAULT_NAMESPACE = "default"
# Requests in flight over one connection pool: enqueue_many's, or the operator's workers,
# status writers and Event posters together.
CONNECTION_POOL_SIZE = 64
# Every request of the operator, the client and the CLI gives up after this many seconds
# without progress (connecting, or waiting for the next bytes of the answer): a black-holed
# connection otherwise hangs the caller for ever (kubernetes_asyncio sets no timeout).
# Streams (watches, followed logs) are bounded while connecting only: silence is normal there.
DEFAULT_REQUEST_TIMEOUT = 30.0
ENV_REQUEST_TIMEOUT = "BACKGROUNDJOBS_REQUEST_TIMEOUT"
_PROXY_ENV = ("http_proxy", "https_proxy", "all_proxy", "ws_proxy", "wss_proxy", "netrc")


@dataclass(frozen=True)
class ConnectionSource:
    """A kubeconfig (path, possibly ``:``-separated, and context) or the in-cluster config."""

    kubeconfig: str | None
    context: str | None

    @property
    def in_cluster(self) -> bool:
        """True when no kubeconfig was found and the pod's service account is used."""
        return self.kubeconfig is None


def in_a_pod() -> bool:
    """True when the pod's service account can be used (its env and token are there)."""
    return "KUBERNETES_SERVICE_HOST" in os.environ and (SERVICE_ACCOUNT_DIR / "token").exists()


def find_source(
    kubeconfig: str | os.PathLike[str] | None = None,
    context: str | None = None,
    *,
    in_cluster_first: bool = False,
) -> ConnectionSource:
    """The kubeconfig to use: the argument, else ``$KUBECONFIG``, else ``~/.kube/config``
    when it exists; else the in-cluster config (``ConnectionSource(None, None)``).

    ``in_cluster_first`` (the operator): the service account whenever it runs in a pod."""
    if kubeconfig is not None:
        return ConnectionSource(os.fspath(kubeconfig), context)
    if in_cluster_first and in_a_pod():
        return ConnectionSource(None, None)
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


def service_account_namespace() -> str | None:
    """The namespace of the pod this process runs in (None outside a pod)."""
    try:
        return (SERVICE_ACCOUNT_DIR / "namespace").read_text().strip() or None
    except OSError:
        return None


def default_namespace(source: ConnectionSource) -> str:
    """The namespace of the kubeconfig context, else the pod's namespace, else ``default``."""
    if source.kubeconfig is not None:
        from kubernetes_asyncio import config as k8s_config

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
    return service_account_namespace() or DEFAULT_NAMESPACE


def status_message(exc: Exception) -> str:
    """The ``message`` of the API server's Status object in an ``ApiException``, else the
    HTTP reason."""
    body: Any = getattr(exc, "body", None)
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    if isinstance(body, str) and body:
        try:
            status = json.loads(body)
        except ValueError:
            return body.strip()
        if isinstance(status, dict) and status.get("message"):
            return str(status["message"])
    return str(getattr(exc, "reason", None) or f"HTTP {getattr(exc, 'status', '?')}")


def _status_of(exc: Exception) -> dict[str, Any]:
    body: Any = getattr(exc, "body", None)
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    try:
        status = json.loads(body) if isinstance(body, str) and body else None
    except ValueError:
        return {}
    return status if isinstance(status, dict) else {}


def namespace_terminating(exc: Exception) -> bool:
    """Whether the API server refused a create because its namespace is being deleted (403,
    a ``NamespaceTerminating`` cause): nothing can be made there any more, and what is there
    goes with the namespace."""
    if getattr(exc, "status", None) != 403:
        return False
    causes = (_status_of(exc).get("details") or {}).get("causes") or []
    # (a StatusCause's type is serialized as "reason")
    return any(isinstance(c, dict) and c.get("reason") == "NamespaceTerminating" for c in causes)


def request_timeout(seconds: float | None = None) -> float:
    """The request timeout: ``seconds``, else $BACKGROUNDJOBS_REQUEST_TIMEOUT, else 30 s."""
    if seconds is None:
        text = os.environ.get(ENV_REQUEST_TIMEOUT, "")
        try:
            seconds = float(text) if text else DEFAULT_REQUEST_TIMEOUT
        except ValueError:
            raise BackgroundJobsError(
                f"{ENV_REQUEST_TIMEOUT}={text!r} is not a number of seconds"
            ) from None
    if not seconds > 0:
        raise BackgroundJobsError(f"the request timeout must be positive seconds, not {seconds}")
    return seconds


async def new_api_client(
    source: ConnectionSource, request_seconds: float | None = None
) -> k8s.ApiClient:
    """An ApiClient for the source, with a connection pool of ``CONNECTION_POOL_SIZE``, whose
    requests time out after ``request_timeout(request_seconds)`` seconds unless a call says
    otherwise (``_request_timeout``)."""
    from kubernetes_asyncio import client as k8s
    from kubernetes_asyncio import config as k8s_config

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
    api = k8s.ApiClient(configuration=configuration)
    _skip_env_lookups(api)
    _bound_requests(api, request_timeout(request_seconds))
    return api


def _bound_requests(api: k8s.ApiClient, seconds: float) -> None:
    """Give every request of ``api`` that names no ``_request_timeout`` one of ``seconds``."""
    import aiohttp

    rest = api.rest_client
    request = rest.request
    bounded_connect = aiohttp.ClientTimeout(connect=seconds, sock_connect=seconds)
    bounded = aiohttp.ClientTimeout(connect=seconds, sock_connect=seconds, sock_read=seconds)

    async def request_with_timeout(*args: Any, **kwargs: Any) -> Any:
        if kwargs.get("_request_timeout") is None:
            query = dict(kwargs.get("query_params") or ())
            streams = bool(query.get("watch")) or bool(query.get("follow"))
            kwargs["_request_timeout"] = bounded_connect if streams else bounded
        return await request(*args, **kwargs)

    rest.request = request_with_timeout  # type: ignore[method-assign]


def _skip_env_lookups(api: k8s.ApiClient) -> None:
    """Turn off aiohttp's per-request proxy and netrc lookups when there is nothing to find.

    kubernetes_asyncio opens its session with ``trust_env=True``, so aiohttp looks up proxy
    variables and reads ~/.netrc in a worker thread on every request: two thread hops per
    API call (bench/profiles/). Without any proxy variable or netrc file the lookups always
    come back empty, so skipping them changes nothing but the cost.
    """
    if any(key.lower() in _PROXY_ENV for key in os.environ) or os.path.exists(
        os.path.expanduser("~/.netrc")
    ):
        return
    session = getattr(getattr(api, "rest_client", None), "pool_manager", None)
    if session is not None and hasattr(session, "_trust_env"):
        session._trust_env = False
