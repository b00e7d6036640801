"""`helm test`: the operator's metrics Service answers with backgroundjobs_build_info.

Run by the test pod in the operator's own image (python3, no other tool needed):
    python3 check-metrics.py URL TIMEOUT_SECONDS
Exit 0 when URL serves the metric within TIMEOUT_SECONDS, 1 otherwise, saying why.
"""

import sys
import time
import urllib.request

url, timeout = sys.argv[1], float(sys.argv[2])
deadline = time.monotonic() + timeout
while True:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            body = response.read().decode("utf-8", "replace")
        found = [
            line for line in body.splitlines() if line.startswith("backgroundjobs_build_info{")
        ]
        if found:
            print(f"ok: {url} answers: {found[0]}")
            sys.exit(0)
        problem = f"{url} answers, but without backgroundjobs_build_info (not the operator?)"
    except OSError as exc:
        problem = f"{url} does not answer: {exc}"
    if time.monotonic() >= deadline:
        print(f"failed after {timeout:g}s: {problem}", file=sys.stderr)
        sys.exit(1)
    time.sleep(2)
