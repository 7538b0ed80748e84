"""Print a Markdown table of `dupsearch bench --json` results next to published F1."""

from __future__ import annotations

import json
import sys

# Published test F1 (percent) from ../shared/benchmarks/README.md.
PUBLISHED = {
    "abt-buy": {"Magellan": 43.6, "DeepMatcher": 62.8, "Ditto": 89.33},
    "amazon-google": {"Magellan": 49.1, "DeepMatcher": 69.3, "Ditto": 75.58},
    "walmart-amazon": {"Magellan": 71.9, "DeepMatcher": 66.9, "Ditto": 86.76},
    "wdc-computers": {"Magellan": None, "DeepMatcher": 69.7, "Ditto": 88.62},
    "wdc-cameras": {"Magellan": None, "DeepMatcher": 68.8, "Ditto": 88.09},
}


def markdown_table(results: list[dict]) -> str:
    head = ("| dataset | dupsearch F1 | PR-AUC | ROC-AUC | threshold | features | train s | predict s "
            "| feature pairs/s | Magellan | DeepMatcher | Ditto |")
    lines = [head, "|" + "|".join(["---"] * 12) + "|"]
    for r in results:
        pub = PUBLISHED.get(r["dataset"], {})
        f = lambda v: "-" if v is None else str(v)  # noqa: E731
        name = r["dataset"] + (f" ({r['train_size']})" if r.get("train_size") else "")
        lines.append(f"| {name} | **{r['f1']:.2f}** | {r['pr_auc']:.4f} | {r['roc_auc']:.4f} | "
                     f"{r['threshold']:.3f} | {r['n_features']} | {r['train_seconds']:.1f} | "
                     f"{r['predict_seconds']:.2f} | {r['pairs_per_second_features']:.0f} | "
                     f"{f(pub.get('Magellan'))} | {f(pub.get('DeepMatcher'))} | {f(pub.get('Ditto'))} |")
    return "\n".join(lines)


def main(paths: list[str]) -> None:
    results = [json.load(open(p)) for p in paths]
    print(markdown_table(results))


if __name__ == "__main__":
    main(sys.argv[1:])
