"""dupsearch.text.normalize: normalization, tokenization and token classes."""

from __future__ import annotations

import math

import numpy as np
import pytest

from dupsearch.text.normalize import (
    compact,
    is_model_code,
    is_number,
    is_size,
    normalize_text,
    split_tokens,
    tokenize,
)


# --------------------------------------------------------------------------- normalize_text


def test_normalize_lowercases_and_collapses_whitespace():
    assert normalize_text("  Apple   iPhone\t12\n Pro  ") == "apple iphone 12 pro"


def test_normalize_yo_becomes_ye_in_both_cases():
    assert normalize_text("Ёлка и ёжик") == "елка и ежик"
    assert normalize_text("ЧЁРНЫЙ") == "черный"


def test_normalize_nfkc_folds_compatibility_characters():
    # fullwidth letters, a ligature, a non-breaking space and a circled digit
    assert normalize_text("ＩＰＨＯＮＥ\u00a0ﬁt ①") == "iphone fit 1"
    # superscript two folds to a plain digit
    assert normalize_text("м²") == "м2"


@pytest.mark.parametrize("missing", [None, float("nan"), np.nan])
def test_normalize_missing_is_empty(missing):
    assert normalize_text(missing) == ""


def test_normalize_non_strings():
    assert normalize_text(12) == "12"
    assert normalize_text(2.5) == "2.5"


# --------------------------------------------------------------------------- tokenize / compact


def test_tokenize_keeps_model_codes_whole():
    text = normalize_text("Samsung DVD-3800BDCI, 2.26GHz cpu; MB13-PNK-SEE-V2 (new)! 1/2")
    assert tokenize(text) == ["samsung", "dvd-3800bdci", "2.26ghz", "cpu", "mb13-pnk-see-v2",
                              "new", "1/2"]


def test_tokenize_drops_punctuation_and_underscores():
    assert tokenize("end. next, a_b -x- 'q'") == ["end", "next", "a", "b", "x", "q"]


def test_tokenize_cyrillic_and_empty():
    assert tokenize("телефон 16гб без коробки") == ["телефон", "16гб", "без", "коробки"]
    assert tokenize("") == []
    assert tokenize("!!! ---") == []


def test_compact_removes_separators():
    assert compact("dvd-3800bdci") == "dvd3800bdci"
    assert compact("mb13-pnk-see-v2") == "mb13pnkseev2"
    assert compact("2.26ghz") == "226ghz"
    assert compact("a/b") == "ab"
    assert compact("plain") == "plain"


# --------------------------------------------------------------------------- token classes


@pytest.mark.parametrize("token,expected", [
    ("12", True), ("2.5", True), ("2,5", True), ("007", True),
    ("12a", False), ("1.2.3", False), ("abc", False), ("", False),
])
def test_is_number(token, expected):
    assert is_number(token) is expected


@pytest.mark.parametrize("token,expected", [
    ("16gb", True), ("2.26ghz", True), ("500мл", True), ("1080p", True), ('55"', True),
    ("4k", True), ("2,5kg", True), ("128гб", True),
    ("16", False), ("gb", False), ("16zz", False), ("gb16", False), ("16gb2", False),
])
def test_is_size(token, expected):
    assert is_size(token) is expected


@pytest.mark.parametrize("token,expected", [
    ("lds4821ww", True), ("dvd-3800bdci", True), ("s21", True), ("mb13-pnk-see-v2", True),
    ("388504", True),       # long digit run: a part number
    ("16gb", False),        # a size, not a code
    ("2.26ghz", False),
    ("a1", False),          # too short
    ("1234", False),        # short digit run
    ("iphone", False),      # no digit
    ("12-34", False),       # compacts to a 4-digit run
])
def test_is_model_code(token, expected):
    assert is_model_code(token) is expected


def test_split_tokens_phone_title():
    got = split_tokens(tokenize("iphone 12 128gb black"))
    assert got == {"number": ["12", "128"], "code": [], "size": ["128gb"], "colour": ["black"],
                   "negation": []}


def test_split_tokens_number_followed_by_unit_is_also_a_size():
    got = split_tokens(["ram", "16", "gb"])
    assert got["size"] == ["16gb"]
    assert got["number"] == ["16"]
    # a number not followed by a unit is not a size
    assert split_tokens(["16", "pieces"])["size"] == []


def test_split_tokens_decimal_comma_is_unified():
    got = split_tokens(["2,5", "kg", "3,5kg"])
    assert got["size"] == ["2.5kg", "3.5kg"]
    assert got["number"] == ["2.5", "3.5"]


def test_split_tokens_codes_are_compacted_and_colours_negations_found():
    text = normalize_text("Пылесос DVD-3800BDCI без зарядки, ЧЁРНЫЙ, not white")
    got = split_tokens(tokenize(text))
    assert got["code"] == ["dvd3800bdci"]
    assert got["colour"] == ["черный", "white"]
    assert got["negation"] == ["без", "not"]
    assert got["number"] == [] and got["size"] == []


def test_split_tokens_empty():
    assert split_tokens([]) == {"number": [], "code": [], "size": [], "colour": [], "negation": []}
