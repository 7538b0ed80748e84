#!/usr/bin/env bash
# Issue #18's figures (slow: ~2 hours on 2 cores at a million listings, ~40 GB of disk): the
# Spark engine (local[2]) against the local engine (--workers 2) on generated catalogues of
# 100,000 and 1,000,000 listings, default blockers, the model of scripts/bench_index.sh; wall
# time and peak memory per stage, and how far the outputs agree. Writes
# out/bench-spark/SIZE/spark.json; BENCHMARKS.md's "Spark engine" table is generated from copies
# in bench-results/spark/ (copy them there and run `python -m dupsearch.bench.render`).
# SIZES="100000 1000000" sets the sizes.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/bootstrap.sh"
cd "$ROOT"
OUT="${BENCH_OUT:-out/bench-spark}"
MODEL="${MODEL:-out/bench-index/model}"
mkdir -p "$OUT"
if [ ! -d "$MODEL" ]; then
  dupsearch generate "$OUT/train" -n 10000 --seed 7 >/dev/null
  dupsearch train "$OUT/train/listings.parquet" "$OUT/train/train_pairs.parquet" \
    --valid "$OUT/train/valid_pairs.parquet" --out "$MODEL" --no-report
fi
export DUPSEARCH_SPARK_DRIVER_MEMORY="${DUPSEARCH_SPARK_DRIVER_MEMORY:-8g}"
for N in ${SIZES:-100000 1000000}; do
  M="$OUT/market-$N"
  if [ ! -f "$M/listings.parquet" ]; then
    if [ "$N" = 1000000 ] && [ -f out/bench-index/market/listings.parquet ]; then
      ln -sfn ../bench-index/market "$M"  # the same market (seed 1, no photos) as scripts/bench_index.sh
    else
      dupsearch generate "$M" -n "$N" --seed 1 --no-photos >/dev/null
    fi
  fi
  python -m dupsearch.bench.spark --listings "$M/listings.parquet" --model "$MODEL" --out "$OUT/n$N" \
    --master "local[2]" --workers 2 --json "$OUT/n$N/spark.json"
done
