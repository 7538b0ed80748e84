#!/usr/bin/env bash
# The test command (README, CI): set up .venv if needed, then run the default test suite.
# Extra arguments go to pytest. Slow benchmarks: scripts/bench.sh.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/bootstrap.sh"
cd "$ROOT"
exec python -m pytest "$@"
