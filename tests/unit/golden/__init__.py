"""Golden files: expected output kept next to this module, compared byte for byte.

Regenerate after an intended change with ``UPDATE_GOLDEN=1 pytest -m unit tests/unit`` and
review the diff.
"""

from __future__ import annotations

import os
from pathlib import Path

GOLDEN_DIR = Path(__file__).resolve().parent


def assert_golden(name: str, actual: str) -> None:
    """Compare ``actual`` with ``golden/<name>``; with UPDATE_GOLDEN=1, rewrite it instead."""
    path = GOLDEN_DIR / name
    if os.environ.get("UPDATE_GOLDEN") == "1":
        path.write_text(actual, encoding="utf-8")
        return
    assert path.exists(), f"golden file {path} is missing; create it with UPDATE_GOLDEN=1"
    expected = path.read_text(encoding="utf-8")
    assert actual == expected, (
        f"output differs from golden/{name} (UPDATE_GOLDEN=1 rewrites it):\n"
        f"--- expected\n{expected}\n--- actual\n{actual}"
    )
