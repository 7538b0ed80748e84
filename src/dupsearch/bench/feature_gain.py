"""What the costly string features buy: test F1 and PR-AUC with and without them, on the five
shared benchmarks (their protocol: train on train, early stopping and threshold on valid, test
on test) and on a generated market (train/valid/test pairs of `dupsearch generate`).

    python -m dupsearch.bench.feature_gain [--benchmarks ../shared/benchmarks] [--seeds 0,1]
        [--json out/bench/feature_gain.json]

Features are computed once per dataset with the string settings before the trade (``BEFORE``:
every field, partial_ratio of the whole cut text; plus the capped variants' extra columns); each variant then drops or swaps columns and trains the default booster
(CatBoost, one model per seed), so the only difference between rows is the features.
Seconds per 10,000 pairs of each feature come from ``dupsearch.bench.features``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

DATASETS = ("abt-buy", "amazon-google", "walmart-amazon", "wdc-computers", "wdc-cameras")
LONG = ("description", "text")
# The string features before the trade: every field, partial_ratio of the whole cut text.
BEFORE = {"strings": {"fields": ["title", "description", "text", "attrs"],
                      "partial_chars": {"description": 600, "text": 800}}}
CAP = 150  # characters that partial_ratio reads of description / text in the "capped" variant


def variants(columns: list[str], cap: int = CAP) -> dict[str, tuple[list[str], dict[str, str]]]:
    """name -> (columns to drop, {column: replacement column})."""
    CAP = cap  # noqa: N806
    partial = [f"strings.{f}.partial_ratio" for f in LONG]
    return {
        "all features (default before this change)": ([], {}),
        f"partial_ratio of description/text capped at {CAP} chars": ([], {c: c + f"@{CAP}" for c in partial}),
        "no partial_ratio on description/text": (partial, {}),
        "no string scores on text (title + description)": ([c for c in columns if c.startswith("strings.text.")], {}),
        f"no string scores on text, partial_ratio capped at {CAP} chars": (
            [c for c in columns if c.startswith("strings.text.")],
            {"strings.description.partial_ratio": f"strings.description.partial_ratio@{CAP}"}),
    }


def _capped(pipeline, store, ia, ib, CAP: int) -> pd.DataFrame:  # noqa: N803
    from rapidfuzz import fuzz, process
    out = {}
    for f in LONG:
        col = store[f"strings.{f}"]
        a, b = [s[:CAP] for s in col[ia]], [s[:CAP] for s in col[ib]]
        v = process.cpdist(a, b, scorer=fuzz.partial_ratio, workers=-1) / 100.0
        empty = np.array([not x or not y for x, y in zip(col[ia], col[ib])])
        out[f"strings.{f}.partial_ratio@{CAP}"] = np.where(empty, np.nan, v)
    return pd.DataFrame(out)


def _features(matcher, listings, pairs, cap):
    store, ia, ib = matcher.pair_store(listings, pairs)
    X = matcher.pipeline_.compare(store, ia, ib)
    return pd.concat([X, _capped(matcher.pipeline_, store, ia, ib, cap)], axis=1)


def run_dataset(name: str, listings, train, valid, test, seeds, cap: int = CAP, log=print) -> list[dict]:
    from dupsearch.features import FeatureConfig, FeaturePipeline
    from dupsearch.features.pipeline import listings_for
    from dupsearch.models import DuplicateMatcher, MatcherConfig, binary_metrics
    from dupsearch.models.gbdt import GBDTModel
    t0 = time.perf_counter()
    m = DuplicateMatcher(MatcherConfig(features=FeatureConfig(family_settings=BEFORE)))
    m.pipeline_ = FeaturePipeline(m.config.features).fit(listings_for(listings, train))
    X = {k: _features(m, listings, p, cap) for k, p in (("train", train), ("valid", valid), ("test", test))}
    y = {k: p["label"].to_numpy().astype(int) for k, p in (("train", train), ("valid", valid), ("test", test))}
    log(f"{name}: features of {sum(map(len, X.values())):,} pairs in {time.perf_counter() - t0:.0f} s")
    base = m.pipeline_.feature_names_
    rows = []
    for vname, (drop, swap) in variants(base, cap).items():
        cols = [swap.get(c, c) for c in base if c not in drop]
        f1s, aucs = [], []
        for seed in seeds:
            g = GBDTModel(m.config.gbdt, m.pipeline_.categorical_features, seed)
            g.fit(X["train"][cols], y["train"], eval_set=(X["valid"][cols], y["valid"]))
            thr = binary_metrics(y["valid"], g.predict_proba(X["valid"][cols]))["best_f1_threshold"]
            t = binary_metrics(y["test"], g.predict_proba(X["test"][cols]), threshold=thr)
            f1s.append(100 * t["f1"])
            aucs.append(t["pr_auc"])
        rows.append({"dataset": name, "variant": vname, "n_features": len(cols), "seeds": list(seeds),
                     "f1": round(float(np.mean(f1s)), 2), "f1_per_seed": [round(v, 2) for v in f1s],
                     "pr_auc": round(float(np.mean(aucs)), 4), "pr_auc_per_seed": [round(v, 4) for v in aucs]})
        log(f"  {vname:55s} F1 {rows[-1]['f1']:6.2f}  PR-AUC {rows[-1]['pr_auc']:.4f}")
    return rows


def markdown(results: list[dict]) -> str:
    """One table of test F1 / PR-AUC per dataset and variant from saved ``--json`` results."""
    rows = [{**r, "variant": r["variant"] + (f" at {res['cap']} chars" if r["variant"].endswith("capped") else "")}
            for res in results for r in res["rows"]]
    datasets = list(dict.fromkeys(r["dataset"] for r in rows))
    names = list(dict.fromkeys(r["variant"] for r in rows))
    by = {(r["dataset"], r["variant"]): r for r in rows}
    lines = ["| variant | " + " | ".join(datasets) + " | mean F1 | mean PR-AUC |", "|---" * (len(datasets) + 3) + "|"]
    for v in names:
        cells = [by.get((d, v)) for d in datasets]
        got = [c for c in cells if c]
        mean = (f"{np.mean([c['f1'] for c in got]):.2f} | {np.mean([c['pr_auc'] for c in got]):.4f}"
                if len(got) == len(datasets) else "- | -")
        lines.append(f"| {v} | " + " | ".join(f"{c['f1']:.2f} / {c['pr_auc']:.4f}" if c else "-" for c in cells)
                     + f" | {mean} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m dupsearch.bench.feature_gain", description=__doc__.split("\n\n")[0])
    ap.add_argument("--benchmarks", type=Path, default=Path(__file__).resolve().parents[4] / "shared" / "benchmarks")
    ap.add_argument("--datasets", default=",".join(DATASETS) + ",generated")
    ap.add_argument("--seeds", default="0,1")
    ap.add_argument("--cap", type=int, default=CAP, help="characters of description/text partial_ratio reads "
                    "in the capped variants")
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--markdown", type=Path, nargs="+", default=None, metavar="JSON",
                    help="print the table of saved --json results and exit")
    args = ap.parse_args(argv)
    if args.markdown:
        missing = [str(p) for p in args.markdown if not p.is_file()]
        if missing:
            ap.error(f"--markdown: no such file {missing[0]}")
        print(markdown([json.loads(p.read_text()) for p in args.markdown]))
        return 0
    try:
        seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    except ValueError:
        ap.error(f"--seeds takes integers separated by commas, got {args.seeds!r}")
    import warnings
    warnings.simplefilter("ignore")
    rows = []
    for name in args.datasets.split(","):
        if name == "generated":
            from dupsearch.synth import generate_marketplace
            g = generate_marketplace(8000, seed=11)
            tr, va, te = g.split((0.6, 0.2, 0.2))
            rows += run_dataset("generated market (8,000 listings)", g.listings, tr, va, te, seeds, args.cap)
            continue
        from dupsearch.io import load_benchmark
        d = args.benchmarks / name
        if not d.is_dir():
            print(f"({d} not found: skipped)", file=sys.stderr)
            continue
        data = load_benchmark(d, train_size="medium")
        rows += run_dataset(name, data.listings, data.train, data.valid, data.test, seeds, args.cap)
    if args.json:
        from dupsearch.atomic import atomic_write_text
        atomic_write_text(args.json, json.dumps({"cap": args.cap, "seeds": seeds, "rows": rows}, indent=2))
        print(f"-> {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
