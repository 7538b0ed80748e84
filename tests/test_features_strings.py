"""Fuzzy string features: known rapidfuzz values, identical and empty texts, prefix/LCS ratios."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from rapidfuzz import fuzz
from rapidfuzz.distance import JaroWinkler, LCSseq, Levenshtein

from dupsearch.features.strings import MAX_CHARS, PARTIAL_CHARS, ROUGE_FIELDS, SCORERS
from helpers import field_pairs, pair_batch, string_features

ALL_SCORES = list(SCORERS)


def titles(*pairs, **kw):
    return string_features(field_pairs("title", *pairs), fields=("title",), **kw)


def test_columns_per_field():
    f = string_features(pair_batch((dict(title="a"), dict(title="b"))))
    for field in ("title", "description", "attrs"):
        for s in ALL_SCORES:
            assert f"strings.{field}.{s}" in f.columns
    assert len(f.columns) == 3 * len(ALL_SCORES)  # ROUGE-L is off by default
    f = string_features(pair_batch((dict(title="a"), dict(title="b"))), rouge_fields=ROUGE_FIELDS)
    rouge = [f"strings.{field}.rouge_l" for field in ROUGE_FIELDS]
    assert list(f.columns[-len(rouge):]) == rouge
    assert len(f.columns) == 3 * len(ALL_SCORES) + len(rouge)
    f = string_features(pair_batch((dict(title="a"), dict(title="b"))), fields=("text",))
    assert len(f.columns) == len(ALL_SCORES)


def test_identical_titles_score_one_everywhere():
    f = titles(("Apple iPhone 12 Pro", "apple  iphone 12 pro"))  # equal once normalized
    for s in ALL_SCORES:
        assert f[f"strings.title.{s}"].iloc[0] == pytest.approx(1.0), s


def test_kitten_sitting_by_hand():
    f = titles(("kitten", "sitting")).iloc[0]
    assert f["strings.title.levenshtein"] == pytest.approx(1 - 3 / 7)  # 3 edits, longer is 7
    assert f["strings.title.ratio"] == pytest.approx(1 - 5 / 13)       # indel distance 5 of 13
    assert f["strings.title.lcsseq"] == pytest.approx(4 / 7)           # LCS "ittn"
    assert f["strings.title.lcsseq_shorter"] == pytest.approx(4 / 6)
    assert f["strings.title.common_prefix"] == pytest.approx(0.0)


def test_jaro_winkler_textbook_value():
    f = titles(("martha", "marhta")).iloc[0]
    assert f["strings.title.jaro_winkler"] == pytest.approx(0.9611111, abs=1e-6)


def test_token_scorers_by_hand():
    f = titles(("Samsung Galaxy S21 Ultra", "galaxy s21 samsung")).iloc[0]
    # tokens of B are a subset of A's: token_set_ratio is 100
    assert f["strings.title.token_set_ratio"] == pytest.approx(1.0)
    # sorted: "galaxy s21 samsung ultra" (24) vs "galaxy s21 samsung" (18): 2*18/42
    assert f["strings.title.token_sort_ratio"] == pytest.approx(36 / 42)
    assert f["strings.title.ratio"] < 1.0


def test_vectorized_columns_equal_single_pair_rapidfuzz():
    pairs = [("samsung galaxy s21 ultra 256gb", "galaxy s21 ultra samsung 128gb"),
             ("lg washer lds4821ww", "lds4821wh lg washing machine"),
             ("кофемашина delonghi", "кофеварка de longhi")]
    f = titles(*pairs)
    ref = {"ratio": lambda a, b: fuzz.ratio(a, b) / 100,
           "partial_ratio": lambda a, b: fuzz.partial_ratio(a, b) / 100,
           "token_set_ratio": lambda a, b: fuzz.token_set_ratio(a, b) / 100,
           "token_sort_ratio": lambda a, b: fuzz.token_sort_ratio(a, b) / 100,
           "jaro_winkler": JaroWinkler.normalized_similarity,
           "levenshtein": Levenshtein.normalized_similarity,
           "lcsseq": LCSseq.normalized_similarity}
    for i, (a, b) in enumerate(pairs):
        for name, fn in ref.items():
            assert f[f"strings.title.{name}"].iloc[i] == pytest.approx(fn(a, b)), (i, name)


def test_empty_side_gives_nan():
    f = titles(("", "apple"), ("apple", ""), ("", ""), ("a", "a"))
    for s in ALL_SCORES:
        v = f[f"strings.title.{s}"].to_numpy(float)
        assert np.isnan(v[:3]).all(), s
        assert v[3] == pytest.approx(1.0)


def test_common_prefix_relative_to_shorter():
    f = titles(("samsung galaxy", "samsung gal"), ("samsung galaxy", "samsung note"),
               ("galaxy", "samsung"))
    np.testing.assert_allclose(f["strings.title.common_prefix"], [11 / 11, 8 / 12, 0.0])
    # "samsung gal" is a subsequence of "samsung galaxy": LCS covers the whole shorter text
    assert f["strings.title.lcsseq_shorter"].iloc[0] == pytest.approx(1.0)


def test_texts_are_cut_to_max_chars():
    cut = MAX_CHARS["title"]
    f = titles(("a" * cut + "b" * 50, "a" * cut + "c" * 80))
    assert f["strings.title.ratio"].iloc[0] == pytest.approx(1.0)


def test_partial_ratio_reads_its_own_shorter_cut():
    cut = PARTIAL_CHARS["description"]
    assert cut < MAX_CHARS["description"]
    # the same first `cut` characters, then different tails: partial_ratio sees only the heads
    a, b = "x" * cut + " red leather sofa", "x" * cut + " blue glass table"
    f = string_features(field_pairs("description", (a, b)), fields=("description",)).iloc[0]
    assert f["strings.description.partial_ratio"] == pytest.approx(1.0)
    assert f["strings.description.ratio"] < 1.0  # the other scores read all MAX_CHARS
    wide = string_features(field_pairs("description", (a, b)), fields=("description",),
                           partial_chars={"description": 600}).iloc[0]
    assert wide["strings.description.partial_ratio"] < 1.0


def test_symmetric_in_pair_order():
    pairs = [("samsung galaxy s21 ultra", "galaxy s21"), ("abcd xyz", "xyz abce"),
             ("kitten", "sitting"), ("", "x")]
    fwd = titles(*pairs)
    bwd = titles(*[(b, a) for a, b in pairs])
    pd.testing.assert_frame_equal(fwd, bwd)


def test_rouge_l_is_word_level_lcs():
    from dupsearch.features.base import hash_strings
    from dupsearch.features.strings import word_strings
    on = dict(rouge_fields=("title",))
    f = titles(("red apple iphone case", "apple red iphone case cover"), **on).iloc[0]
    # word LCS: "apple iphone case" (or "red iphone case"): 3 words of 4 + 5
    assert f["strings.title.rouge_l"] == pytest.approx(2 * 3 / 9)
    assert titles(("a b c", "a b c"), **on).iloc[0]["strings.title.rouge_l"] == pytest.approx(1.0)
    assert np.isnan(titles(("a b c", ""), **on).iloc[0]["strings.title.rouge_l"])
    words = word_strings(hash_strings(["x", "y", "x", "z"] * 100), np.array([2, 0, 398]), max_words=256)
    assert [len(w) for w in words] == [2, 0, 256]
    assert words[0] == word_strings(hash_strings(["x", "y"]), np.array([2]))[0]
    assert words[2][:2] == word_strings(hash_strings(["x", "z"]), np.array([2]))[0] != words[0]


def test_models_saved_before_rouge_keep_their_columns():
    from dupsearch.features.strings import StringFamily
    fam = StringFamily(fields=("title",), rouge_fields=("title",))
    del fam.rouge_fields  # as a family restored from an older model's state
    assert "rouge_fields" not in fam.settings()


def test_settings_without_rouge_are_those_before_it():
    """A pipeline's digest hashes its families' settings: models and indexes saved before ROUGE-L
    existed must keep their digest (an index checks its model by it and refused to open)."""
    from dupsearch.features.strings import StringFamily
    assert set(StringFamily(fields=("title",)).settings()) == {"fields", "max_chars", "partial_chars"}
    assert StringFamily(fields=("title",), rouge_fields=("title",)).settings()["rouge_fields"] == ["title"]
