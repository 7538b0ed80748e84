"""What each fine-tune's budget is worth, read on validation pairs alone.

    python -m dupsearch.bench.component_swap BASE_DIR OTHER_DIR [--json OUT]

BASE_DIR and OTHER_DIR hold bench runs of two blends with the same inputs (e.g.
``bench-results/accuracy/blend-bi`` and ``.../blend-bi-separate``: one shared CPU budget against
each fine-tune's own). For every dataset and seed both ran, the booster is the same (same seed,
same training pairs), so each stacked component of the base run can be swapped for the other
run's and the blend refitted, with no training: it shows which component's extra budget moves the
blend. The figure is the cross-fitted validation PR-AUC of the blend (`stacking.cross_fitted_blend`
with the run's seed, as the matcher reports it). The test pairs are never read.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np


def swapped_pr_auc(base: dict, other: dict, seed: int) -> dict:
    """Cross-fitted validation PR-AUC of the base run's blend, of it with each stacked component
    taken from ``other``, and of ``other``'s blend (``valid_scores`` of two runs on the same pairs)."""
    from sklearn.metrics import average_precision_score

    from dupsearch.models.stacking import _blend_inputs, cross_fitted_blend
    y = np.asarray(base["y"], int)
    if len(other["y"]) != len(y) or not np.array_equal(np.asarray(other["y"], int), y):
        raise ValueError("the two runs were validated on different pairs")
    a, b = base["components"], other["components"]
    for run, parts in (("base", a), ("other", b)):
        for name, values in parts.items():
            v = np.asarray(values, float)
            if v.shape != y.shape or not np.isfinite(v).all():
                raise ValueError(f"the {run} run's {name} scores are not {len(y)} finite numbers")
    if not np.allclose(a["booster"], b["booster"], atol=1e-6):
        raise ValueError("the two runs' boosters differ: not the same seed and training pairs")
    stacked = [k for k in a if k != "booster"]
    if sorted(stacked) != sorted(k for k in b if k != "booster"):
        raise ValueError(f"the two runs blend different components: {sorted(a)} against {sorted(b)}")

    def blend(parts: dict) -> float:
        z = _blend_inputs(np.asarray(a["booster"], float), {k: np.asarray(v, float) for k, v in parts.items()})
        return round(float(average_precision_score(y, cross_fitted_blend(z, y, seed=seed)[0])), 4)

    mine = {k: a[k] for k in stacked}
    out = {"base": blend(mine)}
    for k in stacked:
        out[f"{k} from other"] = blend({**mine, k: b[k]})
    out["other"] = blend({k: b[k] for k in stacked})
    return out


def compare(base_dir: Path, other_dir: Path) -> list[dict]:
    rows = []
    for path in sorted(base_dir.glob("seed*/*.json")):
        twin = other_dir / path.parent.name / path.name
        if not twin.exists():
            continue
        runs = []
        for p in (path, twin):
            try:
                run = json.loads(p.read_text())
                scores = run["valid_scores"]
                if "components" not in scores:
                    raise KeyError("components")
            except (OSError, ValueError, KeyError, TypeError) as e:
                raise ValueError(f"{p}: not a bench run with valid_scores.components ({e})") from None
            runs.append(run)
        try:
            figures = swapped_pr_auc(runs[0]["valid_scores"], runs[1]["valid_scores"], int(runs[0].get("seed", 0)))
        except (ValueError, TypeError) as e:  # also arrays of other lengths or non-numbers
            raise ValueError(f"{path} and {twin}: {e}") from None
        rows.append({"dataset": runs[0].get("dataset"), "seed": runs[0].get("seed"), "base_file": str(path),
                     "other_file": str(twin), "base_commit": runs[0].get("commit"),
                     "other_commit": runs[1].get("commit"), "n_valid": len(runs[0]["valid_scores"]["y"]),
                     "valid_pr_auc": figures})
    return sorted(rows, key=lambda r: (str(r["dataset"]), int(r["seed"] or 0)))


def markdown(out: dict) -> str:
    names = list(out["rows"][0]["valid_pr_auc"]) if out["rows"] else []
    base, other = Path(out["base"]).name, Path(out["other"]).name
    def title(n: str) -> str:
        if n in ("base", "other"):
            return f"{base if n == 'base' else other} as run"
        return f"{base}, {n.replace(' from other', '').replace('_', '-')} from {other}"
    head = [title(n) for n in names]
    lines = ["| dataset | seed | validation pairs | " + " | ".join(head) + " |", "|---|---|---|" + "---|" * len(names)]
    for r in out["rows"]:
        v = r["valid_pr_auc"]
        cells = [f"{v[n]:.4f}" + ("" if n == "base" else f" ({v[n] - v['base']:+.4f})") for n in names]
        lines.append(f"| {r['dataset']} | {r['seed']} | {r['n_valid']:,} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m dupsearch.bench.component_swap", description=__doc__.split("\n\n")[0])
    ap.add_argument("base", type=Path, help="a variant's folder of bench runs (seed*/DATASET.json)")
    ap.add_argument("other", type=Path, help="another variant's folder, the same datasets and seeds")
    ap.add_argument("--json", type=Path)
    a = ap.parse_args(argv)
    from dupsearch.bench.features import write_result
    from dupsearch.bench.runner import source_commit
    for d in (a.base, a.other):
        if not d.is_dir():
            print(f"error: {d}: no such folder of bench runs", file=sys.stderr)
            return 2
    try:
        rows = compare(a.base, a.other)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if not rows:
        print(f"error: {a.base} and {a.other} share no dataset and seed", file=sys.stderr)
        return 2
    out = {"base": str(a.base), "other": str(a.other), "rows": rows, **source_commit()}
    write_result(out, a.json, markdown(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
