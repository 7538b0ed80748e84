#!/usr/bin/env bash
# Issue #15's figures (slow: ~10 minutes on 2 cores; with N1M=1 another ~30 minutes):
# feature throughput (python -m dupsearch.bench.features), then `dupsearch dedup` of 100,000
# generated listings with a model trained with default options on another generated market,
# and with N1M=1 of 1,000,000 listings with the k=20 blockers (pair recall >= 0.98).
# Writes out/bench-store/features.json, out/bench-store/dd*/report.json (with dd*.time from
# /usr/bin/time and dd*.memory, the machine's used memory every 10 s) and prints the tables.
# BENCHMARKS.md's "Listing store" tables are generated from a copy of these files in
# bench-results/store/ (source.json, features.json, dd*/report.json, dd*.time, dd*.memory):
# copy them there and run `python -m dupsearch.bench.render`.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/bootstrap.sh"
cd "$ROOT"
OUT="${BENCH_OUT:-out/bench-store}"
mkdir -p "$OUT"

# `free -m` used memory every 10 s while a command runs: the machine-wide figure (the workers'
# resident sizes count the memory-mapped store's file pages, which the kernel may drop, twice).
sampled() {
  local samples=$1; shift
  : > "$samples"
  ( while true; do echo "$(date +%s) $(free -m | awk '/Mem:/ {print $3}')" >> "$samples"; sleep 10; done ) &
  local sampler=$!
  "$@" || { kill "$sampler"; return 1; }
  kill "$sampler"
}

python -c "import json, sys; from dupsearch.bench.runner import source_commit; \
json.dump(source_commit(), open(sys.argv[1], 'w'))" "$OUT/source.json"  # the commit it ran at
python -m dupsearch.bench.features --json "$OUT/features.json"
[ -f "$OUT/train/listings.parquet" ] || dupsearch generate "$OUT/train" -n 10000 --seed 7 >/dev/null
[ -d "$OUT/model" ] || dupsearch train "$OUT/train/listings.parquet" "$OUT/train/train_pairs.parquet" \
  --valid "$OUT/train/valid_pairs.parquet" --out "$OUT/model"
[ -f "$OUT/m100k/listings.parquet" ] || dupsearch generate "$OUT/m100k" -n 100000 --seed 1 >/dev/null
sampled "$OUT/dd100k.memory" /usr/bin/time -v -o "$OUT/dd100k.time" dupsearch dedup "$OUT/m100k/listings.parquet" \
  --model "$OUT/model" --out "$OUT/dd100k" --workers 2 --restart 2> "$OUT/dd100k.log"
python -m dupsearch.bench.dedup_table "$OUT/dd100k"
if [ "${N1M:-0}" = "1" ]; then
  [ -f "$OUT/m1m/listings.parquet" ] || dupsearch generate "$OUT/m1m" -n 1000000 --seed 1 >/dev/null
  sampled "$OUT/dd1m.memory" /usr/bin/time -v -o "$OUT/dd1m.time" dupsearch dedup "$OUT/m1m/listings.parquet" \
    --model "$OUT/model" --out "$OUT/dd1m" --workers 2 --restart --block key:seller_id+category_l2 \
    --block "ann:text?k=20&partition=category_l2+city" --block "ann:title?k=20&partition=category_l2+city" \
    2> "$OUT/dd1m.log"
  python -m dupsearch.bench.dedup_table "$OUT/dd1m"
  python -c "import time, sys; from dupsearch.features import ListingStore as S; t=time.perf_counter(); \
s=S.open(sys.argv[1]); print(f'store of {len(s):,} listings opened in {time.perf_counter()-t:.2f} s')" "$OUT/dd1m/store"
fi
