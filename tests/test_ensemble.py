"""Model combination of issue #6: prior-shift alignment, learned blend weights, per-category
calibration, per-category models, the leak-free cross-fitted combination, and their use in
DuplicateMatcher (CV and validation fits, save/load, enlargement)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from scipy.special import expit, logit
from sklearn.metrics import log_loss, roc_auc_score

from conftest import fast_config
from dupsearch.models import DuplicateMatcher, MatcherConfig
from dupsearch.models.blend import learn_blend_weights
from dupsearch.models.calibration import CategoryCalibrator, prior_shift
from dupsearch.models.ensemble import (NO_CATEGORY, CategoryModels, Combiner, EnsembleConfig, align_scores,
                                       cross_fitted_combination, fill_fallbacks, pair_categories)
from dupsearch.models.gbdt import GBDTConfig, GBDTModel
from dupsearch.models.stacking import StackingConfig

# --------------------------------------------------------------------------- prior_shift


def test_prior_shift_hand_computed():
    # odds 1 * (0.1/0.9) / (0.5/0.5) = 1/9 -> p = 0.1
    assert prior_shift(0.5, 0.1, 0.5) == pytest.approx(0.1, abs=1e-12)
    # odds 0.8/0.2 = 4; 4 * (0.2/0.8) / (0.4/0.6) = 4 * 0.25 * 1.5 = 1.5 -> p = 1.5/2.5 = 0.6
    assert prior_shift(0.8, 0.2, 0.4) == pytest.approx(0.6, abs=1e-12)
    # odds 0.25/0.75 = 1/3; (1/3) * (0.5/0.5) / (0.2/0.8) = 4/3 -> p = (4/3)/(7/3) = 4/7
    assert prior_shift(0.25, 0.5, 0.2) == pytest.approx(4 / 7, abs=1e-12)
    # vectorised over p with scalar priors
    np.testing.assert_allclose(prior_shift(np.array([0.5, 0.8]), 0.2, 0.4),
                               [1 / (1 + 1 / (0.25 * 1.5)), 0.6], atol=1e-12)


def test_prior_shift_identity_fixed_points_and_monotone():
    p = np.linspace(0, 1, 101)
    np.testing.assert_allclose(prior_shift(p, 0.3, 0.3), p, atol=1e-15)
    for pi, rho in [(0.05, 0.5), (0.9, 0.1), (0.3, 0.7)]:
        q = prior_shift(p, pi, rho)
        assert q[0] == 0.0 and q[-1] == 1.0
        assert np.all(np.diff(q) > 0)
        assert np.all((q >= 0) & (q <= 1))
        # the shift moves the probability in the direction of the prior change
        assert np.all((q[1:-1] > p[1:-1]) == (pi > rho))


def test_prior_shift_round_trip():
    rng = np.random.RandomState(0)
    p = rng.rand(1000)
    for a, b in [(0.1, 0.5), (0.02, 0.98), (0.7, 0.3)]:
        np.testing.assert_allclose(prior_shift(prior_shift(p, a, b), b, a), p, atol=1e-12)


def test_prior_shift_per_row_priors():
    p = np.array([0.5, 0.8, 0.25, 0.4])
    pi = np.array([0.1, 0.2, 0.5, 0.4])
    rho = np.array([0.5, 0.4, 0.2, 0.4])
    out = prior_shift(p, pi, rho)
    np.testing.assert_allclose(out, [0.1, 0.6, 4 / 7, 0.4], atol=1e-12)
    # row by row the same as scalar calls
    np.testing.assert_allclose(out, [prior_shift(*t) for t in zip(p, pi, rho)], atol=1e-15)


@pytest.mark.parametrize("pi, rho", [(0.0, 0.5), (1.0, 0.5), (0.5, 0.0), (0.5, 1.0),
                                     (np.array([0.2, 0.0]), 0.5), (0.3, np.array([0.4, 1.0]))])
def test_prior_shift_rejects_degenerate_priors(pi, rho):
    with pytest.raises(ValueError):
        prior_shift(np.array([0.3, 0.6]), pi, rho)


def test_prior_shift_matches_resampled_class_balance():
    """A logistic truth P(y=1|x) = sigmoid(a + b x), x ~ N(0, 1), has prior rho. Keeping a share r
    of the negatives changes the prior to pi; the posterior there follows from the class-conditional
    densities by Bayes. prior_shift of the old posterior must give the new one."""
    a, b, r = -1.5, 2.0, 0.3
    x = np.linspace(-8, 8, 16001)
    dx = x[1] - x[0]
    phi = np.exp(-x ** 2 / 2) / np.sqrt(2 * np.pi)
    p = expit(a + b * x)
    rho = float(np.sum(p * phi) * dx)
    f1, f0 = p * phi / rho, (1 - p) * phi / (1 - rho)  # class-conditional densities of x
    pi = rho / (rho + r * (1 - rho))                     # prior after subsampling the negatives
    truth = pi * f1 / (pi * f1 + (1 - pi) * f0)
    inside = phi > 1e-12  # where the densities are not numerically zero
    np.testing.assert_allclose(prior_shift(p, pi, rho)[inside], truth[inside], atol=1e-9)
    # and backwards: from the subsampled population to the original one
    np.testing.assert_allclose(prior_shift(truth, rho, pi)[inside], p[inside], atol=1e-9)

    # Monte Carlo: the empirical duplicate rate per x-bin after subsampling agrees too.
    rng = np.random.RandomState(0)
    xs = rng.randn(400_000)
    ys = rng.rand(len(xs)) < expit(a + b * xs)
    keep = ys | (rng.rand(len(xs)) < r)
    xs, ys = xs[keep], ys[keep]
    assert ys.mean() == pytest.approx(pi, abs=0.005)
    edges = np.quantile(xs, np.linspace(0, 1, 11))
    bins = np.clip(np.searchsorted(edges, xs, side="right") - 1, 0, 9)
    expected = prior_shift(expit(a + b * xs), pi, rho)
    for k in range(10):
        m = bins == k
        assert ys[m].mean() == pytest.approx(expected[m].mean(), abs=0.01)
        # the unshifted posterior is clearly wrong in the middle bins
    mid = (bins >= 4) & (bins <= 6)
    assert abs(ys[mid].mean() - expit(a + b * xs[mid]).mean()) > 0.05


# --------------------------------------------------------------------------- learn_blend_weights


def _probabilities(rng, n):
    return np.column_stack([rng.uniform(0, 1, n), rng.beta(0.5, 0.5, n), rng.beta(2, 5, n)])


def test_blend_weights_recovered_on_known_mixture():
    rng = np.random.RandomState(1)
    P = _probabilities(rng, 20_000)
    true_w = np.array([0.6, 0.3, 0.1])
    y = (rng.rand(len(P)) < P @ true_w).astype(int)
    w = learn_blend_weights(P, y)
    assert w.shape == (3,)
    np.testing.assert_allclose(w, true_w, atol=0.05)
    assert np.all(w >= 0) and w.sum() == pytest.approx(1.0, abs=1e-12)
    # columns in another order: the same weights, permuted
    perm = [2, 0, 1]
    np.testing.assert_allclose(learn_blend_weights(P[:, perm], y), w[perm], atol=1e-4)


def test_blend_weight_of_a_noise_column_is_near_zero():
    rng = np.random.RandomState(2)
    P = _probabilities(rng, 20_000)
    y = (rng.rand(len(P)) < 0.7 * P[:, 0] + 0.3 * P[:, 1]).astype(int)
    noise = rng.uniform(0, 1, len(P))  # independent of y
    w = learn_blend_weights(np.column_stack([P[:, 0], noise, P[:, 1]]), y)
    assert w[1] < 0.03
    np.testing.assert_allclose(w[[0, 2]], [0.7, 0.3], atol=0.05)
    assert np.all(w >= 0) and w.sum() == pytest.approx(1.0, abs=1e-12)


def test_blend_weights_edge_cases():
    rng = np.random.RandomState(3)
    P = rng.rand(50, 2)
    y = (rng.rand(50) < 0.5).astype(int)
    np.testing.assert_array_equal(learn_blend_weights(P[:, :1], y), [1.0])
    # identical columns: any convex weights are optimal; still a valid weight vector
    w = learn_blend_weights(np.column_stack([P[:, 0], P[:, 0]]), y)
    assert np.all(w >= 0) and w.sum() == pytest.approx(1.0)
    bad = P.copy()
    bad[3, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        learn_blend_weights(bad, y)
    with pytest.raises(ValueError, match="NaN"):
        learn_blend_weights(bad[:, 1:], y)  # one column holding NaN is just as unusable
    with pytest.raises(ValueError):
        learn_blend_weights(P, y[:-1])
    with pytest.raises(ValueError):
        learn_blend_weights(P[:, 0], y)  # 1-D: not (n_pairs, n_models)


# --------------------------------------------------------------------------- CategoryCalibrator


def _distorted(rng, n_per_cat=4000):
    """Category A's scores are too flat (truth sigmoid(2 logit p + 1)); B's too steep
    (truth sigmoid(0.5 logit p - 1)); C has only 60 pairs."""
    cats, ps, ys = [], [], []
    for c, (a, b), n in [("A", (2.0, 1.0), n_per_cat), ("B", (0.5, -1.0), n_per_cat), ("C", (2.0, 1.0), 60)]:
        p = expit(rng.uniform(-3, 3, n))
        ys.append((rng.rand(n) < expit(a * logit(p) + b)).astype(int))
        ps.append(p)
        cats += [c] * n
    return np.concatenate(ps), np.concatenate(ys), np.array(cats, dtype=object)


def test_platt_per_category_recovers_distortion():
    rng = np.random.RandomState(4)
    p, y, cat = _distorted(rng)
    cal = CategoryCalibrator("platt", min_pairs=200, min_positives=20).fit(p, y, cat)
    assert sorted(cal.per_category_) == ["A", "B"]  # C is too small
    assert cal.per_category_["A"].a == pytest.approx(2.0, abs=0.25)
    assert cal.per_category_["A"].b == pytest.approx(1.0, abs=0.25)
    assert cal.per_category_["B"].a == pytest.approx(0.5, abs=0.15)
    assert cal.per_category_["B"].b == pytest.approx(-1.0, abs=0.15)
    # on fresh data, calibrated log-loss beats the raw scores and the shared map in each category
    p2, y2, cat2 = _distorted(np.random.RandomState(5))
    q = cal.transform(p2, cat2)
    shared = cal.shared_.transform(p2)
    for c in ("A", "B"):
        m = cat2 == c
        assert log_loss(y2[m], q[m]) < log_loss(y2[m], p2[m]) - 0.01
        assert log_loss(y2[m], q[m]) < log_loss(y2[m], shared[m]) - 0.005
    # the small category and an unseen one use the shared map
    m = cat2 == "C"
    np.testing.assert_array_equal(q[m], shared[m])
    np.testing.assert_array_equal(cal.transform(p2[:10], np.array(["Z"] * 10)), shared[:10])


def test_calibrator_minimum_counts():
    rng = np.random.RandomState(6)
    p = rng.rand(300)
    y = np.r_[np.ones(19, int), np.zeros(281, int)]
    cat = np.array(["A"] * 300)
    assert CategoryCalibrator("platt", min_pairs=300, min_positives=20).fit(p, y, cat).per_category_ == {}
    y[19] = 1  # now 20 positives
    assert list(CategoryCalibrator("platt", min_pairs=300, min_positives=20).fit(p, y, cat).per_category_) == ["A"]
    assert CategoryCalibrator("platt", min_pairs=301, min_positives=20).fit(p, y, cat).per_category_ == {}
    # both classes need min_positives pairs: 281 positives and 19 negatives is not enough
    assert CategoryCalibrator("platt", min_pairs=300, min_positives=20).fit(p, 1 - y + (np.arange(300) == 19),
                                                                            cat).per_category_ == {}
    y2 = np.r_[np.ones(280, int), np.zeros(20, int)]
    assert list(CategoryCalibrator("platt", min_pairs=300, min_positives=20).fit(p, y2, cat).per_category_) == ["A"]
    with pytest.raises(ValueError):
        CategoryCalibrator("beta")


@pytest.mark.parametrize("method", ["platt", "isotonic"])
def test_calibrator_json_round_trip(method):
    rng = np.random.RandomState(7)
    p, y, cat = _distorted(rng, 1000)
    cal = CategoryCalibrator(method, min_pairs=200, min_positives=20).fit(p, y, cat)
    text = json.dumps(cal.to_dict())  # plain JSON
    cal2 = CategoryCalibrator.from_dict(json.loads(text))
    assert (cal2.method, cal2.min_pairs, cal2.min_positives) == (method, 200, 20)
    assert sorted(cal2.per_category_) == sorted(cal.per_category_) == ["A", "B"]
    p2, _, cat2 = _distorted(np.random.RandomState(8), 500)
    cat2[:5] = "unseen"
    np.testing.assert_array_equal(cal2.transform(p2, cat2), cal.transform(p2, cat2))


def test_isotonic_monotone_within_category():
    rng = np.random.RandomState(9)
    p, y, cat = _distorted(rng, 2000)
    cal = CategoryCalibrator("isotonic", min_pairs=200, min_positives=20).fit(p, y, cat)
    grid = np.linspace(0, 1, 501)
    for c in ("A", "B", "C", "unseen"):
        q = cal.transform(grid, np.array([c] * len(grid)))
        assert np.all(np.diff(q) >= 0), c
        assert np.all((q >= 0) & (q <= 1))
    # A and B have their own maps: different values at the same score
    qa = cal.transform(grid, np.array(["A"] * len(grid)))
    qb = cal.transform(grid, np.array(["B"] * len(grid)))
    assert np.abs(qa - qb).max() > 0.2


# --------------------------------------------------------------------------- fill / align


def test_fill_fallbacks_hand_made():
    nan = np.nan
    scores = {"general": np.array([0.1, 0.2, 0.3, 0.4]),
              "category": np.array([nan, 0.5, nan, 0.7]),
              "automl": np.array([0.15, 0.25, 0.35, 0.45]),
              "automl_category": np.array([0.9, nan, nan, 0.8])}
    out = fill_fallbacks(scores)
    np.testing.assert_array_equal(out["category"], [0.1, 0.5, 0.3, 0.7])         # from general
    np.testing.assert_array_equal(out["automl_category"], [0.9, 0.25, 0.35, 0.8])  # from automl
    np.testing.assert_array_equal(out["general"], scores["general"])
    assert np.isnan(scores["category"][0])  # the input is not modified
    # without an automl component the general score stands in
    out = fill_fallbacks({"general": scores["general"], "automl_category": scores["automl_category"]})
    np.testing.assert_array_equal(out["automl_category"], [0.9, 0.2, 0.3, 0.8])


def test_align_scores_hand_made():
    cat = np.array(["A", "B", "C", "A", NO_CATEGORY], dtype=object)
    scores = {"general": np.array([0.5, 0.8, 0.3, 0.25, 0.6]),
              "category": np.array([0.5, 0.8, 0.3, 0.25, 0.6])}
    priors = {"A": 0.5, "B": 0.4}  # C and (none) have no category model
    out = align_scores(scores, cat, priors, overall_prior=0.2)
    # A: p=0.5, rho=0.5 -> pi=0.2: odds 1 * (0.2/0.8)/(0.5/0.5) = 0.25 -> 0.2
    # B: p=0.8, rho=0.4 -> 0.6 (see test_prior_shift_hand_computed)
    # A: p=0.25: odds 1/3 * 0.25 = 1/12 -> 1/13
    np.testing.assert_allclose(out["category"], [0.2, 0.6, 0.3, 1 / 13, 0.6], atol=1e-12)
    np.testing.assert_array_equal(out["general"], scores["general"])  # the general score never moves
    np.testing.assert_array_equal(scores["category"], [0.5, 0.8, 0.3, 0.25, 0.6])  # input untouched
    # no category with a prior: nothing changes
    out = align_scores(scores, cat, {}, 0.2)
    np.testing.assert_array_equal(out["category"], scores["category"])
    # per-category automl scores are aligned the same way
    out = align_scores({"general": scores["general"], "automl_category": scores["category"]}, cat, priors, 0.2)
    np.testing.assert_allclose(out["automl_category"], [0.2, 0.6, 0.3, 1 / 13, 0.6], atol=1e-12)


def test_align_rows_per_row_overall_prior():
    from dupsearch.models.ensemble import align_rows, row_priors

    cat = np.array(["A", "B", "C"], dtype=object)
    rho = row_priors(cat, {"A": 0.5, "B": 0.4})
    np.testing.assert_array_equal(np.isnan(rho), [False, False, True])
    np.testing.assert_allclose(rho[:2], [0.5, 0.4])
    scores = {"general": np.array([0.5, 0.8, 0.3]), "category": np.array([0.5, 0.8, 0.3])}
    # row 0: 0.5 from 0.5 to 0.1 -> 0.1; row 1: 0.8 from 0.4 to 0.2 -> 0.6; row 2: no prior
    out = align_rows(scores, rho, np.array([0.1, 0.2, 0.9]))
    np.testing.assert_allclose(out["category"], [0.1, 0.6, 0.3], atol=1e-12)


def test_pair_categories():
    listings = pd.DataFrame({"item_id": [1, 2, 3, 4, 5],
                             "category_l1": ["home", " toys ", None, "", "home"]})
    pairs = pd.DataFrame({"item_id_a": ["1", "2", "3", "4", "9", 5], "item_id_b": ["2", "3", "4", "5", "1", 1]})
    cat = pair_categories(listings, pairs)
    assert list(cat) == ["home", "toys", NO_CATEGORY, NO_CATEGORY, NO_CATEGORY, "home"]
    assert list(pair_categories(listings.drop(columns="category_l1"), pairs)) == [NO_CATEGORY] * 6


def test_ensemble_config():
    assert EnsembleConfig().components == ["general"]
    assert EnsembleConfig(per_category=True).components == ["general", "category"]
    assert EnsembleConfig(per_category=True, automl=True, automl_per_category=True).components == [
        "general", "category", "automl", "automl_category"]
    with pytest.raises(ValueError):
        EnsembleConfig(blend="median")
    with pytest.raises(ValueError):
        EnsembleConfig(calibrate="beta")


# --------------------------------------------------------------------------- Combiner


def _two_components(rng, n):
    truth = expit(rng.normal(-1, 2, n))
    y = (rng.rand(n) < truth).astype(int)
    informative = np.clip(truth + rng.normal(0, 0.03, n), 0.001, 0.999)
    noise = rng.rand(n)
    cat = np.where(rng.rand(n) < 0.5, "A", "B").astype(object)
    return {"general": informative, "category": noise}, y, cat


def test_combiner_equal_blend_is_the_mean():
    rng = np.random.RandomState(10)
    scores, y, cat = _two_components(rng, 500)
    scores["automl"] = rng.rand(500)
    comb = Combiner(EnsembleConfig(blend="equal")).fit(scores, y, cat)
    np.testing.assert_allclose(comb.weights_, [1 / 3] * 3)
    np.testing.assert_allclose(comb.transform(scores, cat),
                               (scores["general"] + scores["category"] + scores["automl"]) / 3, atol=1e-15)


def test_combiner_learned_prefers_the_informative_component():
    rng = np.random.RandomState(11)
    scores, y, cat = _two_components(rng, 5000)
    comb = Combiner(EnsembleConfig(blend="learned")).fit(scores, y, cat)
    assert comb.components_ == ["general", "category"]
    assert comb.weights_[0] > 0.9 and comb.weights_.sum() == pytest.approx(1.0)
    p = comb.transform(scores, cat)
    np.testing.assert_allclose(p, comb.weights_[0] * scores["general"] + comb.weights_[1] * scores["category"])
    # JSON round trip
    comb2 = Combiner.from_dict(comb.config, json.loads(json.dumps(comb.to_dict())))
    np.testing.assert_array_equal(comb2.transform(scores, cat), p)


def test_combiner_with_calibration():
    rng = np.random.RandomState(12)
    p, y, cat = _distorted(rng, 2000)
    scores = {"general": p}
    comb = Combiner(EnsembleConfig(calibrate="platt")).fit(scores, y, cat)
    np.testing.assert_array_equal(comb.weights_, [1.0])
    assert sorted(comb.calibrator_.per_category_) == ["A", "B"]
    out = comb.transform(scores, cat)
    assert np.all((out > 0) & (out < 1))
    assert log_loss(y, out) < log_loss(y, p) - 0.01
    comb2 = Combiner.from_dict(comb.config, json.loads(json.dumps(comb.to_dict())))
    np.testing.assert_array_equal(comb2.transform(scores, cat), out)


@pytest.mark.parametrize("calibrate", ["none", "isotonic"])
def test_cross_fitted_combination_is_leak_free(calibrate):
    rng = np.random.RandomState(13)
    n = 3000
    scores, y, cat = _two_components(rng, n)
    folds = [(np.setdiff1d(np.arange(n), te), te) for te in np.array_split(rng.permutation(n), 3)]
    cfg = EnsembleConfig(blend="learned", calibrate=calibrate)
    out = cross_fitted_combination(cfg, scores, y, cat, folds)
    assert not np.isnan(out).any() and np.all((out >= 0) & (out <= 1))
    # each fold's output equals a Combiner fitted on the other folds only
    tr, te = folds[1]
    direct = Combiner(cfg).fit({k: v[tr] for k, v in scores.items()}, y[tr], cat[tr])
    np.testing.assert_array_equal(out[te], direct.transform({k: v[te] for k, v in scores.items()}, cat[te]))
    # flipping fold 0's labels leaves fold 0's output unchanged, and changes the others'
    y2 = y.copy()
    te0 = folds[0][1]
    y2[te0] = 1 - y2[te0]
    out2 = cross_fitted_combination(cfg, scores, y2, cat, folds)
    np.testing.assert_array_equal(out2[te0], out[te0])
    for _, te in folds[1:]:
        assert np.abs(out2[te] - out[te]).max() > 1e-3


# --------------------------------------------------------------------------- CategoryModels

GBDT_SMALL = GBDTConfig(max_iterations=50, threads=1)


def _rule_frame(rng):
    """A: duplicate when x1 > 0; B: when x2 > 0.3; C: too few pairs; D: too few positives."""
    parts = []
    for c, n in [("A", 400), ("B", 400), ("C", 40), ("D", 200)]:
        X = pd.DataFrame({"x1": rng.randn(n), "x2": rng.randn(n), "x3": rng.randn(n)})
        if c == "A" or c == "C":
            y = (X["x1"] > 0).to_numpy()
        elif c == "B":
            y = (X["x2"] > 0.3).to_numpy()
        else:
            y = np.zeros(n, bool)
            y[:5] = True
        parts.append((X, y.astype(int), np.array([c] * n, dtype=object)))
    X = pd.concat([p[0] for p in parts], ignore_index=True)
    return X, np.concatenate([p[1] for p in parts]), np.concatenate([p[2] for p in parts])


@pytest.fixture(scope="module")
def category_models():
    X, y, cat = _rule_frame(np.random.RandomState(14))
    cm = CategoryModels(lambda seed: GBDTModel(GBDT_SMALL, [], seed), min_pairs=100, min_positives=10,
                        n_models=2).fit(X, y, cat, seed=3)
    return cm, X, y, cat


def test_category_models_eligibility_and_priors(category_models):
    cm, X, y, cat = category_models
    assert cm.eligible(y, cat) == ["A", "B"]
    assert sorted(cm.models_) == ["A", "B"] and all(len(v) == 2 for v in cm.models_.values())
    assert [m.seed for m in cm.models_["A"]] == [3, 4]
    for c in ("A", "B"):
        assert cm.priors_[c] == pytest.approx(y[cat == c].mean())
        assert cm.sizes_[c] == 400
        assert cm.iterations_[c] == 50  # no stopping set: the configured maximum


def test_category_models_eligible_boundaries():
    cm = CategoryModels(None, min_pairs=10, min_positives=3)
    y = np.array([1, 1, 1] + [0] * 7 + [1, 1] + [0] * 8 + [1] * 7 + [0] * 3 + [1] * 8 + [0] * 2)
    cat = np.array(["ok"] * 10 + ["pos2"] * 10 + ["neg3"] * 10 + ["neg2"] * 10, dtype=object)
    # ok: 10 pairs, 3 positives, 7 negatives; pos2: too few positives; neg3: exactly 3 negatives;
    # neg2: too few negatives
    assert cm.eligible(y, cat) == ["neg3", "ok"]
    assert CategoryModels(None, min_pairs=11, min_positives=3).eligible(y, cat) == []


def test_category_models_learn_their_own_rules(category_models):
    cm, *_ = category_models
    Xt, yt, ct = _rule_frame(np.random.RandomState(15))
    p = cm.predict(Xt, ct)
    for c in ("C", "D"):
        assert np.isnan(p[ct == c]).all()
    assert not np.isnan(p[np.isin(ct, ["A", "B"])]).any()
    for c in ("A", "B"):
        m = ct == c
        assert roc_auc_score(yt[m], p[m]) > 0.95
    # A's model knows A's rule only: on B's rows scored as A it is no better than chance
    m = ct == "B"
    p_as_a = cm.predict(Xt[m], np.array(["A"] * m.sum(), dtype=object))
    assert abs(roc_auc_score(yt[m], p_as_a) - 0.5) < 0.15
    assert roc_auc_score(Xt.loc[m, "x1"] > 0, p_as_a) > 0.95
    imp = cm.feature_importance(["x1", "x2", "x3"])
    assert imp["x3"] < imp["x1"] and imp["x3"] < imp["x2"]


def test_category_models_save_load(category_models, tmp_path):
    cm, X, y, cat = category_models
    cm.save(tmp_path / "cm")
    cm2 = CategoryModels.load(tmp_path / "cm", lambda stem: GBDTModel.load(GBDT_SMALL, stem))
    assert cm2.priors_ == cm.priors_ and cm2.sizes_ == cm.sizes_ and cm2.iterations_ == cm.iterations_
    p1, p2 = cm.predict(X, cat), cm2.predict(X, cat)
    np.testing.assert_array_equal(np.isnan(p1), np.isnan(p2))
    np.testing.assert_allclose(p2, p1, rtol=1e-12, equal_nan=True)


def test_category_models_stop_mask_and_fixed_iterations():
    rng = np.random.RandomState(16)
    X, y, cat = _rule_frame(rng)
    stop = rng.rand(len(y)) < 0.25
    stopping = GBDTConfig(max_iterations=50, early_stopping_rounds=5, threads=1)

    def factory(seed):
        return GBDTModel(stopping, [], seed)

    cm = CategoryModels(factory, min_pairs=100, min_positives=10).fit(X, y, cat, stop_mask=stop)
    assert sorted(cm.models_) == ["A", "B"]
    for c in ("A", "B"):
        fit_m = (cat == c) & ~stop
        assert cm.priors_[c] == pytest.approx(y[fit_m].mean())  # the stopping rows do not count
        assert cm.sizes_[c] == fit_m.sum()
        # the category's recorded rounds are its early-stopped booster's, not the config maximum
        assert cm.iterations_[c] == cm.models_[c][0].best_iteration_
        assert cm.models_[c][0].booster_.tree_count_ == cm.iterations_[c]
    # final refits: rounds fixed per category, the fallback elsewhere
    cm = CategoryModels(factory, min_pairs=100, min_positives=10).fit(
        X, y, cat, iterations={"A": 7}, fallback_iterations=5)
    assert cm.iterations_ == {"A": 7, "B": 5}


# --------------------------------------------------------------------------- DuplicateMatcher

ENS = dict(per_category=True, min_category_pairs=60, min_category_positives=5)


def _grouped(m):
    """The market with a `group` column (the family of the left listing). Without it, each
    category is one connected component of the pair graph and 3-fold CV would hold out whole
    categories, so no category model would ever score its own category out of fold."""
    m = m.copy()
    m.train["group"] = m.train["item_id_a"].str[2:].astype(int) // 6
    return m


@pytest.fixture(scope="module")
def gmarket(_market_once):
    return _grouped(_market_once)


@pytest.fixture(scope="module")
def plain_cv(gmarket):
    # no emptied-text rows here or in ens_cv: the prior and row counts below are the pairs' own
    return DuplicateMatcher(fast_config("lightgbm", cv_folds=3, missing_text_share=0.0)).fit(
        gmarket.listings, gmarket.train)


@pytest.fixture(scope="module")
def ens_cv(gmarket):
    cfg = fast_config("lightgbm", cv_folds=3, missing_text_share=0.0, ensemble=EnsembleConfig(**ENS))
    return DuplicateMatcher(cfg).fit(gmarket.listings, gmarket.train)


@pytest.fixture(scope="module")
def ens_valid(gmarket):
    cfg = fast_config("lightgbm", ensemble=EnsembleConfig(**ENS))
    return DuplicateMatcher(cfg).fit(gmarket.listings, gmarket.train, gmarket.valid)


def _check_ensemble_metrics(m):
    e = m.metrics_["ensemble"]
    assert e["components"] == ["general", "category"]
    assert set(e["weights"]) == {"general", "category"}
    assert sum(e["weights"].values()) == pytest.approx(1.0)
    assert all(w >= 0 for w in e["weights"].values())
    cms = e["category_models"]
    assert len(cms) >= 2
    for c, info in cms.items():
        assert info["n_pairs"] >= ENS["min_category_pairs"] and 0 < info["prior"] < 1
    json.dumps(m.metrics_, default=float)


def test_ensemble_cv_fit(ens_cv, plain_cv, gmarket):
    m = ens_cv
    assert m.metrics_["cv"]["grouping"] == "group column"
    _check_ensemble_metrics(m)
    assert m.metrics_["ensemble"]["overall_prior"] == pytest.approx(gmarket.train["label"].mean())
    assert sorted(m.parts_["category"].models_) == ["clothing", "electronics", "home"]
    # the category models scored their categories out of fold: not just the general fallback
    oof = m.component_oof_
    assert not np.isnan(oof["category"]).any()
    assert np.abs(oof["category"] - oof["general"]).max() > 0.05
    assert not np.isnan(m.oof_).any() and np.all((m.oof_ >= 0) & (m.oof_ <= 1))
    # the general component is the plain matcher's: same folds, seeds and models
    np.testing.assert_array_equal(oof["general"], plain_cv.oof_)
    p = m.predict_proba(gmarket.listings, gmarket.test)
    assert p.shape == (len(gmarket.test),) and np.all((p >= 0) & (p <= 1))
    assert roc_auc_score(gmarket.test["label"], p) > 0.75
    X = m.features(gmarket.listings, gmarket.test)
    np.testing.assert_array_equal(np.mean([g.predict_proba(X) for g in m.models_], axis=0),
                                  plain_cv.predict_proba(gmarket.listings, gmarket.test))
    with pytest.raises(ValueError, match="categories"):
        m.predict_proba_features(X)
    cat = pair_categories(gmarket.listings, gmarket.test)
    np.testing.assert_array_equal(m.predict_proba_features(X, cat), p)


def test_ensemble_valid_fit(ens_valid, gmarket):
    m = ens_valid
    _check_ensemble_metrics(m)
    assert "valid" in m.metrics_ and "cv" not in m.metrics_
    for pairs in (gmarket.valid, gmarket.test):
        p = m.predict_proba(gmarket.listings, pairs)
        assert np.all((p >= 0) & (p <= 1)) and not np.isnan(p).any()
    # a category without a model (here: unseen) gets the general score in every component,
    # so the blend (weights summing to 1) returns the general score itself
    listings = gmarket.listings.copy()
    listings["category_l1"] = "toys"
    X = m.features(listings, gmarket.test)
    general = np.mean([g.predict_proba(X) for g in m.models_], axis=0)
    np.testing.assert_allclose(m.predict_proba(listings, gmarket.test), general, atol=1e-12)


@pytest.mark.parametrize("which", ["ens_cv", "ens_valid"])
def test_ensemble_save_load_predicts_identically(which, request, gmarket, tmp_path):
    m = request.getfixturevalue(which)
    path = m.save(tmp_path / "model")
    assert (path / "ensemble.json").is_file() and (path / "category" / "categories.json").is_file()
    state = json.loads((path / "ensemble.json").read_text())
    assert state["combiner"]["components"] == ["general", "category"]
    m2 = DuplicateMatcher.load(path)
    assert m2.config.ensemble == m.config.ensemble
    assert m2.prior_ == m.prior_ and m2.threshold_ == m.threshold_
    np.testing.assert_array_equal(m2.combiner_.weights_, m.combiner_.weights_)
    for pairs in (gmarket.test, gmarket.valid):
        np.testing.assert_array_equal(m2.predict_proba(gmarket.listings, pairs),
                                      m.predict_proba(gmarket.listings, pairs))


def test_without_ensemble_nothing_changes(plain_cv, gmarket, tmp_path):
    m = plain_cv
    assert m.combiner_ is None and "ensemble" not in m.metrics_
    assert list(m.component_oof_) == ["general"]
    np.testing.assert_array_equal(m.oof_, m.component_oof_["general"])
    # explicitly "off" settings are the plain matcher
    cfg = fast_config("lightgbm", cv_folds=3, missing_text_share=0.0,
                      ensemble=EnsembleConfig(blend="equal", align=False))
    m_off = DuplicateMatcher(cfg).fit(gmarket.listings, gmarket.train)
    assert m_off.combiner_ is None
    np.testing.assert_array_equal(m_off.oof_, m.oof_)
    path = m.save(tmp_path / "plain")
    assert not (path / "ensemble.json").exists() and not (path / "category").exists()
    m2 = DuplicateMatcher.load(path)
    assert m2.combiner_ is None
    p = m.predict_proba(gmarket.listings, gmarket.test)
    np.testing.assert_array_equal(m2.predict_proba(gmarket.listings, gmarket.test), p)
    X = m.features(gmarket.listings, gmarket.test)
    np.testing.assert_array_equal(m.predict_proba_features(X), p)  # no categories needed


def test_platt_calibration_path(gmarket, tmp_path):
    cfg = fast_config("lightgbm", ensemble=EnsembleConfig(calibrate="platt"))
    m = DuplicateMatcher(cfg).fit(gmarket.listings, gmarket.train, gmarket.valid)
    assert m.combiner_ is not None and m.combiner_.calibrator_ is not None
    e = m.metrics_["ensemble"]
    assert e["calibrate"] == "platt" and e["weights"] == {"general": 1.0}
    p = m.predict_proba(gmarket.listings, gmarket.test)
    assert np.all((p > 0) & (p < 1))
    # the calibration is a monotone map of the general score: the ranking is unchanged
    X = m.features(gmarket.listings, gmarket.test)
    raw = np.mean([g.predict_proba(X) for g in m.models_], axis=0)
    assert roc_auc_score(gmarket.test["label"], p) == pytest.approx(roc_auc_score(gmarket.test["label"], raw))
    path = m.save(tmp_path / "platt")
    assert json.loads((path / "ensemble.json").read_text())["combiner"]["calibrator"]["method"] == "platt"
    np.testing.assert_array_equal(DuplicateMatcher.load(path).predict_proba(gmarket.listings, gmarket.test), p)


def test_enlarge_path(gmarket, tmp_path):
    m = DuplicateMatcher(fast_config("lightgbm", cv_folds=3, enlarge={}, missing_text_share=0.0)).fit(
        gmarket.listings, gmarket.train)
    en = m.metrics_["enlarge"]
    n = len(gmarket.train)
    final = en["final"]
    assert final["n_given"] == n
    added = final["new_positive_added"] + final["new_negative_added"]
    assert added > 0
    assert en["n_train_pairs_enlarged"] == n + added >= n
    assert len(en["folds"]) == 3
    for rep in en["folds"]:
        assert rep["n_given"] < n and rep["dropped_held_out"] >= 0
    p = m.predict_proba(gmarket.listings, gmarket.test)
    assert np.all((p >= 0) & (p <= 1)) and roc_auc_score(gmarket.test["label"], p) > 0.75
    # the final models' prior is that of the enlarged training pairs
    assert m.prior_ == pytest.approx((final["n_positive_given"] + final["new_positive_added"]) / (n + added))
    m2 = DuplicateMatcher.load(m.save(tmp_path / "enlarged"))
    assert m2.config.enlarge == {}
    np.testing.assert_array_equal(m2.predict_proba(gmarket.listings, gmarket.test), p)


def test_enlarge_with_stacking_is_refused():
    with pytest.raises(ValueError, match="enlarge"):
        MatcherConfig(enlarge={}, stacking=StackingConfig(cross_encoder={}))


# --------------------------------------------------------------------------- leaks that must not come back


class _StubAutoML:
    """Stands in for AutoMLModel (LightAutoML is an optional extra): records what it is fitted on."""

    fitted_rows: list = []

    def __init__(self, seed):
        self.seed = seed
        self.best_iteration_ = None

    def fit(self, X, y, eval_set=None, iterations=None):
        _StubAutoML.fitted_rows.append(len(X))
        self.prior = float(np.mean(y))
        return self

    def predict_proba(self, X):
        return np.full(len(X), self.prior)

    def feature_importance(self, names):
        return pd.Series(1.0 / len(names), index=names)


def test_automl_component_never_sees_validation_rows(gmarket, monkeypatch):
    _StubAutoML.fitted_rows = []
    monkeypatch.setattr(DuplicateMatcher, "_make_automl", lambda self, seed: _StubAutoML(seed))
    cfg = fast_config("lightgbm", ensemble=EnsembleConfig(automl=True))
    m = DuplicateMatcher(cfg).fit(gmarket.listings, gmarket.train, gmarket.valid)
    assert "automl" in m.metrics_["ensemble"]["weights"]
    # the training pairs and their emptied-text copies, never a validation row
    assert _StubAutoML.fitted_rows == [len(gmarket.train) + m.metrics_["missing_text_pairs"]]


def test_enlarge_never_adds_validation_pairs(gmarket, monkeypatch):
    m = gmarket.copy()
    # Move one side of some positive triangles into the validation set: train keeps a-b and b-c,
    # the chain implies a-c, which is now a validation pair.
    tr = m.train
    pos = tr[tr["label"] == 1]
    moved = []
    for _, g in pos.groupby(pos["item_id_a"].str[2:].astype(int) // 3):
        ids = set(g["item_id_a"]) | set(g["item_id_b"])
        if len(g) == 3 and len(ids) == 3:
            moved.append(g.index[0])
        if len(moved) == 10:
            break
    assert len(moved) >= 5
    valid = pd.concat([m.valid, tr.loc[moved, ["item_id_a", "item_id_b", "label"]]], ignore_index=True)
    train = tr.drop(index=moved).reset_index(drop=True)
    vkeys = {tuple(sorted(k)) for k in zip(valid["item_id_a"], valid["item_id_b"])}
    seen = []
    orig = DuplicateMatcher.pair_store

    def spy(self, listings, pairs, *a, **kw):
        if "origin" in pairs:  # the pairs enlargement added
            seen.extend(tuple(sorted(k)) for k in zip(pairs["item_id_a"].astype(str), pairs["item_id_b"].astype(str)))
        return orig(self, listings, pairs, *a, **kw)

    monkeypatch.setattr(DuplicateMatcher, "pair_store", spy)
    # positives only: the few implied positives are all added (no cap sampling among negatives)
    DuplicateMatcher(fast_config("lightgbm", enlarge={"negatives": False})).fit(m.listings, train, valid)
    assert seen, "enlargement added no pairs: the test set-up is wrong"
    assert not (set(seen) & vkeys)


def test_no_category_models_for_a_single_or_missing_category():
    # One category (or none at all) would only repeat the general model under another name.
    from dupsearch.models.ensemble import NO_CATEGORY, CategoryModels
    y = np.r_[np.ones(200), np.zeros(400)].astype(int)
    cm = CategoryModels(make_model=None, min_pairs=100, min_positives=10)
    assert cm.eligible(y, np.full(600, "Computers", dtype=object)) == []
    assert cm.eligible(y, np.full(600, NO_CATEGORY, dtype=object)) == []
    mixed = np.where(np.arange(600) % 2 == 0, "Computers", NO_CATEGORY).astype(object)
    assert cm.eligible(y, mixed) == ["Computers"]
