"""dupsearch.features.base: prepared listings, pair batches and the sparse set helpers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from dupsearch.features.base import (
    hash_strings,
    intersect,
    ngram_hashes,
    pair_dot,
    prepare_listings,
    safe_div,
    set_matrix,
    shared_count,
    symmetric,
    tag_counts,
    tagged_columns,
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


def test_safe_div_nan_on_zero_denominator():
    got = safe_div(np.array([1.0, 0.0, 3.0]), np.array([2.0, 0.0, 0.0]))
    assert got[0] == 0.5 and np.isnan(got[1]) and np.isnan(got[2])


def test_hash_strings_is_stable_and_distinguishes():
    h = hash_strings(np.array(["iphone", "iphone", "айфон", ""], dtype=object))
    assert h.dtype == np.uint64 and h[0] == h[1] and len({int(x) for x in h}) == 3
    # the same in every process and run: a store built anywhere holds the same numbers
    assert int(hash_strings(["iphone"])[0]) == int.from_bytes(
        __import__("hashlib").blake2b(b"iphone", digest_size=8).digest(), "little")


def test_ngram_hashes_stay_within_documents():
    sym = hash_strings(np.array(["a", "b", "c", "a", "b"], dtype=object))
    doc, h = ngram_hashes(sym, np.array([3, 2]), 2)
    assert doc.tolist() == [0, 0, 1]  # "a b", "b c" | "a b" (no bigram across the border)
    assert h[0] == h[2] and h[0] != h[1]
    assert len(ngram_hashes(sym, np.array([3, 2]), 4)[0]) == 0


def test_tagged_sets_intersect_per_tag_by_hand():
    # doc 0: {x, y} with tag 1 and {z} with tag 2; doc 1: {y} tag 1, {z} tag 2, {w} tag 1
    x, y, z, w = hash_strings(np.array(["x", "y", "z", "w"], dtype=object))
    doc = np.array([0, 0, 0, 1, 1, 1])
    cols = np.concatenate([tagged_columns(np.array([x, y, y, w], np.uint64), 1)[[0, 1]],
                           tagged_columns(np.array([z], np.uint64), 2),
                           tagged_columns(np.array([y], np.uint64), 1),
                           tagged_columns(np.array([z], np.uint64), 2),
                           tagged_columns(np.array([w], np.uint64), 1)])
    X = set_matrix(doc, np.concatenate([cols[:3], cols[3:]]), 3)
    sizes = tag_counts(X)
    assert sizes[0, 1] == 2 and sizes[0, 2] == 1 and sizes[1, 1] == 2 and sizes[2].sum() == 0
    inter = shared_count(X[[0, 0, 2]], X[[1, 0, 1]], by_tag=True)
    assert inter[0, 1] == 1 and inter[0, 2] == 1   # y and z shared
    assert inter[1, 1] == 2 and inter[1, 2] == 1   # a listing with itself
    assert inter[2].sum() == 0                     # an empty listing shares nothing
    assert shared_count(X[[0]], X[[1]]).tolist() == [2.0]


def test_intersect_and_pair_dot_by_hand():
    A = sp.csr_matrix(np.array([[1, 2, 0, 0], [0, 0, 0, 5], [3, 0, 0, 0]], dtype=float))
    B = sp.csr_matrix(np.array([[0, 4, 6, 0], [0, 0, 0, 7], [0, 0, 1, 0]], dtype=float))
    rows, pa, pb = intersect(A, B)
    assert rows.tolist() == [0, 1]
    assert A.data[pa].tolist() == [2.0, 5.0] and B.data[pb].tolist() == [4.0, 7.0]
    assert pair_dot(A, B).tolist() == [8.0, 35.0, 0.0]


def test_symmetric_min_max_ignores_nan():
    got = symmetric("x", np.array([1.0, np.nan, 2.0]), np.array([3.0, 4.0, np.nan]))
    assert got["x_min"].tolist() == [1.0, 4.0, 2.0]
    assert got["x_max"].tolist() == [3.0, 4.0, 2.0]
