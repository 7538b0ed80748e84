"""Property-based tests (hypothesis, issue #16): the readers and the features over random Unicode.

- readers: a listings table with arbitrary text round-trips through every format dupsearch
  writes (format characters removed, nothing else changed), and arbitrary bytes given as a data
  file are read or refused with a DataError, never another exception;
- features: over random titles and descriptions (any script, format characters, emoji, digits),
  every feature is finite or NaN, a pair's features do not depend on its order, and a field that
  is empty on either side gives missing evidence (NaN), never agreement.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import make_market
from dupsearch.errors import DataError
from dupsearch.features.pipeline import FeaturePipeline
from dupsearch.io import read_listings, write_table
from dupsearch.text.normalize import FORMAT_CHARS_RE

# Any character but surrogates (not encodable), NUL and CR (CSV and its readers turn "\r\n" into
# "\n" by design); the categories that matter are all in: letters of every script, digits,
# punctuation, symbols, spaces, format characters (zero-width, bidi), combining marks.
TEXT_CHARS = st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00\r")
texts = st.text(TEXT_CHARS, max_size=40)
FAST = settings(max_examples=60, deadline=None, database=None,  # no .hypothesis/ in the checkout
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


@FAST
@given(rows=st.lists(st.tuples(texts, texts), min_size=1, max_size=6),
       ext=st.sampled_from([".parquet", ".csv", ".jsonl", ".tsv"]))
def test_listings_round_trip_every_format(tmp_path_factory, rows, ext):
    path = tmp_path_factory.mktemp("rt") / f"l{ext}"
    df = pd.DataFrame({"item_id": [f"id{i}" for i in range(len(rows))],
                       "title": [t for t, _ in rows], "description": [d for _, d in rows]})
    write_table(df, path)
    back, _ = read_listings(path)
    assert back["item_id"].tolist() == df["item_id"].tolist()
    for col in ("title", "description"):
        assert back[col].tolist() == [FORMAT_CHARS_RE.sub("", t) for t in df[col]], col


@FAST
@given(data=st.binary(min_size=1, max_size=300), ext=st.sampled_from([".csv", ".tsv", ".jsonl", ".json", ".parquet"]))
def test_any_bytes_are_read_or_refused_with_a_data_error(tmp_path_factory, data, ext):
    path = tmp_path_factory.mktemp("bytes") / f"l{ext}"
    path.write_bytes(data)
    try:
        df, _ = read_listings(path)
    except DataError as e:
        assert str(path) in str(e)
    else:
        assert len(df) and df["item_id"].str.len().gt(0).all()


@FAST
@given(header=st.just("item_id,title,price\n"),
       body=st.lists(st.lists(st.sampled_from(["1", "x", "", "2.5", "inf", "-3", '"a,b"', "\u200b"]),
                              min_size=0, max_size=5), min_size=1, max_size=6))
def test_csv_rows_of_any_width_are_read_whole_or_refused(tmp_path_factory, header, body):
    """A row with too few or too many fields is an error naming it; a row read is never padded."""
    path = tmp_path_factory.mktemp("csv") / "l.csv"
    lines = [",".join(cells) for cells in body]
    path.write_text(header + "\n".join(f"{i}{',' if cells else ''}{line}" for i, (cells, line)
                                       in enumerate(zip(body, lines))) + "\n", encoding="utf-8")
    try:
        df, rep = read_listings(path)
    except DataError as e:
        assert str(path) in str(e)
        return
    assert df["price"].isna().sum() + (df["price"] >= 0).sum() == len(df)  # never inf or negative


# ---------------------------------------------------------------- features


@pytest.fixture(scope="module")
def pipeline():
    m = make_market(0)
    return FeaturePipeline().fit(m.listings)


def _listing(i: int, title: str, description: str) -> dict:
    return {"item_id": f"p{i}", "title": title, "description": description, "category_l1": "electronics",
            "category_l2": "", "category_l3": "", "category_l4": "", "attributes": {}, "price": np.nan,
            "images": []}


listing_texts = st.tuples(texts, st.one_of(st.just(""), texts))


@FAST
@given(a=listing_texts, b=listing_texts)
def test_features_are_finite_symmetric_and_empty_is_missing(pipeline, a, b):
    listings = pd.DataFrame([_listing(0, *a), _listing(1, *b)])
    store = pipeline.build_store(listings)
    F = pipeline.compare(store, np.array([0, 1]), np.array([1, 0]))
    numeric = F.select_dtypes(include=[np.number])
    values = numeric.to_numpy(dtype=float)
    assert not np.isinf(values).any(), numeric.columns[np.isinf(values).any(axis=0)].tolist()
    ab, ba = values[0], values[1]
    same = (ab == ba) | (np.isnan(ab) & np.isnan(ba)) | np.isclose(ab, ba, rtol=1e-9, atol=1e-12)
    assert same.all(), dict(zip(numeric.columns[~same], zip(ab[~same], ba[~same])))
    for field, (ta, tb) in {"title": (a[0], b[0]), "description": (a[1], b[1])}.items():
        empty = not pipeline.prepare(listings)[field].str.len().all()
        if not empty:
            continue
        cols = [c for c in F.columns if c.startswith((f"strings.{field}.", f"sets.{field}.",
                                                      f"corpus.{field}.")) or
                (field == "title" and c.startswith("antiwords.title."))]
        assert cols
        assert F[cols].isna().all().all(), [c for c in cols if not F[c].isna().all()]
