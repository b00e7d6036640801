"""Running a handler, sync or async, so that SIGTERM can cancel it."""

from __future__ import annotations

import asyncio
import contextvars
import inspect
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from backgroundjobs.runtime._context import cancellation


@dataclass
class Outcome:
    """How the handler ended: a result, an exception, or not at all within the grace period."""

    result: Any = None
    error: BaseException | None = None
    finished: bool = True


def is_async(fn: Callable[..., Any]) -> bool:
    return inspect.iscoroutinefunction(fn)


def run_handler(
    fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any], grace: float
) -> Outcome:
    """Run ``fn``; after a cancellation request, wait at most ``grace`` seconds for it to end."""
    if not is_async(fn):
        return _run_sync(fn, args, kwargs, grace)
    runner = asyncio.Runner()
    try:
        outcome = runner.run(_run_async(fn, args, kwargs, grace))
    except (SystemExit, KeyboardInterrupt) as exc:  # the loop re-raises these, not the task
        outcome = Outcome(error=exc)
    if outcome.finished:
        # Closing cancels and awaits the tasks left behind; a handler that swallowed its
        # cancellation would make that wait forever, so then the loop is left as it is.
        runner.close()
    return outcome


def _run_sync(
    fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any], grace: float
) -> Outcome:
    outcome = Outcome(finished=False)
    wake = threading.Event()

    def work() -> None:
        try:
            result = fn(*args, **kwargs)
            if inspect.isawaitable(result):
                result = asyncio.run(_await(result))
            outcome.result = result
        except BaseException as exc:  # the runner reports every way a handler can end
            outcome.error = exc
        finally:
            outcome.finished = True
            wake.set()

    # A daemon thread, so a handler that ignores cancellation cannot keep the process alive;
    # the main thread stays free to receive SIGTERM.
    context = contextvars.copy_context()
    worker = threading.Thread(target=context.run, args=(work,), name="handler", daemon=True)
    cancellation.subscribe(wake.set)
    try:
        worker.start()
        wake.wait()
        if not outcome.finished:  # woken by a cancellation request
            worker.join(grace)
    finally:
        cancellation.unsubscribe(wake.set)
    return outcome


async def _await(awaitable: Any) -> Any:
    return await awaitable


async def _run_async(
    fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any], grace: float
) -> Outcome:
    loop = asyncio.get_running_loop()
    task: asyncio.Task[Any] = asyncio.ensure_future(fn(*args, **kwargs))
    requested = asyncio.Event()

    def on_cancel() -> None:
        task.cancel("cancelled by " + (cancellation.signal_name or "signal"))
        requested.set()

    def on_cancel_threadsafe() -> None:
        loop.call_soon_threadsafe(on_cancel)

    cancellation.subscribe(on_cancel_threadsafe)
    waiter = asyncio.ensure_future(requested.wait())
    try:
        await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
        if not task.done():
            await asyncio.wait({task}, timeout=grace)
    finally:
        cancellation.unsubscribe(on_cancel_threadsafe)
        waiter.cancel()
    if not task.done():
        # The handler swallowed the cancellation: the caller exits without waiting for it.
        return Outcome(finished=False)
    if task.cancelled():
        try:
            task.result()
        except asyncio.CancelledError as exc:
            return Outcome(error=exc)
    error = task.exception()
    if error is not None:
        return Outcome(error=error)
    return Outcome(result=task.result())
