"""LightAutoML's tabular preset as an optional backend with the interface of `GBDTModel`.

``TabularAutoML`` fits the chosen algorithms (by default LightGBM, tuned LightGBM, CatBoost and
tuned CatBoost) with its own k-fold cross-validation and blends them; ``oof_`` keeps its
out-of-fold predictions on the training rows. The package and its stack (torch among them) come
with the extra: ``pip install 'dupsearch[automl]'``. This module imports nothing of it until a
model is fitted or loaded, so the core never needs it.

Saved as a joblib pickle (how LightAutoML saves its models) plus a JSON file that records the
versions it was written with; a pickle is only safe to load from a trusted source.
"""

from __future__ import annotations

import copy
import json
import logging
import os
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from dupsearch.atomic import atomic_write, atomic_write_text
from dupsearch.encoders.base import MissingDependencyError, require

log = logging.getLogger(__name__)

# LightAutoML's names for the first-level algorithms this backend offers.
ALGORITHMS = ("lgb", "lgb_tuned", "cb", "cb_tuned", "xgb", "xgb_tuned", "linear_l2", "rf", "rf_tuned")
INSTALL_HINT = "pip install 'dupsearch[automl]'"
FORMAT_VERSION = 1
_TARGET = "__dupsearch_target__"


@contextmanager
def _quiet_lightautoml():
    """Hide deprecation notices that LightAutoML's own code triggers (pandas 3's inplace=, torch's
    jit.script): nothing a caller can act on."""
    with warnings.catch_warnings():
        for cat in (DeprecationWarning, PendingDeprecationWarning, FutureWarning):
            warnings.filterwarnings("ignore", category=cat, module=r"lightautoml(\.|$)")
            warnings.filterwarnings("ignore", category=cat, module=r"torch\.jit(\.|$)")
        yield


def require_lightautoml():
    """Import LightAutoML's tabular preset, or raise MissingDependencyError saying how to install it."""
    require("lightautoml", "the LightAutoML backend", "automl")
    try:
        with _quiet_lightautoml():
            # LightAutoML warns at import about its NLP extras ('transformers', 'nltk'), unused here.
            warnings.filterwarnings("ignore", category=UserWarning, module=r"lightautoml(\.|$)")
            inst = logging.getLogger("lightautoml.utils.installation")
            level = inst.level
            inst.setLevel(logging.ERROR)
            try:
                from lightautoml.automl.presets.tabular_presets import TabularAutoML
                from lightautoml.tasks import Task
            finally:
                inst.setLevel(level)
    except ImportError as exc:
        raise MissingDependencyError(
            f"the LightAutoML backend could not import LightAutoML ({exc}); "
            f"reinstall its pinned stack: {INSTALL_HINT}") from exc
    return TabularAutoML, Task


def lightautoml_version() -> str | None:
    from importlib.metadata import PackageNotFoundError, version
    try:
        return version("lightautoml")
    except PackageNotFoundError:
        return None


def _deep_update(base: dict, extra: dict) -> dict:
    out = copy.deepcopy(base)
    for k, v in extra.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _deep_update(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def _stem_file(path_stem: Path, suffix: str) -> Path:
    # Appended, not Path.with_suffix: a stem such as "model.v2" keeps its whole name.
    path_stem = Path(path_stem)
    return path_stem.parent / (path_stem.name + suffix)


@dataclass
class AutoMLConfig:
    algorithms: tuple[str, ...] = ("lgb", "lgb_tuned", "cb", "cb_tuned")
    folds: int = 5
    timeout: int = 600          # seconds for the whole AutoML fit (LightAutoML's soft limit)
    threads: int = 2            # LightAutoML's cpu_limit; <= 0: all cores
    params: dict = field(default_factory=dict)  # extra TabularAutoML kwargs, merged into ours

    def __post_init__(self):
        self.algorithms = tuple(self.algorithms)
        if not self.algorithms:
            raise ValueError("AutoMLConfig.algorithms is empty")
        unknown = [a for a in self.algorithms if a not in ALGORITHMS]
        if unknown:
            raise ValueError(f"unknown LightAutoML algorithm(s) {unknown}; choose from {ALGORITHMS}")
        if self.folds < 2:
            raise ValueError(f"AutoMLConfig.folds must be at least 2, got {self.folds}")
        if self.timeout <= 0:
            raise ValueError(f"AutoMLConfig.timeout must be positive, got {self.timeout}")


class AutoMLModel:
    """LightAutoML behind `GBDTModel`'s interface: fit / predict_proba / feature_importance /
    save / load. LightAutoML validates with its own folds, so `fit` ignores `eval_set` and
    `iterations` and leaves ``best_iteration_`` at None (callers average only the boosters')."""

    def __init__(self, config: AutoMLConfig, categorical: list[str] | None = None, seed: int = 0):
        self.config = config
        self.categorical = list(categorical or [])
        self.seed = int(seed)
        self.automl_ = None
        self.best_iteration_: int | None = None
        self.features_: list[str] = []
        self.oof_: np.ndarray | None = None

    def _threads(self) -> int:
        t = self.config.threads
        return t if t and t > 0 else (os.cpu_count() or 1)

    def _kwargs(self) -> dict:
        cfg, threads = self.config, self._threads()
        kwargs = {
            "timeout": cfg.timeout,
            "cpu_limit": threads,
            "general_params": {"use_algos": [list(cfg.algorithms)]},
            "reader_params": {"random_state": self.seed, "cv": cfg.folds, "n_jobs": threads},
            "lgb_params": {"default_params": {"random_state": self.seed, "num_threads": threads}},
            "cb_params": {"default_params": {"random_seed": self.seed, "thread_count": threads}},
            "xgb_params": {"default_params": {"seed": self.seed, "nthread": threads}},
        }
        return _deep_update(kwargs, cfg.params)

    def _frame(self, X: pd.DataFrame) -> pd.DataFrame:
        missing = [c for c in self.features_ if c not in X.columns]
        if missing:
            raise ValueError(f"AutoMLModel: columns missing from the input: {missing[:10]}")
        X = X[self.features_].reset_index(drop=True)
        for c in self.categorical:
            X[c] = X[c].astype(str).astype(object)  # as GBDTModel: categories are their string forms
        return X

    def fit(self, X: pd.DataFrame, y: np.ndarray, eval_set: tuple | None = None,
            iterations: int | None = None) -> "AutoMLModel":
        TabularAutoML, Task = require_lightautoml()
        unknown = [c for c in self.categorical if c not in X.columns]
        if unknown:
            raise ValueError(f"AutoMLModel: categorical columns not in the data: {unknown}")
        if _TARGET in X.columns:
            raise ValueError(f"AutoMLModel: a feature may not be named {_TARGET!r}")
        y = np.asarray(y).astype(int)
        if len(y) != len(X):
            raise ValueError(f"AutoMLModel: {len(X)} rows but {len(y)} labels")
        if eval_set is not None or iterations is not None:
            log.debug("AutoMLModel ignores eval_set/iterations: LightAutoML runs its own %d-fold CV",
                      self.config.folds)
        self.features_ = [str(c) for c in X.columns]
        train = self._frame(X)
        train[_TARGET] = y
        # Only the categorical columns get a declared role. The reader infers the numeric ones and
        # drops those that are all NaN or constant: columns with a declared role skip that check
        # and LightAutoML 0.4.2's role guessing fails on an all-NaN one.
        roles = {"target": _TARGET}
        if self.categorical:
            roles["category"] = list(self.categorical)
        automl = TabularAutoML(task=Task("binary"), **self._kwargs())
        with _quiet_lightautoml():
            oof = automl.fit_predict(train, roles=roles, verbose=0)
        self.automl_ = automl
        self.oof_ = np.asarray(oof.data, dtype=float)[:, 0]
        self.best_iteration_ = None
        return self

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        if self.automl_ is None:
            raise RuntimeError("AutoMLModel: fit or load the model first")
        with _quiet_lightautoml():
            pred = self.automl_.predict(self._frame(X))
        return np.asarray(pred.data, dtype=float)[:, 0]

    def feature_importance(self, names: list[str]) -> pd.Series:
        """LightAutoML's fast (gain-based) importance per feature, summing to 1; zeros for
        features it dropped, and all zeros when it kept no importance."""
        s = pd.Series(0.0, index=list(names))
        fi = None
        if self.automl_ is not None:
            try:
                fi = self.automl_.get_feature_scores("fast")
            except Exception as exc:  # LightAutoML has no importance for some pipelines
                log.debug("LightAutoML feature scores unavailable: %s", exc)
        if fi is not None and len(fi):
            imp = pd.Series(fi["Importance"].to_numpy(dtype=float), index=fi["Feature"].astype(str))
            imp = imp.groupby(level=0).sum().clip(lower=0)
            s = imp.reindex(s.index).fillna(0.0).astype(float)
        total = s.sum()
        return s / total if total > 0 else s

    def save(self, path_stem: Path) -> None:
        """<stem>.joblib (LightAutoML's own pickle format) and <stem>.json, each written atomically."""
        if self.automl_ is None:
            raise RuntimeError("AutoMLModel: nothing to save; fit the model first")
        import joblib
        from importlib.metadata import PackageNotFoundError, version

        versions = {}
        for pkg in ("lightautoml", "lightgbm", "catboost", "scikit-learn", "numpy", "pandas", "torch"):
            try:
                versions[pkg] = version(pkg)
            except PackageNotFoundError:
                versions[pkg] = None
        atomic_write(_stem_file(path_stem, ".joblib"), lambda fh: joblib.dump(self.automl_, fh))
        meta = {"format_version": FORMAT_VERSION, "seed": self.seed, "best_iteration": self.best_iteration_,
                "categorical": self.categorical, "features": self.features_,
                "algorithms": list(self.config.algorithms), "folds": self.config.folds,
                "lightautoml_version": versions["lightautoml"], "versions": versions}
        atomic_write_text(_stem_file(path_stem, ".json"), json.dumps(meta, indent=1, ensure_ascii=False))

    @classmethod
    def load(cls, config: AutoMLConfig, path_stem: Path, trust: bool = False) -> "AutoMLModel":
        """LightAutoML saves its models only as a joblib pickle, which runs code when loaded:
        refused unless the caller says it trusts the file's source (``trust=True``)."""
        if not trust:
            from dupsearch.errors import UntrustedModelError
            raise UntrustedModelError(f"{_stem_file(path_stem, '.joblib')} is a pickle (LightAutoML's only "
                                      f"format): load it only from a source you trust, with trust=True "
                                      f"(--trust-model)")
        require_lightautoml()
        import joblib
        meta = json.loads(_stem_file(path_stem, ".json").read_text())
        saved, here = meta.get("lightautoml_version"), lightautoml_version()
        if saved != here:
            warnings.warn(f"AutoML model {path_stem} was saved with lightautoml {saved} but {here} is "
                          f"installed: loading may fail or predictions may differ", stacklevel=2)
        self = cls(config, meta["categorical"], meta["seed"])
        self.best_iteration_ = meta["best_iteration"]
        self.features_ = list(meta["features"])
        with open(_stem_file(path_stem, ".joblib"), "rb") as fh:
            self.automl_ = joblib.load(fh)
        return self
