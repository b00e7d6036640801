"""``python -m backgroundjobs.runtime``: run the job in the env, report it, exit with its code."""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Mapping
from types import FrameType
from typing import Any

import pydantic_core

from backgroundjobs._arguments import bind_arguments
from backgroundjobs._registry import registered_handlers, resolve
from backgroundjobs.api.constants import ENV_HANDLER_MODULES, MAX_RESULT_BYTES
from backgroundjobs.errors import InvalidArguments, PermanentError
from backgroundjobs.runtime import _logging, _secrets
from backgroundjobs.runtime._context import cancellation, set_current_job
from backgroundjobs.runtime._env import (
    ENV_LOG_LEVEL,
    InvalidJobEnv,
    cancel_grace,
    handler_modules,
    job_from_env,
    termination_log_path,
)
from backgroundjobs.runtime._runner import Outcome, run_handler

EXIT_SUCCEEDED = 0
EXIT_FAILED = 1
EXIT_PERMANENT = 2
# 128 + the signal number, as a shell reports it: 143 after SIGTERM (130 after SIGINT).
EXIT_CANCELLED = 128 + signal.SIGTERM

_MAX_ERROR_CHARS = 1024
log = logging.getLogger(_logging.RUNTIME_LOGGER)


class _Failure(Exception):
    """A failure before the handler runs (setup), with the exit code it maps to."""

    def __init__(self, message: str, error_type: str, exit_code: int = EXIT_PERMANENT) -> None:
        super().__init__(message)
        self.error_type = error_type
        self.exit_code = exit_code


def main(environ: Mapping[str, str] | None = None) -> int:
    """Run the job described by ``environ`` (default ``os.environ``); return the exit code."""
    env = os.environ if environ is None else environ
    _logging.configure(env.get(ENV_LOG_LEVEL, "INFO"))
    _install_signal_handlers()
    termination_log = termination_log_path(env)
    try:
        job = job_from_env(env)
    except InvalidJobEnv as exc:
        return _fail(termination_log, str(exc), "InvalidJobEnv", EXIT_PERMANENT)
    _secrets.redact_secrets(job.secret_kwargs.values())
    set_current_job(job)
    _logging.set_job(job)
    try:
        fn = _find_handler(job.handler, handler_modules(env))
        args, kwargs = bind_arguments(
            fn, job.handler, job.args, {**job.kwargs, **job.secret_kwargs}
        )
        grace = cancel_grace(env)
    except _Failure as exc:
        return _fail(termination_log, str(exc), exc.error_type, exc.exit_code)
    except (InvalidArguments, InvalidJobEnv) as exc:
        return _fail(termination_log, str(exc), type(exc).__name__, EXIT_PERMANENT)
    if cancellation.is_set():
        return _cancelled(termination_log, time.monotonic())

    log.info("handler started", extra={"event": "started", "parent": job.parent})
    started = time.monotonic()
    outcome = run_handler(fn, args, kwargs, grace)
    return _report(termination_log, outcome, started)


def _find_handler(name: str, modules: list[str]) -> Callable[..., Any]:
    for module in modules:
        try:
            importlib.import_module(module)
        except Exception as exc:
            raise _Failure(
                f"cannot import handler module {module!r} (from {ENV_HANDLER_MODULES}): "
                f"{type(exc).__name__}: {exc}",
                "HandlerImportError",
            ) from exc
    if ":" in name and name not in registered_handlers():
        module = name.partition(":")[0]
        try:
            importlib.import_module(module)
        except Exception as exc:
            raise _Failure(
                f"cannot import module {module!r} of handler {name!r}: {type(exc).__name__}: {exc}",
                "HandlerImportError",
            ) from exc
    fn = resolve(name)
    if fn is None:
        known = ", ".join(sorted(registered_handlers())) or "none"
        where = ", ".join(modules) if modules else f"no modules ({ENV_HANDLER_MODULES} is empty)"
        raise _Failure(
            f"unknown handler {name!r}: not registered by {where}, and not a module:function "
            f"path; registered handlers: {known}",
            "UnknownHandler",
        )
    return fn


def _report(termination_log: str, outcome: Outcome, started: float) -> int:
    duration = round(time.monotonic() - started, 3)
    if not outcome.finished:
        code = _cancelled(termination_log, started, still_running=True)
        # The handler ignored the cancellation: do not wait for its thread or task.
        _flush_streams()
        os._exit(code)
    if cancellation.is_set():
        return _cancelled(termination_log, started)
    error = outcome.error
    if error is None:
        try:
            payload = pydantic_core.to_json(outcome.result)
        except pydantic_core.PydanticSerializationError as exc:
            return _fail(
                termination_log,
                f"the handler's result is not JSON-serialisable: {exc}",
                "ResultNotSerialisable",
                EXIT_FAILED,
                duration=duration,
            )
        if len(payload) > MAX_RESULT_BYTES:
            return _fail(
                termination_log,
                f"the handler's result is too large: {len(payload)} bytes of JSON, the limit is "
                f"{MAX_RESULT_BYTES} bytes (the pod's termination message); return a reference "
                f"(a path, a URL, an id) to large data instead",
                "ResultTooLarge",
                EXIT_FAILED,
                duration=duration,
            )
        _write_termination_log(termination_log, _secrets.redactor.json_bytes(payload))
        log.info(
            "handler succeeded in %.3fs",
            duration,
            extra={"event": "succeeded", "duration": duration, "result": outcome.result},
        )
        return EXIT_SUCCEEDED
    if isinstance(error, SystemExit):
        code = error.code if isinstance(error.code, int) else (0 if error.code is None else 1)
        if code == EXIT_SUCCEEDED:
            _write_termination_log(termination_log, b"null")
            log.info(
                "handler exited with code 0", extra={"event": "succeeded", "duration": duration}
            )
            return EXIT_SUCCEEDED
        return _fail(
            termination_log,
            f"the handler exited with code {code}",
            "SystemExit",
            code,
            duration=duration,
        )
    permanent = isinstance(error, PermanentError | InvalidArguments)
    return _fail(
        termination_log,
        str(error) or type(error).__name__,
        type(error).__name__,
        EXIT_PERMANENT if permanent else EXIT_FAILED,
        exc=error,
        duration=duration,
    )


def _cancelled(termination_log: str, started: float, still_running: bool = False) -> int:
    signal_name = cancellation.signal_name or "SIGTERM"
    code = 128 + (cancellation.signal_number or signal.SIGTERM)
    message = f"cancelled by {signal_name}"
    if still_running:
        message += " (the handler did not stop within the grace period)"
    return _fail(
        termination_log,
        message,
        "Cancelled",
        code,
        event="cancelled",
        duration=round(time.monotonic() - started, 3),
    )


def _fail(
    termination_log: str,
    message: str,
    error_type: str,
    code: int,
    *,
    exc: BaseException | None = None,
    event: str = "failed",
    duration: float | None = None,
) -> int:
    message = _secrets.redactor.text(message)
    if len(message) > _MAX_ERROR_CHARS:
        message = message[: _MAX_ERROR_CHARS - 3] + "..."
    extra: dict[str, Any] = {"event": event, "error_type": error_type, "exit_code": code}
    if duration is not None:
        extra["duration"] = duration
    exc_info = (type(exc), exc, exc.__traceback__) if exc is not None else None
    level = logging.WARNING if event == "cancelled" else logging.ERROR
    log.log(level, "%s: %s", error_type, message, exc_info=exc_info, extra=extra)
    record = {"error": message, "type": error_type, "exitCode": code}
    _write_termination_log(termination_log, pydantic_core.to_json(record))
    return code


def _write_termination_log(path: str, payload: bytes) -> None:
    try:
        with open(path, "wb") as f:
            f.write(payload)
    except OSError as exc:
        log.warning(
            "cannot write the termination log %s: %s (set BACKGROUNDJOBS_TERMINATION_LOG to a "
            "writable path outside Kubernetes)",
            path,
            exc,
            extra={"event": "termination_log_unwritable"},
        )


def _install_signal_handlers() -> None:
    if threading.current_thread() is not threading.main_thread():
        return

    def on_signal(signum: int, frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        if not cancellation.is_set():
            log.warning("%s received: cancelling the handler", name, extra={"event": "cancelling"})
        cancellation.request(name, signum)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)


def _flush_streams() -> None:
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
