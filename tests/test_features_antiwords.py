"""Anti-word features: numbers, codes, sizes, colours and negations on one side only."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from dupsearch.features.antiwords import CLASSES
from helpers import antiword_features, field_pairs, pair_batch


def titles(*pairs):
    return antiword_features(field_pairs("title", *pairs))


def expect(row, prefix, one_side, one_side_min, shared, jaccard, conflict):
    assert row[f"{prefix}_one_side"] == one_side, prefix
    assert row[f"{prefix}_one_side_min"] == one_side_min, prefix
    assert row[f"{prefix}_shared"] == shared, prefix
    if np.isnan(jaccard):
        assert np.isnan(row[f"{prefix}_jaccard"]), prefix
    else:
        assert row[f"{prefix}_jaccard"] == pytest.approx(jaccard), prefix
    assert row[f"{prefix}_conflict"] == conflict, prefix


def test_phone_titles_differing_in_memory_and_colour():
    f = titles(("iPhone 12 128GB Black", "iphone 12 256gb white")).iloc[0]
    for field in ("title", "all"):
        p = f"antiwords.{field}"
        # numbers {12, 128} vs {12, 256}
        expect(f, f"{p}.number", 2, 1, 1, 1 / 3, 0)
        # sizes {128gb} vs {256gb}: both name one, none agree
        expect(f, f"{p}.size", 2, 1, 0, 0.0, 1)
        # colours {black} vs {white}
        expect(f, f"{p}.colour", 2, 1, 0, 0.0, 1)
        # no codes or negations at all
        expect(f, f"{p}.code", 0, 0, 0, np.nan, 0)
        expect(f, f"{p}.negation", 0, 0, 0, np.nan, 0)
        assert np.isnan(f[f"{p}.code_fuzzy"])


def test_features_on_one_side_only_are_not_conflicts():
    f = titles(("iphone 12 black", "iphone 12")).iloc[0]
    expect(f, "antiwords.title.colour", 1, 0, 0, 0.0, 0)
    expect(f, "antiwords.title.number", 0, 0, 1, 1.0, 0)


def test_negation_in_description_counts_in_all_not_title():
    batch = pair_batch((dict(title="phone", description="no charger, без коробки"),
                        dict(title="phone", description="with charger")))
    f = antiword_features(batch).iloc[0]
    expect(f, "antiwords.title.negation", 0, 0, 0, np.nan, 0)
    expect(f, "antiwords.all.negation", 2, 0, 0, 0.0, 0)


def test_size_written_apart_matches_size_glued():
    f = titles(("ram 16 gb", "ram 16gb")).iloc[0]
    expect(f, "antiwords.title.size", 0, 0, 1, 1.0, 0)
    expect(f, "antiwords.title.number", 0, 0, 1, 1.0, 0)


def test_code_suffix_near_miss():
    f = titles(("LG washer LDS4821WW", "lg washer lds4821wh")).iloc[0]
    expect(f, "antiwords.title.code", 2, 1, 0, 0.0, 1)
    # indel similarity: LCS "lds4821w" (8) of 9 + 9 characters: 1 - 2/18
    assert f["antiwords.title.code_fuzzy"] == pytest.approx(16 / 18)


def test_code_separators_ignored():
    f = titles(("sony dvd-3800bdci", "SONY DVD3800BDCI")).iloc[0]
    expect(f, "antiwords.title.code", 0, 0, 1, 1.0, 0)
    assert f["antiwords.title.code_fuzzy"] == pytest.approx(1.0)


def test_code_fuzzy_nan_unless_both_have_codes():
    f = titles(("lds4821ww", "washer"), ("", "")).reset_index(drop=True)
    assert np.isnan(f["antiwords.title.code_fuzzy"]).all()
    assert f["antiwords.title.code_one_side"].iloc[0] == 1


def test_title_code_found_in_other_listings_attributes():
    a = dict(title="LG washer LDS4821WW")
    b = dict(title="washing machine LG", attributes={"Model": "LDS4821WW"})
    f = antiword_features(pair_batch((a, b))).iloc[0]
    # the code is in A's title only ...
    expect(f, "antiwords.title.code", 1, 0, 0, 0.0, 0)
    # ... but anywhere in B once attribute values count
    expect(f, "antiwords.all.code", 0, 0, 1, 1.0, 0)
    # A->B: 1 of A's 1 title code found; B->A undefined (B's title has no code)
    assert f["antiwords.title_code_in_other_min"] == pytest.approx(1.0)
    assert f["antiwords.title_code_in_other_max"] == pytest.approx(1.0)


def test_title_code_in_other_min_and_max_differ():
    a = dict(title="washer lds4821ww")
    b = dict(title="washer xyz123", attributes={"model": "lds4821ww"})
    f = antiword_features(pair_batch((a, b))).iloc[0]
    # A's code found in B's attributes (1/1); B's code "xyz123" nowhere in A (0/1)
    assert f["antiwords.title_code_in_other_min"] == pytest.approx(0.0)
    assert f["antiwords.title_code_in_other_max"] == pytest.approx(1.0)


def test_title_code_in_other_nan_without_title_codes():
    f = titles(("plain words", "other words")).iloc[0]
    assert np.isnan(f["antiwords.title_code_in_other_min"])
    assert np.isnan(f["antiwords.title_code_in_other_max"])


def test_columns():
    f = titles(("a", "b"))
    expected = {f"antiwords.{fld}.{c}_{k}" for fld in ("title", "all") for c in CLASSES
                for k in ("one_side", "one_side_min", "shared", "jaccard", "conflict")}
    expected |= {"antiwords.title.code_fuzzy", "antiwords.all.code_fuzzy",
                 "antiwords.title_code_in_other_min", "antiwords.title_code_in_other_max"}
    assert set(f.columns) == expected
    # title only: no cross-field code feature
    f1 = antiword_features(pair_batch((dict(title="a"), dict(title="b"))), fields=("title",))
    assert "antiwords.title_code_in_other_min" not in f1.columns


def test_symmetric_in_pair_order():
    pairs = [(dict(title="iphone 12 128gb black"), dict(title="iphone 12 256gb white")),
             (dict(title="washer lds4821ww"), dict(title="washer xyz123",
                                                   attributes={"model": "lds4821ww"})),
             (dict(title="no box"), dict(title="16 gb"))]
    fwd = antiword_features(pair_batch(*pairs))
    bwd = antiword_features(pair_batch(*[(b, a) for a, b in pairs]))
    pd.testing.assert_frame_equal(fwd, bwd)
