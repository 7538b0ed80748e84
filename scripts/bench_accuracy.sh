#!/usr/bin/env bash
# Accuracy on the five shared benchmarks at seeds 0, 100 and 200, without and with MiniLM
# (slow: ~10 min per seed without, ~20 with, on 2 cores). Saves every run's JSON under
# bench-results/accuracy/<variant>/seed<S>/ (tracked: BENCHMARKS.md's tables are generated from
# them) and regenerates those tables. Run it on a clean tree: each JSON records the commit.
#   bash scripts/bench_accuracy.sh [default|minilm ...]   (default: both)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/bootstrap.sh"
cd "$ROOT"
BENCH="${BENCHMARKS_DIR:-$ROOT/../shared/benchmarks}"
VARIANTS=("$@"); [ ${#VARIANTS[@]} -eq 0 ] && VARIANTS=(default minilm)
for variant in "${VARIANTS[@]}"; do
  case "$variant" in
    default) extra=() ;;
    minilm) extra=(-t minilm) ;;
    *) echo "unknown variant $variant (default, minilm)" >&2; exit 2 ;;
  esac
  for seed in ${SEEDS:-0 100 200}; do
    out="bench-results/accuracy/$variant/seed$seed"
    mkdir -p "$out"
    for ds in abt-buy amazon-google walmart-amazon wdc-computers wdc-cameras; do
      dupsearch bench "$BENCH/$ds" --train-size medium --seed "$seed" --json "$out/$ds.json" "${extra[@]}"
    done
  done
done
python -m dupsearch.bench.render BENCHMARKS.md
