"""Print a consumer go.mod for building k8s.io/kubernetes commands from the module proxy.

k8s.io/kubernetes' own go.mod replaces every k8s.io/* staging module with a local path
(./staging/src/k8s.io/...). Replacements in a dependency are ignored, so a consumer must
replace each of those modules with its published v0.X.Y release. The list is read from
kubernetes' go.mod so it never drifts from the version being built.

Usage: k8s_consumer_gomod.py KUBERNETES_GO_MOD K8S_VERSION STAGING_VERSION
"""

from __future__ import annotations

import re
import sys

_STAGING_REPLACE = re.compile(r"^\s*(?:replace\s+)?(k8s\.io/[\w.\-/]+)\s+=>\s+\./staging/", re.M)
_GO_DIRECTIVE = re.compile(r"^go\s+(\S+)", re.M)


def staging_modules(gomod_text: str) -> list[str]:
    """The k8s.io/* modules that kubernetes' go.mod replaces with ./staging/ paths, sorted."""
    return sorted({m.group(1) for m in _STAGING_REPLACE.finditer(gomod_text)})


def go_directive(gomod_text: str) -> str:
    """The go.mod's `go` version (the consumer needs at least the same)."""
    m = _GO_DIRECTIVE.search(gomod_text)
    return m.group(1) if m else "1.24"


def consumer_gomod(gomod_text: str, k8s_version: str, staging_version: str) -> str:
    """A go.mod requiring k8s.io/kubernetes and pinning every staging module it replaces."""
    mods = staging_modules(gomod_text)
    if not mods:
        raise ValueError("no './staging/' replacements found: is this k8s.io/kubernetes' go.mod?")
    out = ["module local/kubernetes-build", "", f"go {go_directive(gomod_text)}", ""]
    out.append("require (")
    out.append(f"\tk8s.io/kubernetes {k8s_version}")
    out += [f"\t{m} {staging_version}" for m in mods]
    out.append(")")
    out.append("")
    out.append("replace (")
    out += [f"\t{m} => {m} {staging_version}" for m in mods]
    out.append(")")
    return "\n".join(out) + "\n"


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    path, k8s_version, staging_version = argv
    with open(path, encoding="utf-8") as f:
        text = f.read()
    try:
        sys.stdout.write(consumer_gomod(text, k8s_version, staging_version))
    except ValueError as e:
        print(f"{path}: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
