"""Gradient-boosted trees behind one interface: CatBoost (default, as the seed
found best: learning rate 0.1, no class weights) or LightGBM."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from dupsearch.config import GBDTConfig  # noqa: F401  (settings live in dupsearch.config)



class GBDTModel:
    """One booster. `fit` early-stops on `eval_set` when given, otherwise runs
    `iterations` (or the config's maximum) rounds."""

    def __init__(self, config: GBDTConfig, categorical: list[str] | None = None, seed: int = 0):
        self.config = config
        self.categorical = list(categorical or [])
        self.seed = seed
        self.booster_ = None
        self.best_iteration_: int | None = None
        self.categories_: dict[str, list[str]] = {}

    # LightGBM needs pandas categories fixed at training time so codes match later.
    def _lgb_frame(self, X: pd.DataFrame, fit: bool) -> pd.DataFrame:
        X = X.copy()
        for c in self.categorical:
            if fit:
                self.categories_[c] = sorted(X[c].astype(str).unique().tolist())
            v = X[c].astype(str)
            # values unseen in training become missing (pandas will refuse them in Categorical)
            X[c] = pd.Categorical(v.where(v.isin(self.categories_[c])), categories=self.categories_[c])
        return X

    def _cb_frame(self, X: pd.DataFrame) -> pd.DataFrame:
        X = X.copy()
        for c in self.categorical:
            X[c] = X[c].astype(str)
        return X

    def fit(self, X: pd.DataFrame, y: np.ndarray, eval_set: tuple | None = None,
            iterations: int | None = None) -> "GBDTModel":
        cfg = self.config
        n_iter = iterations or cfg.max_iterations
        if cfg.backend == "catboost":
            from catboost import CatBoostClassifier
            params = dict(learning_rate=cfg.learning_rate, iterations=n_iter, depth=cfg.depth,
                          random_seed=self.seed, verbose=0, allow_writing_files=False,
                          thread_count=cfg.threads, eval_metric="PRAUC")
            params.update(cfg.params)
            model = CatBoostClassifier(cat_features=self.categorical or None, **params)
            if eval_set is not None and iterations is None:
                Xv, yv = eval_set
                model.fit(self._cb_frame(X), y, eval_set=(self._cb_frame(Xv), yv),
                          early_stopping_rounds=cfg.early_stopping_rounds, use_best_model=True)
                self.best_iteration_ = int(model.get_best_iteration()) + 1
            else:
                model.fit(self._cb_frame(X), y)
                self.best_iteration_ = n_iter
        else:
            import lightgbm as lgb
            params = dict(learning_rate=cfg.learning_rate, n_estimators=n_iter, max_depth=-1,
                          num_leaves=2 ** cfg.depth - 1, min_child_samples=10, subsample=0.8,
                          subsample_freq=1, colsample_bytree=0.7, random_state=self.seed,
                          n_jobs=cfg.threads, verbose=-1)
            params.update(cfg.params)
            model = lgb.LGBMClassifier(**params)
            Xl = self._lgb_frame(X, fit=True)
            if eval_set is not None and iterations is None:
                Xv, yv = eval_set
                import inspect
                Xv = self._lgb_frame(Xv, fit=False)
                # LightGBM >= 4.7 names the validation data eval_X/eval_y (eval_set is deprecated).
                if "eval_X" in inspect.signature(model.fit).parameters:
                    ev = {"eval_X": (Xv,), "eval_y": (yv,)}
                else:
                    ev = {"eval_set": [(Xv, yv)]}
                model.fit(Xl, y, **ev, eval_metric="average_precision",
                          callbacks=[lgb.early_stopping(cfg.early_stopping_rounds, verbose=False)])
                self.best_iteration_ = int(model.best_iteration_ or n_iter)
            else:
                model.fit(Xl, y)
                self.best_iteration_ = n_iter
        self.booster_ = model
        return self

    def _cb_features(self, X: pd.DataFrame):
        """X as CatBoost's FeaturesData: the numeric columns as one column-major float32 block (in
        the model's order of numeric features), the categorical ones as strings. CatBoost reads a
        DataFrame column by column and an object matrix cell by cell, and copies a row-major
        block: for 250 / 25,000 pairs a frame took 3.2 / 30 ms, a row-major block 1.6 / 58 ms,
        this 1.5 / 19 ms. It keeps numeric features as float32 itself: the same predictions.
        Columns are taken by position (a label lookup of ~180 names costs ~0.3 ms)."""
        from catboost import FeaturesData
        names = list(X.columns)
        cats = set(self.categorical)
        num = [i for i, c in enumerate(names) if c not in cats]
        cat = [i for i, c in enumerate(names) if c in cats]
        return FeaturesData(
            num_feature_data=np.array(X.iloc[:, num].to_numpy(np.float32), copy=True, order="F"),
            cat_feature_data=np.array(X.iloc[:, cat].astype(str).to_numpy(dtype=object), dtype=object, copy=True)
            if cat else None,
            num_feature_names=[names[i] for i in num], cat_feature_names=[names[i] for i in cat] or None)

    def predict_proba(self, X: pd.DataFrame, shared: dict | None = None) -> np.ndarray:
        """Probability of class 1 per row of X. ``shared``: a dict that models scoring the same X
        pass along, so that X is converted to the booster's input once, not once per model."""
        if self.config.backend == "catboost":
            from catboost import Pool

            from dupsearch.threads import thread_limit
            # a few pairs (an online match): one thread
            threads = 1 if len(X) < 2_000 else thread_limit(-1)
            key = ("catboost", tuple(self.categorical))
            data = None if shared is None else shared.get(key)
            if data is None:
                # the Pool catboost's predict would build from these features, built once for
                # the seeds' models (~0.3 ms a model for an online match's few pairs)
                data = Pool(self._cb_features(X), thread_count=threads)
                if shared is not None:
                    shared[key] = data
            return self.booster_.predict_proba(data, thread_count=threads)[:, 1]
        return self.booster_.predict_proba(self._lgb_frame(X, fit=False),
                                           num_iteration=self.best_iteration_)[:, 1]

    def feature_importance(self, names: list[str]) -> pd.Series:
        if self.config.backend == "catboost":
            imp = self.booster_.get_feature_importance()
        else:
            imp = self.booster_.booster_.feature_importance(importance_type="gain")
        s = pd.Series(np.asarray(imp, dtype=float), index=names)
        return s / s.sum() if s.sum() else s

    def shap_values(self, X: pd.DataFrame) -> np.ndarray:
        """SHAP contributions to the raw margin (log-odds), shape (n_rows, n_features).

        Each row plus the model's expected value sums to the raw score; the expected-value
        column both libraries append is dropped. Works for fitted and loaded models."""
        if self.config.backend == "catboost":
            from catboost import Pool
            Xc = self._cb_frame(X)
            cats = [c for c in self.categorical if c in Xc.columns]
            sv = self.booster_.get_feature_importance(Pool(Xc, cat_features=cats or None),
                                                      type="ShapValues")
        else:
            # fitted: LGBMClassifier.booster_; loaded: _LoadedLGBM.booster_ — both a lightgbm.Booster
            sv = self.booster_.booster_.predict(self._lgb_frame(X, fit=False),
                                                num_iteration=self.best_iteration_, pred_contrib=True)
        sv = np.asarray(sv, dtype=float)
        return sv[:, :-1]

    # Native booster formats: readable by the library on any machine, no pickle.
    def save(self, path_stem: Path) -> None:
        path_stem = Path(path_stem)
        meta = {"seed": self.seed, "best_iteration": self.best_iteration_,
                "categorical": self.categorical, "categories": self.categories_}
        if self.config.backend == "catboost":
            self.booster_.save_model(str(path_stem.with_suffix(".cbm")))
        else:
            self.booster_.booster_.save_model(str(path_stem.with_suffix(".txt")))
        path_stem.with_suffix(".json").write_text(json.dumps(meta, indent=1))

    @classmethod
    def load(cls, config: GBDTConfig, path_stem: Path) -> "GBDTModel":
        path_stem = Path(path_stem)
        meta = json.loads(path_stem.with_suffix(".json").read_text())
        self = cls(config, meta["categorical"], meta["seed"])
        self.best_iteration_ = meta["best_iteration"]
        self.categories_ = meta["categories"]
        if config.backend == "catboost":
            from catboost import CatBoostClassifier
            self.booster_ = CatBoostClassifier()
            self.booster_.load_model(str(path_stem.with_suffix(".cbm")))
        else:
            import lightgbm as lgb
            booster = lgb.Booster(model_file=str(path_stem.with_suffix(".txt")))
            self.booster_ = _LoadedLGBM(booster)
        return self


class _LoadedLGBM:
    """predict_proba over a raw lightgbm.Booster loaded from its text file."""

    def __init__(self, booster):
        self.booster_ = booster

    def predict_proba(self, X, num_iteration=None):
        p = self.booster_.predict(X, num_iteration=num_iteration)
        return np.column_stack([1 - p, p])
