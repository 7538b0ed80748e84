"""Groups tuned for groups, and the default model (issue #19), measured.

    python -m dupsearch.bench.groups thresholds --listings L --model M --out OUT --json J
    python -m dupsearch.bench.groups default --work W --benchmarks ../shared/benchmarks --json J

``thresholds``: ``dupsearch dedup`` of a generated catalogue with a model whose clustering
thresholds were chosen at training (another seed), then every method's B-cubed and pairwise F1
at the pair threshold (how groups were cut before), at the model's learned thresholds (what
dedup now does), and, for reference only, at the best threshold on the catalogue itself (chosen
on its truth: an oracle no user has).

``default``: the default model shipped in the package against a model trained on the data at
hand: on generated markets of unseen seeds (test pairs; and dedup of the whole market) and on
each shared benchmark's test split (the trained model: `dupsearch bench`'s protocol, threshold on
valid; the default model at its own threshold, with no labels, and with the threshold chosen on
valid, the protocol's one use of labels).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from dupsearch.bench.runner import source_commit, write_result


def _cli(*args, log: Path) -> None:
    env = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1"}
    with open(log, "a") as f:
        subprocess.run([sys.executable, "-m", "dupsearch.cli.main", *map(str, args)], check=True, env=env,
                       stdout=f, stderr=subprocess.STDOUT)


def _catalogue_scores(out: Path):
    s = pd.read_parquet(out / "scores", columns=["item_id_a", "item_id_b", "score"])
    return s["item_id_a"].to_numpy(), s["item_id_b"].to_numpy(), s["score"].to_numpy(np.float64)


def _at(a, b, s, ids, truth_codes, thresholds: dict) -> dict:
    from dupsearch.cluster.graph import _build_graph, cluster_graph
    from dupsearch.cluster.tuning import _f1s
    graph = _build_graph(a, b, s, min(thresholds.values()), all_ids=ids)
    labels = cluster_graph(graph, thresholds)
    truth = truth_codes.reindex(graph.ids).to_numpy()
    out = {}
    for m, lab in labels.items():
        bc, pw = _f1s(lab.to_numpy(), truth)
        out[m] = {"threshold": thresholds[m], "bcubed_f1": round(bc, 4), "pairwise_f1": round(pw, 4)}
    return out


def thresholds_run(listings: Path, model: Path, out: Path) -> dict:
    from dupsearch.cluster.tuning import choose_cluster_thresholds
    from dupsearch.models import DuplicateMatcher
    t0 = time.perf_counter()
    _cli("dedup", listings, "--model", model, "--out", out, "--workers", 2, log=out.with_suffix(".log"))
    dedup_s = time.perf_counter() - t0
    report = json.loads((out / "report.json").read_text())
    m = DuplicateMatcher.load(model)
    lst = pd.read_parquet(listings, columns=["item_id", "cluster_id"])
    ids = lst["item_id"].astype(str).to_numpy()
    truth = pd.Series(pd.factorize(lst["cluster_id"].astype(str))[0], index=ids)
    a, b, s = _catalogue_scores(out)
    pair = {k: float(m.threshold_) for k in ("components", "center", "average")}
    oracle = choose_cluster_thresholds(a, b, s, truth.astype(str), all_ids=ids)
    learned = {k: {"threshold": v["threshold"], "bcubed_f1": round(v["bcubed"]["f1"], 4),
                   "pairwise_f1": round(v["pairwise"]["f1"], 4)} for k, v in report["clustering"]["methods"].items()}
    return {"listings": int(len(lst)), "model": str(model), "model_metrics": m.metrics_.get("clustering", {}).get("graph"),
            "model_scores": m.metrics_.get("clustering", {}).get("scores"),
            "pair_threshold": float(m.threshold_), "default_method": m.cluster_method_,
            "at_pair_threshold": _at(a, b, s, ids, truth, pair), "learned": learned,
            "oracle": {k: {"threshold": v["threshold"], "bcubed_f1": round(v["bcubed_f1"], 4),
                           "pairwise_f1": round(v["pairwise_f1"], 4)} for k, v in oracle["best"].items()},
            "oracle_curves": oracle["curves"], "pairs_scored": int(len(s)),
            "dedup_seconds": round(dedup_s, 1), **source_commit()}


def _pair_figures(y, p, threshold: float, valid=None) -> dict:
    from dupsearch.models.metrics import binary_metrics
    m = binary_metrics(y, p, threshold=threshold)
    out = {"pr_auc": round(m["pr_auc"], 4), "f1": round(100 * m["f1"], 2), "threshold": round(threshold, 4)}
    if valid is not None:
        t = binary_metrics(*valid)["best_f1_threshold"]
        out["f1_valid_threshold"] = round(100 * binary_metrics(y, p, threshold=t)["f1"], 2)
        out["valid_threshold"] = round(float(t), 4)
    return out


def default_run(work: Path, benchmarks: Path | None, seeds=(31, 32), n: int = 10_000) -> dict:
    from dupsearch.bench.runner import run_benchmark
    from dupsearch.io.benchmark import load_benchmark
    from dupsearch.models import DuplicateMatcher
    from dupsearch.models.default import default_model_path
    default = DuplicateMatcher.load(default_model_path())
    result: dict = {"default_model": default.metrics_.get("n_train_pairs"), "generated": [], "benchmarks": [],
                    **source_commit()}
    for seed in seeds:
        d = work / f"market-{seed}"
        log = work / f"market-{seed}.log"
        if not (d / "listings.parquet").is_file():
            _cli("generate", d, "-n", n, "--seed", seed, "--no-photos", log=log)
        own = work / f"model-{seed}"
        if not (own / "manifest.json").is_file():
            _cli("train", d / "listings.parquet", d / "train_pairs.parquet", "--valid", d / "valid_pairs.parquet",
                 "--out", own, "--no-report", log=log)
        listings = pd.read_parquet(d / "listings.parquet")
        test = pd.read_parquet(d / "test_pairs.parquet")
        row = {"seed": seed, "listings": int(len(listings)), "test_pairs": int(len(test))}
        for name, path in (("default", default_model_path()), ("trained", own)):
            m = DuplicateMatcher.load(path)
            row[name] = _pair_figures(test["label"].to_numpy(int), m.predict_proba(listings, test), m.threshold_)
            out = work / f"dedup-{seed}-{name}"
            _cli("dedup", d / "listings.parquet", "--model", path, "--out", out, "--restart", log=log)
            rep = json.loads((out / "report.json").read_text())["clustering"]
            row[name]["groups"] = {k: {"threshold": v["threshold"], "bcubed_f1": round(v["bcubed"]["f1"], 4),
                                       "pairwise_f1": round(v["pairwise"]["f1"], 4)} for k, v in rep["methods"].items()}
            row[name]["method"] = rep["method"]
        result["generated"].append(row)
    for name in ("abt-buy", "amazon-google", "walmart-amazon", "wdc-computers", "wdc-cameras"):
        if benchmarks is None or not (benchmarks / name).is_dir():
            continue
        data = load_benchmark(benchmarks / name)
        y, yv = data.test["label"].to_numpy(int), data.valid["label"].to_numpy(int)
        t0 = time.perf_counter()
        p, pv = default.predict_proba(data.listings, data.test), default.predict_proba(data.listings, data.valid)
        row = {"dataset": name, "default": {**_pair_figures(y, p, default.threshold_, (yv, pv)),
                                             "seconds": round(time.perf_counter() - t0, 1)}}
        trained = run_benchmark(benchmarks / name)
        row["trained"] = {k: trained[k] for k in ("f1", "pr_auc", "threshold", "train_seconds")}
        result["benchmarks"].append(row)
        print(json.dumps(row), flush=True)
    return result


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m dupsearch.bench.groups")
    sub = ap.add_subparsers(dest="what", required=True)
    t = sub.add_parser("thresholds")
    t.add_argument("--listings", type=Path, required=True)
    t.add_argument("--model", type=Path, required=True)
    t.add_argument("--out", type=Path, required=True)
    t.add_argument("--json", type=Path, required=True)
    d = sub.add_parser("default")
    d.add_argument("--work", type=Path, required=True)
    d.add_argument("--benchmarks", type=Path)
    d.add_argument("--json", type=Path, required=True)
    args = ap.parse_args(argv)
    if args.what == "thresholds":
        res = thresholds_run(args.listings, args.model, args.out)
    else:
        args.work.mkdir(parents=True, exist_ok=True)
        res = default_run(args.work, args.benchmarks)
    write_result(args.json, res)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
