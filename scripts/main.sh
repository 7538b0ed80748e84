#!/usr/bin/env bash
# The main job (README): set up .venv if needed, then run dupsearch end to end on a
# real benchmark (train on train, threshold on valid, F1 and PR-AUC on test) with a report.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/bootstrap.sh"
cd "$ROOT"
DATA="${1:-$ROOT/../shared/benchmarks/abt-buy}"
OUT="${2:-$ROOT/out/$(basename "$DATA")}"
mkdir -p "$OUT"
dupsearch bench "$DATA" --json "$OUT/bench.json" --report "$OUT/report" --model-out "$OUT/model"
echo "results: $OUT/bench.json, report: $OUT/report/report.html, model: $OUT/model" >&2
