"""dupsearch.models.automl: the optional LightAutoML backend.

Without the extra, the fitting tests are skipped and the install hint is checked; with it, real
LightAutoML fits on a small synthetic problem (threads=1: on a 2-core machine shared with other
work, 2 OpenMP threads per booster can make each fit many times slower)."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from dupsearch.encoders.base import MissingDependencyError
from dupsearch.models.automl import INSTALL_HINT, AutoMLConfig, AutoMLModel, require_lightautoml

HAVE_LAMA = importlib.util.find_spec("lightautoml") is not None
SKIP_REASON = "LightAutoML extra not installed: pip install 'dupsearch[automl]'"
needs_lama = pytest.mark.skipif(not HAVE_LAMA, reason=SKIP_REASON)

FEATURES = ["a", "b", "noise", "shop", "empty", "const", "site"]


def synthetic(n: int = 500, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """Signal in two numeric features (a, b) and a little in the categorical 'shop'; as in real
    feature matrices, also a column that is all NaN, a constant one and a constant categorical."""
    rng = np.random.default_rng(seed)
    X = pd.DataFrame({"a": rng.normal(size=n), "b": rng.normal(size=n), "noise": rng.normal(size=n),
                      "shop": rng.choice(["north", "south", "east"], size=n),
                      "empty": np.full(n, np.nan), "const": np.ones(n), "site": "main"})
    logit = 3 * X["a"] - 3 * X["b"] + 1.5 * (X["shop"] == "north") - 0.5
    y = (rng.random(n) < 1 / (1 + np.exp(-logit.to_numpy()))).astype(int)
    return X, y


def cfg(**kw) -> AutoMLConfig:
    return AutoMLConfig(**{"algorithms": ("lgb",), "folds": 3, "timeout": 60, "threads": 1, **kw})


# --------------------------------------------------------------------------- always

def test_import_does_not_load_lightautoml():
    code = "import sys, dupsearch.models.automl; print('lightautoml' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert out.stdout.strip() == "False"


def test_config_validates_and_normalises():
    c = AutoMLConfig(algorithms=["lgb", "cb_tuned"])  # a list, as from a JSON config
    assert c.algorithms == ("lgb", "cb_tuned")
    assert AutoMLConfig().algorithms == ("lgb", "lgb_tuned", "cb", "cb_tuned") and AutoMLConfig().folds == 5
    with pytest.raises(ValueError, match="unknown LightAutoML algorithm"):
        AutoMLConfig(algorithms=("lgbm",))
    with pytest.raises(ValueError, match="folds"):
        AutoMLConfig(folds=1)
    with pytest.raises(ValueError, match="empty"):
        AutoMLConfig(algorithms=())


@pytest.mark.skipif(HAVE_LAMA, reason="LightAutoML is installed; the missing-extra message cannot show")
def test_missing_extra_gives_install_hint(tmp_path):
    with pytest.raises(MissingDependencyError, match=r"pip install 'dupsearch\[automl\]'"):
        require_lightautoml()
    X, y = synthetic(50)
    with pytest.raises(MissingDependencyError, match="LightAutoML") as exc:
        AutoMLModel(cfg(), categorical=["shop", "site"]).fit(X, y)
    assert INSTALL_HINT in str(exc.value)
    assert isinstance(exc.value, ImportError)  # callers may catch it as an ImportError too
    with pytest.raises(MissingDependencyError, match=r"dupsearch\[automl\]"):
        AutoMLModel.load(cfg(), tmp_path / "automl", trust=True)
    from dupsearch.errors import UntrustedModelError
    with pytest.raises(UntrustedModelError, match="pickle"):  # refused before anything is read
        AutoMLModel.load(cfg(), tmp_path / "automl")


# --------------------------------------------------------------------------- with the extra

@pytest.fixture(scope="module")
def data():
    X, y = synthetic(500)
    return X.iloc[:350].reset_index(drop=True), y[:350], X.iloc[350:].reset_index(drop=True), y[350:]


@pytest.fixture(scope="module")
def fitted_lgb(data):
    if not HAVE_LAMA:
        pytest.skip(SKIP_REASON)
    X, y, _, _ = data
    return AutoMLModel(cfg(), categorical=["shop", "site"], seed=3).fit(X, y)


@needs_lama
def test_lgb_fit_predicts_held_out_rows(fitted_lgb, data):
    X, y, Xt, yt = data
    p = fitted_lgb.predict_proba(Xt)
    assert p.shape == (len(Xt),) and np.all((p >= 0) & (p <= 1))
    assert roc_auc_score(yt, p) > 0.8
    assert fitted_lgb.best_iteration_ is None
    assert fitted_lgb.automl_.reader.roles["shop"].name == "Category"  # passed as a categorical role
    assert fitted_lgb.automl_.reader.roles["a"].name == "Numeric"
    assert fitted_lgb.automl_.cpu_limit == 1
    # LightAutoML's own out-of-fold predictions: one per training row, and informative
    assert fitted_lgb.oof_.shape == (len(X),) and np.isfinite(fitted_lgb.oof_).all()
    assert roc_auc_score(y, fitted_lgb.oof_) > 0.8
    # column order and extra columns at predict time do not matter: columns are taken by name
    shuffled = Xt[FEATURES[::-1]].assign(extra=1.0)
    np.testing.assert_allclose(fitted_lgb.predict_proba(shuffled), p)
    with pytest.raises(ValueError, match="missing"):
        fitted_lgb.predict_proba(Xt.drop(columns="a"))


@needs_lama
def test_feature_importance_normalised(fitted_lgb):
    imp = fitted_lgb.feature_importance(FEATURES + ["absent"])
    assert list(imp.index) == FEATURES + ["absent"]
    assert imp.sum() == pytest.approx(1.0) and (imp >= 0).all()
    assert imp["absent"] == 0.0 and imp["empty"] == 0.0 and imp["const"] == 0.0
    assert set(imp.nlargest(2).index) == {"a", "b"}


@needs_lama
def test_save_load_gives_identical_predictions(fitted_lgb, data, tmp_path):
    _, _, Xt, _ = data
    stem = tmp_path / "models" / "automl.v1"  # a dot in the stem keeps the whole name
    fitted_lgb.save(stem)
    assert sorted(p.name for p in stem.parent.iterdir()) == ["automl.v1.joblib", "automl.v1.json"]
    meta = json.loads((stem.parent / "automl.v1.json").read_text())
    from importlib.metadata import version
    assert meta["lightautoml_version"] == version("lightautoml")
    assert meta["categorical"] == ["shop", "site"] and meta["seed"] == 3 and meta["features"] == FEATURES
    loaded = AutoMLModel.load(cfg(), stem, trust=True)
    assert loaded.categorical == ["shop", "site"] and loaded.seed == 3
    np.testing.assert_array_equal(loaded.predict_proba(Xt), fitted_lgb.predict_proba(Xt))


@needs_lama
def test_same_seed_same_model(fitted_lgb, data):
    X, y, Xt, _ = data
    again = AutoMLModel(cfg(), categorical=["shop", "site"], seed=3).fit(X, y)
    np.testing.assert_array_equal(again.oof_, fitted_lgb.oof_)
    np.testing.assert_array_equal(again.predict_proba(Xt), fitted_lgb.predict_proba(Xt))


@needs_lama
def test_lgb_and_catboost_five_folds(data):
    X, y, Xt, yt = data
    # eval_set and iterations are accepted (the GBDTModel interface) and left to LightAutoML's CV
    m = AutoMLModel(cfg(algorithms=("lgb", "cb"), folds=5), categorical=["shop", "site"], seed=0)
    m.fit(X, y, eval_set=(Xt, yt), iterations=100)
    assert m.oof_.shape == (len(X),) and np.isfinite(m.oof_).all()
    assert roc_auc_score(yt, m.predict_proba(Xt)) > 0.8
    desc = m.automl_.create_model_str_desc()
    assert "LightGBM" in desc and "CatBoost" in desc
