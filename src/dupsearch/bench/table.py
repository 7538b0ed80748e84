"""Markdown tables of `dupsearch bench --json` results next to published F1.

    python -m dupsearch.bench.table out/bench/*.json [out/bench-seeds/*.json]

With several results of one dataset (different --seed), the table shows the mean
and standard deviation of F1 and PR-AUC, and the list of seeds.
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict

import numpy as np

# Published test F1 (percent) from ../shared/benchmarks/README.md.
# "best": the highest published figure that README lists (and who reached it).
PUBLISHED = {
    "abt-buy": {"Magellan": 43.6, "DeepMatcher": 62.8, "Ditto": 89.33, "best": 95.78, "best_by": "GPT-4 zero-shot"},
    "amazon-google": {"Magellan": 49.1, "DeepMatcher": 69.3, "Ditto": 75.58, "best": 80.07, "best_by": "Ditto re-run"},
    "walmart-amazon": {"Magellan": 71.9, "DeepMatcher": 66.9, "Ditto": 86.76, "best": 90.27, "best_by": "GPT-4 few-shot"},
    "wdc-computers": {"Magellan": None, "DeepMatcher": 69.7, "Ditto": 88.62, "best": 88.62, "best_by": "Ditto"},
    "wdc-cameras": {"Magellan": None, "DeepMatcher": 68.8, "Ditto": 88.09, "best": 88.09, "best_by": "Ditto"},
}
ORDER = list(PUBLISHED)


def _f(v) -> str:
    return "-" if v is None else str(v)


def _name(r: dict) -> str:
    return r["dataset"] + (f" ({r['train_size']})" if r.get("train_size") else "")


def markdown_table(results: list[dict]) -> str:
    """One row per result (one run)."""
    head = ("| dataset | seed | dupsearch F1 | PR-AUC | ROC-AUC | threshold | features | train s "
            "| predict s | feature pairs/s | Magellan | DeepMatcher | Ditto |")
    lines = [head, "|" + "|".join(["---"] * 13) + "|"]
    for r in sorted(results, key=lambda r: (ORDER.index(r["dataset"]) if r["dataset"] in ORDER else 99,
                                            r.get("seed", 0))):
        pub = PUBLISHED.get(r["dataset"], {})
        lines.append(f"| {_name(r)} | {r.get('seed', 0)} | **{r['f1']:.2f}** | {r['pr_auc']:.4f} | "
                     f"{r['roc_auc']:.4f} | {r['threshold']:.3f} | {r['n_features']} | "
                     f"{r['train_seconds']:.1f} | {r['predict_seconds']:.2f} | "
                     f"{r['pairs_per_second_features']:.0f} | {_f(pub.get('Magellan'))} | "
                     f"{_f(pub.get('DeepMatcher'))} | {_f(pub.get('Ditto'))} |")
    return "\n".join(lines)


def seed_summary(results: list[dict]) -> str:
    """Mean ± std over the runs of each dataset (runs differ only in --seed)."""
    by = defaultdict(list)
    for r in results:
        by[_name(r)].append(r)
    lines = ["| dataset | runs (seeds) | F1 mean ± std | F1 min | PR-AUC mean ± std |",
             "|---|---|---|---|---|"]
    for name in sorted(by, key=lambda n: ORDER.index(n.split(" ")[0]) if n.split(" ")[0] in ORDER else 99):
        rs = by[name]
        f1 = np.array([r["f1"] for r in rs]); ap = np.array([r["pr_auc"] for r in rs])
        seeds = ", ".join(str(r.get("seed", 0)) for r in rs)
        lines.append(f"| {name} | {len(rs)} ({seeds}) | {f1.mean():.2f} ± {f1.std():.2f} | {f1.min():.2f} | "
                     f"{ap.mean():.4f} ± {ap.std():.4f} |")
    return "\n".join(lines)


def main(paths: list[str]) -> None:
    results = [json.load(open(p)) for p in paths]
    print(markdown_table(results))
    if len({_name(r) for r in results}) < len(results):
        print()
        print(seed_summary(results))


if __name__ == "__main__":
    main(sys.argv[1:])
