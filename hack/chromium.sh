#!/usr/bin/env bash
# Debian's Chromium and its chromedriver, for the dashboard's browser tests
# (tests/integration/test_dashboard.py drives a headless Chromium with selenium) and the
# dashboard's screenshots and benchmark. Installs them when missing (as root, with apt-get);
# nothing else is fetched: selenium uses this chromedriver and never downloads one.
set -euo pipefail

if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then
  exit 0
fi
if [[ $(id -u) != 0 ]] || ! command -v apt-get >/dev/null; then
  echo "[chromium] chromium and chromedriver are missing; as root run:" \
    "apt-get install chromium chromium-driver" >&2
  exit 1
fi
echo "[chromium] installing Debian's chromium and chromium-driver" >&2
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
  chromium chromium-driver >/dev/null
chromium --version >&2
