"""The labelling curve (issue #19): a model's test figures after 0, 50, 200 and 1,000 answers
chosen by active labelling, beside the same numbers of answers drawn at random.

    python -m dupsearch.bench.labels --work W [--benchmarks ../shared/benchmarks] --json J

An oracle answers (the generator's truth; abt-buy's pair labels) what `dupsearch label` would ask
a person; the model is retrained from the answers as the command retrains it
(``ActiveLabeler.retrain``: the answers, plus pseudo-labels from the first model's confident
scores). 0 answers: the first model, the default model shipped in the package.
- generated market (10,000 listings, seed 41, unseen by the default model): the pool is the
  default blockers' candidates among the listings of its train split, the figures are on its
  test pairs (other listings);
- abt-buy: the pool is its train pairs (labels hidden until asked), the figures on its test split.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd

from dupsearch.bench.runner import source_commit, write_result

STEPS = (0, 50, 200, 1000)


def _figures(model, listings, test) -> dict:
    from dupsearch.models.metrics import binary_metrics
    y = test["label"].to_numpy(int)
    m = binary_metrics(y, model.predict_proba(listings, test), threshold=model.threshold_)
    return {"pr_auc": round(float(m["pr_auc"]), 4), "f1": round(100 * float(m["f1"]), 2)}


def curve(listings, test, pool, truth, strategy: str, seed: int = 0) -> list[dict]:
    """Figures at each of STEPS answers, the questions chosen by ``strategy``."""
    from dupsearch.label.active import ActiveLabeler, LabelConfig
    from dupsearch.models import DuplicateMatcher
    from dupsearch.models.default import default_model_path
    lab = ActiveLabeler(listings, DuplicateMatcher.load(default_model_path()), LabelConfig(seed=seed),
                        pool=pool, model_name="default model")
    out = [{"answers": 0, **_figures(lab.model, listings, test)}]
    done = 0
    for target in STEPS[1:]:
        t0 = time.perf_counter()
        while done < target:  # active: re-chosen after every retraining, in rounds of 50
            k = min(50, target - done) if strategy == "active" else target - done
            for i in lab.propose_many(k, random=strategy == "random"):
                lab.answer(i, "y" if truth(lab.a[i], lab.b[i]) else "n")
            done += k
            if strategy == "active" and done < target:
                lab.retrain()
        rep = lab.retrain()
        # the figures of the model the session now asks with (the first one until a retrained
        # model ranks the answers better)
        row = {"answers": done, "duplicates": rep["duplicates"], "seconds": round(time.perf_counter() - t0, 1),
               "model": lab.model_name, "answers_pr_auc_retrained": rep.get("pr_auc"),
               "answers_pr_auc_first": rep.get("first_model_pr_auc"), "bootstrap_wins": rep.get("bootstrap_wins"),
               **({"skipped": rep["skipped"]} if "skipped" in rep else {})}
        row.update(_figures(lab.model, listings, test))
        out.append(row)
        print(strategy, json.dumps(row), flush=True)
    return out


def generated(work: Path, seed: int = 41, n: int = 10_000) -> dict:
    from dupsearch.candidates.blocking import candidate_pairs
    from dupsearch.candidates.specs import default_blocker_specs, make_blocker
    from dupsearch.io import read_listings
    from dupsearch.bench.groups import _cli
    d = work / f"market-{seed}"
    if not (d / "listings.parquet").is_file():
        _cli("generate", d, "-n", n, "--seed", seed, "--no-photos", log=work / "generate.log")
    listings, _ = read_listings(d / "listings.parquet")
    train = pd.read_parquet(d / "train_pairs.parquet")
    test = pd.read_parquet(d / "test_pairs.parquet")
    named = set(train["item_id_a"].astype(str)) | set(train["item_id_b"].astype(str))
    rows = np.flatnonzero(listings["item_id"].astype(str).isin(named).to_numpy())
    sub = listings.iloc[rows].reset_index(drop=True)
    cands = candidate_pairs(sub, [make_blocker(s) for s in default_blocker_specs(sub)])
    pool = (rows[cands.a], rows[cands.b])
    cluster = listings["cluster_id"].to_numpy()
    truth = lambda a, b: cluster[a] == cluster[b]  # noqa: E731
    pos = float(np.mean(cluster[pool[0]] == cluster[pool[1]]))
    return {"data": f"generated market, {n:,} listings, seed {seed}", "pool": int(len(pool[0])),
            "pool_positive_rate": round(pos, 4), "test_pairs": int(len(test)),
            "active": curve(listings, test, pool, truth, "active"),
            "random": curve(listings, test, pool, truth, "random")}


def abt_buy(benchmarks: Path) -> dict:
    from dupsearch.io.benchmark import load_benchmark
    data = load_benchmark(benchmarks / "abt-buy")
    listings = data.listings.reset_index(drop=True)
    index = pd.Index(listings["item_id"].astype(str))
    ra = index.get_indexer(data.train["item_id_a"].astype(str))
    rb = index.get_indexer(data.train["item_id_b"].astype(str))
    label = {(int(a), int(b)): int(y) for a, b, y in zip(ra, rb, data.train["label"])}
    truth = lambda a, b: label.get((int(a), int(b)), label.get((int(b), int(a)), 0)) == 1  # noqa: E731
    return {"data": "abt-buy (pool: train pairs; figures: test split)", "pool": int(len(ra)),
            "pool_positive_rate": round(float(data.train["label"].mean()), 4), "test_pairs": int(len(data.test)),
            "active": curve(listings, data.test, (ra, rb), truth, "active"),
            "random": curve(listings, data.test, (ra, rb), truth, "random")}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m dupsearch.bench.labels")
    ap.add_argument("--work", type=Path, required=True)
    ap.add_argument("--benchmarks", type=Path)
    ap.add_argument("--json", type=Path, required=True)
    args = ap.parse_args(argv)
    args.work.mkdir(parents=True, exist_ok=True)
    res = {"steps": list(STEPS), "runs": [generated(args.work)], **source_commit()}
    if args.benchmarks is not None and (args.benchmarks / "abt-buy").is_dir():
        res["runs"].append(abt_buy(args.benchmarks))
    write_result(args.json, res)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
