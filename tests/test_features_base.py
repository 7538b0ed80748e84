"""dupsearch.features.base: prepared listings, pair batches and the sparse set helpers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from dupsearch.features.base import (
    NgramAnalyzer,
    join_pairs,
    prepare_listings,
    safe_div,
    set_overlap,
    symmetric,
)


def listings() -> pd.DataFrame:
    return pd.DataFrame([
        dict(item_id=1, title="  Apple  iPhone 12 ", description="Ёмкий аккумулятор",
             category_l1="Electronics", category_l2="Phones", category_l3="Apple",
             category_l4="iPhone 12", attributes={"Brand": " Apple ", "Empty": "", "Colour": "Black"},
             price=500, images=["a.jpg", "b.jpg"]),
        dict(item_id="2", title="iPhone", description=None, category_l1="", category_l2=None,
             category_l3=np.nan, category_l4="", attributes='{"Memory": "128 GB"}',
             price=np.nan, images=None),
        dict(item_id="3", title="", description="", category_l1="", category_l2="",
             category_l3="", category_l4="", attributes=None, price="oops", images=[]),
    ])


def test_prepare_normalizes_fields():
    p = prepare_listings(listings())
    assert list(p["item_id"]) == ["1", "2", "3"]
    assert p.loc[0, "title"] == "apple iphone 12"
    assert p.loc[0, "description"] == "емкий аккумулятор"
    assert p.loc[0, "text"] == "apple iphone 12 емкий аккумулятор"
    assert p.loc[1, "text"] == "iphone"  # no trailing space when the description is empty
    assert p.loc[2, "text"] == ""
    assert p.loc[0, "category_l1"] == "electronics"
    assert p.loc[1, "category_l2"] == "" and p.loc[1, "category_l3"] == ""


def test_prepare_attributes_normalized_and_empty_values_dropped():
    p = prepare_listings(listings())
    assert p.loc[0, "attributes"] == {"brand": "apple", "colour": "black"}
    assert p.loc[1, "attributes"] == {"memory": "128 gb"}  # parsed from a JSON string
    assert p.loc[2, "attributes"] == {}
    # attrs: "key value" pairs sorted by key; all: text plus attribute values
    assert p.loc[0, "attrs"] == "brand apple colour black"
    assert p.loc[0, "all"] == "apple iphone 12 емкий аккумулятор apple black"
    assert p.loc[2, "attrs"] == "" and p.loc[2, "all"] == ""


def test_prepare_price_images_and_fill_rate():
    p = prepare_listings(listings())
    assert p.loc[0, "price"] == 500.0
    assert np.isnan(p.loc[1, "price"]) and np.isnan(p.loc[2, "price"])  # "oops" -> NaN
    assert list(p["n_images"]) == [2, 0, 0]
    # 9 fill fields: title, description, l1..l4, attributes, price, images
    assert p.loc[0, "fill_rate"] == pytest.approx(9 / 9)
    assert p.loc[1, "fill_rate"] == pytest.approx(2 / 9)  # title, attributes
    assert p.loc[2, "fill_rate"] == pytest.approx(0.0)


def test_prepare_missing_optional_columns():
    p = prepare_listings(pd.DataFrame({"item_id": ["x"], "title": ["Sony"]}))
    assert p.loc[0, "title"] == "sony" and p.loc[0, "description"] == ""
    assert p.loc[0, "attributes"] == {} and np.isnan(p.loc[0, "price"])
    assert p.loc[0, "fill_rate"] == pytest.approx(1 / 9)


def test_join_pairs_gathers_both_sides():
    p = prepare_listings(listings())
    batch = join_pairs(p, pd.DataFrame({"item_id_a": ["2", 1], "item_id_b": ["1", "3"]}))
    assert len(batch) == 2
    assert list(batch["title_a"]) == ["iphone", "apple iphone 12"]
    assert list(batch["title_b"]) == ["apple iphone 12", ""]
    assert "item_id_a" not in batch.columns
    for f in ("title", "attributes", "price", "fill_rate", "category_l4", "all", "attrs"):
        assert f"{f}_a" in batch.columns and f"{f}_b" in batch.columns


def test_join_pairs_unknown_id_names_it():
    p = prepare_listings(listings())
    with pytest.raises(KeyError, match="'nope'.*row 2|row 2.*'nope'"):
        join_pairs(p, pd.DataFrame({"item_id_a": ["1", "2"], "item_id_b": ["2", "nope"]}))


def test_safe_div_nan_on_zero_denominator():
    got = safe_div(np.array([1.0, 0.0, 3.0]), np.array([2.0, 0.0, 0.0]))
    assert got[0] == 0.5 and np.isnan(got[1]) and np.isnan(got[2])


def test_set_overlap_by_hand():
    A = sp.csr_matrix(np.array([[1, 1, 1, 0], [0, 0, 0, 0], [1, 0, 0, 0]], dtype=float))
    B = sp.csr_matrix(np.array([[0, 1, 1, 1], [0, 0, 0, 0], [0, 0, 0, 0]], dtype=float))
    ov = set_overlap(A, B)
    assert ov["inter"].tolist() == [2.0, 0.0, 0.0]
    assert ov["iou"][0] == pytest.approx(2 / 4)
    assert ov["dice"][0] == pytest.approx(4 / 6)
    assert ov["containment"][0] == pytest.approx(2 / 3)
    assert np.isnan(ov["iou"][1]) and np.isnan(ov["dice"][1]) and np.isnan(ov["containment"][1])
    assert ov["iou"][2] == 0.0 and np.isnan(ov["containment"][2])


def test_ngram_analyzer():
    assert NgramAnalyzer(2)(["a", "b", "c"]) == ["a b", "b c"]
    assert NgramAnalyzer(3)(["a", "b"]) == []


def test_symmetric_min_max_ignores_nan():
    got = symmetric("x", np.array([1.0, np.nan, 2.0]), np.array([3.0, 4.0, np.nan]))
    assert got["x_min"].tolist() == [1.0, 4.0, 2.0]
    assert got["x_max"].tolist() == [3.0, 4.0, 2.0]
