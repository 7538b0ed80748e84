#!/usr/bin/env bash
# Accuracy on the five shared benchmarks at seeds 0, 100 and 200 (SEEDS="0" for one), per variant:
#   default   the booster alone (~2 min per seed on 2 cores)
#   minilm    + MiniLM bi-encoder features (~10 min per seed)
#   blend     + the MiniLM cross-encoder, issue #20's recipe (~70 min per seed: <= 15 min a dataset)
#   blend-fp32  the same with the cross-encoder in fp32 (ablation of bf16 where the CPU has it)
#   bi        + a contrastively fine-tuned MiniLM bi-encoder, its cosine blended with the booster
#             (~5-10 min a dataset)
#   blend-bi  the cross-encoder and the bi-encoder both in the blend, sharing one CPU budget
#             (models.stacking.SHARED_BUDGET; ~8-13 min a dataset)
#   blend-bi-separate  the same with each fine-tune's own budget, as alone (~10-23 min a dataset)
#   rouge     + word-level ROUGE-L features (ablation, ~2 min per seed)
#   online    the booster alone on `--features online` (what the index's lean features cost, ~2 min)
#   default-dirty, blend-dirty   those on the dirty variants (values moved into the title, p 0.5;
#             abt-buy, amazon-google, walmart-amazon: WDC records hold a title only)
#   moves, moves-dirty   the booster trained with half its pairs also made dirty (--moved-text-share
#             0.5), on the clean and the dirty records (~2 min per seed each)
# Saves every run's JSON under bench-results/accuracy/<variant>/seed<S>/ (tracked: BENCHMARKS.md's
# tables are generated from them) and regenerates those tables. Run it on a clean tree: each JSON
# records the commit.
#   bash scripts/bench_accuracy.sh [default|minilm|blend|blend-fp32|bi|blend-bi|blend-bi-separate|rouge|online|default-dirty|blend-dirty|moves|moves-dirty ...]
#   (no argument: default and minilm)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/bootstrap.sh"
cd "$ROOT"
BENCH="${BENCHMARKS_DIR:-$ROOT/../shared/benchmarks}"
VARIANTS=("$@"); [ ${#VARIANTS[@]} -eq 0 ] && VARIANTS=(default minilm)
for variant in "${VARIANTS[@]}"; do
  case "$variant" in
    default) extra=() ;;
    minilm) extra=(-t minilm) ;;
    blend) extra=(--cross-encoder minilm) ;;
    blend-fp32) extra=(--cross-encoder minilm --cross-encoder-precision fp32) ;;
    bi) extra=(--bi-encoder minilm) ;;
    blend-bi) extra=(--cross-encoder minilm --bi-encoder minilm) ;;
    blend-bi-separate) extra=(--cross-encoder minilm --bi-encoder minilm --cross-encoder-budget 1800000
                              --bi-encoder-epochs 10 --bi-encoder-max-steps 300) ;;
    rouge) extra=(--rouge) ;;
    online) extra=(--features online) ;;
    default-dirty) extra=(--dirty 0.5) ;;
    blend-dirty) extra=(--cross-encoder minilm --dirty 0.5) ;;
    moves) extra=(--moved-text-share 0.5) ;;
    moves-dirty) extra=(--moved-text-share 0.5 --dirty 0.5) ;;
    *) echo "unknown variant $variant (default, minilm, blend, blend-fp32, bi, blend-bi, blend-bi-separate, rouge, online, default-dirty, blend-dirty, moves, moves-dirty)" >&2; exit 2 ;;
  esac
  for seed in ${SEEDS:-0 100 200}; do
    out="bench-results/accuracy/$variant/seed$seed"
    mkdir -p "$out"
    all="abt-buy amazon-google walmart-amazon wdc-computers wdc-cameras"
    # WDC records hold a title only: their dirty variant is the clean one
    [[ "$variant" == *-dirty ]] && all="abt-buy amazon-google walmart-amazon"
    for ds in ${DATASETS:-$all}; do
      dupsearch bench "$BENCH/$ds" --train-size medium --seed "$seed" --json "$out/$ds.json" "${extra[@]}"
    done
  done
done
python -m dupsearch.bench.render BENCHMARKS.md
