"""Does garbage decide? Duplicate decisions on clean and on degraded copies of the same pairs.

    python -m dupsearch.bench.garbage --json bench-results/garbage.json

A generated market (2,000 listings, seeds 3 and 5, no photos) is split as `dupsearch generate` splits
it; a model is trained on its train pairs (threshold on valid) with emptied-text training pairs
(``missing_text_share`` 0.1, the default) and without them (0.0). Each model then scores the test
pairs three times: as generated; with the title and description of every listing in them
emptied; with a zero-width space and a right-to-left override put into the titles of the first
listings of the pairs. The table counts false and true positives at the model's threshold:
garbage should not add false positives.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np


def _positives(matcher, listings, pairs) -> dict:
    p = matcher.predict_proba(listings, pairs)
    y = pairs["label"].to_numpy()
    hit = p >= matcher.threshold_
    return {"false_positives": int((hit & (y == 0)).sum()), "true_positives": int((hit & (y == 1)).sum()),
            "pairs": int(len(pairs)), "positives": int(y.sum())}


def run(n_listings: int = 2000, seed: int = 3, shares=(0.0, 0.1)) -> dict:
    from dupsearch import DuplicateMatcher, MatcherConfig, read_listings, read_pairs
    from dupsearch.synth import generate_marketplace

    with tempfile.TemporaryDirectory() as tmp:
        generate_marketplace(n_listings, seed=seed).write(Path(tmp) / "m", split=(0.6, 0.2, 0.2))
        listings, _ = read_listings(Path(tmp) / "m" / "listings.parquet")
        train, _ = read_pairs(Path(tmp) / "m" / "train_pairs.parquet")
        valid, _ = read_pairs(Path(tmp) / "m" / "valid_pairs.parquet")
        test, _ = read_pairs(Path(tmp) / "m" / "test_pairs.parquet")
    in_test = listings["item_id"].isin(set(test["item_id_a"]) | set(test["item_id_b"]))
    emptied = listings.copy()
    emptied.loc[in_test, ["title", "description"]] = ""
    invisible = listings.copy()
    first = listings["item_id"].isin(set(test["item_id_a"]))
    invisible.loc[first, "title"] = [t[:3] + "\u200b\u202e" + t[3:] for t in listings.loc[first, "title"]]
    out = {"n_listings": n_listings, "seed": seed, "models": {}}
    for share in shares:
        m = DuplicateMatcher(MatcherConfig(n_models=1, seed=seed, missing_text_share=share)).fit(listings, train, valid)
        out["models"][f"missing_text_share={share}"] = {
            "threshold": float(m.threshold_),
            "clean": _positives(m, listings, test),
            "title_and_description_emptied": _positives(m, emptied, test),
            "zero_width_and_bidi_in_titles": _positives(m, invisible, test)}
    return out


def markdown(results: list[dict]) -> str:
    lines = ["| market seed | model | test pairs | FP / TP as generated | FP / TP texts emptied "
             "| FP / TP zero-width + bidi |", "|---|---|---|---|---|---|"]
    for result in results:
        for name, r in result["models"].items():
            cells = [f"{r[k]['false_positives']} / {r[k]['true_positives']}"
                     for k in ("clean", "title_and_description_emptied", "zero_width_and_bidi_in_titles")]
            lines.append(f"| {result['seed']} | {name} | {r['clean']['pairs']} ({r['clean']['positives']} "
                         "duplicates) | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("-n", type=int, default=2000)
    ap.add_argument("--seed", type=int, action="append", help="market and booster seed (repeatable; default 3 and 5)")
    args = ap.parse_args()
    results = [run(args.n, seed) for seed in (args.seed or [3, 5])]
    from dupsearch.bench.runner import source_commit
    out = {"runs": results, **source_commit()}
    if args.json:
        from dupsearch.atomic import atomic_write_json
        atomic_write_json(args.json, out)
    print(markdown(results))


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
