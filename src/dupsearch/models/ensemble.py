"""How the matcher's models are combined (seed items 6, 12, 15, 16).

Components, each scoring every pair:
- ``general``: the gradient-boosting ensemble over all pairs (always on);
- ``category``: one booster per top-level category with enough pairs (seed item 12); pairs of
  other categories fall back to the general model's score;
- ``automl`` / ``automl_category``: LightAutoML over all pairs / per category (optional extra).

`Combiner` turns the component scores into one probability:
1. prior-shift alignment (`calibration.prior_shift`) of per-category scores from their
   category's training prior to the general model's (the seed's post-processing);
2. a convex blend whose weights are learned on out-of-fold scores (`blend.learn_blend_weights`),
   or equal weights;
3. optionally a per-category monotone calibration learned on out-of-fold scores.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from dupsearch.models.blend import learn_blend_weights
from dupsearch.config import EnsembleConfig  # noqa: F401  (settings live in dupsearch.config)
from dupsearch.models.calibration import CategoryCalibrator, prior_shift
from dupsearch.models.metrics import binary_metrics

log = logging.getLogger(__name__)

NO_CATEGORY = "(none)"
PER_CATEGORY = ("category", "automl_category")


def pair_categories(listings: pd.DataFrame, pairs: pd.DataFrame, column: str = "category_l1") -> np.ndarray:
    """Category of each pair (its first listing's), NO_CATEGORY where missing or blank."""
    if column not in listings:
        return np.full(len(pairs), NO_CATEGORY, dtype=object)
    by_id = listings.drop_duplicates("item_id").set_index(listings["item_id"].drop_duplicates().astype(str))[column]
    cat = by_id.reindex(pairs["item_id_a"].astype(str)).fillna("").astype(str).str.strip().to_numpy(dtype=object)
    cat[cat == ""] = NO_CATEGORY
    return cat


class CategoryModels:
    """One model per category with enough pairs of both classes; `predict` gives NaN for
    pairs of other categories (the caller falls back to the general score).

    `make_model(seed)` builds an unfitted model with `fit(X, y, eval_set=, iterations=)` and
    `predict_proba(X)` (GBDTModel or AutoMLModel)."""

    def __init__(self, make_model: Callable, min_pairs: int = 300, min_positives: int = 30, n_models: int = 1):
        self.make_model = make_model
        self.min_pairs, self.min_positives, self.n_models = min_pairs, min_positives, n_models
        self.models_: dict[str, list] = {}
        self.priors_: dict[str, float] = {}
        self.iterations_: dict[str, int] = {}
        self.sizes_: dict[str, int] = {}

    def eligible(self, y: np.ndarray, cat: np.ndarray) -> list[str]:
        """Categories that get a model: enough pairs of both classes, a real category (not
        NO_CATEGORY), and at least two categories in the data (one would repeat the general model)."""
        out = []
        if len(pd.unique(cat)) < 2:
            return out
        for c in pd.unique(cat):
            if c == NO_CATEGORY:
                continue
            m = cat == c
            pos = int(y[m].sum())
            if m.sum() >= self.min_pairs and self.min_positives <= pos <= m.sum() - self.min_positives:
                out.append(str(c))
        return sorted(out)

    def fit(self, X: pd.DataFrame, y: np.ndarray, cat: np.ndarray, stop_mask: np.ndarray | None = None,
            iterations: dict[str, int] | None = None, fallback_iterations: int | None = None,
            seed: int = 0) -> "CategoryModels":
        """stop_mask: rows held out for early stopping (their category's slice); iterations:
        fixed rounds per category (final refits); fallback_iterations: rounds where a
        category's stopping slice is unusable."""
        self.models_, self.priors_, self.iterations_, self.sizes_ = {}, {}, {}, {}
        stop_mask = np.zeros(len(y), bool) if stop_mask is None else stop_mask
        for c in self.eligible(y[~stop_mask], cat[~stop_mask]):
            fit_m = (cat == c) & ~stop_mask
            stop_m = (cat == c) & stop_mask
            usable_stop = stop_m.sum() >= 20 and 0 < y[stop_m].sum() < stop_m.sum()
            n_iter = (iterations or {}).get(c)
            models = []
            for s in range(self.n_models):
                mdl = self.make_model(seed + s)
                if n_iter is None and usable_stop:
                    mdl.fit(X[fit_m], y[fit_m], eval_set=(X[stop_m], y[stop_m]))
                else:
                    mdl.fit(X[fit_m], y[fit_m], iterations=n_iter or fallback_iterations)
                models.append(mdl)
            self.models_[c] = models
            self.priors_[c] = float(y[fit_m].mean())
            self.sizes_[c] = int(fit_m.sum())
            best = [m.best_iteration_ for m in models if getattr(m, "best_iteration_", None)]
            if best:
                self.iterations_[c] = int(np.mean(best))
        return self

    def predict(self, X: pd.DataFrame, cat: np.ndarray) -> np.ndarray:
        out = np.full(len(X), np.nan)
        for c, models in self.models_.items():
            m = cat == c
            if m.any():
                out[m] = np.mean([mdl.predict_proba(X[m]) for mdl in models], axis=0)
        return out

    def feature_importance(self, names: list[str]) -> pd.Series | None:
        parts = [m.feature_importance(names) for ms in self.models_.values() for m in ms]
        return pd.concat(parts, axis=1).mean(axis=1) if parts else None

    def save(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        index = []
        for k, (c, models) in enumerate(sorted(self.models_.items())):
            # folder names by index: category names may hold any character
            for i, m in enumerate(models):
                m.save(directory / f"c{k}_m{i}")
            index.append({"category": c, "folder": f"c{k}", "n_models": len(models),
                          "prior": self.priors_[c], "iterations": self.iterations_.get(c),
                          "n_pairs": self.sizes_.get(c)})
        (directory / "categories.json").write_text(json.dumps(index, indent=1, ensure_ascii=False))

    @classmethod
    def load(cls, directory: Path, load_model: Callable) -> "CategoryModels":
        self = cls(make_model=None)
        for row in json.loads((directory / "categories.json").read_text()):
            c = row["category"]
            self.models_[c] = [load_model(directory / f"{row['folder']}_m{i}") for i in range(row["n_models"])]
            self.priors_[c] = row["prior"]
            self.sizes_[c] = row["n_pairs"]
            if row["iterations"] is not None:
                self.iterations_[c] = row["iterations"]
        return self


def fill_fallbacks(scores: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Per-category components score only their categories; elsewhere the general (or the
    AutoML) score stands in, so every component scores every pair."""
    out = dict(scores)
    for name, base in (("category", "general"), ("automl_category", "automl")):
        if name in out:
            fb = out.get(base, out["general"])
            out[name] = np.where(np.isnan(out[name]), fb, out[name])
    return out


def row_priors(cat: np.ndarray, category_priors: dict[str, float]) -> np.ndarray:
    """Training prior of each pair's category model (NaN where its category has none)."""
    return np.array([category_priors.get(str(c), np.nan) for c in cat], dtype=float)


def align_rows(scores: dict[str, np.ndarray], rho: np.ndarray, overall_prior) -> dict[str, np.ndarray]:
    """Prior-shift the per-category components' scores from each row's category prior `rho`
    to `overall_prior` (one value, or one per row); rows with NaN `rho` (no category model)
    are left as they are."""
    out = dict(scores)
    has = ~np.isnan(rho)
    pi = np.broadcast_to(np.asarray(overall_prior, dtype=float), rho.shape)[has]
    for name in PER_CATEGORY:
        if name in out and has.any():
            p = out[name].copy()
            p[has] = prior_shift(p[has], pi, rho[has])
            out[name] = p
    return out


def align_scores(scores: dict[str, np.ndarray], cat: np.ndarray, category_priors: dict[str, float],
                 overall_prior: float) -> dict[str, np.ndarray]:
    """Prior-shift the per-category components' scores from their category's training prior to
    the general model's (the whole training set's)."""
    return align_rows(scores, row_priors(cat, category_priors), overall_prior)


class Combiner:
    """Component scores -> one probability: align, blend, calibrate."""

    def __init__(self, config: EnsembleConfig):
        self.config = config
        self.components_: list[str] = []
        self.weights_: np.ndarray | None = None
        self.calibrator_: CategoryCalibrator | None = None

    def _stack(self, scores: dict[str, np.ndarray]) -> np.ndarray:
        return np.column_stack([scores[c] for c in self.components_])

    def fit(self, scores: dict[str, np.ndarray], y: np.ndarray, cat: np.ndarray) -> "Combiner":
        """`scores`: aligned, fallback-filled out-of-fold scores per component."""
        self.components_ = list(scores)
        P = self._stack(scores)
        k = P.shape[1]
        self.weights_ = learn_blend_weights(P, y) if self.config.blend == "learned" else np.full(k, 1.0 / k)
        self.calibrator_ = None
        if self.config.calibrate != "none":
            self.calibrator_ = CategoryCalibrator(self.config.calibrate).fit(P @ self.weights_, y, cat)
        return self

    def transform(self, scores: dict[str, np.ndarray], cat: np.ndarray) -> np.ndarray:
        p = self._stack(scores) @ self.weights_
        if self.calibrator_ is not None:
            p = self.calibrator_.transform(p, cat)
        return p

    def to_dict(self) -> dict:
        return {"components": self.components_, "weights": [float(w) for w in self.weights_],
                "calibrator": None if self.calibrator_ is None else self.calibrator_.to_dict()}

    @classmethod
    def from_dict(cls, config: EnsembleConfig, d: dict) -> "Combiner":
        self = cls(config)
        self.components_ = list(d["components"])
        self.weights_ = np.asarray(d["weights"], dtype=float)
        self.calibrator_ = None if d["calibrator"] is None else CategoryCalibrator.from_dict(d["calibrator"])
        return self


def cross_fitted_combination(config: EnsembleConfig, scores: dict[str, np.ndarray], y: np.ndarray,
                             cat: np.ndarray, folds: list[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
    """Combined out-of-fold scores where each fold's blend weights and calibration were learned
    on the other folds only: an honest estimate of what the learned combination adds."""
    out = np.full(len(y), np.nan)
    for tr, te in folds:
        comb = Combiner(config).fit({k: v[tr] for k, v in scores.items()}, y[tr], cat[tr])
        out[te] = comb.transform({k: v[te] for k, v in scores.items()}, cat[te])
    return out


def component_report(scores: dict[str, np.ndarray], y: np.ndarray) -> dict:
    """PR-AUC of each component's (filled, aligned) scores alone."""
    return {name: binary_metrics(y, s)["pr_auc"] for name, s in scores.items()}
