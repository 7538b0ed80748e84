"""dupsearch.io.benchmark: Ditto-serialized benchmark files."""

from __future__ import annotations

import logging
import math
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from dupsearch.errors import DataError
from dupsearch.io import LISTING_COLUMNS, BenchmarkData, load_benchmark, load_benchmark_split
from dupsearch.io.benchmark import parse_record, record_id

BENCHMARKS = Path(__file__).resolve().parents[1].parent / "shared" / "benchmarks"

A = "COL name VAL sony cyber-shot COL description VAL 7.2 mp pink COL price VAL 104.95"
B = "COL name VAL olympus fe-360 COL description VAL  COL price VAL "
C = ("COL title VAL tv 42 COL brand VAL lg COL modelno VAL  COL category VAL electronics - tv "
     "COL price VAL about 300")


def write_split(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


# --------------------------------------------------------------------------- records


def test_parse_record_with_empty_values():
    assert parse_record(B) == [("name", "olympus fe-360"), ("description", ""), ("price", "")]
    assert parse_record("COL a VAL COL b VAL x") == [("a", ""), ("b", "x")]
    assert parse_record("COL title VAL  \"quoted\" 24\" VAL-ue COLx") == [
        ("title", '"quoted" 24" VAL-ue COLx')]
    assert parse_record("COL title VAL") == [("title", "")]
    with pytest.raises(ValueError):
        parse_record("name VAL x")


def test_record_id_is_stable_short_hash():
    assert record_id(A) == record_id(A) and len(record_id(A)) == 16
    assert record_id(A) != record_id(B)


def test_split_maps_attributes_and_dedups_identical_records(tmp_path):
    f = write_split(tmp_path / "train.txt", [
        f"{A}\t{B}\t0",
        f"{A} \t{C}\t1",       # trailing space: still the same record as line 1's A
        f"{B}\t{C}\t0",
    ])
    listings, pairs, report = load_benchmark_split(f)
    assert len(listings) == 3 and listings["item_id"].is_unique
    assert list(listings.columns) == LISTING_COLUMNS
    assert pairs.columns.tolist() == ["item_id_a", "item_id_b", "label"]
    assert pairs["label"].dtype == np.int8 and pairs["label"].tolist() == [0, 1, 0]
    assert pairs["item_id_a"].iloc[0] == pairs["item_id_a"].iloc[1] == record_id(A)
    assert (report.rows_read, report.rows_kept, report.skipped) == (3, 3, {})

    rows = listings.set_index("item_id")
    a, b, c = rows.loc[record_id(A)], rows.loc[record_id(B.strip())], rows.loc[record_id(C)]
    assert (a["title"], a["description"], a["price"]) == ("sony cyber-shot", "7.2 mp pink", 104.95)
    assert a["attributes"] == {}
    assert b["description"] == "" and math.isnan(b["price"])
    assert c["title"] == "tv 42" and c["category_l1"] == "electronics - tv"
    # empty modelno omitted; unparseable price kept as text and counted
    assert c["attributes"] == {"brand": "lg", "price": "about 300"} and math.isnan(c["price"])
    assert report.notes == {"unparseable price (kept in attributes['price'])": 1}


def test_repeats_and_self_pairs_are_kept_but_noted(tmp_path):
    f = write_split(tmp_path / "test.txt", [f"{A}\t{B}\t0", f"{B}\t{A}\t1", f"{A}\t{A}\t1"])
    _, pairs, report = load_benchmark_split(f)
    assert len(pairs) == 3  # published scores count every line
    assert report.notes["self-pairs (kept)"] == 1
    assert report.notes["repeated pairs (kept)"] == 1
    assert report.notes["repeated pairs with conflicting labels (kept)"] == 1


@pytest.mark.parametrize("line,field", [
    (f"{A}\t{B}", "label"),
    (f"{A}", "right"),
    (f"{A}\t{B}\t2", "label"),
    (f"{A}\t{B}\tyes", "label"),
    (f"name VAL x\t{B}\t1", "left"),
    (f"{A}\tsomething else\t1", "right"),
    (f"{A}\t{B}\t1\textra", "label"),
])
def test_malformed_lines_name_file_line_and_field(tmp_path, line, field):
    f = write_split(tmp_path / "valid.txt", [f"{A}\t{B}\t0", line])
    with pytest.raises(DataError) as e:
        load_benchmark_split(f)
    assert "valid.txt" in str(e.value) and e.value.row == 2 and e.value.column == field


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(DataError, match="nope.txt"):
        load_benchmark_split(tmp_path / "nope.txt")
    with pytest.raises(DataError, match="missing-set"):
        load_benchmark(tmp_path / "missing-set")
    (tmp_path / "partial").mkdir()
    write_split(tmp_path / "partial" / "train.txt", [f"{A}\t{B}\t0"])
    with pytest.raises(DataError) as e:
        load_benchmark(tmp_path / "partial")
    assert "valid.txt" in str(e.value) and "partial" in str(e.value)


def test_load_benchmark_sizes_and_union(tmp_path, caplog):
    d = tmp_path / "toy"
    d.mkdir()
    write_split(d / "train-small.txt", [f"{A}\t{B}\t0"])
    write_split(d / "train-medium.txt", [f"{A}\t{B}\t0", f"{A}\t{C}\t1"])
    write_split(d / "valid-small.txt", [f"{B}\t{C}\t0"])
    write_split(d / "valid-medium.txt", [f"{B}\t{C}\t0", f"{C}\t{A}\t1"])
    write_split(d / "test.txt", [f"{A}\t{C}\t1"])
    small = load_benchmark(d, train_size="small")
    medium = load_benchmark(d)
    assert isinstance(small, BenchmarkData) and small.name == "toy"
    assert (len(small.train), len(small.valid), len(small.test)) == (1, 1, 1)
    assert (len(medium.train), len(medium.valid), len(medium.test)) == (2, 2, 1)
    assert len(medium.listings) == 3 and medium.listings["item_id"].is_unique
    assert set(medium.reports) == {"train", "valid", "test"}
    with pytest.raises(ValueError, match="train_size"):
        load_benchmark(d, train_size="large")

    plain = tmp_path / "plain"
    plain.mkdir()
    for name in ("train", "valid", "test"):
        write_split(plain / f"{name}.txt", [f"{A}\t{B}\t0"])
    with caplog.at_level(logging.INFO):
        data = load_benchmark(plain, train_size="small")
    assert len(data.train) == 1 and "train_size" in caplog.text


# --------------------------------------------------------------------------- real data


def _dataset(name: str) -> Path:
    if not BENCHMARKS.is_dir():
        pytest.skip(f"{BENCHMARKS} not present")
    if not (BENCHMARKS / name).is_dir():
        pytest.skip(f"{BENCHMARKS / name} not present")
    return BENCHMARKS / name


@pytest.mark.benchmarks
def test_abt_buy_counts_match_readme():
    start = time.perf_counter()
    data = load_benchmark(_dataset("abt-buy"))
    elapsed = time.perf_counter() - start
    assert (len(data.train), len(data.valid), len(data.test)) == (5743, 1916, 1916)
    assert int(data.test["label"].sum()) == 206
    assert elapsed < 5  # budget is ~2 s; slack for slow CI machines
    ids = set(data.listings["item_id"])
    for frame in (data.train, data.valid, data.test):
        assert set(frame["item_id_a"]) <= ids and set(frame["item_id_b"]) <= ids
    assert data.listings["item_id"].is_unique
    # abt-buy has name/description/price: titles all present, prices parsed
    assert (data.listings["title"] != "").all()
    assert data.listings["price"].notna().any()


@pytest.mark.benchmarks
def test_wdc_computers_small_vs_medium():
    d = _dataset("wdc-computers")
    small, medium = load_benchmark(d, "small"), load_benchmark(d, "medium")
    assert len(small.train) == 2231 and len(medium.train) == 6332
    assert len(medium.valid) == 1567
    assert len(small.test) == len(medium.test) == 1098
    assert int(medium.test["label"].sum()) == 299
    assert small.files["train"].name == "train-small.txt"


# --------------------------------------------------------------------------- dirty variants

def test_dirty_record_moves_values_into_the_title():
    from dupsearch.io.benchmark import dirty_record
    assert dirty_record(C, 0.0) == C
    everything = parse_record(dirty_record(C, 1.0))
    assert everything[0] == ("title", "tv 42 lg electronics - tv about 300")
    assert [v for _, v in everything[1:]] == ["", "", "", ""]  # attributes kept, emptied
    # p = 0.5: each value either stays or moves, never both, never lost; the draw is the record's
    values = [v for _, v in parse_record(C)[1:] if v]
    moved_counts = []
    for seed in range(40):
        once = dirty_record(C, 0.5, seed)
        assert once == dirty_record(C, 0.5, seed)
        fields = dict(parse_record(once))
        stayed = [v for v in values if v in fields.values() and fields["title"].find(v) < 0]
        moved = [v for v in values if fields["title"].endswith(v) or f" {v} " in f" {fields['title']} "]
        assert sorted(stayed + moved) == sorted(values)
        moved_counts.append(len(moved))
    assert 0 < np.mean(moved_counts) < len(values)  # some seeds move some values, not all
    assert dirty_record(B.replace("name", "brand"), 1.0) == B.replace("name", "brand")  # no title: as is


def test_dirty_benchmark_keeps_ids_and_pairs(tmp_path):
    d = tmp_path / "ds"
    d.mkdir()
    for split in ("train", "valid", "test"):
        write_split(d / f"{split}.txt", [f"{C}\t{A}\t0", f"{C}\t{C}\t1"])
    clean, dirty = load_benchmark(d), load_benchmark(d, dirty=1.0)
    assert list(clean.listings["item_id"]) == list(dirty.listings["item_id"])
    assert clean.train.equals(dirty.train)
    row = dirty.listings.set_index("item_id").loc[record_id(C)]
    assert row["title"].startswith("tv 42 lg") and not row["attributes"]
    with pytest.raises(ValueError, match="dirty"):
        load_benchmark(d, dirty=1.5)


def test_values_moved_into_title_as_the_dirty_records_are(tmp_path):
    """The listing-level twin of dirty_record (the training augmentation's): at p = 1 the
    listing's dirty record's values all sit in the title, its fields emptied; at 0.5 each value
    moves or stays, never both, never lost; the draw is the listing's id and the seed."""
    from dupsearch.io.benchmark import values_moved_into_title
    d = tmp_path / "ds"
    d.mkdir()
    for split in ("train", "valid", "test"):
        write_split(d / f"{split}.txt", [f"{C}\t{A}\t0", f"{C}\t{C}\t1"])
    clean, dirty = load_benchmark(d), load_benchmark(d, dirty=1.0)
    before = clean.listings.copy(deep=True)
    moved = values_moved_into_title(clean.listings, 1.0, seed=3)
    assert clean.listings.equals(before)  # a copy: the caller's frame is as it was
    assert list(moved["item_id"]) == list(clean.listings["item_id"])
    by_id = dirty.listings.set_index("item_id")
    for _, row in moved.iterrows():
        assert sorted(row["title"].split()) == sorted(by_id.loc[row["item_id"], "title"].split())
        assert not row["attributes"] and not row["description"] and np.isnan(row["price"])
        assert all(pd.isna(row[c]) or row[c] == "" for c in ("category_l1", "category_l2"))
    assert values_moved_into_title(clean.listings, 0.0).equals(clean.listings)

    one = clean.listings.iloc[[0]].copy()
    one["attributes"] = [{f"k{i}": f"v{i}" for i in range(8)}]
    one["price"], one["description"] = 1234.5, "long words here"
    values = ["long words here", *(f"v{i}" for i in range(8)), "1234.5"]
    counts = []
    for seed in range(30):
        once = values_moved_into_title(one, 0.5, seed).iloc[0]
        assert once.equals(values_moved_into_title(one, 0.5, seed).iloc[0])
        title = once["title"][len(one["title"].iat[0]):]
        stayed = [*once["attributes"].values(), *([once["description"]] if once["description"] else []),
                  *([] if np.isnan(once["price"]) else ["1234.5"])]
        gone = [v for v in values if f" {v}" in title]
        assert sorted(stayed + gone) == sorted(values)
        counts.append(len(gone))
    assert 0 < np.mean(counts) < len(values)


def test_source_commit_ignores_what_benchmarks_write(tmp_path):
    """A benchmark's own outputs (bench-results/, the tables generated from them) changed while a
    run goes on do not mark the code as dirty; a changed source file does."""
    import shutil
    import subprocess

    from dupsearch.bench.runner import source_commit
    if shutil.which("git") is None:
        pytest.skip("needs git")

    def git(*args):
        subprocess.run(["git", "-C", str(tmp_path), *args], check=True, capture_output=True)
    git("init", "-q")
    for rel in ("src/code.py", "bench-results/a/seed0/x.json", "BENCHMARKS.md"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("0\n")
    git("add", "-A")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "init")
    (tmp_path / "bench-results/a/seed0/x.json").write_text("1\n")
    (tmp_path / "BENCHMARKS.md").write_text("1\n")
    clean = source_commit(tmp_path)
    assert clean["tree_dirty"] is False and len(clean["commit"]) == 40
    (tmp_path / "src/code.py").write_text("1\n")
    assert source_commit(tmp_path)["tree_dirty"] is True
