"""Broken-word features: shares of words that mix Cyrillic and Latin letters."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from helpers import pair_batch, script_features


def raw_batch(rows):
    """A pair batch from rows of (title a, title b, description a, description b)."""
    return pair_batch(*[({"title": ta, "description": da}, {"title": tb, "description": db})
                        for ta, tb, da, db in rows])


def test_values_by_hand():
    f = script_features(raw_batch([
        # title: 1 of 2 words mixed vs 0 of 3; description: none vs 1 of 2
        ("Прoдаю ноутбук", "Продаю ноутбук Lenovo", "", "Все рaботает"),
    ])).iloc[0]
    assert f["scripts.title.mixed_share_min"] == 0.0
    assert f["scripts.title.mixed_share_max"] == 0.5
    assert f["scripts.title.mixed_share_ratio"] == 0.0
    assert f["scripts.title.mixed_share_diff"] == 0.5
    # An empty description has no share: min/max take the other side, ratio/diff are undefined.
    assert f["scripts.description.mixed_share_min"] == 0.5
    assert f["scripts.description.mixed_share_max"] == 0.5
    assert np.isnan(f["scripts.description.mixed_share_ratio"])
    assert np.isnan(f["scripts.description.mixed_share_diff"])
    # title + description: 1 of 2 vs 1 of 5
    assert f["scripts.text.mixed_share_min"] == pytest.approx(0.2)
    assert f["scripts.text.mixed_share_max"] == pytest.approx(0.5)
    assert f["scripts.text.mixed_share_ratio"] == pytest.approx(0.4)
    assert f["scripts.text.mixed_share_diff"] == pytest.approx(0.3)


def test_counts_words_not_numbers_and_all_caps():
    f = script_features(raw_batch([("BМW X5 2015", "ВAЗ 2107", "", "")])).iloc[0]
    # "BМW" (Cyrillic М) mixed, "X5" not, "2015" no word: 1/2; "ВAЗ" mixed: 1/1
    assert f["scripts.title.mixed_share_min"] == 0.5
    assert f["scripts.title.mixed_share_max"] == 1.0
    assert f["scripts.title.mixed_share_ratio"] == 0.5


def test_clean_pairs_have_zero_shares_and_undefined_ratio():
    f = script_features(raw_batch([("Samsung Galaxy S21", "Продаю iPhone 13 Pro", "Торг", "")])).iloc[0]
    assert f["scripts.title.mixed_share_min"] == 0.0
    assert f["scripts.title.mixed_share_max"] == 0.0
    assert np.isnan(f["scripts.title.mixed_share_ratio"])   # 0 / 0
    assert f["scripts.title.mixed_share_diff"] == 0.0


def test_symmetric_in_the_pair_order():
    rows = [("Прoдаю нoутбук", "Продаю ноутбук", "Всё oк", "Все работает, торг"),
            ("BМW", "", "", "Кoт"), ("", "", "", "")]
    ab = script_features(raw_batch(rows))
    ba = script_features(raw_batch([(b, a, d, c) for a, b, c, d in rows]))
    pd.testing.assert_frame_equal(ab, ba)


def test_raw_text_is_read_not_the_cleaned_one():
    batch = raw_batch([("Прoдаю", "Продаю", "", "")])
    # as if a homoglyph cleaner had fixed the title: the swap still counts
    batch.prepared["title"] = "продаю"
    f = script_features(batch, fields=("title",)).iloc[0]
    assert f["scripts.title.mixed_share_max"] == 1.0
    assert "scripts.text.mixed_share_max" not in f.index  # one field: no combined text


def test_falls_back_to_prepared_columns():
    batch = pair_batch(({"title": "Прoдаю ноутбук", "description": "Кoт"},
                        {"title": "Продаю ноутбук", "description": "Кот"}))
    f = script_features(batch).iloc[0]
    assert f["scripts.title.mixed_share_max"] == 0.5
    assert f["scripts.description.mixed_share_max"] == 1.0
    assert f["scripts.description.mixed_share_min"] == 0.0
    assert f["scripts.text.mixed_share_max"] == pytest.approx(2 / 3)


def test_missing_values_and_empty_batch():
    f = script_features(raw_batch([(None, np.nan, "Кoт", None)])).iloc[0]
    assert np.isnan(f["scripts.title.mixed_share_min"])
    assert f["scripts.description.mixed_share_max"] == 1.0
    batch = raw_batch([("", "", "", "")])
    empty = script_features(batch._replace(ia=batch.ia[:0], ib=batch.ib[:0]))
    assert len(empty) == 0
    assert "scripts.title.mixed_share_min" in empty.columns
