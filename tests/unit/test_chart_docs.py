"""The chart's README is what helm-docs generates from README.md.gotmpl and values.yaml (so it
lists every value, with its default and its "# --" comment): a stale README fails here until
`make chart` regenerates it."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from tests.unit.test_chart_render import CHART, REPO_ROOT

pytestmark = pytest.mark.unit

README = CHART / "README.md"


def helm_docs_binary() -> str | None:
    cache = Path(os.environ.get("BACKGROUNDJOBS_CACHE", Path.home() / ".cache/backgroundjobs"))
    cached = cache / "bin" / "helm-docs"
    return str(cached) if cached.is_file() else shutil.which("helm-docs")


HELM_DOCS = helm_docs_binary()
needs_helm_docs = pytest.mark.skipif(
    HELM_DOCS is None, reason="helm-docs not built (bash hack/helm-docs.sh)"
)


def generate(chart_root: Path) -> str:
    """helm-docs' README for the charts under ``chart_root``, as `make chart` writes it."""
    out = subprocess.run(
        ["bash", str(REPO_ROOT / "hack" / "helm-docs.sh"), "print", str(chart_root)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    return out.stdout


def leaf_keys(values: object, prefix: str = "") -> set[str]:
    """Dotted keys of values.yaml down to a scalar, a list, or an empty map."""
    if not isinstance(values, dict) or not values:
        return {prefix}
    keys: set[str] = set()
    for key, value in values.items():
        keys |= leaf_keys(value, f"{prefix}.{key}" if prefix else key)
    return keys


@needs_helm_docs
def test_readme_is_up_to_date() -> None:
    assert generate(REPO_ROOT / "charts").strip() == README.read_text().strip(), (
        "charts/backgroundjobs-operator/README.md is stale: run make chart"
    )


@needs_helm_docs
def test_a_changed_value_makes_the_readme_stale(tmp_path: Path) -> None:
    """The check above can fail: a new value changes what helm-docs generates."""
    copy = tmp_path / "charts" / CHART.name
    shutil.copytree(CHART, copy)
    with (copy / "values.yaml").open("a") as values:
        values.write("\n# -- A value added after the README was generated.\nlateValue: 1\n")
    generated = generate(tmp_path / "charts")
    assert "lateValue" in generated and generated.strip() != README.read_text().strip()


def test_every_value_is_documented_in_the_readme() -> None:
    """Each value (a scalar, a list or an empty map; a documented map as a whole) is a row of
    the README's values table, with a description."""
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    rows = dict(re.findall(r"^\| (\S+) \| [^|]+ \| .*? \| (.*?) \|$", README.read_text(), re.M))
    assert rows, "no values table in the README"
    for key in sorted(leaf_keys(values)):
        documented = [r for r in rows if key == r or key.startswith(f"{r}.")]
        assert documented, f"{key} is not in the README's values table"
        assert all(rows[r].strip() for r in documented), f"{key} has no description"
