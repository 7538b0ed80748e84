"""dupsearch.io: readers, writers, validation errors and the column mapping."""

from __future__ import annotations

import logging
import math

import numpy as np
import pandas as pd
import pytest

from dupsearch.errors import DataError
from dupsearch.io import (
    CATEGORY_COLUMNS,
    LISTING_COLUMNS,
    PAIR_COLUMNS,
    ColumnMapping,
    LoadReport,
    normalize_listings,
    normalize_pairs,
    read_listings,
    read_pairs,
    read_table,
    write_table,
)


def write(path, text: str | bytes):
    if isinstance(text, str):
        text = text.encode("utf-8")
    path.write_bytes(text)
    return path


def data_error(read, *args, **kwargs) -> pytest.ExceptionInfo[DataError]:
    """Call read(*args, **kwargs), which must raise DataError; returns the ExceptionInfo."""
    with pytest.raises(DataError) as e:
        read(*args, **kwargs)
    return e


def listings_frame() -> pd.DataFrame:
    return pd.DataFrame({
        "item_id": ["007", "8", "x9"],
        "title": ["Sony camera", "Пылесос Dyson", ""],
        "description": ["nice", "", "plain"],
        "category_l1": ["electronics", "home", ""],
        "attributes": [{"brand": "Sony", "color": "black"}, {}, {"note": 'quote " and ; semi'}],
        "price": [199.99, np.nan, 5.0],
        "images": [["a.jpg", "b.jpg"], [], ["dir/c d.png"]],
        "seller": ["s1", "s2", "s3"],
    })


# --------------------------------------------------------------------------- contract


def test_constants():
    assert CATEGORY_COLUMNS == ["category_l1", "category_l2", "category_l3", "category_l4"]
    assert LISTING_COLUMNS[:2] == ["item_id", "title"]
    assert set(CATEGORY_COLUMNS) < set(LISTING_COLUMNS)
    assert {"attributes", "price", "images", "description"} < set(LISTING_COLUMNS)
    assert PAIR_COLUMNS == ["item_id_a", "item_id_b", "label", "group"]


def test_normalize_listings_defaults_and_coercion():
    df = pd.DataFrame({"item_id": [7, 8], "title": ["a", None], "extra": [1, 2]})
    out, report = normalize_listings(df)
    assert list(out.columns) == LISTING_COLUMNS + ["extra"]
    assert out["item_id"].tolist() == ["7", "8"]
    assert out["title"].tolist() == ["a", ""]
    assert out["description"].tolist() == ["", ""]
    assert out["category_l4"].tolist() == ["", ""]
    assert out["attributes"].tolist() == [{}, {}]
    assert out["images"].tolist() == [[], []]
    assert out["price"].dtype == np.float64 and out["price"].isna().all()
    assert out["extra"].tolist() == [1, 2]
    assert (report.rows_read, report.rows_kept, report.skipped) == (2, 2, {})


def test_float_ids_with_whole_numbers_become_int_text():
    out, _ = normalize_listings(pd.DataFrame({"item_id": [1.0, 2.0], "title": ["a", "b"]}))
    assert out["item_id"].tolist() == ["1", "2"]


def test_attributes_and_images_parsing_forms():
    df = pd.DataFrame({
        "item_id": ["1", "2", "3", "4"],
        "title": ["t"] * 4,
        "attributes": ['{"brand": "Sony", "mp": 12}', "", None, {"size": 42}],
        "images": ['["a.jpg", "b.jpg"]', "c.jpg; d.jpg", "", ["e.jpg"]],
        "price": ["12.5", "", " 3 ", "nan"],
    })
    out, _ = normalize_listings(df)
    assert out["attributes"].tolist() == [{"brand": "Sony", "mp": "12"}, {}, {}, {"size": "42"}]
    assert out["images"].tolist() == [["a.jpg", "b.jpg"], ["c.jpg", "d.jpg"], [], ["e.jpg"]]
    assert out["price"].tolist()[0] == 12.5 and out["price"].tolist()[2] == 3.0
    assert math.isnan(out["price"].iloc[1]) and math.isnan(out["price"].iloc[3])


def test_missing_required_column_lists_present_and_hints_mapping(tmp_path):
    f = write(tmp_path / "ads.csv", "ad_id,name\n1,a\n")
    e = data_error(read_listings, f)
    msg = str(e.value)
    assert "ads.csv" in msg and "'item_id'" in msg and "'title'" in msg
    assert "'ad_id'" in msg and "'name'" in msg  # the columns present
    assert "TOML" in msg and "[listings]" in msg


def test_duplicate_item_id_names_both_rows(tmp_path):
    f = write(tmp_path / "l.csv", "item_id,title\n1,a\n2,b\n1,c\n")
    e = data_error(read_listings, f)
    msg = str(e.value)
    assert "l.csv" in msg and "duplicate item_id '1'" in msg and "rows 1 and 3" in msg
    assert e.value.row == 3 and e.value.column == "item_id"


def test_empty_item_id(tmp_path):
    f = write(tmp_path / "l.csv", "item_id,title\n1,a\n,b\n")
    e = data_error(read_listings, f)
    assert e.value.row == 2 and e.value.column == "item_id" and "l.csv" in str(e.value)


def test_bad_json_attributes_names_file_row_column(tmp_path):
    f = write(tmp_path / "l.jsonl",
              '{"item_id": "1", "title": "a", "attributes": {"b": "c"}}\n'
              '{"item_id": "2", "title": "b", "attributes": "{not json"}\n')
    e = data_error(read_listings, f)
    assert "l.jsonl" in str(e.value) and "row 2" in str(e.value)
    assert e.value.column == "attributes" and "not valid JSON" in str(e.value)


def test_attributes_json_that_is_not_an_object(tmp_path):
    f = write(tmp_path / "l.csv", 'item_id,title,attributes\n1,a,"{""x"": ""y""}"\n2,b,"[1, 2]"\n')
    e = data_error(read_listings, f)
    assert (e.value.path, e.value.row, e.value.column) == (str(f), 2, "attributes")
    assert "JSON object" in str(e.value) and "list" in str(e.value)


def test_bad_price(tmp_path):
    f = write(tmp_path / "l.csv", "item_id,title,price\n1,a,10\n2,b,\n3,c,12 USD\n")
    e = data_error(read_listings, f)
    msg = str(e.value)
    assert "l.csv" in msg and "row 3" in msg and "'price'" in msg and "'12 USD'" in msg


# --------------------------------------------------------------------------- reading


@pytest.mark.parametrize("ext", [".csv", ".jsonl"])
def test_non_utf8_bytes_name_the_row(tmp_path, ext):
    if ext == ".csv":
        body = b"item_id,title\n1,ok\n2,caf\xe9\n3,ok\n"  # cp1252 e-acute on data row 2
    else:
        body = (b'{"item_id": "1", "title": "ok"}\n{"item_id": "2", "title": "ok"}\n'
                b'{"item_id": "3", "title": "caf\xe9"}\n')
    f = write(tmp_path / f"latin{ext}", body)
    e = data_error(read_table, f)
    msg = str(e.value)
    assert f"latin{ext}" in msg and "UTF-8" in msg and "re-encode" in msg
    assert e.value.row == (2 if ext == ".csv" else 3)


def test_utf8_bom_is_accepted(tmp_path):
    f = write(tmp_path / "bom.csv", "\ufeffitem_id,title\n1,a\n")
    assert list(read_table(f).columns) == ["item_id", "title"]


@pytest.mark.parametrize("name,body", [
    ("empty.csv", b""), ("empty.jsonl", b""), ("blank.jsonl", b"\n\n"), ("header.csv", b"item_id,title\n"),
    ("header.tsv", b"item_id\ttitle\n"),
])
def test_empty_files(tmp_path, name, body):
    f = write(tmp_path / name, body)
    e = data_error(read_table, f)
    assert "file is empty" in str(e.value) and name in str(e.value)


def test_empty_parquet(tmp_path):
    f = tmp_path / "empty.parquet"
    pd.DataFrame({"item_id": pd.Series([], dtype=str)}).to_parquet(f)
    with pytest.raises(DataError, match="file is empty"):
        read_table(f)


def test_unknown_extension_lists_supported(tmp_path):
    f = write(tmp_path / "data.xlsx", b"x")
    e = data_error(read_table, f)
    assert "'.xlsx'" in str(e.value) and ".parquet" in str(e.value) and ".jsonl" in str(e.value)


def test_missing_file_names_path(tmp_path):
    with pytest.raises(FileNotFoundError) as e:
        read_table(tmp_path / "nope.csv")
    assert isinstance(e.value, DataError) and "nope.csv" in str(e.value)


def test_malformed_json_line_names_row(tmp_path):
    f = write(tmp_path / "p.jsonl", '{"a": 1}\n{"a": 2,}\n')
    e = data_error(read_table, f)
    assert e.value.row == 2 and "p.jsonl" in str(e.value)


def test_jsonl_line_that_is_not_an_object(tmp_path):
    f = write(tmp_path / "p.jsonl", '{"a": 1}\n[1, 2]\n')
    with pytest.raises(DataError, match="row 2"):
        read_table(f)


def test_json_extension_accepts_lines_and_array(tmp_path):
    lines = write(tmp_path / "lines.json", '{"item_id": 1, "title": "a"}\n{"item_id": 2, "title": "b"}\n')
    array = write(tmp_path / "array.json", '[{"item_id": 1, "title": "a"}, {"item_id": 2, "title": "b"}]')
    for f in (lines, array):
        out, _ = read_listings(f)
        assert out["item_id"].tolist() == ["1", "2"]


def test_csv_keeps_ids_as_text(tmp_path):
    f = write(tmp_path / "l.csv", "item_id,title,price\n007,a,1.50\n0008,NA,\n")
    out, _ = read_listings(f)
    assert out["item_id"].tolist() == ["007", "0008"]
    assert out["title"].tolist() == ["a", "NA"]  # "NA" is a title here, not a missing value
    assert out["price"].iloc[0] == 1.5 and math.isnan(out["price"].iloc[1])


def test_tsv(tmp_path):
    f = write(tmp_path / "l.tsv", "item_id\ttitle\tattributes\n1\ta, b\t{\"k\": \"v\"}\n")
    out, _ = read_listings(f)
    assert out["title"].iloc[0] == "a, b" and out["attributes"].iloc[0] == {"k": "v"}


def test_malformed_csv_row(tmp_path):
    f = write(tmp_path / "bad.csv", "item_id,title\n1,a\n2,b,extra,more\n")
    e = data_error(read_table, f)
    assert "bad.csv" in str(e.value) and e.value.row == 2


# --------------------------------------------------------------------------- round trips


@pytest.mark.parametrize("ext", [".parquet", ".csv", ".jsonl", ".tsv"])
def test_round_trip(tmp_path, ext):
    df, _ = normalize_listings(listings_frame())
    path = write_table(df, tmp_path / "sub" / f"listings{ext}")
    assert path.exists()
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temp file left behind
    back, report = read_listings(path)
    assert report.rows_kept == 3
    assert list(back.columns) == LISTING_COLUMNS + ["seller"]
    assert back["item_id"].tolist() == ["007", "8", "x9"]
    assert back["title"].tolist() == df["title"].tolist()
    assert back["attributes"].tolist() == df["attributes"].tolist()
    # relative photo paths come back resolved against the file's folder
    assert back["images"].tolist() == [[str(path.parent.resolve() / p) for p in ps] for ps in df["images"]]
    np.testing.assert_array_equal(back["price"].to_numpy(), df["price"].to_numpy())
    assert back["seller"].astype(str).tolist() == ["s1", "s2", "s3"]


def test_parquet_keeps_native_types(tmp_path):
    df, _ = normalize_listings(listings_frame())
    raw = read_table(write_table(df, tmp_path / "l.parquet"))
    # map<string,string> and list<string>, not JSON text
    assert not isinstance(raw["attributes"].iloc[0], str)
    assert not isinstance(raw["images"].iloc[0], str)


def test_pairs_round_trip_keeps_int8_label(tmp_path):
    pairs, _ = normalize_pairs(pd.DataFrame({"item_id_a": ["1", "2"], "item_id_b": ["3", "4"],
                                             "label": [1, 0], "group": ["g", "h"]}))
    for ext in (".parquet", ".csv", ".jsonl"):
        back, _ = read_pairs(write_table(pairs, tmp_path / f"p{ext}"))
        assert back["label"].dtype == np.int8 and back["label"].tolist() == [1, 0]
        assert back["group"].tolist() == ["g", "h"]


def test_write_table_is_atomic_on_failure(tmp_path):
    target = tmp_path / "l.jsonl"
    target.write_text("old\n")

    class Boom:
        def __repr__(self):
            raise RuntimeError("boom")

    bad = pd.DataFrame({"x": [Boom()]})
    with pytest.raises(Exception):
        write_table(bad, target)
    assert target.read_text() == "old\n"  # untouched
    assert [p.name for p in tmp_path.iterdir()] == ["l.jsonl"]  # temp file removed


def test_write_table_unknown_extension(tmp_path):
    with pytest.raises(DataError, match="unsupported"):
        write_table(pd.DataFrame({"a": [1]}), tmp_path / "x.xlsx")


# --------------------------------------------------------------------------- pairs


def test_pairs_unknown_id_raise_names_row_and_id(tmp_path):
    f = write(tmp_path / "pairs.csv", "item_id_a,item_id_b,label\n1,2,1\n1,99,0\n")
    e = data_error(read_pairs, f, listing_ids=["1", "2", "3"])
    msg = str(e.value)
    assert "pairs.csv" in msg and "row 2" in msg and "'99'" in msg and e.value.column == "item_id_b"


def test_pairs_unknown_id_skip_counts(tmp_path, caplog):
    f = write(tmp_path / "pairs.csv", "item_id_a,item_id_b,label\n1,2,1\n1,99,0\n98,3,0\n2,3,0\n")
    with caplog.at_level(logging.WARNING):
        out, report = read_pairs(f, listing_ids=pd.Series(["1", "2", "3"]), on_unknown="skip")
    assert out[["item_id_a", "item_id_b"]].values.tolist() == [["1", "2"], ["2", "3"]]
    assert report.skipped == {"unknown item_id": 2}
    assert (report.rows_read, report.rows_kept) == (4, 2)
    assert "unknown item_id" in caplog.text  # never silent


def test_pairs_listing_ids_may_be_ints():
    out, _ = normalize_pairs(pd.DataFrame({"item_id_a": [1], "item_id_b": [2]}), listing_ids=[1, 2])
    assert out["item_id_a"].tolist() == ["1"]


@pytest.mark.parametrize("value", ["2", "yes", "-1", ""])
def test_bad_label_names_row_and_value(tmp_path, value):
    f = write(tmp_path / "pairs.csv", f"item_id_a,item_id_b,label\n1,2,1\n3,4,{value}\n")
    e = data_error(read_pairs, f)
    assert "pairs.csv" in str(e.value) and e.value.row == 2 and e.value.column == "label"
    if value:
        assert repr(value) in str(e.value)


def test_label_forms_accepted():
    df = pd.DataFrame({"item_id_a": list("abcdefg"), "item_id_b": list("hijklmn"),
                       "label": [0, 1, 0.0, 1.0, "0", "1", True]})
    out, _ = normalize_pairs(df)
    assert out["label"].dtype == np.int8
    assert out["label"].tolist() == [0, 1, 0, 1, 0, 1, 1]
    with pytest.raises(DataError, match="0.5"):
        normalize_pairs(pd.DataFrame({"item_id_a": ["a"], "item_id_b": ["b"], "label": [0.5]}))


def test_self_and_duplicate_pairs_skipped_and_counted():
    df = pd.DataFrame({"item_id_a": ["1", "2", "1", "2", "5"], "item_id_b": ["2", "2", "3", "1", "6"],
                       "label": [1, 0, 0, 1, 0], "note": list("vwxyz")})
    out, report = normalize_pairs(df)
    assert out[["item_id_a", "item_id_b", "note"]].values.tolist() == [
        ["1", "2", "v"], ["1", "3", "x"], ["5", "6", "z"]]
    assert report.skipped == {"self-pair": 1, "duplicate pair": 1}
    assert (report.rows_read, report.rows_kept) == (5, 3)
    assert "self-pair" in str(report) and "duplicate pair" in str(report)


def test_self_pair_raise_option():
    with pytest.raises(DataError, match="row 1"):
        normalize_pairs(pd.DataFrame({"item_id_a": ["1"], "item_id_b": ["1"]}),
                        on_self_pair="raise")


def test_duplicate_pair_with_conflicting_labels_names_both_rows(tmp_path):
    f = write(tmp_path / "pairs.csv", "item_id_a,item_id_b,label\n1,2,1\n3,4,0\n2,1,0\n")
    e = data_error(read_pairs, f)
    msg = str(e.value)
    assert "pairs.csv" in msg and "rows 1 and 3" in msg and "different labels" in msg


def test_pairs_without_label_or_group():
    out, _ = normalize_pairs(pd.DataFrame({"item_id_a": [1, 2], "item_id_b": [3, 4]}))
    assert list(out.columns) == ["item_id_a", "item_id_b"]


def test_pairs_missing_column_hint():
    e = data_error(normalize_pairs, pd.DataFrame({"left": [1], "right": [2]}))
    assert "'item_id_a'" in str(e.value) and "[pairs]" in str(e.value)


def test_bad_on_unknown_value():
    with pytest.raises(ValueError, match="on_unknown"):
        normalize_pairs(pd.DataFrame({"item_id_a": [1], "item_id_b": [2]}), on_unknown="drop")


# --------------------------------------------------------------------------- report


def test_load_report_merge_str_and_warning(caplog):
    a = LoadReport("a.csv", 10, 8, {"self-pair": 2})
    b = LoadReport("b.csv", 5, 4, {"self-pair": 1, "duplicate pair": 0})
    b.skip("duplicate pair", 1)
    m = a.merge(b)
    assert (m.rows_read, m.rows_kept) == (15, 12)
    assert m.skipped == {"self-pair": 3, "duplicate pair": 1}
    assert a.skipped == {"self-pair": 2}  # merge does not mutate
    text = str(m)
    assert "\n" not in text and "a.csv" in text and "15" in text and "3 self-pair" in text
    with caplog.at_level(logging.WARNING):
        assert m.warn_if_any(logging.getLogger("t")) is True
        assert LoadReport("c.csv", 1, 1).warn_if_any(logging.getLogger("t")) is False
    assert "3 self-pair" in caplog.text and "c.csv" not in caplog.text


# --------------------------------------------------------------------------- column mapping


def write_mapping(tmp_path, text: str):
    return write(tmp_path / "map.toml", text)


def test_mapping_from_toml_renames(tmp_path):
    toml = write_mapping(tmp_path, '[listings]\nitem_id = "ad_id"\ntitle = "name"\n'
                                   '[pairs]\nitem_id_a = "left_id"\nitem_id_b = "right_id"\n'
                                   'label = "is_duplicate"\n')
    mapping = ColumnMapping.from_toml(toml)
    assert mapping.listings == {"item_id": "ad_id", "title": "name"}
    listings = write(tmp_path / "ads.csv", "ad_id,name,city\n1,a,x\n2,b,y\n")
    out, _ = read_listings(listings, mapping)
    assert out["item_id"].tolist() == ["1", "2"] and out["title"].tolist() == ["a", "b"]
    assert "ad_id" not in out.columns and out["city"].tolist() == ["x", "y"]
    pairs = write(tmp_path / "p.csv", "left_id,right_id,is_duplicate\n1,2,true_is_bad\n")
    with pytest.raises(DataError, match="label"):
        read_pairs(pairs, toml)  # a TOML path works as mapping too
    pairs = write(tmp_path / "p.csv", "left_id,right_id,is_duplicate\n1,2,1\n")
    out, _ = read_pairs(pairs, toml, listing_ids=["1", "2"])
    assert out.columns.tolist() == ["item_id_a", "item_id_b", "label"]


def test_mapping_unknown_canonical_name(tmp_path):
    toml = write_mapping(tmp_path, '[listings]\nitem_id = "ad_id"\nheadline = "name"\n')
    e = data_error(ColumnMapping.from_toml, toml)
    msg = str(e.value)
    assert "map.toml" in msg and "'headline'" in msg and "title" in msg and "item_id" in msg


def test_mapping_unknown_section_and_bad_toml(tmp_path):
    with pytest.raises(DataError, match="listing"):
        ColumnMapping.from_toml(write_mapping(tmp_path, '[listing]\nitem_id = "x"\n'))
    with pytest.raises(DataError, match="not valid TOML"):
        ColumnMapping.from_toml(write_mapping(tmp_path, "[listings\n"))
    with pytest.raises(DataError, match="non-empty string"):
        ColumnMapping.from_toml(write_mapping(tmp_path, "[listings]\nitem_id = 3\n"))
    with pytest.raises(DataError, match="not found"):
        ColumnMapping.from_toml(tmp_path / "none.toml")


def test_mapping_column_missing_from_data(tmp_path):
    toml = write_mapping(tmp_path, '[listings]\nitem_id = "ad_id"\n')
    data = write(tmp_path / "ads.csv", "id,title\n1,a\n")
    e = data_error(read_listings, data, toml)
    msg = str(e.value)
    assert "ads.csv" in msg and "'ad_id'" in msg and "map.toml" in msg and e.value.column == "ad_id"


def test_mapping_conflicts_with_existing_canonical_column():
    mapping = ColumnMapping(listings={"item_id": "ad_id"})
    df = pd.DataFrame({"item_id": [1], "ad_id": [2], "title": ["t"]})
    with pytest.raises(DataError, match="both"):
        mapping.apply_listings(df)


def test_mapping_swap_and_shared_column():
    mapping = ColumnMapping(listings={"title": "description", "description": "title"})
    out = mapping.apply_listings(pd.DataFrame({"item_id": [1], "title": ["T"],
                                               "description": ["D"]}))
    assert out["title"].tolist() == ["D"] and out["description"].tolist() == ["T"]
    mapping = ColumnMapping(listings={"title": "text", "description": "text"})
    out = mapping.apply_listings(pd.DataFrame({"item_id": [1], "text": ["X"]}))
    assert out["title"].tolist() == ["X"] and out["description"].tolist() == ["X"]
    assert "text" not in out.columns


def test_relative_photo_paths_resolve_next_to_the_listings_file(tmp_path, monkeypatch):
    from dupsearch.io import read_listings
    d = tmp_path / "data"
    d.mkdir()
    (d / "listings.csv").write_text('item_id,title,images\n1,a,"[""photos/1.png"", ""/abs/2.png""]"\n')
    monkeypatch.chdir(tmp_path)  # not the data folder
    df, _ = read_listings("data/listings.csv")
    assert df["images"][0] == [str((d / "photos/1.png").resolve()), "/abs/2.png"]


def test_atomic_directory_swaps_whole_or_not_at_all(tmp_path):
    from dupsearch.atomic import atomic_directory
    target = tmp_path / "model"  # a folder holding a.txt counts as this kind's own
    with atomic_directory(target, own=("a.txt",)) as tmp:
        (tmp / "a.txt").write_text("1")
    assert (target / "a.txt").read_text() == "1"
    with pytest.raises(RuntimeError):
        with atomic_directory(target, own=("a.txt",)) as tmp:
            (tmp / "a.txt").write_text("2")
            raise RuntimeError("crash while writing")
    assert (target / "a.txt").read_text() == "1"  # the old model is intact
    with atomic_directory(target, own=("a.txt",)) as tmp:
        (tmp / "b.txt").write_text("3")
    assert sorted(p.name for p in target.iterdir()) == ["b.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]  # no temporary left behind


def test_atomic_writes_follow_the_umask(tmp_path):
    # mkstemp/mkdtemp create private files (0600/0700): written outputs must not stay private.
    import os
    from dupsearch.atomic import atomic_directory, atomic_write_text
    old = os.umask(0o022)
    try:
        f = atomic_write_text(tmp_path / "report.html", "x")
        with atomic_directory(tmp_path / "model") as d:
            (d / "a.json").write_text("{}")
    finally:
        os.umask(old)
    assert f.stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "model").stat().st_mode & 0o777 == 0o755
