"""``Client``: the synchronous facade, generated from ``AsyncClient`` (the kr8s pattern).

One daemon thread runs an event loop shared by every ``Client``; each sync method submits
the matching ``AsyncClient`` coroutine to it and blocks for the result (async iterators
become plain iterators). The loop's thread does not survive ``fork()`` (gunicorn
``--preload``, Celery prefork, ``multiprocessing``): a forked child gets its own loop and
thread and its clients open new connections on first use. The methods are derived from
``AsyncClient``'s, so signatures, docstrings and the set of methods cannot drift: a method
missing from the class body below is still generated at import time, and a unit test fails
so its type gets declared too.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import functools
import inspect
import os
import threading
import weakref
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from typing import Any, Concatenate, ParamSpec, TypeVar

from backgroundjobs.client._async import AsyncClient

P = ParamSpec("P")
T = TypeVar("T")


class _Portal:
    """An event loop in a daemon thread, running coroutines for synchronous callers."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.clients: weakref.WeakSet[AsyncClient] = weakref.WeakSet()
        self._thread = threading.Thread(
            target=self._run, name="backgroundjobs-client-loop", daemon=True
        )
        self._thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` on the loop and wait for its result (Ctrl-C cancels it)."""
        if threading.current_thread() is self._thread:
            coro.close()
            raise RuntimeError(
                "a Client method was called from its own event loop (e.g. in an on_progress"
                " callback); use AsyncClient there"
            )
        future = asyncio.run_coroutine_threadsafe(coro, self.loop)
        try:
            return future.result()
        except BaseException:
            future.cancel()
            raise

    def iterate(self, iterator: AsyncIterator[T]) -> Iterator[T]:
        """Pull the async iterator's items one by one from the loop."""
        try:
            while True:
                try:
                    yield self.run(_anext(iterator))
                except StopAsyncIteration:
                    return
        finally:
            close = getattr(iterator, "aclose", None)
            if close is not None and self.loop.is_running():
                self.run(close())

    def shutdown(self) -> None:
        """Close the clients still open, then stop the loop (at interpreter exit)."""
        for client in list(self.clients):
            with contextlib.suppress(Exception):  # exiting anyway
                self.run(client.close())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=5)


async def _anext(iterator: AsyncIterator[T]) -> T:
    return await iterator.__anext__()


_portal: _Portal | None = None
_portal_lock = threading.Lock()
# What a forked child inherited from its parent's portal: kept, never used, never collected
# (collecting a session closes sockets the parent still uses).
_inherited: list[object] = []


def _get_portal() -> _Portal:
    global _portal
    with _portal_lock:
        if _portal is None:
            _portal = _Portal()
            atexit.register(_portal.shutdown)
        return _portal


def _after_fork_in_child() -> None:
    """A forked child has no loop thread: the next call starts a portal of its own, and the
    clients made before the fork open new connections on it."""
    global _portal, _portal_lock
    _portal_lock = threading.Lock()  # another thread may have held it at the fork
    inherited, _portal = _portal, None
    if inherited is None:
        return
    _inherited.append(inherited)
    with contextlib.suppress(Exception):  # the parent's exit handler, not the child's
        atexit.unregister(inherited.shutdown)
    for client in list(inherited.clients):
        _inherited.append(client._forget_connections())


if hasattr(os, "register_at_fork"):  # POSIX
    os.register_at_fork(after_in_child=_after_fork_in_child)


def _sync(
    method: Callable[Concatenate[AsyncClient, P], Coroutine[Any, Any, T]],
) -> Callable[Concatenate[Client, P], T]:
    """The blocking version of an ``AsyncClient`` coroutine method."""
    name = method.__name__

    @functools.wraps(method)
    def blocking(self: Client, /, *args: P.args, **kwargs: P.kwargs) -> T:
        portal = self._portal
        coro: Coroutine[Any, Any, T] = getattr(self._async, name)(*args, **kwargs)
        return portal.run(coro)

    return blocking


def _sync_iter(
    method: Callable[Concatenate[AsyncClient, P], AsyncIterator[T]],
) -> Callable[Concatenate[Client, P], Iterator[T]]:
    """The iterator version of an ``AsyncClient`` async-generator method."""
    name = method.__name__

    @functools.wraps(method)
    def iterating(self: Client, /, *args: P.args, **kwargs: P.kwargs) -> Iterator[T]:
        portal = self._portal
        iterator: AsyncIterator[T] = getattr(self._async, name)(*args, **kwargs)
        return portal.iterate(iterator)

    return iterating


class Client:
    """Create and manage BackgroundJobs from ordinary (blocking) code.

    The same methods as ``AsyncClient``, as plain functions::

        jobs = Client(namespace="shop")
        name = jobs.enqueue(send_mail, "a@b.c", subject="Welcome", body="...")
        info = jobs.wait(name, timeout=60)

    Use it as a context manager, or call ``close()``. Safe to share between threads.
    """

    def __init__(
        self,
        *,
        kubeconfig: str | os.PathLike[str] | None = None,
        context: str | None = None,
        namespace: str | None = None,
        request_timeout: float | None = None,
    ) -> None:
        self._async = AsyncClient(
            kubeconfig=kubeconfig,
            context=context,
            namespace=namespace,
            request_timeout=request_timeout,
        )
        _get_portal().clients.add(self._async)

    @property
    def _portal(self) -> _Portal:
        """The process's portal (a forked child's own), with this client registered on it."""
        portal = _get_portal()
        portal.clients.add(self._async)
        return portal

    @property
    def namespace(self) -> str:
        """The namespace used when a method is not given ``namespace=``."""
        return self._async.namespace

    @property
    def async_client(self) -> AsyncClient:
        """The ``AsyncClient`` this facade drives (its coroutines run on the client's loop)."""
        return self._async

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Client(namespace={self.namespace!r})"

    enqueue = _sync(AsyncClient.enqueue)
    schedule = _sync(AsyncClient.schedule)
    continue_with = _sync(AsyncClient.continue_with)
    continue_batch_with = _sync(AsyncClient.continue_batch_with)
    add_or_update_recurring = _sync(AsyncClient.add_or_update_recurring)
    remove_recurring = _sync(AsyncClient.remove_recurring)
    enqueue_many = _sync(AsyncClient.enqueue_many)
    enqueue_batch = _sync(AsyncClient.enqueue_batch)
    trigger = _sync(AsyncClient.trigger)
    requeue = _sync(AsyncClient.requeue)
    cancel = _sync(AsyncClient.cancel)
    suspend = _sync(AsyncClient.suspend)
    resume = _sync(AsyncClient.resume)
    delete = _sync(AsyncClient.delete)
    get = _sync(AsyncClient.get)
    list = _sync(AsyncClient.list)
    wait = _sync(AsyncClient.wait)
    events = _sync(AsyncClient.events)
    runs = _sync(AsyncClient.runs)
    pods = _sync(AsyncClient.pods)
    close = _sync(AsyncClient.close)
    watch = _sync_iter(AsyncClient.watch)
    logs = _sync_iter(AsyncClient.logs)


def public_async_methods() -> dict[str, Callable[..., Any]]:
    """AsyncClient's public coroutine and async-generator methods, by name."""
    return {
        name: member
        for name, member in vars(AsyncClient).items()
        if not name.startswith("_")
        and (inspect.iscoroutinefunction(member) or inspect.isasyncgenfunction(member))
    }


def _generate_missing() -> None:
    for name, member in public_async_methods().items():
        if name not in vars(Client):
            wrap = _sync_iter if inspect.isasyncgenfunction(member) else _sync
            method = wrap(member)
            setattr(method, "__backgroundjobs_generated__", True)  # noqa: B010 - a marker for tests
            setattr(Client, name, method)


_generate_missing()
