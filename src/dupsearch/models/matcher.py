"""DuplicateMatcher: features + gradient boosting, with validation, thresholds,
and a model directory that loads and predicts the same on another machine."""

from __future__ import annotations

import json
import logging
import os
import platform
import time
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path

import numpy as np
import pandas as pd

import dupsearch
from dupsearch.atomic import atomic_directory
from dupsearch.errors import DataError, ModelNotFoundError, ModelVersionError
from dupsearch.features import FeatureConfig, FeaturePipeline
from dupsearch.models.cv import choose_groups, group_folds
from dupsearch.models.gbdt import GBDTConfig, GBDTModel
from dupsearch.models.stacking import LearnedFeatures, StackingConfig
from dupsearch.models.metrics import binary_metrics

log = logging.getLogger(__name__)

KEY_DEPENDENCIES = ("numpy", "pandas", "scipy", "scikit-learn", "rapidfuzz", "catboost",
                    "lightgbm", "pyarrow")
MANIFEST = "manifest.json"


@dataclass
class MatcherConfig:
    gbdt: GBDTConfig = field(default_factory=GBDTConfig)
    features: FeatureConfig = field(default_factory=FeatureConfig)
    n_models: int = 3      # boosters with different seeds, averaged: steadier than one
    cv_folds: int = 5      # used when no validation pairs are given
    seed: int = 0
    # Models trained on the labelled pairs (cross-encoder), stacked as out-of-fold features.
    stacking: StackingConfig = field(default_factory=StackingConfig)

    @classmethod
    def from_dict(cls, d: dict) -> "MatcherConfig":
        d = dict(d)
        return cls(gbdt=GBDTConfig(**d.pop("gbdt", {})), features=FeatureConfig(**d.pop("features", {})),
                   stacking=StackingConfig(**d.pop("stacking", {})), **d)


def dependency_versions() -> dict[str, str]:
    out = {"dupsearch": dupsearch.__version__, "python": platform.python_version()}
    for name in KEY_DEPENDENCIES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def _labels(pairs: pd.DataFrame, what: str) -> np.ndarray:
    if "label" not in pairs:
        raise DataError(f"{what} pairs need a `label` column (0/1) to train or evaluate", column="label")
    y = pairs["label"].to_numpy().astype(int)
    if len(np.unique(y)) < 2:
        raise DataError(f"{what} pairs hold only label {y[0] if len(y) else '?'}; need both 0 and 1")
    return y


class DuplicateMatcher:
    """Predicts the probability that two listings are duplicates.

    >>> m = DuplicateMatcher().fit(listings, train_pairs, valid_pairs)
    >>> p = m.predict_proba(listings, test_pairs)
    >>> m.save("model/"); m2 = DuplicateMatcher.load("model/")
    """

    def __init__(self, config: MatcherConfig | None = None):
        self.config = config or MatcherConfig()
        self.pipeline_: FeaturePipeline | None = None
        self.models_: list[GBDTModel] = []
        self.threshold_: float = 0.5
        self.metrics_: dict = {}
        self.importance_: pd.Series | None = None
        self.learned_: LearnedFeatures | None = None
        self.feature_names_: list[str] | None = None

    @property
    def feature_names(self) -> list[str]:
        return list(self.feature_names_ or self.pipeline_.feature_names_)

    def features(self, listings: pd.DataFrame, pairs: pd.DataFrame, progress: bool = False) -> pd.DataFrame:
        X = self.pipeline_.transform(listings, pairs, progress=progress)
        if self.learned_ is not None and len(pairs):
            L = self.learned_.transform(listings, self.pipeline_.prepare(listings, pairs, embeddings=False), pairs)
            X = pd.concat([X, L.set_axis(X.index)], axis=1)
        return X

    def fit(self, listings: pd.DataFrame, pairs: pd.DataFrame, valid_pairs: pd.DataFrame | None = None,
            progress: bool = False) -> "DuplicateMatcher":
        cfg = self.config
        y = _labels(pairs, "training")
        t0 = time.perf_counter()
        # Corpus statistics come from the training listings only.
        train_ids = set(pairs["item_id_a"].astype(str)) | set(pairs["item_id_b"].astype(str))
        self.pipeline_ = FeaturePipeline(cfg.features).fit(
            listings[listings["item_id"].astype(str).isin(train_ids)], progress=progress)
        t_fit = time.perf_counter() - t0
        t0 = time.perf_counter()
        X = self.pipeline_.transform(listings, pairs, progress=progress)
        feature_seconds = time.perf_counter() - t0
        self.learned_ = None
        if cfg.stacking.enabled:
            # Out-of-fold scores through the booster's own grouped folds (see models.stacking).
            t0 = time.perf_counter()
            folds, _ = group_folds(pairs, y, cfg.stacking.folds or cfg.cv_folds, cfg.seed)
            self.learned_ = LearnedFeatures(cfg.stacking)
            L = self.learned_.fit_transform(listings, self.pipeline_.prepare(listings, pairs, embeddings=False),
                                            pairs, y, folds, progress=progress)
            X = pd.concat([X, L.set_axis(X.index)], axis=1)
            learned_seconds = time.perf_counter() - t0
        self.feature_names_ = list(X.columns)
        cat = self.pipeline_.categorical_features
        t1 = time.perf_counter()
        seeds = [cfg.seed + i for i in range(cfg.n_models)]
        metrics: dict = {"n_train_pairs": int(len(pairs)), "n_features": int(X.shape[1]),
                         "backend": cfg.gbdt.backend}
        if valid_pairs is not None:
            yv = _labels(valid_pairs, "validation")
            Xv = self.features(listings, valid_pairs, progress=progress)
            self.models_ = [GBDTModel(cfg.gbdt, cat, s).fit(X, y, eval_set=(Xv, yv)) for s in seeds]
            pv = np.mean([m.predict_proba(Xv) for m in self.models_], axis=0)
            vm = binary_metrics(yv, pv)
            self.threshold_ = vm["best_f1_threshold"]
            metrics["valid"] = vm
            metrics["iterations"] = [m.best_iteration_ for m in self.models_]
        else:
            metrics["cv"] = cv = self._cross_validate(X, y, pairs, cat)
            self.threshold_ = cv["oof"]["best_f1_threshold"]
            n_iter = max(int(np.mean(cv["best_iterations"])), 10)
            self.models_ = [GBDTModel(cfg.gbdt, cat, s).fit(X, y, iterations=n_iter) for s in seeds]
            metrics["iterations"] = [n_iter] * len(seeds)
        metrics["threshold"] = self.threshold_
        metrics["feature_fit_seconds"] = t_fit
        metrics["feature_seconds"] = feature_seconds  # transform of the training pairs
        metrics["pairs_per_second_features"] = len(pairs) / feature_seconds if feature_seconds else None
        metrics["train_seconds"] = time.perf_counter() - t1
        if self.pipeline_.encoder_stats_:
            metrics["encoders"] = self.pipeline_.encoder_stats_
        if self.pipeline_.photo_report_["photos"]:
            metrics["photos"] = self.pipeline_.photo_report_
        if self.learned_ is not None:
            metrics["stacking"] = {**self.learned_.report_, "seconds": learned_seconds}
        self.metrics_ = metrics
        self.importance_ = pd.concat([m.feature_importance(list(X.columns)) for m in self.models_],
                                     axis=1).mean(axis=1).sort_values(ascending=False)
        return self

    def _cross_validate(self, X, y, pairs, cat) -> dict:
        """Out-of-fold predictions. Early stopping uses an inner group split of each
        fold's training part, so the held-out fold is never seen before it is scored."""
        from sklearn.model_selection import GroupShuffleSplit

        folds, rule = group_folds(pairs, y, self.config.cv_folds, self.config.seed)
        groups, _ = choose_groups(pairs, self.config.cv_folds)
        oof = np.full(len(y), np.nan)
        per_fold, iters = [], []
        for k, (tr, te) in enumerate(folds):
            inner = GroupShuffleSplit(n_splits=1, test_size=0.15, random_state=self.config.seed + k)
            fit_i, stop_i = next(inner.split(tr, y[tr], groups[tr]))
            fit_i, stop_i = tr[fit_i], tr[stop_i]
            if len(np.unique(y[stop_i])) < 2:  # tiny data: no usable stopping set
                fit_i, stop_i = tr, None
            m = GBDTModel(self.config.gbdt, cat, self.config.seed + k).fit(
                X.iloc[fit_i], y[fit_i],
                eval_set=None if stop_i is None else (X.iloc[stop_i], y[stop_i]))
            oof[te] = m.predict_proba(X.iloc[te])
            iters.append(m.best_iteration_)
            fm = binary_metrics(y[te], oof[te])
            per_fold.append({"fold": k, "n_pairs": int(len(te)), "pr_auc": fm["pr_auc"],
                             "roc_auc": fm["roc_auc"], "iterations": m.best_iteration_})
            log.info("fold %d: PR-AUC %.4f", k, fm["pr_auc"])
        self.oof_ = oof
        pr = [f["pr_auc"] for f in per_fold]
        return {"folds": per_fold, "grouping": rule, "oof": binary_metrics(y, oof),
                "pr_auc_mean": float(np.nanmean(pr)), "pr_auc_std": float(np.nanstd(pr)),
                "best_iterations": iters}

    def predict_proba_features(self, X: pd.DataFrame) -> np.ndarray:
        X = X.reindex(columns=self.feature_names)
        return np.mean([m.predict_proba(X) for m in self.models_], axis=0)

    def predict_proba(self, listings: pd.DataFrame, pairs: pd.DataFrame, progress: bool = False) -> np.ndarray:
        if self.pipeline_ is None:
            raise RuntimeError("this DuplicateMatcher is not fitted: call fit() or DuplicateMatcher.load()")
        if len(pairs) == 0:
            return np.zeros(0)
        return self.predict_proba_features(self.features(listings, pairs, progress=progress))

    def predict(self, listings: pd.DataFrame, pairs: pd.DataFrame) -> np.ndarray:
        return (self.predict_proba(listings, pairs) >= self.threshold_).astype(int)

    # ---- model directory -------------------------------------------------------------
    def save(self, path: str | os.PathLike) -> Path:
        """Write the model directory atomically: a half-written model never appears at `path`."""
        path = Path(path)
        with atomic_directory(path) as tmp:
            cfg = asdict(self.config)
            (tmp / "config.json").write_text(json.dumps(cfg, indent=2))
            (tmp / "features.json").write_text(json.dumps(
                {"features": self.feature_names, "categorical": self.pipeline_.categorical_features}, indent=1))
            self.pipeline_.save(tmp)
            if self.learned_ is not None:
                self.learned_.save(tmp / "stacking")
            for i, m in enumerate(self.models_):
                m.save(tmp / f"booster_{i}")
            (tmp / "metrics.json").write_text(json.dumps(self.metrics_, indent=2, default=float))
            if self.importance_ is not None:
                self.importance_.rename("importance").to_csv(tmp / "feature_importance.csv", index_label="feature")
            manifest = {"format_version": dupsearch.MODEL_FORMAT_VERSION, "threshold": self.threshold_,
                        "n_models": len(self.models_), "backend": self.config.gbdt.backend,
                        "versions": dependency_versions(),
                        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
            (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2))
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> "DuplicateMatcher":
        path = Path(path)
        mf = path / MANIFEST
        if not mf.is_file():
            raise ModelNotFoundError(f"{path} is not a dupsearch model directory (no {MANIFEST}); "
                                     "train one with `dupsearch train`")
        manifest = json.loads(mf.read_text())
        fmt = manifest.get("format_version")
        made_by = manifest.get("versions", {}).get("dupsearch", "?")
        if fmt != dupsearch.MODEL_FORMAT_VERSION:
            raise ModelVersionError(
                f"model directory {path} was written by dupsearch {made_by} (model format {fmt}); "
                f"this is dupsearch {dupsearch.__version__} (model format {dupsearch.MODEL_FORMAT_VERSION}). "
                f"Retrain it with this version (`dupsearch train`) or install dupsearch=={made_by}.")
        here = dependency_versions()
        for dep in ("scikit-learn", "catboost", "lightgbm"):
            saved = manifest["versions"].get(dep)
            if saved and saved.split(".")[:2] != here.get(dep, "").split(".")[:2]:
                log.warning("model %s was saved with %s %s, this environment has %s; predictions may differ",
                            path, dep, saved, here.get(dep))
        self = cls(MatcherConfig.from_dict(json.loads((path / "config.json").read_text())))
        self.pipeline_ = FeaturePipeline.load(path)
        self.feature_names_ = json.loads((path / "features.json").read_text())["features"]
        if (path / "stacking").is_dir():
            self.learned_ = LearnedFeatures.load(path / "stacking")
        self.models_ = [GBDTModel.load(self.config.gbdt, path / f"booster_{i}")
                        for i in range(manifest["n_models"])]
        self.threshold_ = float(manifest["threshold"])
        self.metrics_ = json.loads((path / "metrics.json").read_text())
        imp = path / "feature_importance.csv"
        if imp.exists():
            self.importance_ = pd.read_csv(imp, index_col=0)["importance"]
        self.manifest_ = manifest
        return self
