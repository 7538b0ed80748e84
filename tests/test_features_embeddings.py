"""Embedding similarity features on hand-made batches (pure functions), and the pipeline
that attaches embeddings per listing (real encoders: TF-IDF+SVD, perceptual hashes)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from dupsearch.features.embeddings import (
    image_column,
    image_set_features,
    text_column,
    text_embedding_features,
    word_alignment_features,
    words_column,
)


def unit(*v):
    v = np.asarray(v, dtype=np.float32)
    return v / np.linalg.norm(v)


def obj(values):
    out = np.empty(len(values), dtype=object)
    out[:] = values
    return out


def batch_of(col, a, b):
    return pd.DataFrame({f"{col}_a": obj(a), f"{col}_b": obj(b)})


def swapped(batch):
    return batch.rename(columns=lambda c: c[:-2] + ("_b" if c.endswith("_a") else "_a"))


def test_text_cosine_values_and_missing_sides():
    col = text_column("enc", "text")
    b = batch_of(col, [unit(1, 0), unit(1, 1), None, np.zeros(2, np.float32)],
                 [unit(1, 0), unit(1, 0), unit(1, 0), unit(0, 1)])
    f = text_embedding_features(b, "enc")["embeddings.enc.text_cosine"].to_numpy()
    np.testing.assert_allclose(f[:2], [1.0, np.sqrt(0.5)], rtol=1e-6)
    assert np.isnan(f[2]) and np.isnan(f[3])  # no text / zero vector: undefined, not 0
    g = text_embedding_features(swapped(b), "enc")["embeddings.enc.text_cosine"].to_numpy()
    np.testing.assert_array_equal(np.isnan(f), np.isnan(g))
    np.testing.assert_allclose(f[:2], g[:2])


def test_word_alignment_is_directional_and_tta_averages_both_orders():
    col = words_column("ft")
    x, y, z = unit(1, 0, 0), unit(0, 1, 0), unit(0, 0, 1)
    a = [np.stack([x, y]), np.stack([x]), np.zeros((0, 3), np.float32)]
    b = [np.stack([x, y]), np.stack([x, z]), np.stack([x])]
    f = word_alignment_features(batch_of(col, a, b), "ft")
    # pair 2: A={x} is contained in B={x,z}: A->B = 1, B->A = (1 + 0) / 2
    np.testing.assert_allclose(f["embeddings.ft.align_tta"].to_numpy()[:2], [1.0, 0.75])
    np.testing.assert_allclose(f["embeddings.ft.align_min"].to_numpy()[:2], [1.0, 0.5])
    np.testing.assert_allclose(f["embeddings.ft.align_max"].to_numpy()[:2], [1.0, 1.0])
    assert f.iloc[2].isna().all()  # a listing without words
    g = word_alignment_features(swapped(batch_of(col, a, b)), "ft")
    pd.testing.assert_frame_equal(f, g)


def test_image_set_summaries_cosine():
    col = image_column("cnn")
    p, q, r = unit(1, 0), unit(0, 1), unit(1, 1)
    a = [np.stack([p, q]), np.stack([p]), None]
    b = [np.stack([q]), np.stack([r]), np.stack([p])]
    f = image_set_features(batch_of(col, a, b), "cnn")
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
    pd.testing.assert_frame_equal(f, image_set_features(swapped(batch_of(col, a, b)), "cnn"))


def test_image_set_summaries_hamming():
    col = image_column("ph")
    rng = np.random.default_rng(0)
    h1 = np.where(rng.random(64) > 0.5, 1, -1).astype(np.float32)
    h2 = h1.copy()
    h2[:3] *= -1  # 3 bits differ
    h3 = -h1  # every bit differs
    f = image_set_features(batch_of(col, [np.stack([h1, h3])], [np.stack([h2])]), "ph", metric="hamming")
    row = f.iloc[0]
    assert row["images.ph.hamming_min"] == pytest.approx(3)
    assert row["images.ph.hamming_mean"] == pytest.approx((3 + 61) / 2)
    assert row["images.ph.max"] == pytest.approx(61 / 64)
    assert row["images.ph.n_within_0.1"] == 1  # 3 bits <= 6.4
