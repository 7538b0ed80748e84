#!/usr/bin/env bash
# Train the default model shipped in the package (src/dupsearch/models/default_model/):
#  1. a generated marketplace (N listings, seed 11, no photos), the default matcher settings,
#     cross-validated on all its labelled pairs (clustering thresholds chosen on out-of-fold
#     scores over the blockers' candidates of those listings);
#  2. the clustering thresholds then tuned on a catalogue of the size served: a generated market
#     of TUNE_N listings (seed 12) deduplicated with the model (`dupsearch thresholds`).
# Seeds 11 and 12 are kept for this model; tests and benchmarks measure it on other seeds.
# ~10 minutes on 2 cores.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/bootstrap.sh"
cd "$ROOT"
N="${N:-20000}"
TUNE_N="${TUNE_N:-100000}"
WORK="${WORK:-out/default-model}"
MODEL=src/dupsearch/models/default_model
mkdir -p "$WORK"
[ -f "$WORK/market/listings.parquet" ] || dupsearch generate "$WORK/market" -n "$N" --seed 11 --no-photos >/dev/null
# step 1 (kept in WORK: benchmarks compare its training-time thresholds with the tuned ones)
dupsearch train "$WORK/market/listings.parquet" "$WORK/market/pairs.parquet" --out "$WORK/model-train-only" --no-report
[ -f "$WORK/tune/listings.parquet" ] || dupsearch generate "$WORK/tune" -n "$TUNE_N" --seed 12 --no-photos >/dev/null
dupsearch dedup "$WORK/tune/listings.parquet" --model "$WORK/model-train-only" --out "$WORK/tune-dedup" --workers 2 \
  --restart >/dev/null
dupsearch thresholds "$WORK/model-train-only" --run "$WORK/tune-dedup" --listings "$WORK/tune/listings.parquet" \
  --out "$MODEL"
du -sh "$MODEL"
