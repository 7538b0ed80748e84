"""Corpus features: TF-IDF cosines and BM25 with statistics fitted on training listings."""

from __future__ import annotations

import math
import pickle

import numpy as np
import pandas as pd
import pytest

from dupsearch.features.base import prepare_listings
from dupsearch.features.corpus import BM25, CorpusFamily, WordNgrams
from helpers import DEFAULTS, features_of, field_pairs

TRAIN_TITLES = ["red apple", "green apple", "red car", "Red Apple"]  # the last repeats the first


def train(titles=TRAIN_TITLES, fields=("title",), **extra):
    listings = pd.DataFrame([{**DEFAULTS, "item_id": str(i), "title": t, **extra}
                             for i, t in enumerate(titles)])
    return CorpusFamily(fields=fields).fit(prepare_listings(listings))


@pytest.fixture(scope="module")
def stats():
    return train()


def titles(stats, *pairs):
    return features_of(stats, field_pairs("title", *pairs))


# Distinct training titles: "red apple", "green apple", "red car" (N = 3, 2 words each).
BM_IDF = {w: math.log1p((3 - df + 0.5) / (df + 0.5))
          for w, df in {"red": 2, "apple": 2, "green": 1, "car": 1}.items()}


def test_word_ngrams_analyzer():
    assert WordNgrams()("a b c") == ["a", "b", "c", "a b", "b c"]


def test_identical_texts_cosine_one(stats):
    f = titles(stats, ("red apple", "RED  apple"), ("green car", "green car")).reset_index(drop=True)
    np.testing.assert_allclose(f["corpus.title.tfidf_word_cosine"], [1, 1], rtol=1e-5)
    np.testing.assert_allclose(f["corpus.title.tfidf_char_cosine"], [1, 1], rtol=1e-5)
    np.testing.assert_allclose(f["corpus.title.bm25_norm_min"], [1, 1], rtol=1e-5)
    np.testing.assert_allclose(f["corpus.title.idf_jaccard"], [1, 1], rtol=1e-5)
    np.testing.assert_allclose(f["corpus.title.idf_unmatched_max"], [0, 0], atol=1e-6)


def test_disjoint_vocabularies_score_zero(stats):
    f = titles(stats, ("red apple", "green car")).iloc[0]
    for k in ("tfidf_word_cosine", "bm25_min", "bm25_max", "bm25_norm_min", "bm25_norm_max",
              "idf_jaccard"):
        assert f[f"corpus.title.{k}"] == pytest.approx(0.0, abs=1e-7), k


def test_tfidf_word_cosine_by_hand(stats):
    # smooth idf: ln((1+N)/(1+df)) + 1 over the 3 distinct training titles
    i2, i1 = math.log(4 / 3) + 1, math.log(2) + 1
    # A = {red: i2, apple: i2, "red apple": i1}, B = {green: i1, apple: i2, "green apple": i1}
    expected = i2 * i2 / math.sqrt((2 * i2 ** 2 + i1 ** 2) * (i2 ** 2 + 2 * i1 ** 2))
    f = titles(stats, ("red apple", "green apple")).iloc[0]
    assert f["corpus.title.tfidf_word_cosine"] == pytest.approx(expected, rel=1e-5)


def test_bm25_by_hand_equal_lengths(stats):
    f = titles(stats, ("red apple", "green apple")).iloc[0]
    # dl == avgdl == 2 and tf == 1: each matched word weighs exactly its idf
    assert f["corpus.title.bm25_min"] == pytest.approx(BM_IDF["apple"], rel=1e-5)
    assert f["corpus.title.bm25_max"] == pytest.approx(BM_IDF["apple"], rel=1e-5)
    self_a = BM_IDF["red"] + BM_IDF["apple"]
    self_b = BM_IDF["green"] + BM_IDF["apple"]
    assert f["corpus.title.bm25_norm_max"] == pytest.approx(BM_IDF["apple"] / self_a, rel=1e-5)
    assert f["corpus.title.bm25_norm_min"] == pytest.approx(BM_IDF["apple"] / self_b, rel=1e-5)


def test_bm25_by_hand_length_normalization(stats):
    # A = "red car apple" (dl 3), B = "red apple" (dl 2); avgdl 2, k1 1.2, b 0.75
    f = titles(stats, ("red car apple", "red apple")).iloc[0]
    matched = BM_IDF["red"] + BM_IDF["apple"]
    long_factor = 2.2 / (1 + 1.2 * (1 - 0.75 + 0.75 * 3 / 2))
    assert f["corpus.title.bm25_max"] == pytest.approx(matched, rel=1e-5)          # A's words in B
    assert f["corpus.title.bm25_min"] == pytest.approx(matched * long_factor, rel=1e-5)
    # B's words against A over B against itself: only A's length penalty is left
    assert f["corpus.title.bm25_norm_max"] == pytest.approx(long_factor, rel=1e-5)
    # A's words against B over A against itself (A's own weights are length-penalized)
    self_a = (matched + BM_IDF["car"]) * long_factor
    assert f["corpus.title.bm25_norm_min"] == pytest.approx(matched / self_a, rel=1e-5)


def test_idf_overlap_by_hand(stats):
    f = titles(stats, ("red apple", "green apple")).iloc[0]
    shared = BM_IDF["apple"]
    wa, wb = BM_IDF["red"] + shared, BM_IDF["green"] + shared
    assert f["corpus.title.idf_jaccard"] == pytest.approx(shared / (wa + wb - shared), rel=1e-5)
    assert f["corpus.title.idf_unmatched_min"] == pytest.approx(BM_IDF["red"], rel=1e-5)
    assert f["corpus.title.idf_unmatched_max"] == pytest.approx(BM_IDF["green"], rel=1e-5)


def test_swapped_sides_give_same_values(stats):
    pairs = [("red car apple", "red apple"), ("red apple", "green apple"), ("car", "red red car")]
    fwd = titles(stats, *pairs)
    bwd = titles(stats, *[(b, a) for a, b in pairs])
    pd.testing.assert_frame_equal(fwd, bwd)
    assert (fwd["corpus.title.bm25_min"] <= fwd["corpus.title.bm25_max"]).all()


def test_unseen_word_contributes_nothing(stats):
    f = titles(stats, ("red apple zebra", "red apple"), ("zebra", "red apple")).reset_index(drop=True)
    assert f["corpus.title.tfidf_word_cosine"].iloc[0] == pytest.approx(1.0, rel=1e-5)
    assert f["corpus.title.bm25_min"].iloc[0] == pytest.approx(f["corpus.title.bm25_max"].iloc[0])
    assert f["corpus.title.bm25_norm_min"].iloc[0] == pytest.approx(1.0, rel=1e-5)
    assert f["corpus.title.idf_unmatched_max"].iloc[0] == pytest.approx(0.0, abs=1e-6)
    # only unseen words: zero, but defined (the text is not empty)
    assert f["corpus.title.tfidf_word_cosine"].iloc[1] == 0.0
    assert f["corpus.title.bm25_max"].iloc[1] == 0.0


def test_empty_side_gives_nan(stats):
    f = titles(stats, ("", "red apple"), ("", "")).reset_index(drop=True)
    assert f.isna().all().all()


def test_bm25_fit_statistics():
    bm = BM25().fit(["a b", "a c", "d"])
    assert bm.avgdl_ == pytest.approx(5 / 3)
    vocab = bm.vectorizer.vocabulary_
    assert bm.idf_[vocab["a"]] == pytest.approx(math.log1p((3 - 2 + 0.5) / 2.5), rel=1e-6)
    assert bm.idf_[vocab["d"]] == pytest.approx(math.log1p((3 - 1 + 0.5) / 1.5), rel=1e-6)


def test_fields_empty_in_training_are_skipped():
    stats = train(fields=("title", "description", "text", "attrs"))
    f = titles(stats, ("red apple", "red car"))
    assert any(c.startswith("corpus.title.") for c in f.columns)
    assert any(c.startswith("corpus.text.") for c in f.columns)
    assert not any(c.startswith("corpus.description.") for c in f.columns)
    assert not any(c.startswith("corpus.attrs.") for c in f.columns)


def test_pickle_round_trip(stats):
    again = pickle.loads(pickle.dumps(stats))
    pairs = [("red apple", "green apple"), ("red car apple", "zebra car")]
    pd.testing.assert_frame_equal(titles(stats, *pairs), titles(again, *pairs))
