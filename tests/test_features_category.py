"""Category features: level equality, missing levels, level-4 partial match, fill rates."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from rapidfuzz import fuzz

from dupsearch.features.category import CATEGORICAL
from helpers import category_features, pair_batch


def cats(l1="", l2="", l3="", l4="", **extra):
    return dict(category_l1=l1, category_l2=l2, category_l3=l3, category_l4=l4, **extra)


PAIRS = [
    # 0: same path down to l3, l4 "iphone 12" vs "iphone 12 pro"
    (cats("Electronics", "Phones", "Apple", "iPhone 12"),
     cats("electronics", "phones", "apple", "iPhone 12 Pro")),
    # 1: different l1, one l2 missing, l3/l4 missing on both sides
    (cats("Home"), cats("Auto", "Tyres")),
    # 2: identical full paths
    (cats("a", "b", "c", "d"), cats("a", "b", "c", "d")),
    # 3: unrelated l4 names
    (cats("a", "b", "c", "samsung galaxy s21"), cats("a", "b", "x", "galaxy s22")),
    # 4: everything missing on both sides
    (cats(), cats()),
]


@pytest.fixture(scope="module")
def feats():
    return category_features(pair_batch(*PAIRS))


def col(feats, name):
    return feats[f"category.{name}"].to_numpy(dtype=float)


def test_level_equality(feats):
    np.testing.assert_array_equal(col(feats, "l1_equal"), [1, 0, 1, 1, np.nan])
    np.testing.assert_array_equal(col(feats, "l2_equal"), [1, np.nan, 1, 1, np.nan])
    np.testing.assert_array_equal(col(feats, "l3_equal"), [1, np.nan, 1, 0, np.nan])
    np.testing.assert_array_equal(col(feats, "l4_equal"), [0, np.nan, 1, 0, np.nan])


def test_missing_counts(feats):
    np.testing.assert_array_equal(col(feats, "l1_missing"), [0, 0, 0, 0, 2])
    np.testing.assert_array_equal(col(feats, "l2_missing"), [0, 1, 0, 0, 2])
    np.testing.assert_array_equal(col(feats, "l3_missing"), [0, 2, 0, 0, 2])
    np.testing.assert_array_equal(col(feats, "l4_missing"), [0, 2, 0, 0, 2])


def test_path_equal(feats):
    # only identical full paths (an all-empty path equals an all-empty path)
    np.testing.assert_array_equal(col(feats, "path_equal"), [0, 0, 1, 0, 1])


def test_l4_partial(feats):
    got = col(feats, "l4_partial")
    # "iphone 12" tokens are a subset of "iphone 12 pro": token_set_ratio is 100
    assert got[0] == pytest.approx(1.0)
    assert np.isnan(got[1]) and np.isnan(got[4])
    assert got[2] == pytest.approx(1.0)
    assert got[3] == pytest.approx(fuzz.token_set_ratio("samsung galaxy s21", "galaxy s22") / 100)
    assert got[3] < 1.0


def test_l1_pair_is_order_free():
    fwd = category_features(pair_batch(*PAIRS))["category.l1_pair"].tolist()
    bwd = category_features(pair_batch(*[(b, a) for a, b in PAIRS]))["category.l1_pair"].tolist()
    assert fwd == ["electronics", "auto|home", "a", "a", ""]
    assert bwd == fwd
    assert "category.l1_pair" in CATEGORICAL


def test_l1_pair_with_one_side_missing():
    got = category_features(pair_batch((cats("Home"), cats()), (cats(), cats("Home"))))
    assert got["category.l1_pair"].tolist() == ["|home", "|home"]


def test_fill_rates():
    full = dict(title="t", description="d", attributes={"k": "v"}, price=1.0, images=["x"],
                **cats("a", "b", "c", "d"))
    title_only = dict(title="t")
    two = dict(title="t", price=5.0)
    f = category_features(pair_batch((full, title_only), (title_only, two), (full, full)))
    np.testing.assert_allclose(col(f, "fill_rate_min"), [1 / 9, 1 / 9, 1.0])
    np.testing.assert_allclose(col(f, "fill_rate_max"), [1.0, 2 / 9, 1.0])
    np.testing.assert_allclose(col(f, "fill_rate_diff"), [8 / 9, 1 / 9, 0.0], atol=1e-12)


def test_swapped_pairs_give_identical_numeric_features():
    fwd = category_features(pair_batch(*PAIRS))
    bwd = category_features(pair_batch(*[(b, a) for a, b in PAIRS]))
    pd.testing.assert_frame_equal(fwd, bwd)
