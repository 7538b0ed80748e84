#!/usr/bin/env bash
# All five shared benchmarks under their protocol (slow: ~10 minutes on 2 cores).
# Writes out/bench/<dataset>.json and prints the table recorded in BENCHMARKS.md.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/bootstrap.sh"
cd "$ROOT"
BENCH="${BENCHMARKS_DIR:-$ROOT/../shared/benchmarks}"
OUT="${BENCH_OUT:-out/bench}"  # e.g. BENCH_OUT=out/bench-minilm bash scripts/bench.sh -t minilm
mkdir -p "$OUT"
for ds in abt-buy amazon-google walmart-amazon wdc-computers wdc-cameras; do
  dupsearch bench "$BENCH/$ds" --train-size medium --json "$OUT/$ds.json" "$@"
done
python -m dupsearch.bench.table "$OUT"/*.json
