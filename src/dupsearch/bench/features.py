"""Feature throughput: the listing store's build time and the full default feature set's pairs
per second, with a reference run in the same command (rapidfuzz ``cpdist`` of four string
scores over the same pairs) so the figure reads as a ratio on whatever machine runs it.

    python -m dupsearch.bench.features [--n 20000] [--benchmarks ../shared/benchmarks]
        [--json out/bench/features.json]

Workloads: the candidates of a generated market of ``--n`` listings (default blockers; a model's
pipeline fitted on another generated market, as in production) and, when the shared benchmarks
are there, abt-buy's training pairs (pipeline fitted on them). Per family and per string scorer
and field: seconds per 10,000 pairs, so the cost of each feature is on record (BENCHMARKS,
"what each feature costs").
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

CPDIST_SCORERS = ("ratio", "token_set_ratio", "jaro_winkler", "levenshtein")


def _reference(store, ia, ib) -> float:
    """Seconds of rapidfuzz cpdist with four scores on title and description of the pairs."""
    from rapidfuzz import fuzz, process
    from rapidfuzz.distance import JaroWinkler, Levenshtein
    scorers = [fuzz.ratio, fuzz.token_set_ratio, JaroWinkler.normalized_similarity,
               Levenshtein.normalized_similarity]
    title, desc = store["title"], store["description"]
    t0 = time.perf_counter()
    for col in (title, desc):
        a, b = col[ia].tolist(), col[ib].tolist()
        for s in scorers:
            process.cpdist(a, b, scorer=s, workers=-1)
    return time.perf_counter() - t0


def _string_costs(store, ia, ib, family) -> dict:
    """Seconds per 10,000 pairs of each string scorer on each field (one cpdist call each)."""
    from rapidfuzz import fuzz, process
    from rapidfuzz.distance import JaroWinkler, LCSseq, Levenshtein, Prefix
    scorers = {"lcs (ratio, lcsseq, lcsseq_shorter)": LCSseq.similarity, "partial_ratio": fuzz.partial_ratio,
               "token_set_ratio": fuzz.token_set_ratio, "jaro_winkler": JaroWinkler.normalized_similarity,
               "levenshtein": Levenshtein.normalized_similarity, "common_prefix": Prefix.similarity}
    out = {}
    for field in family.fields:
        col = store[f"strings.{field}"]
        a, b = col[ia].tolist(), col[ib].tolist()
        for name, s in scorers.items():
            if name == "partial_ratio":
                pc = family.partial_chars.get(field, 600)
                a2, b2 = [x[:pc] for x in a], [x[:pc] for x in b]
            else:
                a2, b2 = a, b
            t0 = time.perf_counter()
            process.cpdist(a2, b2, scorer=s, workers=-1)
            out[f"{field}.{name}"] = round((time.perf_counter() - t0) / len(ia) * 1e4, 4)
    return out


def saved_bytes(store) -> int:
    """What a listing store weighs saved on disk (an index holds it memory-mapped)."""
    import shutil
    import tempfile
    tmp = Path(tempfile.mkdtemp(prefix="dupsearch-bench-"))
    try:
        saved = store.save(tmp / "store")
        return sum(f.stat().st_size for f in Path(saved).rglob("*") if f.is_file())
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def write_result(out: dict, path: Path | None, table: str) -> None:
    """Save a benchmark's result as JSON (atomically) when asked, and print its table."""
    if path:
        from dupsearch.bench.runner import write_result as write_json
        write_json(path, out)
    print(table)


def measure(name: str, pipeline, listings: pd.DataFrame, ia: np.ndarray, ib: np.ndarray,
            repeats: int = 2, log=print) -> dict:
    """Store build and feature throughput of ``pipeline`` on pairs (ia, ib) of ``listings`` rows."""
    t0 = time.perf_counter()
    store = pipeline.build_store(listings)
    build_s = time.perf_counter() - t0
    size = saved_bytes(store)
    ref = min(_reference(store, ia, ib) for _ in range(repeats))
    bs = pipeline.config.batch_size  # as FeaturePipeline.compare and dedup's parts run them
    best, fams = None, {}
    for _ in range(repeats):
        per = dict.fromkeys((f.name for f in pipeline.families_), 0.0)
        t0 = time.perf_counter()
        for s in range(0, len(ia), bs):
            for fam in pipeline.families_:
                t1 = time.perf_counter()
                fam.compare(store, ia[s:s + bs], ib[s:s + bs])
                per[fam.name] += time.perf_counter() - t1
        total = time.perf_counter() - t0
        if best is None or total < best:
            best, fams = total, per
    strings = next((f for f in pipeline.families_ if f.name == "strings"), None)
    res = {"workload": name, "listings": int(len(listings)), "pairs": int(len(ia)),
           "n_features": len(pipeline.feature_names_),
           "store_build_seconds": round(build_s, 2),
           "store_listings_per_second": round(len(listings) / build_s, 1),
           "store_bytes_per_listing": round(size / len(listings)),
           "feature_seconds": round(best, 3), "pairs_per_second": round(len(ia) / best, 1),
           "reference": "rapidfuzz cpdist, 4 scores (ratio, token_set_ratio, jaro_winkler, levenshtein) "
                        "on title and description",
           "reference_pairs_per_second": round(len(ia) / ref, 1),
           "ratio_to_reference": round(ref / best, 4),
           "family_seconds_per_10k_pairs": {k: round(v / len(ia) * 1e4, 4) for k, v in fams.items()},
           "string_seconds_per_10k_pairs": _string_costs(store, ia, ib, strings) if strings else {}}
    log(f"{name}: {len(ia):,} pairs, {res['n_features']} features: {res['pairs_per_second']:,.0f} pairs/s "
        f"(reference {res['reference_pairs_per_second']:,.0f} pairs/s, ratio {res['ratio_to_reference']:.3f}); "
        f"store of {len(listings):,} listings built in {build_s:.1f} s")
    for fam, s in res["family_seconds_per_10k_pairs"].items():
        log(f"    {fam:12s} {s:8.3f} s / 10k pairs")
    return res


def _feature_config(features: str):
    from dupsearch.config import FEATURE_PRESETS
    from dupsearch.features import FeatureConfig
    return FeatureConfig(**FEATURE_PRESETS[features])


def generated_workload(n: int, seed: int = 1, train_seed: int = 7, n_train: int = 5000, log=print,
                       features: str = "default"):
    """Pipeline fitted on one generated market; candidates (default blockers) of another."""
    from dupsearch.candidates.blocking import candidate_pairs
    from dupsearch.candidates.specs import default_blocker_specs, make_blocker
    from dupsearch.features import FeaturePipeline
    from dupsearch.synth import generate_marketplace
    train = generate_marketplace(n_train, seed=train_seed).listings
    listings = generate_marketplace(n, seed=seed).listings.reset_index(drop=True)
    pipe = FeaturePipeline(_feature_config(features)).fit(train)
    from dupsearch.engines.local import locality_order, scoring_order
    # as dedup does: listings (store rows) in locality order, pairs in the order dedup scores them
    listings = listings.iloc[np.argsort(locality_order(listings))].reset_index(drop=True)
    c = candidate_pairs(listings, [make_blocker(s) for s in default_blocker_specs(listings)])
    log(f"generated market: {n:,} listings, {len(c.a):,} candidate pairs (default blockers)")
    order = scoring_order(np.arange(len(listings)), c.a, c.b)
    return pipe, listings, c.a[order], c.b[order]


def benchmark_workload(dataset_dir: Path, features: str = "default"):
    from dupsearch.features import FeaturePipeline
    from dupsearch.features.pipeline import listings_for
    from dupsearch.io import load_benchmark
    data = load_benchmark(dataset_dir, train_size="medium")
    listings = listings_for(data.listings, data.train).reset_index(drop=True)
    pipe = FeaturePipeline(_feature_config(features)).fit(listings)
    index = pd.Index(listings["item_id"].astype(str))
    return (pipe, listings, index.get_indexer(data.train["item_id_a"].astype(str)),
            index.get_indexer(data.train["item_id_b"].astype(str)))


def markdown(result: dict) -> str:
    """BENCHMARKS tables of a ``--json`` result: throughput, then seconds per family and per
    string scorer (per 10,000 pairs)."""
    w = result["workloads"]
    sized = all("store_bytes_per_listing" in r for r in w)  # runs before it was measured lack it
    lines = ["| workload | listings | pairs | features | pairs/s | reference pairs/s | ratio to reference | "
             "store build s | store listings/s |" + (" store bytes per listing |" if sized else ""),
             "|---|---|---|---|---|---|---|---|---|" + ("---|" if sized else "")]
    for r in w:
        lines.append(f"| {r['workload']} | {r['listings']:,} | {r['pairs']:,} | {r['n_features']} | "
                     f"**{r['pairs_per_second']:,.0f}** | {r['reference_pairs_per_second']:,.0f} | "
                     f"{r['ratio_to_reference']:.3f} | {r['store_build_seconds']:.1f} | "
                     f"{r['store_listings_per_second']:,.0f} |"
                     + (f" {r['store_bytes_per_listing']:,} |" if sized else ""))
    lines += ["", "Seconds per 10,000 pairs, by family:", "",
              "| family | " + " | ".join(r["workload"] for r in w) + " |", "|---" * (len(w) + 1) + "|"]
    for fam in w[0]["family_seconds_per_10k_pairs"]:
        lines.append(f"| {fam} | " + " | ".join(f"{r['family_seconds_per_10k_pairs'].get(fam, float('nan')):.3f}"
                                                for r in w) + " |")
    lines += ["", "Seconds per 10,000 pairs, by string scorer and field (one `cpdist` call each):", "",
              "| scorer on field | " + " | ".join(r["workload"] for r in w) + " |", "|---" * (len(w) + 1) + "|"]
    for key in w[0]["string_seconds_per_10k_pairs"]:
        lines.append(f"| {key} | " + " | ".join(f"{r['string_seconds_per_10k_pairs'].get(key, float('nan')):.4f}"
                                                for r in w) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m dupsearch.bench.features", description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=20_000, help="listings of the generated market")
    ap.add_argument("--benchmarks", type=Path, default=Path(__file__).resolve().parents[4] / "shared" / "benchmarks",
                    help="the shared benchmarks folder (abt-buy is read from it when present)")
    ap.add_argument("--json", type=Path, default=None)
    from dupsearch.config import FEATURE_PRESETS
    ap.add_argument("--features", default=["default"], nargs="+", choices=list(FEATURE_PRESETS),
                    help="named feature sets to measure, each on the same workloads (`train --features`)")
    ap.add_argument("--markdown", type=Path, default=None, metavar="JSON",
                    help="print the BENCHMARKS tables of a saved --json result and exit")
    args = ap.parse_args(argv)
    if args.markdown:
        if not args.markdown.is_file():
            ap.error(f"--markdown: no such file {args.markdown}")
        print(markdown(json.loads(args.markdown.read_text())))
        return 0
    if args.n < 100:
        ap.error("--n must be at least 100")
    import warnings
    warnings.simplefilter("ignore")
    from dupsearch.bench.runner import source_commit
    out = {**source_commit(), "workloads": []}  # the code that runs: taken before, not after
    abt = args.benchmarks / "abt-buy"
    for features in args.features:
        named = "" if features == "default" else f" ({features} features)"
        pipe, listings, ia, ib = generated_workload(args.n, features=features)
        out["workloads"].append(measure(f"generated market, {args.n:,} listings, candidates{named}",
                                        pipe, listings, ia, ib))
        if abt.is_dir():
            pipe, listings, ia, ib = benchmark_workload(abt, features)
            out["workloads"].append(measure(f"abt-buy train pairs{named}", pipe, listings, ia, ib))
        else:
            print(f"({abt} not found: abt-buy workload skipped)", file=sys.stderr)
    from dupsearch.models.matcher import dependency_versions
    out["versions"] = dependency_versions()
    write_result(out, args.json, markdown(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())

