#!/usr/bin/env bash
# Issue #17's figures (slow: ~30 minutes on 2 cores, ~45 GB of disk): an index of a million
# generated listings (build time, size, open time, recall of held-back re-posts against dedup's
# blocking, the same top match as dedup, batch matching), then a load test of `dupsearch serve`
# on 127.0.0.1 (single matches with 20 concurrent clients, batch matches, upserts, deletes, bulk upserts).
# Writes out/bench-index/index.json and serve.json; BENCHMARKS.md's "Online matching" tables are
# generated from copies in bench-results/index/ (copy them there and run
# `python -m dupsearch.bench.render`). N=... sets the market size (default 1,000,000);
# FEATURES=online trains the index's model with `--features online` (out/bench-index-online);
# WORKERS=... sets the server's worker processes (`dupsearch serve --workers`, default 2: the cores).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/bootstrap.sh"
cd "$ROOT"
FEATURES="${FEATURES:-default}"
OUT="${BENCH_OUT:-out/bench-index$([ "$FEATURES" = default ] || echo "-$FEATURES")}"
N="${N:-1000000}"
mkdir -p "$OUT"
[ -f "$OUT/train/listings.parquet" ] || dupsearch generate "$OUT/train" -n 10000 --seed 7 >/dev/null
[ -d "$OUT/model" ] || dupsearch train "$OUT/train/listings.parquet" "$OUT/train/train_pairs.parquet" \
  --valid "$OUT/train/valid_pairs.parquet" --out "$OUT/model" --features "$FEATURES" --no-report
[ -f "$OUT/market/listings.parquet" ] || dupsearch generate "$OUT/market" -n "$N" --seed 1 >/dev/null
python -m dupsearch.bench.index --listings "$OUT/market/listings.parquet" --model "$OUT/model" --out "$OUT" \
  --hold 2000 --workers 2 --rebuild --json "$OUT/index.json" 2> "$OUT/index.log"
python scripts/bench_serve.py --index "$OUT/index" --listings "$OUT/market/listings.parquet" --hold 2000 \
  --clients 20 --requests 2000 --workers "${WORKERS:-2}" --json "$OUT/serve.json"
