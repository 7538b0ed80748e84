#!/usr/bin/env bash
# Issue #15's figures (slow: ~10 minutes on 2 cores; with N1M=1 another ~40 minutes):
# feature throughput (python -m dupsearch.bench.features), then `dupsearch dedup` of 100,000
# generated listings with a model trained with default options on another generated market,
# and with N1M=1 of 1,000,000 listings with the k=20 blockers (pair recall >= 0.98).
# Writes out/bench-store/features.json, out/bench-store/*/report.json and prints the tables.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/bootstrap.sh"
cd "$ROOT"
OUT="${BENCH_OUT:-out/bench-store}"
mkdir -p "$OUT"
python -m dupsearch.bench.features --json "$OUT/features.json"
[ -f "$OUT/train/listings.parquet" ] || dupsearch generate "$OUT/train" -n 10000 --seed 7 >/dev/null
[ -d "$OUT/model" ] || dupsearch train "$OUT/train/listings.parquet" "$OUT/train/train_pairs.parquet" \
  --valid "$OUT/train/valid_pairs.parquet" --out "$OUT/model"
[ -f "$OUT/m100k/listings.parquet" ] || dupsearch generate "$OUT/m100k" -n 100000 --seed 1 >/dev/null
/usr/bin/time -v dupsearch dedup "$OUT/m100k/listings.parquet" --model "$OUT/model" --out "$OUT/dd100k" \
  --workers 2 --restart 2> "$OUT/dd100k.time"
grep -E "Elapsed|Maximum resident" "$OUT/dd100k.time"
if [ "${N1M:-0}" = "1" ]; then
  [ -f "$OUT/m1m/listings.parquet" ] || dupsearch generate "$OUT/m1m" -n 1000000 --seed 1 >/dev/null
  /usr/bin/time -v dupsearch dedup "$OUT/m1m/listings.parquet" --model "$OUT/model" --out "$OUT/dd1m" \
    --workers 2 --restart --block key:seller_id+category_l2 \
    --block "ann:text?k=20&partition=category_l2+city" --block "ann:title?k=20&partition=category_l2+city" \
    2> "$OUT/dd1m.time"
  grep -E "Elapsed|Maximum resident" "$OUT/dd1m.time"
  python -c "import time, sys; from dupsearch.features import ListingStore as S; t=time.perf_counter(); \
s=S.open(sys.argv[1]); print(f'store of {len(s):,} listings opened in {time.perf_counter()-t:.2f} s')" "$OUT/dd1m/store"
fi
