"""GBDTModel.shap_values: per-feature contributions that add up to the raw margin."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from dupsearch.models.gbdt import GBDTConfig, GBDTModel


@pytest.fixture(scope="module")
def data():
    rng = np.random.RandomState(3)
    n = 600
    X = pd.DataFrame({
        "a": rng.rand(n), "b": rng.randn(n), "c": rng.rand(n),
        "d": rng.randint(0, 5, n).astype(float),
        "cat": np.array(["x", "y", "z", "w"])[rng.randint(4, size=n)],
    })
    X.loc[rng.rand(n) < 0.05, "b"] = np.nan
    logit = 3 * X["a"] - 2 * X["c"] + 0.5 * X["b"].fillna(0) + (X["cat"] == "x") * 1.5 - 0.8
    y = (rng.rand(n) < 1 / (1 + np.exp(-logit))).astype(int).to_numpy()
    return X, y


def _raw_and_expected(model: GBDTModel, X: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Raw margin from the library itself, and the full contribution matrix (with expected value)."""
    if model.config.backend == "catboost":
        from catboost import Pool
        Xc = model._cb_frame(X)
        raw = model.booster_.predict(Xc, prediction_type="RawFormulaVal")
        full = model.booster_.get_feature_importance(Pool(Xc, cat_features=model.categorical),
                                                     type="ShapValues")
    else:
        booster = model.booster_.booster_
        Xl = model._lgb_frame(X, fit=False)
        raw = booster.predict(Xl, num_iteration=model.best_iteration_, raw_score=True)
        full = booster.predict(Xl, num_iteration=model.best_iteration_, pred_contrib=True)
    return np.asarray(raw, dtype=float), np.asarray(full, dtype=float)[:, -1]


def _check(model: GBDTModel, X: pd.DataFrame) -> np.ndarray:
    sv = model.shap_values(X)
    assert sv.shape == X.shape
    assert np.isfinite(sv).all()
    raw, expected = _raw_and_expected(model, X)
    scale = max(1.0, float(np.max(np.abs(raw))))
    np.testing.assert_allclose(sv.sum(axis=1) + expected, raw, rtol=0, atol=1e-6 * scale)
    # the margin is what predict_proba turns into a probability
    np.testing.assert_allclose(1 / (1 + np.exp(-raw)), model.predict_proba(X), atol=1e-6)
    return sv


@pytest.mark.parametrize("backend", ["catboost", "lightgbm"])
@pytest.mark.parametrize("early_stop", [False, True])
def test_shap_sums_to_margin_before_and_after_load(data, tmp_path, backend, early_stop):
    X, y = data
    cfg = GBDTConfig(backend=backend, max_iterations=80, early_stopping_rounds=10, depth=4,
                     threads=1)
    tr, va = np.arange(450), np.arange(450, 600)
    model = GBDTModel(cfg, categorical=["cat"], seed=1).fit(
        X.iloc[tr], y[tr], eval_set=(X.iloc[va], y[va]) if early_stop else None)
    before = _check(model, X.iloc[va])
    # the informative features carry the most weight
    mean_abs = pd.Series(np.abs(before).mean(axis=0), index=X.columns)
    assert mean_abs["a"] > mean_abs["d"]

    model.save(tmp_path / "m")
    loaded = GBDTModel.load(cfg, tmp_path / "m")
    after = _check(loaded, X.iloc[va])
    np.testing.assert_allclose(after, before, atol=1e-6)


# The warning comes from GBDTModel._lgb_frame (pandas deprecates values outside the fixed categories).
@pytest.mark.filterwarnings("ignore:Constructing a Categorical with a dtype:DeprecationWarning")
def test_shap_on_rows_with_unseen_category(data):
    X, y = data
    for backend in ("catboost", "lightgbm"):
        cfg = GBDTConfig(backend=backend, max_iterations=30, depth=3, threads=1)
        model = GBDTModel(cfg, categorical=["cat"], seed=0).fit(X, y)
        Xn = X.iloc[:20].copy()
        Xn["cat"] = "never-seen"
        sv = _check(model, Xn)
        assert sv.shape == (20, X.shape[1])
