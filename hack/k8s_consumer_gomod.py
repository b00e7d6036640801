"""Print a consumer go.mod for building k8s.io/kubernetes commands from the module proxy.

k8s.io/kubernetes' own go.mod replaces every k8s.io/* staging module with a local path
(./staging/src/k8s.io/...). Replacements in a dependency are ignored, so a consumer must
replace each of those modules with its published v0.X.Y release. The list is read from
kubernetes' go.mod so it never drifts from the version being built.
"""

from __future__ import annotations

import re
import sys


def staging_modules(gomod_text: str) -> list[str]:
    mods = set()
    for m in re.finditer(r"^\s*(k8s\.io/[\w.\-/]+)\s+=>\s+\./staging/", gomod_text, re.M):
        mods.add(m.group(1))
    return sorted(mods)


def go_directive(gomod_text: str) -> str:
    m = re.search(r"^go\s+(\S+)", gomod_text, re.M)
    return m.group(1) if m else "1.24"


def main() -> None:
    path, k8s_version, staging_version = sys.argv[1:4]
    text = open(path, encoding="utf-8").read()
    mods = staging_modules(text)
    if not mods:
        sys.exit(f"no staging replacements found in {path}")
    out = ["module local/kubernetes-build", "", f"go {go_directive(text)}", ""]
    out.append("require (")
    out.append(f"\tk8s.io/kubernetes {k8s_version}")
    out += [f"\t{m} {staging_version}" for m in mods]
    out.append(")")
    out.append("")
    out.append("replace (")
    out += [f"\t{m} => {m} {staging_version}" for m in mods]
    out.append(")")
    print("\n".join(out))


if __name__ == "__main__":
    main()
