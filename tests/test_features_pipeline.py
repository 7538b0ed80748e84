"""FeaturePipeline: stable columns, pair-order symmetry, batching and save/load."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from dupsearch.features import ALL_FAMILIES, FeatureConfig, FeaturePipeline

LISTINGS = pd.DataFrame([
    dict(item_id="1", title="Apple iPhone 12 128GB Black", description="Good phone, no scratches.",
         category_l1="Electronics", category_l2="Phones", category_l3="Apple", category_l4="iPhone 12",
         attributes={"Brand": "Apple", "Memory": "128 GB", "Colour": "Black"}, price=500.0,
         images=["a.jpg"]),
    dict(item_id="2", title="iPhone 12 256gb white", description="like new, without box",
         category_l1="electronics", category_l2="Phones", category_l3="Apple",
         category_l4="iPhone 12 Pro", attributes={"brand": "Apple", "memory": "256 GB"}, price=650.0,
         images=[]),
    dict(item_id="3", title="LG washer LDS4821WW", description="", category_l1="Home",
         category_l2="", category_l3="", category_l4="",
         attributes={"brand": "LG", "model": "lds4821ww"}, price=0.0, images=None),
    dict(item_id="4", title="washing machine LG white", description="works fine, 16 gb? no",
         category_l1="Appliances", category_l2="Washers", category_l3="", category_l4="",
         attributes={"brand": "LG", "model": "LDS4821WH", "condition": "used"}, price=np.nan,
         images=["x", "y"]),
    dict(item_id="5", title="", description="", category_l1="", category_l2="", category_l3="",
         category_l4="", attributes={}, price=10.0, images=[]),
    dict(item_id="6", title="Samsung Galaxy S21 Ultra 5G", description="чёрный, 12/256 ГБ",
         category_l1="Electronics", category_l2="Phones", category_l3="Samsung",
         category_l4="Galaxy S21", attributes={"brand": "Samsung", "memory": "256 GB"},
         price=700.0, images=["s.jpg"]),
    dict(item_id="7", title="Galaxy S21 ultra samsung", description="черный без зарядки",
         category_l1="Home", category_l2="Phones", category_l3="Samsung", category_l4="Galaxy S21",
         attributes={"brand": "Samsung", "memory": "128 GB", "colour": "black"}, price=690.0,
         images=[]),
    dict(item_id="8", title="Sony DVD-3800BDCI player", description="remote included",
         category_l1="Electronics", category_l2="Video", category_l3="", category_l4="",
         attributes={"brand": "Sony", "model": "dvd3800bdci"}, price=80.0, images=["d.jpg"]),
])

PAIRS = pd.DataFrame({
    "item_id_a": ["1", "1", "3", "3", "5", "2", "6", "6", "8", "7", "4"],
    "item_id_b": ["2", "3", "4", "5", "5", "4", "7", "1", "1", "8", "1"],
})


def swapped(pairs: pd.DataFrame) -> pd.DataFrame:
    return pairs.rename(columns={"item_id_a": "item_id_b", "item_id_b": "item_id_a"})


@pytest.fixture(scope="module")
def pipeline():
    return FeaturePipeline().fit(LISTINGS)


@pytest.fixture(scope="module")
def feats(pipeline):
    return pipeline.transform(LISTINGS, PAIRS)


def assert_same(a: pd.DataFrame, b: pd.DataFrame, exact: bool = False):
    assert list(a.columns) == list(b.columns)
    assert len(a) == len(b)
    for c in a.columns:
        x, y = a[c].to_numpy(), b[c].to_numpy()
        if x.dtype.kind in "fiub" and y.dtype.kind in "fiub":
            x, y = x.astype(float), y.astype(float)
            assert np.array_equal(np.isnan(x), np.isnan(y)), c
            if exact:
                assert np.array_equal(x[~np.isnan(x)], y[~np.isnan(y)]), c
            else:
                np.testing.assert_allclose(x, y, rtol=1e-6, atol=1e-9, err_msg=c)
        else:
            assert list(x) == list(y), c


def test_all_families_present(feats, pipeline):
    prefixes = {c.split(".")[0] for c in feats.columns}
    # Text encoders add columns only when configured (tests/test_features_embeddings.py).
    assert prefixes == set(ALL_FAMILIES) - {"embeddings"}  # photo paths here do not exist: NaN, counted
    assert len(feats) == len(PAIRS)
    assert pipeline.feature_names_ == list(feats.columns)
    assert pipeline.categorical_features == ["category.l1_pair"]
    numeric = feats.drop(columns=pipeline.categorical_features)
    assert all(dt.kind == "f" for dt in numeric.dtypes)


def test_every_feature_symmetric(pipeline, feats):
    assert_same(feats, pipeline.transform(LISTINGS, swapped(PAIRS)))


def test_symmetric_with_fresh_pipeline_per_direction():
    # feature_names_ fixed by the first transform must not hide a column that depends on order
    fwd = FeaturePipeline().fit(LISTINGS).transform(LISTINGS, PAIRS)
    bwd = FeaturePipeline().fit(LISTINGS).transform(LISTINGS, swapped(PAIRS))
    assert_same(fwd, bwd)


def test_self_pair():
    self_pair = FeaturePipeline().fit(LISTINGS).transform(
        LISTINGS, pd.DataFrame({"item_id_a": ["1"], "item_id_b": ["1"]})).iloc[0]
    for c in ("strings.title.ratio", "sets.title.word1_iou", "sets.text.char3_iou",
              "corpus.title.tfidf_word_cosine", "attributes.values_equal_share", "price.ratio",
              "category.path_equal", "lengths.text.chars_ratio"):
        assert self_pair[c] == pytest.approx(1.0, rel=1e-5), c
    assert self_pair["antiwords.title.number_one_side"] == 0


def test_same_columns_same_order_for_different_batches(pipeline, feats):
    other_pairs = pd.DataFrame({"item_id_a": ["5", "8"], "item_id_b": ["3", "3"]})
    other = pipeline.transform(LISTINGS, other_pairs)
    assert list(other.columns) == list(feats.columns)
    # a fresh pipeline whose first batch differs names the same columns in the same order
    fresh = FeaturePipeline().fit(LISTINGS).transform(LISTINGS, other_pairs)
    assert list(fresh.columns) == list(feats.columns)
    assert_same(fresh, other, exact=True)


def test_batch_of_one_pair(pipeline, feats):
    one = pipeline.transform(LISTINGS, PAIRS.iloc[[6]])
    assert one.shape == (1, feats.shape[1])
    assert_same(one, feats.iloc[[6]].reset_index(drop=True))


def test_batch_size_does_not_change_output(feats):
    small = FeaturePipeline(FeatureConfig(batch_size=2)).fit(LISTINGS).transform(LISTINGS, PAIRS)
    assert_same(small, feats, exact=True)
    odd = FeaturePipeline(FeatureConfig(batch_size=3)).fit(LISTINGS).transform(LISTINGS, PAIRS)
    assert_same(odd, feats, exact=True)


def test_pairs_order_only_permutes_rows(pipeline, feats):
    order = np.array([10, 3, 0, 7, 1, 9, 2, 5, 8, 4, 6])
    permuted = pipeline.transform(LISTINGS, PAIRS.iloc[order].reset_index(drop=True))
    assert_same(permuted, feats.iloc[order].reset_index(drop=True))


def test_extra_listings_do_not_matter(pipeline, feats):
    # transform prepares only the listings the pairs name
    more = pd.concat([LISTINGS, pd.DataFrame([dict(item_id="99", title="unrelated thing")])],
                     ignore_index=True)
    assert_same(pipeline.transform(more, PAIRS), feats)


def test_save_load_round_trip(tmp_path, pipeline, feats):
    pipeline.save(tmp_path)
    loaded = FeaturePipeline.load(tmp_path)
    assert loaded.feature_names_ == pipeline.feature_names_
    assert loaded.config == pipeline.config
    assert_same(loaded.transform(LISTINGS, PAIRS), feats, exact=True)


def test_save_load_with_subset_of_families(tmp_path):
    p = FeaturePipeline(FeatureConfig(families=("price", "attributes"), batch_size=4)).fit(LISTINGS)
    out = p.transform(LISTINGS, PAIRS)
    assert {c.split(".")[0] for c in out.columns} == {"price", "attributes"}
    assert [f.name for f in p.families_] == ["price", "attributes"] and p.categorical_features == []
    p.save(tmp_path)
    loaded = FeaturePipeline.load(tmp_path)
    assert loaded.config.families == ("price", "attributes") and loaded.config.batch_size == 4
    assert_same(loaded.transform(LISTINGS, PAIRS), out, exact=True)


def test_empty_pairs(pipeline, feats):
    out = pipeline.transform(LISTINGS, PAIRS.iloc[:0])
    assert len(out) == 0 and list(out.columns) == list(feats.columns)


def test_unknown_family_rejected():
    with pytest.raises(ValueError, match="unknown feature families.*'prices'"):
        FeatureConfig(families=("prices",))


def test_unknown_item_id_in_pairs(pipeline):
    from dupsearch.errors import DataError
    with pytest.raises(DataError, match="column 'item_id_b': pairs row 1 names item_id '404'"):
        pipeline.transform(LISTINGS, pd.DataFrame({"item_id_a": ["1"], "item_id_b": ["404"]}))
