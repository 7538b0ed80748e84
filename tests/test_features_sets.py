"""Set overlap features: word n-gram IoU/Dice/containment and character trigrams."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from dupsearch.features.sets import WORD_NGRAMS
from helpers import field_pairs, pair_batch, set_features


def on(field, *pairs):
    return set_features(field_pairs(field, *pairs), fields=(field,))


def test_word1_overlaps_by_hand():
    f = on("title", ("a b c", "b c d")).iloc[0]
    assert f["sets.title.word1_iou"] == pytest.approx(2 / 4)
    assert f["sets.title.word1_dice"] == pytest.approx(2 * 2 / 6)
    assert f["sets.title.word1_containment"] == pytest.approx(2 / 3)
    assert f["sets.title.word1_common"] == 2
    # bigrams: {a b, b c} vs {b c, c d}
    assert f["sets.title.word2_iou"] == pytest.approx(1 / 3)
    # trigrams: {a b c} vs {b c d}
    assert f["sets.title.word3_iou"] == pytest.approx(0.0)


def test_word_sets_ignore_repeats_and_order_for_unigrams():
    f = on("title", ("a a b", "b a"), ("x y", "x y z w")).reset_index(drop=True)
    assert f["sets.title.word1_iou"].iloc[0] == pytest.approx(1.0)
    assert f["sets.title.word1_common"].iloc[0] == 2
    assert f["sets.title.word1_containment"].iloc[1] == pytest.approx(1.0)  # x y inside x y z w
    assert f["sets.title.word1_iou"].iloc[1] == pytest.approx(2 / 4)


@pytest.mark.parametrize("n", range(1, 8))
def test_word_ngram_iou_n1_to_7(n):
    # 8 words, the last one differs: A and B each have 9-n n-grams, 8-n of them shared
    f = on("description", ("w1 w2 w3 w4 w5 w6 w7 w8", "w1 w2 w3 w4 w5 w6 w7 x8"))
    assert f[f"sets.description.word{n}_iou"].iloc[0] == pytest.approx((8 - n) / (10 - n))


def test_ngram_orders_per_field():
    f = set_features(pair_batch((dict(title="a"), dict(title="a"))))
    for field, orders in WORD_NGRAMS.items():
        for n in range(1, 9):
            assert (f"sets.{field}.word{n}_iou" in f.columns) == (n in orders), (field, n)


def test_text_shorter_than_order_gives_nan_or_zero():
    f = on("description", ("a b", "a b"), ("a b c", "a b")).reset_index(drop=True)
    # neither side has a trigram: undefined
    assert np.isnan(f["sets.description.word3_iou"].iloc[0])
    assert f["sets.description.word2_iou"].iloc[0] == pytest.approx(1.0)
    # one side has a trigram, the other none
    assert f["sets.description.word3_iou"].iloc[1] == 0.0


def test_char_trigrams():
    f = on("title", ("abc", "abd"), ("samsung galaxy", "samsung galaxy")).reset_index(drop=True)
    # {" ab", "abc", "bc "} vs {" ab", "abd", "bd "}
    assert f["sets.title.char3_iou"].iloc[0] == pytest.approx(1 / 5)
    assert f["sets.title.char3_dice"].iloc[0] == pytest.approx(2 / 6)
    assert f["sets.title.char3_containment"].iloc[0] == pytest.approx(1 / 3)
    for k in ("iou", "dice", "containment"):
        assert f[f"sets.title.char3_{k}"].iloc[1] == pytest.approx(1.0)


def test_empty_on_either_side_is_missing_evidence():
    """Nothing to compare is NaN, never 0 overlap or 0 shared words: a booster must not read two
    empty titles as agreement (issue #16)."""
    f = on("title", ("", ""), ("abc", ""), ("", "abc"), ("abc", "abc")).reset_index(drop=True)
    title = [c for c in f.columns if c.startswith("sets.title.")]
    assert "sets.title.word1_common" in title
    for c in title:
        assert f[c].iloc[:3].isna().all(), c
    assert f["sets.title.word1_common"].iloc[3] == 1
    assert f["sets.title.word1_iou"].iloc[3] == 1.0


def test_model_codes_are_one_word():
    f = on("title", ("sony dvd-3800bdci", "sony dvd 3800bdci")).iloc[0]
    # {sony, dvd-3800bdci} vs {sony, dvd, 3800bdci}
    assert f["sets.title.word1_iou"] == pytest.approx(1 / 4)


def test_text_and_attrs_fields():
    batch = pair_batch((dict(title="red apple", description="fresh", attributes={"Colour": "Red"}),
                        dict(title="red", description="apple juice", attributes={"colour": "red",
                                                                                 "size": "L"})))
    f = set_features(batch).iloc[0]
    # text: "red apple fresh" vs "red apple juice"
    assert f["sets.text.word1_iou"] == pytest.approx(2 / 4)
    assert f["sets.text.word2_iou"] == pytest.approx(1 / 3)  # {red apple, apple fresh/juice}
    assert f["sets.text.word3_iou"] == pytest.approx(0.0)
    # attrs: "colour red" vs "colour red size l"
    assert f["sets.attrs.word1_iou"] == pytest.approx(2 / 4)
    assert f["sets.attrs.word2_iou"] == pytest.approx(1 / 3)


def test_symmetric_in_pair_order():
    pairs = [("a b c", "b c d e"), ("", "x"), ("abc", "abd"), ("x y z", "x y z")]
    fwd = on("description", *pairs)
    bwd = on("description", *[(b, a) for a, b in pairs])
    pd.testing.assert_frame_equal(fwd, bwd)
