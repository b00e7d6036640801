"""The package's version: the one place Python code reads it from (pyproject.toml, which the
build scripts read, states the same; tests/unit/test_imports.py checks they agree)."""

__version__ = "0.1.0"
