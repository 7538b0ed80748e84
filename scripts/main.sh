#!/usr/bin/env bash
# The main job (README): set up .venv if needed, then `dupsearch demo` end to end:
# generate a Russian marketplace, train with grouped cross-validation, evaluate on
# held-out pairs, write an HTML report. Extra arguments go to `dupsearch demo`.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/bootstrap.sh"
cd "$ROOT"
exec dupsearch demo --out "${DEMO_OUT:-$ROOT/out/demo}" "$@"
