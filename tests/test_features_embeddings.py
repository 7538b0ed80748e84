"""Embedding similarity features on hand-made stores, and the pipeline that encodes each
listing once into the store (real encoders: TF-IDF+SVD, perceptual hashes)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from dupsearch.features.embeddings import (ImageFamily, TextEmbeddingFamily, image_column, present_column,
                                           text_column, words_column)
from dupsearch.features.store import ListingStore, Ragged


def unit(*v):
    v = np.asarray(v, dtype=np.float32)
    return v / np.linalg.norm(v)


def pairs_store(col, a, b, kind="dense"):
    """A store whose rows 0..k-1 hold ``a`` and k..2k-1 hold ``b`` in column ``col``; pair i is
    row i vs row k + i. Returns the store and both index orders."""
    k = len(a)
    values = list(a) + list(b)
    store = ListingStore([str(i) for i in range(2 * k)])
    if kind == "dense":
        dim = next(len(v) for v in values if v is not None)
        store.put(col, np.stack([np.zeros(dim, np.float32) if v is None else v for v in values]))
        store.put(present_column(col), np.array([v is not None for v in values]))
        if col.endswith("|proj"):
            store.put(present_column(col.replace("|proj", "|text")), np.array([v is not None for v in values]))
    else:
        store.put(col, Ragged.from_list(values))
    ia, ib = np.arange(k), np.arange(k, 2 * k)
    return store, ia, ib


def compare(family, store, ia, ib):
    return pd.DataFrame(family._compare(store, ia, ib))


def text_store(a, b):
    store, ia, ib = pairs_store(text_column("enc", "text"), a, b)
    other = pairs_store(text_column("enc", "title"), a, b)[0]
    store.put(text_column("enc", "title"), other[text_column("enc", "title")])
    store.put(present_column(text_column("enc", "title")), other[present_column(text_column("enc", "title"))])
    return store, ia, ib


def test_text_cosine_values_and_missing_sides():
    store, ia, ib = text_store([unit(1, 0), unit(1, 1), None, np.zeros(2, np.float32)],
                               [unit(1, 0), unit(1, 0), unit(1, 0), unit(0, 1)])
    fam = TextEmbeddingFamily(["enc"])
    f = compare(fam, store, ia, ib)["embeddings.enc.text_cosine"].to_numpy()
    np.testing.assert_allclose(f[:2], [1.0, np.sqrt(0.5)], rtol=1e-6)
    assert np.isnan(f[2]) and np.isnan(f[3])  # no text / zero vector: undefined, not 0
    g = compare(fam, store, ib, ia)["embeddings.enc.text_cosine"].to_numpy()
    np.testing.assert_array_equal(np.isnan(f), np.isnan(g))
    np.testing.assert_allclose(f[:2], g[:2])


def test_principal_component_agreement_features():
    store, ia, ib = text_store([unit(1, 0), None], [unit(1, 0), unit(1, 0)])
    proj, _, _ = pairs_store(text_column("enc", "proj"), [np.array([1.0, -2.0], np.float32), None],
                             [np.array([3.0, 1.0], np.float32), unit(1, 0)])
    store.put(text_column("enc", "proj"), proj[text_column("enc", "proj")])
    fam = TextEmbeddingFamily(["enc"], components=2)
    f = compare(fam, store, ia, ib)
    np.testing.assert_allclose(f.iloc[0][["embeddings.enc.pc0_product", "embeddings.enc.pc1_product",
                                          "embeddings.enc.pc0_absdiff", "embeddings.enc.pc1_absdiff"]]
                               .to_numpy(float), [3.0, -2.0, 2.0, 3.0])
    assert f.iloc[1][[c for c in f.columns if ".pc" in c]].isna().all()
    pd.testing.assert_frame_equal(f, compare(fam, store, ib, ia))


def test_word_alignment_is_directional_and_tta_averages_both_orders():
    x, y, z = unit(1, 0, 0), unit(0, 1, 0), unit(0, 0, 1)
    a = [np.stack([x, y]), np.stack([x]), np.zeros((0, 3), np.float32)]
    b = [np.stack([x, y]), np.stack([x, z]), np.stack([x])]
    store, ia, ib = pairs_store(words_column("ft"), a, b, kind="ragged")
    from dupsearch.features.embeddings import word_alignment
    ab, ba = word_alignment(store[words_column("ft")], ia, ib)
    tta, lo, hi = (ab + ba) / 2, np.fmin(ab, ba), np.fmax(ab, ba)
    # pair 2: A={x} is contained in B={x,z}: A->B = 1, B->A = (1 + 0) / 2
    np.testing.assert_allclose(tta[:2], [1.0, 0.75])
    np.testing.assert_allclose(lo[:2], [1.0, 0.5])
    np.testing.assert_allclose(hi[:2], [1.0, 1.0])
    assert np.isnan(tta[2])  # a listing without words
    ab2, ba2 = word_alignment(store[words_column("ft")], ib, ia)
    np.testing.assert_allclose(ab2, ba, equal_nan=True)
    np.testing.assert_allclose(ba2, ab, equal_nan=True)


def image_features(col, a, b, metric="cosine", swap=False):
    store, ia, ib = pairs_store(image_column(col), a, b, kind="ragged")
    fam = ImageFamily([col], [metric])
    return compare(fam, store, *((ib, ia) if swap else (ia, ib)))


def test_image_set_summaries_cosine():
    p, q, r = unit(1, 0), unit(0, 1), unit(1, 1)
    a = [np.stack([p, q]), np.stack([p]), None]
    b = [np.stack([q]), np.stack([r]), np.stack([p])]
    f = image_features("cnn", a, b)
    row = f.iloc[0]
    assert row["images.cnn.max"] == pytest.approx(1.0)
    assert row["images.cnn.mean"] == pytest.approx(0.5)
    # A's rows: best 0 (p vs q) and 1 (q vs q) -> 0.5; B's single photo finds q -> 1
    assert row["images.cnn.best_min"] == pytest.approx(0.5)
    assert row["images.cnn.best_max"] == pytest.approx(1.0)
    assert row["images.cnn.best_mean"] == pytest.approx(0.75)
    assert row["images.cnn.n_above_0.97"] == 1
    assert f.iloc[1]["images.cnn.max"] == pytest.approx(np.sqrt(0.5))
    assert f.iloc[1]["images.cnn.n_above_0.9"] == 0
    assert f.iloc[2].isna().all()  # a listing without photos
    pd.testing.assert_frame_equal(f, image_features("cnn", a, b, swap=True))


def test_image_set_summaries_hamming():
    rng = np.random.default_rng(0)
    h1 = np.where(rng.random(64) > 0.5, 1, -1).astype(np.float32)
    h2 = h1.copy()
    h2[:3] *= -1  # 3 bits differ
    h3 = -h1  # every bit differs
    f = image_features("ph", [np.stack([h1, h3])], [np.stack([h2])], metric="hamming")
    row = f.iloc[0]
    assert row["images.ph.hamming_min"] == pytest.approx(3)
    assert row["images.ph.hamming_mean"] == pytest.approx((3 + 61) / 2)
    assert row["images.ph.max"] == pytest.approx(61 / 64)
    assert row["images.ph.n_within_0.1"] == 1  # 3 bits <= 6.4


# --------------------------------------------------------------------------- pipeline

@pytest.fixture(scope="module")
def photo_market(tmp_path_factory):
    from dupsearch.synth import generate_marketplace
    m = generate_marketplace(300, seed=1, photos_dir=tmp_path_factory.mktemp("photos"))
    return m.listings, m.pairs.head(400).reset_index(drop=True)


def make_pipeline(**kw):
    from dupsearch.features import FeatureConfig, FeaturePipeline
    return FeaturePipeline(FeatureConfig(families=("category", "embeddings", "images"), **kw))


def test_pipeline_embeds_each_listing_once_and_round_trips(photo_market, tmp_path):
    listings, pairs = photo_market
    pipe = make_pipeline(text_encoders=("tfidf_svd?dim=32",), image_encoders=("phash", "colorhist"),
                         embedding_components=4).fit(listings)
    X = pipe.transform(listings, pairs)
    assert {"embeddings.tfidf_svd_dim_32.text_cosine", "embeddings.tfidf_svd_dim_32.title_cosine",
            "embeddings.tfidf_svd_dim_32.pc0_product", "embeddings.tfidf_svd_dim_32.pc3_absdiff",
            "images.phash.hamming_min", "images.colorhist.best_mean"} <= set(X.columns)
    ids = pd.unique(pd.concat([pairs["item_id_a"], pairs["item_id_b"]]))
    n_photos = len({p for ps in listings.set_index("item_id").loc[ids, "images"] for p in ps})
    st = pipe.encoder_stats_
    # once per listing (texts and titles), never per pair; identical texts only once
    assert 0 < st["tfidf_svd_dim_32"]["encoded"] <= 2 * len(ids) < 2 * len(pairs)
    assert st["phash"]["encoded"] == n_photos
    # duplicates share photos far more than non-duplicates
    y = pairs["label"].to_numpy().astype(bool)
    col = X["images.colorhist.best_mean"].to_numpy()
    assert np.nanmean(col[y]) > np.nanmean(col[~y])
    pipe.save(tmp_path)
    from dupsearch.features import FeaturePipeline
    again = FeaturePipeline.load(tmp_path)
    pd.testing.assert_frame_equal(X, again.transform(listings, pairs))
    # the loaded pipeline found every embedding in the on-disk cache
    assert again.encoder_stats_["tfidf_svd_dim_32"]["encoded"] == 0
    assert again.encoder_stats_["phash"]["encoded"] == 0 and again.encoder_stats_["phash"]["cached"] == n_photos


def test_unreadable_photos_are_counted_and_left_out(photo_market, tmp_path):
    listings, pairs = photo_market
    listings = listings.copy()
    with_photos = np.flatnonzero(listings["images"].map(len) >= 2)
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"this is not a png")
    i, j = with_photos[:2]
    listings.at[listings.index[i], "images"] = [str(tmp_path / "missing.png")] + list(listings["images"].iloc[i][1:])
    listings.at[listings.index[j], "images"] = [str(broken)] + list(listings["images"].iloc[j][1:])
    pairs = pd.DataFrame({"item_id_a": listings["item_id"].iloc[[i, j]].to_numpy(),
                          "item_id_b": listings["item_id"].iloc[[j, i]].to_numpy()})
    pipe = make_pipeline(image_encoders=("phash",)).fit(listings)
    with pytest.warns(UserWarning, match="2 of .* photos could not be read"):
        X = pipe.transform(listings, pairs)
    assert pipe.photo_report_["unreadable"] == 2
    assert any("missing.png" in e for e in pipe.photo_report_["examples"])
    assert X["images.phash.max"].notna().all()  # the readable photos still compared


def test_unknown_encoder_spec_is_refused():
    with pytest.raises(ValueError, match="unknown text encoder"):
        make_pipeline(text_encoders=("no_such_model",)).fit(pd.DataFrame({"item_id": ["1"], "title": ["x"]}))


def test_default_photo_encoders_follow_the_training_data(photo_market, tmp_path):
    from dupsearch.features import FeatureConfig, FeaturePipeline
    listings, pairs = photo_market
    assert FeatureConfig().image_encoders == ("phash", "dhash", "colorhist")
    with_photos = FeaturePipeline(FeatureConfig(families=("images",))).fit(listings)
    assert [e.name for e in with_photos.image_encoders_] == ["phash", "dhash", "colorhist"]
    no_photos = listings.assign(images=[[] for _ in range(len(listings))])
    pipe = FeaturePipeline(FeatureConfig(families=("category", "images"))).fit(no_photos)
    assert pipe.image_encoders_ == []  # nothing to compare: no all-NaN columns
    X = pipe.transform(listings, pairs)
    assert not any(c.startswith("images.") for c in X.columns)
    pipe.save(tmp_path)
    assert FeaturePipeline.load(tmp_path).image_encoders_ == []
