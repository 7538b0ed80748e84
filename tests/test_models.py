"""dupsearch.models: metrics, grouped cross-validation and the DuplicateMatcher (fit, CV,
thresholds, model directory save/load)."""

from __future__ import annotations

import json
import math
import shutil

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score

import dupsearch
from conftest import fast_config
from dupsearch.errors import DataError, ModelNotFoundError, ModelVersionError, NotFittedError
from dupsearch.models import DuplicateMatcher
from dupsearch.models.cv import choose_groups, group_folds, pair_components
from dupsearch.models.metrics import (best_f1_threshold, binary_metrics, f1_at, half_best_f1_threshold,
                                      per_category_metrics)

BACKENDS = ["catboost", "lightgbm"]
BOOSTER_EXT = {"catboost": ".cbm", "lightgbm": ".txt"}

# --------------------------------------------------------------------------- metrics

# Scores sorted high to low; predicting "duplicate" at p >= t gives:
#   t=0.9: P=1   R=1/3 F1=0.5     t=0.8: P=1   R=2/3 F1=0.8
#   t=0.7: P=2/3 R=2/3 F1=2/3     t=0.6: P=3/4 R=1   F1=6/7  <- best
#   t=0.2: P=3/5 R=1   F1=3/4     t=0.1: P=1/2 R=1   F1=2/3
Y = np.array([1, 1, 0, 1, 0, 0])
P = np.array([0.9, 0.8, 0.7, 0.6, 0.2, 0.1])


def test_best_f1_threshold_hand_made():
    f1, thr = best_f1_threshold(Y, P)
    assert f1 == pytest.approx(6 / 7)
    assert thr == pytest.approx(0.6)
    # Order of the rows does not matter.
    perm = np.array([3, 0, 5, 2, 4, 1])
    assert best_f1_threshold(Y[perm], P[perm]) == pytest.approx((6 / 7, 0.6))


def test_best_f1_threshold_no_positive():
    f1, thr = best_f1_threshold(np.zeros(4), np.linspace(0, 1, 4))
    assert math.isnan(f1) and thr == 0.5


def _calibrated(n, rng):
    p = rng.beta(0.3, 2.0, n)  # few duplicates, scores that are their probabilities
    return (rng.random(n) < p).astype(int), p


def test_half_best_f1_is_the_best_threshold_of_calibrated_scores_and_steadier():
    """For calibrated probabilities the F1-best threshold is half the best F1: on a large sample
    the two rules agree; on validation-sized samples the half rule's threshold moves less and
    its F1 on fresh pairs is higher on average."""
    rng = np.random.default_rng(0)
    y, p = _calibrated(400_000, rng)
    f1, thr = best_f1_threshold(y, p)
    assert half_best_f1_threshold(y, p) == pytest.approx((f1, f1 / 2))
    assert abs(thr - f1 / 2) < 0.02
    picked = {"argmax": [], "half": []}
    fresh = {"argmax": [], "half": []}
    for _ in range(60):
        ys, ps = _calibrated(1_500, rng)
        for name, rule in (("argmax", best_f1_threshold), ("half", half_best_f1_threshold)):
            t = rule(ys, ps)[1]
            picked[name].append(t)
            fresh[name].append(f1_at(y, p, t))
    assert np.std(picked["half"]) < 0.5 * np.std(picked["argmax"])
    assert np.mean(fresh["half"]) > np.mean(fresh["argmax"])
    assert half_best_f1_threshold(np.zeros(4), np.linspace(0, 1, 4))[1] == 0.5


def test_f1_at():
    assert f1_at(Y, P, 0.6) == pytest.approx(6 / 7)
    assert f1_at(Y, P, 0.8) == pytest.approx(0.8)
    assert f1_at(Y, P, 0.75) == pytest.approx(0.8)  # between scores: same as the next one up
    assert f1_at(Y, P, 0.0) == pytest.approx(2 * 3 / (6 + 3))
    assert f1_at(Y, P, 0.95) == 0.0  # nothing predicted
    assert math.isnan(f1_at(np.zeros(3), np.zeros(3), 0.5))  # nothing to find, nothing found


def test_f1_at_agrees_with_best_f1():
    rng = np.random.RandomState(3)
    y = rng.rand(200) < 0.3
    p = np.clip(y * 0.3 + rng.rand(200) * 0.8, 0, 1)
    f1, thr = best_f1_threshold(y, p)
    assert f1_at(y, p, thr) == pytest.approx(f1)
    for t in np.linspace(0, 1, 41):
        assert f1_at(y, p, t) <= f1 + 1e-12


def test_binary_metrics_matches_sklearn():
    rng = np.random.RandomState(0)
    y = (rng.rand(300) < 0.25).astype(int)
    p = np.clip(0.35 * y + rng.rand(300) * 0.7, 0, 1)
    m = binary_metrics(y, p, threshold=0.5)
    assert m["pr_auc"] == pytest.approx(average_precision_score(y, p), abs=1e-12)
    assert m["roc_auc"] == pytest.approx(roc_auc_score(y, p), abs=1e-12)
    assert m["n_pairs"] == 300 and m["n_positive"] == int(y.sum())
    pred = p >= 0.5
    tp = int((pred & (y == 1)).sum())
    assert m["precision"] == pytest.approx(tp / pred.sum())
    assert m["recall"] == pytest.approx(tp / y.sum())
    assert m["f1"] == pytest.approx(f1_at(y, p, 0.5))
    assert m["threshold"] == 0.5
    assert (m["best_f1"], m["best_f1_threshold"]) == pytest.approx(best_f1_threshold(y, p))
    json.dumps(m, default=float)  # serializable as the CLI writes it


def test_binary_metrics_hand_made_and_single_class():
    m = binary_metrics(Y, P)
    # AP = mean of precision at each positive: (1 + 1 + 3/4) / 3
    assert m["pr_auc"] == pytest.approx((1 + 1 + 0.75) / 3)
    assert m["best_f1"] == pytest.approx(6 / 7) and m["best_f1_threshold"] == pytest.approx(0.6)
    assert "f1" not in m and "threshold" not in m
    one = binary_metrics(np.ones(4), np.linspace(0, 1, 4))
    assert math.isnan(one["pr_auc"]) and math.isnan(one["roc_auc"]) and math.isnan(one["best_f1"])


def test_per_category_metrics_groups():
    rng = np.random.RandomState(1)
    n = 120
    y = (rng.rand(n) < 0.4).astype(int)
    p = np.clip(0.3 * y + rng.rand(n) * 0.7, 0, 1)
    cat = np.array(["home", "electronics", "", None] * (n // 4), dtype=object)
    pc = per_category_metrics(y, p, cat, threshold=0.5)
    assert list(pc["category"]) == sorted(["home", "electronics", "(none)"])
    assert pc["n_pairs"].sum() == n
    for _, row in pc.iterrows():
        mask = (np.array(["(none)" if c in ("", None) else c for c in cat]) == row["category"])
        assert row["n_pairs"] == mask.sum()
        assert row["n_positive"] == y[mask].sum()
        assert row["pr_auc"] == pytest.approx(average_precision_score(y[mask], p[mask]))
        assert row["f1"] == pytest.approx(f1_at(y[mask], p[mask], 0.5))


# --------------------------------------------------------------------------- cross-validation


def _pairs(edges, labels=None):
    df = pd.DataFrame(edges, columns=["item_id_a", "item_id_b"])
    if labels is not None:
        df["label"] = labels
    return df


def test_pair_components_hand_made():
    pairs = _pairs([("a", "b"), ("b", "c"), ("d", "e"), ("f", "g"), ("g", "d"), ("h", "i"),
                    ("c", "a")])
    comp = pair_components(pairs)
    assert len(comp) == len(pairs)
    # {a,b,c}: rows 0,1,6   {d,e,f,g}: rows 2,3,4   {h,i}: row 5
    assert comp[0] == comp[1] == comp[6]
    assert comp[2] == comp[3] == comp[4]
    assert len({comp[0], comp[2], comp[5]}) == 3


def test_pair_components_ids_are_strings():
    # 1 and "1" are the same listing once read from a file.
    pairs = _pairs([(1, 2), ("2", "3"), (4, 5)])
    comp = pair_components(pairs)
    assert comp[0] == comp[1] != comp[2]


def _many_components(n_comp=40, seed=0):
    rng = np.random.RandomState(seed)
    edges, labels = [], []
    for c in range(n_comp):
        ids = [f"c{c}_{k}" for k in range(4)]
        for a, b in [(0, 1), (1, 2), (2, 3)][: 2 + c % 2]:
            edges.append((ids[a], ids[b]))
            labels.append(int(rng.rand() < 0.3))
    return _pairs(edges, labels)


def test_group_folds_keep_components_together():
    pairs = _many_components()
    y = pairs["label"].to_numpy()
    folds, rule = group_folds(pairs, y, n_splits=5, seed=0)
    assert rule == "pair-graph components"
    assert len(folds) == 5
    comp = pair_components(pairs)
    seen = np.zeros(len(pairs), dtype=int)
    fold_of_comp: dict[int, int] = {}
    for k, (tr, te) in enumerate(folds):
        assert len(np.intersect1d(tr, te)) == 0
        assert len(tr) + len(te) == len(pairs)
        seen[te] += 1
        for c in comp[te]:
            assert fold_of_comp.setdefault(c, k) == k, "one component in two folds"
        # No listing of a test fold appears in the fold's training pairs.
        test_ids = set(pairs.iloc[te][["item_id_a", "item_id_b"]].to_numpy().ravel())
        train_ids = set(pairs.iloc[tr][["item_id_a", "item_id_b"]].to_numpy().ravel())
        assert not test_ids & train_ids
    assert (seen == 1).all()


def test_group_folds_deterministic():
    pairs = _many_components()
    y = pairs["label"].to_numpy()
    f1, _ = group_folds(pairs, y, 5, seed=7)
    f2, _ = group_folds(pairs, y, 5, seed=7)
    assert all(np.array_equal(a[1], b[1]) for a, b in zip(f1, f2))


def test_group_folds_giant_component_falls_back_to_item_id_a():
    # A chain x0-x1-x2-...: one component holding every pair.
    n = 60
    pairs = _pairs([(f"x{i}", f"x{i + 1}") for i in range(n)], [i % 3 == 0 for i in range(n)])
    # Some listings on the left of several pairs.
    pairs = pd.concat([pairs, _pairs([("x0", f"x{i}") for i in range(5, 25)], [0] * 20)],
                      ignore_index=True)
    assert len(np.unique(pair_components(pairs))) == 1
    y = pairs["label"].to_numpy().astype(int)
    folds, rule = group_folds(pairs, y, n_splits=4)
    assert "item_id_a" in rule
    where: dict[str, int] = {}
    for k, (_, te) in enumerate(folds):
        for a in pairs["item_id_a"].iloc[te]:
            assert where.setdefault(a, k) == k, f"{a} on the left in two folds"
    assert sum(len(te) for _, te in folds) == len(pairs)


def test_group_column_is_honoured():
    pairs = _many_components()
    # Groups that cut across components: the user's column wins anyway.
    pairs["group"] = [f"g{i % 6}" for i in range(len(pairs))]
    y = pairs["label"].to_numpy()
    groups, rule = choose_groups(pairs, 3)
    assert rule == "group column"
    folds, rule = group_folds(pairs, y, n_splits=3)
    assert rule == "group column"
    where: dict[str, int] = {}
    for k, (_, te) in enumerate(folds):
        for g in pairs["group"].iloc[te]:
            assert where.setdefault(g, k) == k
    assert len(where) == 6


def test_group_folds_too_few_groups():
    pairs = _many_components(8)
    pairs["group"] = ["a", "b"] * (len(pairs) // 2) + ["a"] * (len(pairs) % 2)
    with pytest.raises(ValueError, match=r"only 2 independent groups.*group column.*need at least 5"):
        group_folds(pairs, pairs["label"].to_numpy(), n_splits=5)


# --------------------------------------------------------------------------- DuplicateMatcher


@pytest.fixture(scope="module")
def fitted(_market_once):
    """One matcher per backend, trained with validation pairs (fit once per module)."""
    m = _market_once
    return {b: DuplicateMatcher(fast_config(b)).fit(m.listings, m.train, m.valid) for b in BACKENDS}


@pytest.fixture(scope="module")
def fitted_cv(_market_once):
    m = _market_once
    return {b: DuplicateMatcher(fast_config(b, cv_folds=4)).fit(m.listings, m.train) for b in BACKENDS}


@pytest.fixture(scope="module")
def saved(fitted, tmp_path_factory):
    base = tmp_path_factory.mktemp("models")
    return {b: fitted[b].save(base / b) for b in BACKENDS}


def test_fixture_market_is_sane(market):
    assert 140 <= market.train.shape[0] / 4 <= 160  # ~600 pairs
    rate = market.train["label"].mean()
    assert 0.2 <= rate <= 0.35
    assert set(market.listings["category_l1"]) == {"electronics", "home", "clothing"}
    assert market.listings["item_id"].is_unique
    ids = set(market.listings["item_id"])
    for pairs in (market.train, market.valid, market.test):
        assert set(pairs["item_id_a"]) | set(pairs["item_id_b"]) <= ids
        assert pairs["label"].nunique() == 2


@pytest.mark.parametrize("backend", BACKENDS)
def test_fit_with_valid_beats_chance(fitted, market, backend):
    m = fitted[backend]
    p = m.predict_proba(market.listings, market.test)
    assert p.shape == (len(market.test),)
    assert ((p >= 0) & (p <= 1)).all()
    y = market.test["label"].to_numpy()
    ap = average_precision_score(y, p)
    assert ap > y.mean() + 0.4, (ap, y.mean())
    assert ap < 0.999  # the synthetic data is not trivial
    met = m.metrics_
    assert met["backend"] == backend
    assert met["n_train_pairs"] == len(market.train)
    assert met["n_features"] == len(m.feature_names) > 10
    assert "cv" not in met
    assert m.threshold_ == met["threshold"] == met["valid"]["best_f1_threshold"]
    assert met["threshold_rule"] == "best-f1"
    assert 0 < m.threshold_ < 1
    assert len(met["iterations"]) == 1 and 1 <= met["iterations"][0] <= 100
    # The threshold is chosen on valid: F1 there is the best F1 of valid.
    pv = m.predict_proba(market.listings, market.valid)
    assert f1_at(market.valid["label"], pv, m.threshold_) == pytest.approx(met["valid"]["best_f1"])
    pred = m.predict(market.listings, market.test)
    assert np.array_equal(pred, (p >= m.threshold_).astype(int))
    assert m.importance_ is not None
    assert m.importance_.sum() == pytest.approx(1.0)
    assert set(m.importance_.index) == set(m.feature_names)


def test_a_named_threshold_rule_is_followed_and_saved(market, tmp_path):
    m = DuplicateMatcher(fast_config("lightgbm", threshold_rule="half-best-f1")).fit(
        market.listings, market.train, market.valid)
    assert m.metrics_["threshold_rule"] == "half-best-f1"
    assert m.threshold_ == pytest.approx(m.metrics_["valid"]["best_f1"] / 2)
    assert m.threshold_ != pytest.approx(m.metrics_["valid"]["best_f1_threshold"])
    m.save(tmp_path / "model")
    assert DuplicateMatcher.load(tmp_path / "model").threshold_ == m.threshold_


@pytest.mark.parametrize("backend", BACKENDS)
def test_fit_without_valid_cross_validates(fitted_cv, market, backend):
    m = fitted_cv[backend]
    cv = m.metrics_["cv"]
    y = market.train["label"].to_numpy()
    assert "valid" not in m.metrics_
    assert len(cv["folds"]) == 4
    assert sum(f["n_pairs"] for f in cv["folds"]) == len(y)
    for f in cv["folds"]:
        assert f["pr_auc"] > y.mean() + 0.3
    assert cv["pr_auc_mean"] == pytest.approx(np.mean([f["pr_auc"] for f in cv["folds"]]))
    # The market's pair graph is one giant component, so the fallback rule is used and reported.
    assert "item_id_a" in cv["grouping"]
    # Out-of-fold predictions cover every training pair once; the threshold comes from them.
    assert m.oof_.shape == y.shape and np.isfinite(m.oof_).all()
    assert cv["oof"]["pr_auc"] == pytest.approx(average_precision_score(y, m.oof_))
    assert cv["oof"]["n_pairs"] == len(y)
    assert m.threshold_ == cv["oof"]["best_f1_threshold"] == m.metrics_["threshold"]
    assert m.threshold_ == pytest.approx(best_f1_threshold(y, m.oof_)[1])
    assert len(cv["best_iterations"]) == 4
    assert m.metrics_["iterations"] == [max(int(np.mean(cv["best_iterations"])), 10)]
    p = m.predict_proba(market.listings, market.test)
    assert average_precision_score(market.test["label"], p) > market.test["label"].mean() + 0.4


def test_fit_without_valid_is_deterministic(fitted_cv, market):
    m2 = DuplicateMatcher(fast_config("lightgbm", cv_folds=4)).fit(market.listings, market.train)
    assert np.array_equal(m2.oof_, fitted_cv["lightgbm"].oof_)
    assert m2.threshold_ == fitted_cv["lightgbm"].threshold_


@pytest.mark.parametrize("backend", BACKENDS)
def test_save_load_predicts_identically(fitted, saved, market, backend):
    path = saved[backend]
    m2 = DuplicateMatcher.load(path)
    for pairs in (market.test, market.valid):
        p1 = fitted[backend].predict_proba(market.listings, pairs)
        p2 = m2.predict_proba(market.listings, pairs)
        assert np.array_equal(p1, p2)
    assert m2.threshold_ == fitted[backend].threshold_
    assert m2.feature_names == fitted[backend].feature_names
    assert m2.config.gbdt.backend == backend
    assert m2.metrics_["n_features"] == fitted[backend].metrics_["n_features"]
    pd.testing.assert_series_equal(m2.importance_, fitted[backend].importance_, check_names=False,
                                   check_index_type=False)


@pytest.mark.parametrize("backend", BACKENDS)
def test_model_directory_contents(saved, fitted, backend):
    path = saved[backend]
    names = {p.name for p in path.iterdir()}
    assert not any(p.suffix in (".pkl", ".pickle", ".joblib") for p in path.rglob("*"))  # no pickle
    for f in ("config.json", "features.json", "feature_pipeline.json", "feature_pipeline.npz", "metrics.json",
              "manifest.json", ".dupsearch.json",
              "booster_0.json", "booster_0" + BOOSTER_EXT[backend]):
        assert f in names, f
    cfg = json.loads((path / "config.json").read_text())
    assert cfg["gbdt"]["backend"] == backend and cfg["n_models"] == 1
    feats = json.loads((path / "features.json").read_text())
    assert feats["features"] == fitted[backend].feature_names
    manifest = json.loads((path / "manifest.json").read_text())
    assert manifest["format_version"] == dupsearch.MODEL_FORMAT_VERSION
    assert manifest["backend"] == backend and manifest["n_models"] == 1
    assert manifest["threshold"] == fitted[backend].threshold_
    # every file with its sha256 (the manifest itself and the marker excepted)
    from dupsearch.digests import file_sha256
    listed = {p.relative_to(path).as_posix() for p in path.rglob("*") if p.is_file()} - {"manifest.json",
                                                                                          ".dupsearch.json"}
    assert set(manifest["files"]) == listed
    assert all(manifest["files"][n] == file_sha256(path / n) for n in listed)
    v = manifest["versions"]
    assert v["dupsearch"] == dupsearch.__version__
    for dep in ("python", "numpy", "pandas", "scikit-learn", "catboost", "lightgbm"):
        assert v.get(dep) and v[dep] != "not installed", dep
    metrics = json.loads((path / "metrics.json").read_text())
    assert metrics["valid"]["pr_auc"] == pytest.approx(fitted[backend].metrics_["valid"]["pr_auc"])


def test_load_rejects_other_format_version(saved, tmp_path):
    path = tmp_path / "old_model"
    shutil.copytree(saved["catboost"], path)
    mf = path / "manifest.json"
    manifest = json.loads(mf.read_text())
    manifest["format_version"] = 999
    manifest["versions"]["dupsearch"] = "9.9.9"
    mf.write_text(json.dumps(manifest))
    with pytest.raises(ModelVersionError) as err:
        DuplicateMatcher.load(path)
    msg = str(err.value)
    assert "model format 999" in msg
    assert f"model format {dupsearch.MODEL_FORMAT_VERSION}" in msg
    assert "9.9.9" in msg and dupsearch.__version__ in msg and str(path) in msg


def test_load_non_model_directory(tmp_path):
    (tmp_path / "empty").mkdir()
    for p in (tmp_path / "empty", tmp_path / "missing"):
        with pytest.raises(ModelNotFoundError, match="not a dupsearch model directory"):
            DuplicateMatcher.load(p)
    with pytest.raises(FileNotFoundError):  # catchable as the builtin too
        DuplicateMatcher.load(tmp_path / "missing")


def test_save_replaces_existing_model_atomically(fitted, market, tmp_path):
    parent = tmp_path / "models"
    target = parent / "model"
    fitted["catboost"].save(target)
    (target / "booster_7.cbm").write_text("a booster of an older model")  # dupsearch's own kind of file
    fitted["lightgbm"].save(target)
    # Only the model directory in the parent: no temp or .old directories left behind.
    assert [p.name for p in parent.iterdir()] == ["model"]
    names = {p.name for p in target.iterdir()}
    assert "booster_0.txt" in names and "booster_0.cbm" not in names and "booster_7.cbm" not in names
    m2 = DuplicateMatcher.load(target)
    assert m2.config.gbdt.backend == "lightgbm"
    assert np.array_equal(m2.predict_proba(market.listings, market.test),
                          fitted["lightgbm"].predict_proba(market.listings, market.test))


def test_failed_save_keeps_old_model(fitted, market, tmp_path, monkeypatch):
    parent = tmp_path / "models"
    target = parent / "model"
    fitted["catboost"].save(target)
    before = DuplicateMatcher.load(target).predict_proba(market.listings, market.test)

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(fitted["lightgbm"].models_[0], "save", boom)
    with pytest.raises(OSError, match="disk full"):
        fitted["lightgbm"].save(target)
    assert [p.name for p in parent.iterdir()] == ["model"]
    m2 = DuplicateMatcher.load(target)
    assert m2.config.gbdt.backend == "catboost"
    assert np.array_equal(m2.predict_proba(market.listings, market.test), before)


def test_training_labels_must_have_both_values(market):
    cfg = fast_config("lightgbm")
    only_neg = market.train[market.train["label"] == 0]
    with pytest.raises(DataError, match="only label 0"):
        DuplicateMatcher(cfg).fit(market.listings, only_neg)
    with pytest.raises(DataError, match="label"):
        DuplicateMatcher(cfg).fit(market.listings, market.train.drop(columns="label"))
    only_pos = market.valid[market.valid["label"] == 1]
    with pytest.raises(DataError, match="validation.*only label 1"):
        DuplicateMatcher(cfg).fit(market.listings, market.train, only_pos)
    with pytest.raises(DataError, match="validation.*label"):
        DuplicateMatcher(cfg).fit(market.listings, market.train, market.valid.drop(columns="label"))


@pytest.mark.parametrize("backend", BACKENDS)
def test_predictions_symmetric_in_pair_order(fitted, market, backend):
    pairs = market.test
    swapped = pairs.rename(columns={"item_id_a": "item_id_b", "item_id_b": "item_id_a"})
    swapped = swapped[["item_id_a", "item_id_b", "label"]]
    m = fitted[backend]
    assert np.array_equal(m.predict_proba(market.listings, pairs),
                          m.predict_proba(market.listings, swapped))


def test_predict_order_independent_and_edge_cases(fitted, market):
    m = fitted["lightgbm"]
    p = m.predict_proba(market.listings, market.test)
    perm = np.random.RandomState(0).permutation(len(market.test))
    # Shuffled listings, shuffled pairs, and a pairs index that is not 0..n-1.
    p_perm = m.predict_proba(market.listings.sample(frac=1.0, random_state=1), market.test.iloc[perm])
    assert np.allclose(p_perm, p[perm], rtol=0, atol=1e-12)
    assert m.predict_proba(market.listings, market.test.iloc[:0]).shape == (0,)
    with pytest.raises(NotFittedError, match="not fitted"):
        DuplicateMatcher(fast_config()).predict_proba(market.listings, market.test)


def test_catboost_predictions_equal_catboost_reading_the_frame():
    """GBDTModel hands CatBoost its numeric columns as one float32 block and the categorical
    ones apart (FeaturesData); the categorical column sits between numeric ones and decides the
    label, so a column mapped wrongly would change the predictions."""
    from dupsearch.config import GBDTConfig
    from dupsearch.models.gbdt import GBDTModel
    rng = np.random.default_rng(0)
    n = 600
    kind = rng.choice(["a|a", "a|b", "b|b"], n)
    X = pd.DataFrame({"x0": rng.normal(size=n), "kind": kind, "x1": rng.normal(size=n),
                      "x2": np.where(rng.random(n) < 0.2, np.nan, rng.normal(size=n))})
    y = ((kind == "a|b") ^ (X["x0"] > 1)).astype(int).to_numpy()
    model = GBDTModel(GBDTConfig(max_iterations=60), categorical=["kind"]).fit(X, y)
    for rows in (X.iloc[:7], X):  # an online match's few pairs and a batch
        mine = model.predict_proba(rows)
        theirs = model.booster_.predict_proba(model._cb_frame(rows))[:, 1]
        np.testing.assert_allclose(mine, theirs, rtol=0, atol=1e-12)
    flipped = X.assign(kind=np.where(X["kind"] == "a|b", "b|b", "a|b"))
    assert np.abs(model.predict_proba(flipped) - model.predict_proba(X)).mean() > 0.2
