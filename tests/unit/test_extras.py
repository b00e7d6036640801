"""Without the [client] extra, the client and the CLI say what to install (no traceback)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.unit

# Makes the [client] extra's modules unimportable, as in an install without it (only the
# core's pydantic), then runs the rest of the program.
WITHOUT_CLIENT_EXTRA = textwrap.dedent(
    """
    import sys
    for name in ("kubernetes_asyncio", "aiohttp", "yaml"):
        sys.modules[name] = None  # import raises ImportError
    """
)


def run_without_extra(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", WITHOUT_CLIENT_EXTRA + textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_bgjobs_names_the_extra_to_install() -> None:
    # what the bgjobs console script does: import the entry point, call it
    out = run_without_extra(
        """
        from backgroundjobs.cli import main
        sys.exit(main(["get"]))
        """
    )
    assert out.returncode == 1, out.stderr
    assert "Traceback" not in out.stderr
    assert "pip install 'backgroundjobs[client]'" in out.stderr
    assert "missing: kubernetes_asyncio, aiohttp, yaml" in out.stderr


def test_python_dash_m_cli_names_the_extra_too() -> None:
    out = run_without_extra(
        """
        import runpy
        sys.argv = ["bgjobs", "get"]
        runpy.run_module("backgroundjobs.cli", run_name="__main__")
        """
    )
    assert out.returncode == 1, out.stderr
    assert "Traceback" not in out.stderr
    assert "pip install 'backgroundjobs[client]'" in out.stderr


@pytest.mark.parametrize(
    "statement",
    ["from backgroundjobs.client import Client", "from backgroundjobs import AsyncClient"],
)
def test_importing_the_client_names_the_extra(statement: str) -> None:
    out = run_without_extra(
        f"""
        from backgroundjobs._extras import MissingExtra
        try:
            {statement}
        except MissingExtra as exc:
            print(exc)
            sys.exit(3)
        """
    )
    assert out.returncode == 3, out.stdout + out.stderr
    assert "needs the [client] extra" in out.stdout
    assert "pip install 'backgroundjobs[client]'" in out.stdout


def test_the_core_works_without_the_extra() -> None:
    """A job image's runtime and @handler need only the core."""
    out = run_without_extra(
        """
        from backgroundjobs import Cron, handler, PermanentError
        import backgroundjobs.runtime
        print(Cron.daily(2))
        """
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "0 2 * * *"
