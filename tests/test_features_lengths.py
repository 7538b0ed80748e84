"""Length features: character and token ratios, differences and minima."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from helpers import field_pairs, length_features, pair_batch


def titles(*pairs):
    return length_features(field_pairs("title", *pairs), fields=("title",))


def test_char_and_token_lengths_by_hand():
    f = titles(("abc de", "abcdef ghi jk")).iloc[0]
    # 6 vs 13 characters, 2 vs 3 tokens
    assert f["lengths.title.chars_ratio"] == pytest.approx(6 / 13)
    assert f["lengths.title.chars_diff"] == 7
    assert f["lengths.title.chars_min"] == 6
    assert f["lengths.title.tokens_ratio"] == pytest.approx(2 / 3)
    assert f["lengths.title.tokens_diff"] == 1
    assert f["lengths.title.tokens_min"] == 2


def test_lengths_of_normalized_text():
    # whitespace collapsed, punctuation is not a token, a model code is one token
    f = titles(("  a    b  ", "dvd-3800bdci, ok!")).iloc[0]
    assert f["lengths.title.chars_min"] == 3            # "a b"
    assert f["lengths.title.chars_diff"] == 17 - 3      # "dvd-3800bdci, ok!" has 17 chars
    assert f["lengths.title.tokens_ratio"] == pytest.approx(1.0)  # 2 tokens each


def test_empty_sides():
    f = titles(("", ""), ("", "a b c")).reset_index(drop=True)
    assert np.isnan(f["lengths.title.chars_ratio"].iloc[0])
    assert np.isnan(f["lengths.title.tokens_ratio"].iloc[0])
    assert np.isnan(f["lengths.title.chars_diff"].iloc[0])  # two empty titles: nothing to compare
    assert f["lengths.title.chars_ratio"].iloc[1] == 0.0
    assert f["lengths.title.tokens_diff"].iloc[1] == 3
    assert f["lengths.title.chars_min"].iloc[1] == 0


def test_all_fields_and_text_is_title_plus_description():
    f = length_features(pair_batch((dict(title="ab", description="cde", attributes={"k": "v"}),
                                    dict(title="ab")))).iloc[0]
    assert f["lengths.text.chars_min"] == 2 and f["lengths.text.chars_diff"] == 4  # "ab cde"
    assert f["lengths.description.tokens_diff"] == 1
    assert f["lengths.attrs.chars_diff"] == 3  # "k v" vs ""
    assert len(f) == 4 * 6


def test_symmetric_in_pair_order():
    pairs = [("abc de", "abcdef ghi jk"), ("", "x"), ("same", "same")]
    pd.testing.assert_frame_equal(titles(*pairs), titles(*[(b, a) for a, b in pairs]))
