"""Garbage does not decide (issue #16, class 4): input that is broken or says nothing is an
error naming where it is, or missing evidence, never a silent change of what dupsearch decides."""

from __future__ import annotations

import json
import logging
import sys
import unicodedata

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from conftest import fast_config
from dupsearch.errors import DataError
from dupsearch.io import read_listings
from dupsearch.io.schema import CATEGORY_COLUMNS, normalize_listings
from dupsearch.models import DuplicateMatcher
from dupsearch.models.cv import group_folds
from dupsearch.text.normalize import FORMAT_CHARS_RE, normalize_text
from helpers import antiword_features, field_pairs


# ---------------------------------------------------------------- readers


def test_short_csv_row_is_an_error_naming_file_and_row(tmp_path):
    f = tmp_path / "l.csv"
    # row 2 spans two lines (a quoted newline), a blank line is skipped; row 3 is cut short
    f.write_text('item_id,title,price\n1,a,3\n2,"b\nc",4\n\n3,x\n4,y,5\n', encoding="utf-8")
    with pytest.raises(DataError) as e:
        read_listings(f)
    assert e.value.path == str(f) and e.value.row == 3
    assert "2 fields where the header has 3" in str(e.value)


def test_full_csv_rows_with_empty_cells_are_fine(tmp_path):
    f = tmp_path / "l.csv"
    f.write_text("item_id,title,price\n1,a,\n2,,4\n", encoding="utf-8")
    df, _ = read_listings(f)
    assert df["title"].tolist() == ["a", ""] and np.isnan(df["price"].iloc[0])


def test_format_characters_are_removed_and_counted(caplog):
    df = pd.DataFrame({"item_id": ["1", "2", "3"],
                       "title": ["iPh\u200bone 12", "\u202eiphone 12", "iphone 12"],
                       "description": ["", "soft\u00adhyphen", ""],
                       "attributes": [{"co\u200blour": "bl\u200back"}, {}, {}]})
    with caplog.at_level(logging.WARNING):
        out, report = normalize_listings(df, source="x.parquet")
    assert out["title"].tolist() == ["iPhone 12", "iphone 12", "iphone 12"]
    assert out["description"].iloc[1] == "softhyphen"
    assert out["attributes"].iloc[0] == {"colour": "black"}
    assert report.notes == {"title cells with invisible format characters removed": 2,
                            "description cells with invisible format characters removed": 1}


def test_format_character_class_is_unicode_category_cf():
    ours = {c for c in range(sys.maxunicode + 1) if FORMAT_CHARS_RE.match(chr(c))}
    cf = {c for c in range(sys.maxunicode + 1) if unicodedata.category(chr(c)) == "Cf"}
    assert ours == cf


def test_normalize_text_drops_format_characters_and_applies_nfkc():
    assert normalize_text("i\u200dPh\u2066one \uff21\u00b2") == "iphone a2"


def test_nested_attributes_are_flattened():
    df = pd.DataFrame({"item_id": ["1", "2"], "title": ["a", "b"],
                       "attributes": [json.dumps({"screen": {"size": 6.1, "type": "oled"},
                                                  "colours": ["red", "blue"], "5g": True, "gb": 128.0}),
                                      {"a": {"b": {"c": "d"}}}]})
    out, _ = normalize_listings(df)
    assert out["attributes"].iloc[0] == {"screen.size": "6.1", "screen.type": "oled",
                                         "colours": "red, blue", "5g": "true", "gb": "128"}
    assert out["attributes"].iloc[1] == {"a.b.c": "d"}


def test_a_list_of_objects_in_attributes_is_refused():
    df = pd.DataFrame({"item_id": ["1", "2"], "title": ["a", "b"],
                       "attributes": ["{}", json.dumps({"parts": [{"x": 1}]})]})
    with pytest.raises(DataError) as e:
        normalize_listings(df, source="l.jsonl")
    assert (e.value.row, e.value.column) == (2, "attributes") and "'parts'" in str(e.value)


@pytest.mark.parametrize("prices", [["inf", "-5", "10"], [np.inf, -5.0, 10.0], ["-inf", "-0.01", "10"]])
def test_impossible_prices_become_missing_and_are_counted(prices):
    df = pd.DataFrame({"item_id": ["1", "2", "3"], "title": ["a", "b", "c"], "price": prices})
    out, report = normalize_listings(df)
    assert out["price"].isna().tolist() == [True, True, False]
    assert report.notes == {"impossible prices (negative or infinite) read as missing": 2}


def test_zero_price_is_a_price():
    out, report = normalize_listings(pd.DataFrame({"item_id": ["1"], "title": ["a"], "price": [0]}))
    assert out["price"].iloc[0] == 0 and not report.notes


def test_parquet_binary_text_not_utf8_is_an_error(tmp_path):
    f = tmp_path / "l.parquet"
    pq.write_table(pa.table({"item_id": ["1", "2", "3"],
                             "title": pa.array([b"ok", "да".encode(), b"\xff\xfe"], pa.binary())}), f)
    with pytest.raises(DataError) as e:
        read_listings(f)
    assert (e.value.path, e.value.row, e.value.column) == (str(f), 3, "title")
    assert "not UTF-8" in str(e.value)


def test_parquet_binary_text_in_utf8_is_read_as_text(tmp_path):
    f = tmp_path / "l.parquet"
    pq.write_table(pa.table({"item_id": ["1", "2"],
                             "title": pa.array([b"ok", "да".encode()], pa.binary())}), f)
    df, _ = read_listings(f)
    assert df["title"].tolist() == ["ok", "да"]


# ---------------------------------------------------------------- features


def test_antiwords_of_an_empty_field_are_missing_not_agreement():
    f = antiword_features(field_pairs("title", ("", ""), ("", "iphone 12"), ("iphone 12", "iphone 12")))
    f = f.reset_index(drop=True)
    title = [c for c in f.columns if c.startswith("antiwords.title.")]
    assert any(c.endswith("_conflict") for c in title)
    for c in title:
        assert f[c].iloc[:2].isna().all(), c
    assert f["antiwords.title.number_conflict"].iloc[2] == 0
    assert f["antiwords.title.number_shared"].iloc[2] == 1


# ---------------------------------------------------------------- training


def test_training_sees_pairs_with_their_texts_emptied(market):
    m = DuplicateMatcher(fast_config(missing_text_share=0.2)).fit(market.listings, market.train, market.valid)
    assert m.metrics_["missing_text_pairs"] == round(0.2 * len(market.train))
    assert m._augmented_ == {}  # training rows only, not kept in the fitted model
    off = DuplicateMatcher(fast_config(missing_text_share=0.0)).fit(market.listings, market.train, market.valid)
    assert "missing_text_pairs" not in off.metrics_
    # emptied pairs get NaN text features: the models differ
    p_on, p_off = m.predict_proba(market.listings, market.test), off.predict_proba(market.listings, market.test)
    assert not np.allclose(p_on, p_off)


def test_training_sees_pairs_with_values_moved_into_the_title(market):
    """moved_text_share: a share of the training pairs also trained on with one side or both
    made dirty; counted, not kept in the model, and it changes what the booster learns."""
    m = DuplicateMatcher(fast_config(moved_text_share=0.3)).fit(market.listings, market.train, market.valid)
    k = round(0.3 * len(market.train))
    assert 0.8 * k <= m.metrics_["moved_text_pairs"] <= k  # a pair none of whose values moved is left out
    assert m._augmented_ == {}
    off = DuplicateMatcher(fast_config()).fit(market.listings, market.train, market.valid)
    assert "moved_text_pairs" not in off.metrics_
    assert off.metrics_["missing_text_pairs"] == m.metrics_["missing_text_pairs"]  # the two add up
    p_on, p_off = m.predict_proba(market.listings, market.test), off.predict_proba(market.listings, market.test)
    assert not np.allclose(p_on, p_off)
    with pytest.raises(ValueError, match="moved_text_share"):
        fast_config(moved_text_share=-0.1)
    # listings that hold a title alone have nothing to move: no pair is added (WDC's records)
    bare = market.listings.assign(description="", attributes=[{}] * len(market.listings), price=np.nan,
                                  **{c: None for c in CATEGORY_COLUMNS if c in market.listings})
    t = DuplicateMatcher(fast_config(moved_text_share=0.3)).fit(bare, market.train, market.valid)
    assert "moved_text_pairs" not in t.metrics_


def test_missing_text_share_is_checked():
    with pytest.raises(ValueError, match="missing_text_share"):
        fast_config(missing_text_share=1.5)


def test_valid_pairs_overlapping_training_pairs_are_reported(market, caplog):
    valid = pd.concat([market.valid, market.train.iloc[:7]], ignore_index=True)
    with caplog.at_level(logging.WARNING):
        m = DuplicateMatcher(fast_config()).fit(market.listings, market.train, valid)
    ov = m.metrics_["valid_overlap"]
    assert ov["same_pairs"] == 7 and ov["valid_pairs"] == len(valid)
    assert ov["pairs_sharing_a_listing"] >= 7
    assert "7 of" in caplog.text and "also training pairs" in caplog.text


def test_more_folds_than_groups_is_a_data_error(market):
    pairs = market.train.iloc[:6].assign(group=["g1", "g1", "g2", "g2", "g3", "g3"])
    with pytest.raises(DataError, match="only 3 independent groups"):
        group_folds(pairs, pairs["label"].to_numpy(), 5)


def test_one_class_training_pairs_are_a_data_error(market):
    pairs = market.train[market.train["label"] == 1]
    with pytest.raises(DataError, match="every training pair has label 1"):
        group_folds(pairs, pairs["label"].to_numpy(), 2)
