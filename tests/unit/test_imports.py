"""Imports without side effects: each part of the package loads what it needs and no more."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

OPERATOR_SRC = str(Path(__file__).resolve().parents[2] / "operator")


def loaded_after(statement: str) -> set[str]:
    """The modules a fresh interpreter holds after ``statement``."""
    code = f"import sys\n{statement}\nprint('\\n'.join(sys.modules))"
    env = {**os.environ, "PYTHONPATH": OPERATOR_SRC}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    return set(out.stdout.split())


def families(modules: set[str], *names: str) -> set[str]:
    """The modules of ``modules`` that are one of ``names`` or inside one."""
    return {m for m in modules for name in names if m == name or m.startswith(name + ".")}


def test_the_pure_core_and_the_client_load_neither_kopf_nor_the_runtime() -> None:
    loaded = loaded_after("import backgroundjobs.controller.decisions, backgroundjobs.client")
    assert "backgroundjobs.controller.decisions" in loaded
    assert families(loaded, "kopf", "backgroundjobs.runtime") == set()


def test_the_pure_core_loads_no_kubernetes_client() -> None:
    loaded = loaded_after("import backgroundjobs.controller.decisions")
    assert families(loaded, "kubernetes_asyncio", "aiohttp", "prometheus_client") == set()


def test_the_package_face_loads_its_parts_on_first_use() -> None:
    loaded = loaded_after("import backgroundjobs")
    assert (
        families(
            loaded, "kopf", "kubernetes_asyncio", "backgroundjobs.client", "backgroundjobs.runtime"
        )
        == set()
    )
    loaded = loaded_after("from backgroundjobs import progress, Client")
    assert {"backgroundjobs.runtime", "backgroundjobs.client"} <= loaded


def test_the_kopf_handlers_are_registered_only_by_the_entry_points() -> None:
    assert "kopf" not in loaded_after("import backgroundjobs.controller")
    assert "kopf" in loaded_after("import backgroundjobs.controller.handlers")


def test_the_version_is_the_distributions() -> None:
    import tomllib

    from backgroundjobs._version import __version__

    pyproject = Path(OPERATOR_SRC).parent / "pyproject.toml"
    assert tomllib.loads(pyproject.read_text())["project"]["version"] == __version__
