#!/usr/bin/env bash
# The test command (README, CI): set up .venv if needed, then run the default test suite.
# Extra arguments go to pytest. Slow benchmarks: scripts/bench.sh.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/bootstrap.sh"
# The groups page is tested in a real browser: Debian's Chromium (skipped where it cannot be had).
if ! command -v chromium >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  echo "[test] installing Debian's chromium for the page tests" >&2
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; } >/dev/null 2>&1 \
    || echo "[test] could not install chromium: the page tests will be skipped" >&2
fi
cd "$ROOT"
exec python -m pytest "$@"
