"""Attribute features: common keys, equal values, Gini-weighted matches and top keys."""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest

from dupsearch.features.attributes import GLOBAL, AttributeFamily
from dupsearch.features.base import prepare_listings
from helpers import DEFAULTS, features_of, pair_batch

TRAIN = [
    ("Phones", {"Brand": "Apple", "colour": "black", "memory": "128"}),
    ("Phones", {"brand": "apple", "colour": "Black", "memory": "256"}),
    ("Phones", {"brand": "Samsung", "colour": "black"}),
    ("TV", {"brand": "LG", "colour": "black"}),
    ("TV", {"brand": "LG"}),
    ("", {"brand": "Sony", "year": "2020"}),
    ("TV", {}),
]
# Gini impurity 1 - sum(p^2) of each key's values, by hand:
W_PHONES = {"brand": 1 - ((2 / 3) ** 2 + (1 / 3) ** 2), "colour": 0.0, "memory": 0.5}
W_TV = {"brand": 0.0, "colour": 0.0}
# all listings: brand apple 2, samsung 1, lg 2, sony 1 (of 6); colour black 4; memory 2 values;
# year 1 value
W_GLOBAL = {"brand": 1 - (4 + 1 + 4 + 1) / 36, "colour": 0.0, "memory": 0.5, "year": 0.0}
DEFAULT_W = 0.25  # median of the global weights [13/18, 0, 0.5, 0]


def item(cat, attrs):
    return dict(category_l1=cat, attributes=attrs)


@pytest.fixture(scope="module")
def stats():
    listings = pd.DataFrame([{**DEFAULTS, "item_id": str(i), "category_l1": c, "attributes": a}
                             for i, (c, a) in enumerate(TRAIN)])
    return AttributeFamily(top_k=2).fit(prepare_listings(listings))


def test_fitted_weights_are_gini_impurity(stats):
    assert stats.weights_["phones"] == pytest.approx(W_PHONES)
    assert stats.weights_["tv"] == pytest.approx(W_TV)
    assert stats.weights_[GLOBAL] == pytest.approx(W_GLOBAL)
    assert W_GLOBAL["brand"] == pytest.approx(13 / 18)


def test_top_keys_by_fill_then_name(stats):
    # phones: brand 3, colour 3, memory 2 -> ties broken by name
    assert stats.top_keys_["phones"] == ["brand", "colour"]
    assert stats.top_keys_["tv"] == ["brand", "colour"]
    assert stats.top_keys_[GLOBAL] == ["brand", "colour"]
    assert AttributeFamily(top_k=10).fit(prepare_listings(pd.DataFrame(
        [{**DEFAULTS, "item_id": "1", "attributes": {"b": "1", "a": "2"}},
         {**DEFAULTS, "item_id": "2", "attributes": {"b": "3"}}]))).top_keys_[GLOBAL] == ["b", "a"]


def test_counts_and_weighted_match_same_category(stats):
    f = features_of(stats, pair_batch((item("Phones", {"brand": "Apple", "colour": "black", "memory": "128"}),
                                    item("phones", {"BRAND": "apple", "colour": "white", "memory": "256"}))))
    r = f.iloc[0]
    assert r["attributes.keys_min"] == 3 and r["attributes.keys_max"] == 3
    assert r["attributes.keys_common"] == 3
    assert r["attributes.keys_jaccard"] == pytest.approx(1.0)
    assert r["attributes.values_equal"] == 1
    assert r["attributes.values_equal_share"] == pytest.approx(1 / 3)
    assert r["attributes.values_conflict"] == 2
    w_common = W_PHONES["brand"] + W_PHONES["colour"] + W_PHONES["memory"]
    assert r["attributes.weighted_equal"] == pytest.approx(W_PHONES["brand"])
    assert r["attributes.weighted_conflict"] == pytest.approx(0.5)
    assert r["attributes.weighted_match"] == pytest.approx(W_PHONES["brand"] / w_common)
    assert r["attributes.weighted_match"] == pytest.approx(8 / 17)
    # top keys of phones: brand (equal) and colour (differs)
    assert r["attributes.top_common"] == 2
    assert r["attributes.top_equal"] == 1
    assert r["attributes.top_equal_share"] == pytest.approx(0.5)


def test_partial_key_overlap(stats):
    f = features_of(stats, pair_batch((item("phones", {"brand": "apple", "memory": "128"}),
                                    item("phones", {"brand": "apple", "colour": "red", "sim": "2"}))))
    r = f.iloc[0]
    assert r["attributes.keys_min"] == 2 and r["attributes.keys_max"] == 3
    assert r["attributes.keys_common"] == 1
    assert r["attributes.keys_jaccard"] == pytest.approx(1 / 4)
    assert r["attributes.values_equal_share"] == pytest.approx(1.0)
    assert r["attributes.weighted_match"] == pytest.approx(1.0)


def test_equal_values_under_different_keys_do_not_match(stats):
    r = features_of(stats, pair_batch((item("phones", {"memory": "128"}),
                                    item("phones", {"storage": "128"})))).iloc[0]
    assert r["attributes.keys_common"] == 0 and r["attributes.values_equal"] == 0
    assert np.isnan(r["attributes.values_equal_share"])


def test_unseen_key_gets_median_global_weight(stats):
    r = features_of(stats, pair_batch((item("phones", {"brand": "apple", "condition": "new"}),
                                    item("phones", {"brand": "samsung", "condition": "new"})))).iloc[0]
    assert r["attributes.weighted_equal"] == pytest.approx(DEFAULT_W)
    assert r["attributes.weighted_conflict"] == pytest.approx(W_PHONES["brand"])
    assert r["attributes.weighted_match"] == pytest.approx(DEFAULT_W / (DEFAULT_W + W_PHONES["brand"]))
    assert r["attributes.top_common"] == 1 and r["attributes.top_equal"] == 0
    assert r["attributes.top_equal_share"] == 0.0


def test_key_unknown_in_category_uses_global_weight(stats):
    r = features_of(stats, pair_batch((item("tv", {"memory": "128"}),
                                    item("tv", {"memory": "128"})))).iloc[0]
    assert r["attributes.weighted_equal"] == pytest.approx(W_GLOBAL["memory"])
    assert r["attributes.weighted_match"] == pytest.approx(1.0)
    # memory is not a top key of tv
    assert r["attributes.top_common"] == 0 and np.isnan(r["attributes.top_equal_share"])


def test_unknown_category_uses_global_stats(stats):
    r = features_of(stats, pair_batch((item("garden", {"brand": "apple"}),
                                    item("garden", {"brand": "apple"})))).iloc[0]
    assert r["attributes.weighted_equal"] == pytest.approx(W_GLOBAL["brand"])
    assert r["attributes.top_equal"] == 1


def test_no_attributes(stats):
    f = features_of(stats, pair_batch((item("phones", {}), item("phones", {})),
                                   (item("phones", {"brand": "apple"}), item("phones", {}))))
    both, one = f.iloc[0], f.iloc[1]
    for r in (both, one):
        assert r["attributes.keys_min"] == 0 and r["attributes.keys_common"] == 0
        assert r["attributes.values_equal"] == 0 and r["attributes.values_conflict"] == 0
        assert r["attributes.weighted_equal"] == 0 and r["attributes.top_common"] == 0
        for c in ("values_equal_share", "weighted_match", "top_equal_share"):
            assert np.isnan(r[f"attributes.{c}"]), c
    assert np.isnan(both["attributes.keys_jaccard"]) and both["attributes.keys_max"] == 0
    assert one["attributes.keys_jaccard"] == 0.0 and one["attributes.keys_max"] == 1


def test_batch_without_any_key(stats):
    f = features_of(stats, pair_batch((item("phones", {}), item("tv", {}))))
    assert len(f) == 1 and f.iloc[0]["attributes.keys_common"] == 0
    assert np.isnan(f.iloc[0]["attributes.weighted_match"])


def test_unfitted_empty_training_still_works():
    s = AttributeFamily().fit(prepare_listings(pd.DataFrame([{**DEFAULTS, "item_id": "1"}])))
    r = features_of(s, pair_batch((item("x", {"k": "v"}), item("x", {"k": "v"})))).iloc[0]
    assert r["attributes.values_equal"] == 1
    assert r["attributes.weighted_match"] == pytest.approx(1.0)  # default weight 0.5


PAIRS = [
    (item("phones", {"brand": "apple", "memory": "128"}), item("tv", {"brand": "apple", "colour": "x"})),
    (item("phones", {"brand": "apple", "colour": "black"}), item("", {"brand": "apple"})),
    (item("tv", {"brand": "lg", "year": "1"}), item("phones", {"brand": "lg", "year": "2"})),
    (item("phones", {"brand": "apple"}), item("phones", {"brand": "samsung", "x": "y"})),
]


def test_symmetric_across_categories(stats):
    fwd = features_of(stats, pair_batch(*PAIRS))
    bwd = features_of(stats, pair_batch(*[(b, a) for a, b in PAIRS]))
    pd.testing.assert_frame_equal(fwd, bwd)


def test_cross_category_pair_uses_global_weights(stats):
    # phones weighs brand 4/9, tv weighs it 0: a pair spanning both uses all-listings stats
    r = features_of(stats, pair_batch(PAIRS[0])).iloc[0]
    assert r["attributes.weighted_equal"] == pytest.approx(W_GLOBAL["brand"])
    assert r["attributes.top_common"] == 1


def test_result_does_not_depend_on_other_pairs_in_batch(stats):
    whole = features_of(stats, pair_batch(*PAIRS))
    for i, p in enumerate(PAIRS):
        one = features_of(stats, pair_batch(p))
        pd.testing.assert_series_equal(one.iloc[0], whole.iloc[i], check_names=False)


def test_dicts_with_same_text_form_are_kept_apart(stats):
    r = features_of(stats, pair_batch((item("phones", {"screen size": "6"}),
                                    item("phones", {"screen": "size 6"})))).iloc[0]
    assert r["attributes.keys_common"] == 0


def test_pickle_round_trip(stats):
    again = pickle.loads(pickle.dumps(stats))
    pd.testing.assert_frame_equal(features_of(stats, pair_batch(*PAIRS)),
                                  features_of(again, pair_batch(*PAIRS)))
