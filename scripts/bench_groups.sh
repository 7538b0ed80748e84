#!/usr/bin/env bash
# Issue #19's figures (slow: ~50 minutes on 2 cores). Writes out/bench-groups/*.json; BENCHMARKS.md's
# "Groups" tables are generated from copies in bench-results/groups/ (copy them there and run
# `python -m dupsearch.bench.render`).
#  1. thresholds: a generated catalogue of 100,000 listings (seed 1) deduplicated with (a) the
#     issue's model setup (10,000 listings, seed 7, train + valid pairs) retrained so that it has
#     clustering thresholds, (b) the default model before its thresholds were tuned on a
#     catalogue (out/default-model/model-train-only, left by scripts/train_default_model.sh) and
#     (c) the default model shipped in the package (thresholds tuned on seed 12): B-cubed and
#     pairwise F1 per method at the pair threshold, at the model's thresholds, and at the
#     catalogue's own best (an oracle, for reference).
#  2. default: the default model against models trained on the data at hand (generated markets
#     of seeds 31 and 32; the shared benchmarks' test splits).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/bootstrap.sh"
cd "$ROOT"
OUT="${BENCH_OUT:-out/bench-groups}"
SHARED="${SHARED:-$ROOT/../shared/benchmarks}"
mkdir -p "$OUT"
[ -f "$OUT/train/listings.parquet" ] || dupsearch generate "$OUT/train" -n 10000 --seed 7 >/dev/null
[ -d "$OUT/model" ] || dupsearch train "$OUT/train/listings.parquet" "$OUT/train/train_pairs.parquet" \
  --valid "$OUT/train/valid_pairs.parquet" --out "$OUT/model" --no-report > "$OUT/train.log"
M="$OUT/market-100000"
[ -f "$M/listings.parquet" ] || dupsearch generate "$M" -n 100000 --seed 1 --no-photos >/dev/null
python -m dupsearch.bench.groups thresholds --listings "$M/listings.parquet" --model "$OUT/model" \
  --out "$OUT/dedup-issue-model" --json "$OUT/thresholds-issue-model.json"
if [ -d out/default-model/model-train-only ]; then  # left by scripts/train_default_model.sh
  python -m dupsearch.bench.groups thresholds --listings "$M/listings.parquet" --model out/default-model/model-train-only \
    --out "$OUT/dedup-default-train-only" --json "$OUT/thresholds-default-model-train-only.json"
fi
python -m dupsearch.bench.groups thresholds --listings "$M/listings.parquet" \
  --model src/dupsearch/models/default_model --out "$OUT/dedup-default-model" --json "$OUT/thresholds-default-model.json"
python -m dupsearch.bench.groups default --work "$OUT/default" --benchmarks "$SHARED" --json "$OUT/default-model.json"
#  3. labels: the labelling curve (0, 50, 200, 1,000 answers, active against random) on a
#     generated market (seed 41) and abt-buy.
python -m dupsearch.bench.labels --work "$OUT/labels" --benchmarks "$SHARED" --json "$OUT/labels.json"
