"""The benchmark suite (issue 8): ``make bench`` runs ``python -m bench.suite``.

Timing lives here and only here; tests never assert on it. See bench/README.md.
"""

import sys
from pathlib import Path

# This checkout's operator code, whichever checkout the venv's editable install points at.
_OPERATOR_SRC = str(Path(__file__).resolve().parent.parent / "operator")
if _OPERATOR_SRC not in sys.path:
    sys.path.insert(0, _OPERATOR_SRC)
