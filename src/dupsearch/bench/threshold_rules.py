"""Ways to choose the decision threshold, compared on validation alone.

    python -m dupsearch.bench.threshold_rules RUN.json ... [--splits 200] [--json OUT]

Each bench run saves its validation labels and scores (``valid_scores``). Per run, the validation
pairs are split in halves ``--splits`` times (stratified by label): a rule chooses the threshold on
one half, and the F1 it gives on the other half is averaged. The test pairs are never read. Rules:

- ``argmax``: the F1-best threshold (what `DuplicateMatcher` does);
- ``smoothed``: the arg-max of the F1 curve averaged over +-0.05 of threshold (a grid of 0.005);
- ``bootstrap median``: the median of the F1-best thresholds of 100 bootstrap resamples;
- ``half best F1``: half the best F1 (the F1-best threshold of calibrated probabilities;
  `MatcherConfig.threshold_rule`). It wins here and loses on test (BENCHMARKS.md): the halves
  share the early stopping and the calibration that make it look right.

Runs of the cross-encoder blend that saved its inputs (``valid_scores.components``) are studied
as the matcher fits them: per split, the blend is fitted on one half alone (cross-fitted there
for the rules, as `fit_blend` does) and scores the other, so no label of the judging half
reaches the threshold or the calibration.

``best on the other half`` is the F1 that half's own best threshold gives: the ceiling no rule
chosen elsewhere can pass.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from dupsearch.models.metrics import best_f1_threshold, f1_at, half_best_f1_threshold

GRID = np.round(np.arange(0.005, 1.0, 0.005), 3)


def argmax_rule(y: np.ndarray, p: np.ndarray, rng: np.random.Generator) -> float:
    return best_f1_threshold(y, p)[1]


def smoothed_rule(y: np.ndarray, p: np.ndarray, rng: np.random.Generator, width: float = 0.05) -> float:
    f = np.array([f1_at(y, p, t) for t in GRID])
    k = int(round(width / 0.005))
    smooth = np.convolve(np.pad(np.nan_to_num(f), k, mode="edge"), np.ones(2 * k + 1) / (2 * k + 1), mode="valid")
    return float(GRID[int(np.argmax(smooth))])


def bootstrap_median_rule(y: np.ndarray, p: np.ndarray, rng: np.random.Generator, n: int = 100) -> float:
    ts = []
    for _ in range(n):
        i = rng.integers(0, len(y), len(y))
        if y[i].any():
            ts.append(best_f1_threshold(y[i], p[i])[1])
    return float(np.median(ts))


def half_best_f1_rule(y: np.ndarray, p: np.ndarray, rng: np.random.Generator) -> float:
    return half_best_f1_threshold(y, p)[1]


RULES = {"argmax": argmax_rule, "smoothed": smoothed_rule, "bootstrap median": bootstrap_median_rule,
         "half best F1": half_best_f1_rule}


def compare(y: np.ndarray, p: np.ndarray, splits: int = 200, seed: int = 0,
            components: dict | None = None) -> dict:
    """Mean and std of each rule's F1 (in %) on the held-apart half, over ``splits`` splits.
    ``components`` (the blend's booster and stacked models' scores): the blend is refitted on the
    choosing half, and ``p`` is not read."""
    from dupsearch.models.stacking import _blend_inputs, cross_fitted_blend
    rng = np.random.default_rng(seed)
    Z = None if components is None else \
        _blend_inputs(components["booster"], {k: v for k, v in components.items() if k != "booster"})
    pos, neg = np.flatnonzero(y == 1), np.flatnonzero(y == 0)
    got: dict[str, list[float]] = {k: [] for k in [*RULES, "best on the other half"]}
    for k in range(splits):
        a = np.zeros(len(y), bool)
        a[rng.choice(pos, len(pos) // 2, replace=False)] = True
        a[rng.choice(neg, len(neg) // 2, replace=False)] = True
        if components is None:
            pa, pb = p[a], p[~a]
        else:
            pa, lr = cross_fitted_blend(Z[a], y[a], seed=k)
            pb = lr.predict_proba(Z[~a])[:, 1]
        got["best on the other half"].append(best_f1_threshold(y[~a], pb)[0])
        for name, rule in RULES.items():
            got[name].append(f1_at(y[~a], pb, rule(y[a], pa, rng)))
    return {k: {"mean": round(100 * float(np.mean(v)), 2), "std": round(100 * float(np.std(v)), 2)}
            for k, v in got.items()}


def markdown(result: dict) -> str:
    # the rules the saved study compared (a study saved before a rule was added lacks it)
    names = [n for n in [*RULES, "best on the other half"] if all(n in r["rules"] for r in result["runs"])]
    lines = ["| run | validation pairs (positive) | " + " | ".join(f"F1: {n}" for n in names) + " |",
             "|---|---|" + "---|" * len(names)]
    for r in result["runs"]:
        base = r["rules"]["argmax"]["mean"]
        cells = [f"{r['rules'][n]['mean']:.2f} ± {r['rules'][n]['std']:.2f}"
                 + (f" ({r['rules'][n]['mean'] - base:+.2f})" if n in RULES and n != "argmax" else "")
                 for n in names]
        refit = ", blend refitted per half" if r.get("blend_refitted") else ""
        lines.append(f"| {r['dataset']} ({r['variant']}, seed {r['seed']}{refit}) | {r['n_valid']:,} ({r['n_valid_positive']:,}) | "
                     + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m dupsearch.bench.threshold_rules", description=__doc__.split("\n\n")[0])
    ap.add_argument("runs", nargs="+", type=Path, help="bench run JSON files that hold valid_scores")
    ap.add_argument("--splits", type=int, default=200)
    ap.add_argument("--json", type=Path)
    a = ap.parse_args(argv)
    from dupsearch.bench.features import write_result
    from dupsearch.bench.runner import source_commit
    runs = []
    for path in a.runs:
        try:
            run = json.loads(path.read_text())
        except (OSError, ValueError) as e:
            print(f"error: {path}: not a readable bench run ({e})", file=sys.stderr)
            return 2
        scores = run.get("valid_scores") if isinstance(run, dict) else None
        if not scores:
            print(f"error: {path}: no valid_scores (runs saved before they were recorded: run the bench again)",
                  file=sys.stderr)
            return 2
        y, p = np.asarray(scores["y"], int), np.asarray(scores["p"], float)
        parts = {k: np.asarray(v, float) for k, v in scores["components"].items()} if "components" in scores else None
        runs.append({"file": str(path), "dataset": run.get("dataset"), "variant": path.parent.parent.name,
                     "seed": run.get("seed"), "run_commit": run.get("commit"), "n_valid": int(len(y)),
                     "n_valid_positive": int(y.sum()), "blend_refitted": parts is not None,
                     "rules": compare(y, p, a.splits, components=parts)})
    out = {"splits": a.splits, "runs": runs, **source_commit()}
    write_result(out, a.json, markdown(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
