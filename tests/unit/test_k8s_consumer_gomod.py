"""hack/k8s_consumer_gomod.py: the consumer go.mod that builds k8s.io/kubernetes commands."""

from __future__ import annotations

import pytest
from hack import k8s_consumer_gomod as gomod

pytestmark = pytest.mark.unit

# Shaped like k8s.io/kubernetes' go.mod: requires, then a replace block pointing every staging
# module at ./staging/, plus a replacement that is not a staging one.
SAMPLE = """\
// This is a generated file. Do not edit directly.

module k8s.io/kubernetes

go 1.26.0

godebug default=go1.26

require (
\tgithub.com/spf13/cobra v1.10.0
\tk8s.io/api v0.0.0
\tk8s.io/client-go v0.0.0
)

replace (
\tk8s.io/api => ./staging/src/k8s.io/api
\tk8s.io/client-go => ./staging/src/k8s.io/client-go
\tk8s.io/cri-api => ./staging/src/k8s.io/cri-api
\tgithub.com/example/fork => github.com/example/fork v1.2.3
)

replace k8s.io/kms => ./staging/src/k8s.io/kms
"""


def test_staging_modules_are_exactly_the_staging_replacements() -> None:
    assert gomod.staging_modules(SAMPLE) == [
        "k8s.io/api",
        "k8s.io/client-go",
        "k8s.io/cri-api",
        "k8s.io/kms",
    ]


def test_go_directive_is_copied() -> None:
    assert gomod.go_directive(SAMPLE) == "1.26.0"


def test_consumer_gomod_requires_and_pins_every_staging_module() -> None:
    text = gomod.consumer_gomod(SAMPLE, "v1.36.3", "v0.36.3")

    assert text.startswith("module local/kubernetes-build\n\ngo 1.26.0\n")
    assert "\tk8s.io/kubernetes v1.36.3\n" in text
    for mod in ("k8s.io/api", "k8s.io/client-go", "k8s.io/cri-api", "k8s.io/kms"):
        assert f"\t{mod} v0.36.3\n" in text
        assert f"\t{mod} => {mod} v0.36.3\n" in text
    assert "./staging" not in text
    assert "github.com/example/fork" not in text


def test_a_go_mod_without_staging_replacements_is_refused() -> None:
    with pytest.raises(ValueError, match="staging"):
        gomod.consumer_gomod("module example.com/x\n\ngo 1.22\n", "v1.36.3", "v0.36.3")


def test_main_writes_the_go_mod(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:  # type: ignore[no-untyped-def]
    src = tmp_path / "go.mod"
    src.write_text(SAMPLE, encoding="utf-8")

    assert gomod.main([str(src), "v1.36.3", "v0.36.3"]) == 0
    assert capsys.readouterr().out == gomod.consumer_gomod(SAMPLE, "v1.36.3", "v0.36.3")
