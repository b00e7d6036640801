"""What the client's credential check (``credential_findings``, run on every argument of every
enqueue) costs on large and hostile values: seconds per MiB for each shape, which must stay
flat as the value grows (linear). ``python -m bench.credentials_scan [MiB...]``."""

from __future__ import annotations

import sys
import time

from backgroundjobs._credentials import credential_findings

SHAPES = {
    "letters": lambda n: "a" * n,
    "token-like runs": lambda n: "eyJ-" * (n // 4),
    "link-like": lambda n: "/reset" + "a" * n,
    "scheme-like": lambda n: "x://" + "a" * n,
    "prose": lambda n: ("Your order 42 ships tomorrow; thanks for shopping. " * (n // 51 + 1))[:n],
}


def main(sizes: list[float]) -> None:
    print(f"{'value':<18}" + "".join(f"{f'{mib:g} MiB s':>16}" for mib in sizes) + f"{'s/MiB':>10}")
    for name, make in SHAPES.items():
        row, per_mib = [], 0.0
        for mib in sizes:
            value = make(int(mib * 1024 * 1024))
            started = time.perf_counter()
            credential_findings([value], {})
            took = time.perf_counter() - started
            row.append(took)
            per_mib = took / mib
        print(f"{name:<18}" + "".join(f"{t:>16.3f}" for t in row) + f"{per_mib:>10.3f}")


if __name__ == "__main__":
    main([float(a) for a in sys.argv[1:]] or [0.25, 1.0, 4.0])
