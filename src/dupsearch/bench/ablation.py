"""`dupsearch ablate`: what each feature family and each model component buys.

Two sections, each against its own reference, all figures out-of-fold PR-AUC under the
matcher's grouped cross-validation (the same folds for every row):

- feature families: the general model with all families, then with each family's columns
  dropped in turn (one booster per fold: the cheapest run that still shows a family's worth);
- model components: the full system (general + per-category models, prior-shift alignment,
  learned blend, plus whatever the config adds: calibration, AutoML, stacked learned matchers),
  then each component off in turn, and the options that are off by default (per-category
  calibration, transitive enlargement) on in turn. Turning off the blend, the alignment or the
  calibration re-combines the same out-of-fold scores; the rest retrain.
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Callable

import numpy as np
import pandas as pd

from dupsearch.models import DuplicateMatcher, MatcherConfig, binary_metrics
from dupsearch.models.ensemble import EnsembleConfig, align_rows, cross_fitted_combination

FAMILY = "feature family"
COMPONENT = "model component"


def _cv(config: MatcherConfig, source: DuplicateMatcher, listings, pairs, X, y, cat) -> DuplicateMatcher:
    """Out-of-fold scores of `config` on precomputed features X (no final refit)."""
    m = DuplicateMatcher(config)
    m.pipeline_, m.learned_, m.feature_names_ = source.pipeline_, source.learned_, list(X.columns)
    m._fit_with_cv(listings, pairs, X, y, cat, {}, final=False)
    return m


def _combined(ens: EnsembleConfig, m: DuplicateMatcher, y, cat, align: bool | None = None,
              drop: tuple[str, ...] = ()) -> np.ndarray:
    """Re-combine a run's out-of-fold component scores under other combination settings."""
    raw = m.cv_raw_
    scores = {k: v for k, v in raw["scores"].items() if k not in drop}
    if ens.align if align is None else align:
        scores = align_rows(scores, raw["rho"], raw["prior"])  # to each row's fold prior
    if len(scores) == 1 and ens.calibrate == "none":
        return next(iter(scores.values()))
    return cross_fitted_combination(ens, scores, y, cat, m.cv_folds_)


def run_ablation(listings: pd.DataFrame, pairs: pd.DataFrame, config: MatcherConfig | None = None,
                 families: bool = True, components: bool = True, progress: bool = False,
                 log: Callable[[str], None] = print) -> tuple[pd.DataFrame, dict]:
    """Returns the ablation table (section, variant, pr_auc, delta, reference, n_features,
    seconds) and details: the full system's out-of-fold scores and labels, skipped rows."""
    config = config or MatcherConfig()
    t0 = time.perf_counter()
    base = DuplicateMatcher(config)
    X, y, cat, _ = base.training_features(listings, pairs, progress=progress)
    log(f"features of {len(pairs):,} pairs: {X.shape[1]} columns in {time.perf_counter() - t0:.1f} s")
    rows, skipped = [], []
    info: dict = {"n_pairs": int(len(pairs)), "n_positive": int(y.sum()), "folds": config.cv_folds,
                  "skipped": skipped}

    def row(section, variant, p, ref, n_features, seconds):
        pr = binary_metrics(y, p)["pr_auc"]
        rows.append({"section": section, "variant": variant, "pr_auc": pr,
                     "delta": None if ref is None else pr - ref, "reference": ref,
                     "n_features": n_features, "seconds": round(seconds, 1)})
        log(f"[{section}] {variant}: PR-AUC {pr:.4f}" + ("" if ref is None else f" ({pr - ref:+.4f})"))
        return pr

    if families:
        general = replace(config, ensemble=EnsembleConfig(category_column=config.ensemble.category_column),
                          n_models=1)
        t = time.perf_counter()
        ref = row(FAMILY, "all families (general model)", _cv(general, base, listings, pairs, X, y, cat).oof_,
                  None, X.shape[1], time.perf_counter() - t)
        for fam, cols in base.pipeline_.family_columns_.items():
            cols = [c for c in cols if c in X.columns]
            if not cols:
                continue
            if len(cols) == X.shape[1]:
                skipped.append(f"- {fam}: the only family")
                continue
            t = time.perf_counter()
            Xf = X.drop(columns=cols)
            row(FAMILY, f"- {fam}", _cv(general, base, listings, pairs, Xf, y, cat).oof_, ref, Xf.shape[1],
                time.perf_counter() - t)
        if base.learned_ is not None:
            learned = [c for c in X.columns if c.startswith("learned.")]
            t = time.perf_counter()
            Xf = X.drop(columns=learned)
            row(FAMILY, "- learned (stacked matchers)", _cv(general, base, listings, pairs, Xf, y, cat).oof_, ref,
                Xf.shape[1], time.perf_counter() - t)

    if components:
        ens = replace(config.ensemble, per_category=True, align=True, blend="learned")
        full_cfg = replace(config, ensemble=ens)
        t = time.perf_counter()
        full = _cv(full_cfg, base, listings, pairs, X, y, cat)
        full_s = time.perf_counter() - t
        n_cat = int(np.sum(~np.isnan(full.cv_raw_["rho"])))
        parts = ["general", "per-category"] + (["AutoML"] if ens.automl else []) + \
                ([f"calibration ({ens.calibrate})"] if ens.calibrate != "none" else [])
        label = "full system: " + " + ".join(parts) + ", aligned, learned blend"
        if n_cat == 0:
            label += " (no category qualifies: general model only)"
        ref = row(COMPONENT, label, full.oof_, None, X.shape[1], full_s)
        info["full_oof"], info["y"] = full.oof_, y
        if n_cat == 0:
            n_distinct = len(pd.unique(cat))
            skipped.append("per-category models and alignment: "
                           + ("the pairs have a single category (or none)" if n_distinct < 2 else
                              "no category has enough pairs of both classes")
                           + f" (min_category_pairs={ens.min_category_pairs}, "
                           f"min_category_positives={ens.min_category_positives})")
        else:
            info["category_pairs_covered"] = n_cat
            row(COMPONENT, "- per-category models", _combined(ens, full, y, cat, drop=("category", "automl_category")),
                ref, X.shape[1], 0.0)
            row(COMPONENT, "- prior-shift alignment", _combined(ens, full, y, cat, align=False), ref, X.shape[1], 0.0)
        row(COMPONENT, "- learned blend (equal weights)", _combined(replace(ens, blend="equal"), full, y, cat),
            ref, X.shape[1], 0.0)
        if ens.calibrate == "none":
            for method in ("platt", "isotonic"):
                row(COMPONENT, f"+ per-category calibration ({method})",
                    _combined(replace(ens, calibrate=method), full, y, cat), ref, X.shape[1], 0.0)
        else:
            row(COMPONENT, "- calibration", _combined(replace(ens, calibrate="none"), full, y, cat), ref,
                X.shape[1], 0.0)
        if ens.automl:
            row(COMPONENT, "- AutoML", _combined(ens, full, y, cat, drop=("automl", "automl_category")), ref,
                X.shape[1], 0.0)
        if base.learned_ is not None:
            t = time.perf_counter()
            Xf = X.drop(columns=[c for c in X.columns if c.startswith("learned.")])
            row(COMPONENT, "- stacked learned matchers", _cv(full_cfg, base, listings, pairs, Xf, y, cat).oof_,
                ref, Xf.shape[1], time.perf_counter() - t)
            skipped.append("+ transitive enlargement: not combined with stacking")
        elif config.enlarge is None:
            t = time.perf_counter()
            m = _cv(replace(full_cfg, enlarge={}), base, listings, pairs, X, y, cat)
            row(COMPONENT, "+ transitive enlargement", m.oof_, ref, X.shape[1], time.perf_counter() - t)
        else:
            t = time.perf_counter()
            m = _cv(replace(full_cfg, enlarge=None), base, listings, pairs, X, y, cat)
            row(COMPONENT, "- transitive enlargement", m.oof_, ref, X.shape[1], time.perf_counter() - t)
    info["seconds"] = time.perf_counter() - t0
    return pd.DataFrame(rows), info


def format_table(table: pd.DataFrame) -> str:
    """Markdown table (as pasted into BENCHMARKS.md)."""
    lines = ["| section | variant | OOF PR-AUC | change | seconds |", "|---|---|---:|---:|---:|"]
    for r in table.itertuples():
        d = "" if r.delta is None or pd.isna(r.delta) else f"{r.delta:+.4f}"
        lines.append(f"| {r.section} | {r.variant} | {r.pr_auc:.4f} | {d} | {r.seconds:.0f} |")
    return "\n".join(lines)
