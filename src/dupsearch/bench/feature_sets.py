"""Named feature sets side by side on a generated market: accuracy, what a listing's stored state
weighs, and CPU per listing and per pair. How the "online" set (`config.FEATURE_PRESETS`) was
chosen, with the alternatives that were tried next to it.

    python -m dupsearch.bench.feature_sets [--n 10000] [--seed 7] [--json out/feature_sets.json]

A market of ``--n`` listings (`dupsearch generate`, seed ``--seed``; its train/valid/test pairs):
one booster per set (CatBoost, default settings) trained on train with early stopping and the
threshold on valid; PR-AUC and F1 (at the validation threshold) on test. The store of all the
market's listings is built and saved (bytes per listing on disk), and the features of all the
labelled pairs computed, each timed in CPU seconds of this process (``time.process_time``).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import pandas as pd

_ONLINE_SETS = {"sets": {"fields": ["title", "description", "attrs"], "word_ngrams": {"description": [1, 2, 3]}},
                "corpus": {"fields": ["title", "description", "attrs"], "char_fields": ["title"]}}
# The alternatives tried beside "online": each differs from it in the string scores only.
ALTERNATIVES = {
    "online + attributes' strings": {"family_settings": {
        "strings": {"fields": ["title", "attrs"]}, **_ONLINE_SETS}},
    "online + attributes' strings (partial_ratio of 64 chars)": {"family_settings": {
        "strings": {"fields": ["title", "attrs"], "partial_chars": {"attrs": 64}}, **_ONLINE_SETS}},
    "online + description's and attributes' strings (200 chars)": {"family_settings": {
        "strings": {"fields": ["title", "description", "attrs"], "max_chars": {"description": 200}},
        **_ONLINE_SETS}},
}


def measure(name: str, settings: dict, market, log=print) -> dict:
    from dupsearch.bench.features import saved_bytes
    from dupsearch.features import FeatureConfig
    from dupsearch.models import DuplicateMatcher, MatcherConfig
    from dupsearch.models.metrics import binary_metrics
    listings, train, valid, test = market
    t0 = time.process_time()
    m = DuplicateMatcher(MatcherConfig(features=FeatureConfig(**settings), n_models=1)).fit(listings, train, valid)
    fit_cpu = time.process_time() - t0
    y = test["label"].to_numpy().astype(bool)
    p = m.predict_proba(listings, test)
    hit = p >= m.threshold_
    t0 = time.process_time()
    store = m.build_store(listings)
    store_cpu = time.process_time() - t0
    size = saved_bytes(store)
    pairs = pd.concat([train, valid, test])
    ia, ib = store.rows(pairs["item_id_a"]), store.rows(pairs["item_id_b"])
    t0 = time.process_time()
    m.pipeline_.compare(store, ia, ib)
    compare_cpu = time.process_time() - t0
    res = {"name": name, "family_settings": settings.get("family_settings", {}), "n_features": len(m.feature_names),
           "test_pr_auc": round(binary_metrics(y.astype(int), p)["pr_auc"], 4),
           "test_f1": round(float(2 * (hit & y).sum() / max(hit.sum() + y.sum(), 1)), 4),
           "store_bytes_per_listing": round(size / len(listings)),
           "store_cpu_ms_per_listing": round(store_cpu / len(listings) * 1e3, 3),
           "compare_cpu_us_per_pair": round(compare_cpu / len(ia) * 1e6, 2), "fit_cpu_seconds": round(fit_cpu, 1)}
    log(f"{name}: PR-AUC {res['test_pr_auc']:.4f}, F1 {res['test_f1']:.4f}, {res['n_features']} features, "
        f"{res['store_bytes_per_listing']:,} B/listing, {res['compare_cpu_us_per_pair']:.1f} µs/pair")
    return res


def markdown(result: dict) -> str:
    lines = ["| feature set | features | test PR-AUC | test F1 | store bytes per listing | store CPU ms per listing "
             "| features CPU µs per pair |", "|---|---|---|---|---|---|---|"]
    for r in result["sets"]:
        lines.append(f"| {r['name']} | {r['n_features']} | {r['test_pr_auc']:.4f} | {r['test_f1']:.4f} | "
                     f"{r['store_bytes_per_listing']:,} | {r['store_cpu_ms_per_listing']:.3f} | "
                     f"{r['compare_cpu_us_per_pair']:.1f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m dupsearch.bench.feature_sets", description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=10_000, help="listings of the generated market")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    if args.n < 500:
        ap.error("--n must be at least 500")
    import warnings
    warnings.simplefilter("ignore")
    from dupsearch.bench.runner import source_commit
    from dupsearch.config import FEATURE_PRESETS
    from dupsearch.synth import generate_marketplace
    out = {**source_commit(), "n": args.n, "seed": args.seed, "sets": []}
    mk = generate_marketplace(args.n, seed=args.seed)
    market = (mk.listings, *mk.split())  # as `dupsearch generate` splits them
    for name, settings in {**FEATURE_PRESETS, **ALTERNATIVES}.items():
        out["sets"].append(measure(name, settings, market))
    from dupsearch.bench.features import write_result
    write_result(out, args.json, markdown(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
