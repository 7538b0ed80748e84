"""The listing store and the one scoring path.

- every family's ``compare`` over a store equals the features of the pipeline before the store
  (pair batches joined per call, commit 31ee13e), saved in tests/data/legacy for fixture pairs
  of the English test market and a generated Russian one (homoglyphs, attributes, categories);
- a saved and reopened store is identical, and so are its features;
- a store built from A then appended with B equals one built from A and B together;
- the features are symmetric in the pair order;
- ``predict`` and ``dedup`` give identical scores for the same pairs;
- using anything unfitted raises NotFittedError.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from dupsearch.errors import DataError, NotFittedError
from dupsearch.features import FeatureConfig, FeaturePipeline, ListingStore
from dupsearch.features.store import Ragged

LEGACY = Path(__file__).parent / "data" / "legacy"


def legacy(name: str):
    listings = pd.read_parquet(LEGACY / f"{name}_listings.parquet")
    listings["attributes"] = [json.loads(a) if isinstance(a, str) and a else a for a in listings["attributes"]]
    if "images" in listings:
        listings["images"] = [json.loads(a) if isinstance(a, str) else a for a in listings["images"]]
    pairs = pd.read_parquet(LEGACY / f"{name}_pairs.parquet")
    return listings, pairs, pd.read_parquet(LEGACY / f"{name}_features.parquet")


# The string settings before the measured trade (BENCHMARKS, "what each feature costs"): the
# "text" field compared too, partial_ratio of descriptions over 600 characters.
LEGACY_SETTINGS = {"strings": {"fields": ["title", "description", "text", "attrs"],
                               "partial_chars": {"description": 600}}}


@pytest.fixture(scope="module", params=["market", "ru"])
def fitted(request):
    listings, pairs, want = legacy(request.param)
    pipe = FeaturePipeline(FeatureConfig(family_settings=LEGACY_SETTINGS)).fit(listings)
    return listings, pairs, want, pipe


def test_default_features_are_the_legacy_ones_but_the_measured_trade(fitted):
    listings, pairs, want, _ = fitted
    got = FeaturePipeline(FeatureConfig()).fit(listings).transform(listings, pairs)
    assert set(got.columns) == set(want.columns) - {c for c in want.columns if c.startswith("strings.text.")}
    for c in got.columns:
        if c in ("category.l1_pair", "strings.description.partial_ratio"):
            continue
        np.testing.assert_allclose(got[c].to_numpy(float), want[c].to_numpy(float), rtol=1e-5, atol=1e-6,
                                   equal_nan=True, err_msg=c)
    # partial_ratio of descriptions reads their first PARTIAL_CHARS: equal where both are short
    from dupsearch.features.strings import PARTIAL_CHARS
    short = (listings.assign(item_id=listings["item_id"].astype(str)).set_index("item_id")["description"]
             .fillna("").astype(str).str.len() <= PARTIAL_CHARS["description"])
    both = (short.reindex(pairs["item_id_a"].astype(str)).to_numpy(dtype=bool)
            & short.reindex(pairs["item_id_b"].astype(str)).to_numpy(dtype=bool))
    c = "strings.description.partial_ratio"
    # (the English market has such pairs; the generated Russian descriptions are all longer)
    np.testing.assert_allclose(got[c].to_numpy(float)[both], want[c].to_numpy(float)[both], equal_nan=True)


def test_every_family_equals_the_pre_store_features(fitted):
    listings, pairs, want, pipe = fitted
    got = pipe.transform(listings, pairs)
    assert list(got.columns) == list(want.columns)  # same names, same order
    for fam in pipe.families_:
        for c in fam.columns_:
            if c == "category.l1_pair":
                assert got[c].astype(str).tolist() == want[c].astype(str).tolist()
                continue
            np.testing.assert_allclose(got[c].to_numpy(float), want[c].to_numpy(float), rtol=1e-5, atol=1e-6,
                                       equal_nan=True, err_msg=f"{fam.name}: {c}")


def test_features_are_symmetric_in_the_pair_order(fitted):
    listings, pairs, _, pipe = fitted
    store = pipe.build_store(listings)
    ia, ib = store.rows(pairs["item_id_a"]), store.rows(pairs["item_id_b"])
    pd.testing.assert_frame_equal(pipe.compare(store, ia, ib), pipe.compare(store, ib, ia))


def test_save_open_round_trip_is_identical(fitted, tmp_path):
    listings, pairs, _, pipe = fitted
    store = pipe.build_store(listings)
    store.save(tmp_path / "store")
    again = ListingStore.open(tmp_path / "store")
    assert again.equals(store)
    assert len(again) == len(listings) and again.meta["pipeline"] == pipe.digest()
    ia, ib = store.rows(pairs["item_id_a"]), store.rows(pairs["item_id_b"])
    pd.testing.assert_frame_equal(pipe.compare(again, ia, ib), pipe.compare(store, ia, ib))
    # memory-mapped, not read into memory
    assert any(isinstance(v, np.memmap) for v in again.dense.values())


def test_append_equals_a_store_of_the_union(fitted):
    listings, _, _, pipe = fitted
    k = len(listings) // 3
    a, b = listings.iloc[:k], listings.iloc[k:]
    union = pipe.build_store(listings)
    appended = pipe.build_store(a).append(pipe.build_store(b))
    assert appended.equals(union)
    # and taking rows back out gives the parts
    assert union.take(np.arange(k)).equals(pipe.build_store(a))


def test_gather_from_saved_and_built_stores_equals_a_store_of_those_rows(fitted, tmp_path):
    """The index's one-copy gather: rows of a memory-mapped saved store and of a store built in
    memory, in any order, equal a store built from those listings in that order."""
    listings, _, _, pipe = fitted
    k = len(listings) // 2
    a, b = listings.iloc[:k].reset_index(drop=True), listings.iloc[k:].reset_index(drop=True)
    saved = ListingStore.open(pipe.build_store(a).save(tmp_path / "a"))
    built = pipe.build_store(b)
    ra, rb = np.array([3, 0, k - 1, 3]), np.array([1, 0])
    gathered = ListingStore.gather([(built, rb), (saved, ra)])
    want = pipe.build_store(pd.concat([b.iloc[rb], a.iloc[ra]], ignore_index=True), unique_ids=False)
    assert gathered.equals(want)
    assert not gathered.equals(pipe.build_store(pd.concat([a.iloc[ra], b.iloc[rb]], ignore_index=True),
                                                unique_ids=False))


def test_nonempty_of_a_lazy_gather_asks_its_sources_and_makes_no_strings(fitted, tmp_path):
    """Which rows have a text (the families' empty-is-missing test) is read from the sources of
    a lazily gathered store, memory-mapped Arrow offsets included, and equals the strings' own
    emptiness; the text column itself stays ungathered."""
    listings, _, _, pipe = fitted
    listings = listings.copy()
    listings.loc[[0, 3], "description"] = ""
    listings.loc[[1, 3], "title"] = ""
    k = len(listings) // 2
    a, b = listings.iloc[:k].reset_index(drop=True), listings.iloc[k:].reset_index(drop=True)
    saved = ListingStore.open(pipe.build_store(a).save(tmp_path / "a"))
    built = pipe.build_store(b)
    ra, rb = np.array([3, 0, 1, k - 1, 3, 2]), np.array([1, 0])
    lazy = ListingStore.gather([(built, rb), (saved, ra)], lazy=True)
    eager = ListingStore.gather([(built, rb), (saved, ra)])
    for field in ("title", "description", "all"):
        has = lazy.nonempty(field)
        assert field in lazy._lazy  # answered without gathering the strings
        want = np.array([len(t) > 0 for t in eager[field]])
        assert has.dtype == bool and np.array_equal(has, want), field
        assert np.array_equal(saved.nonempty(field)[ra], want[len(rb):])
    assert not lazy.nonempty("description")[[2, 3, 6]].any() and not lazy.nonempty("title")[[4, 6]].any()
    lazy.put("title", np.array(["x"] * lazy.n, dtype=object))  # a column replaced: asked anew
    assert lazy.nonempty("title").all()


def test_append_refuses_a_store_of_another_pipeline(fitted):
    listings, _, _, pipe = fitted
    other = FeaturePipeline(FeatureConfig(families=("price", "lengths"))).fit(listings)
    with pytest.raises(Exception, match="another feature pipeline"):
        pipe.build_store(listings.iloc[:3]).append(other.build_store(listings.iloc[3:6]))


def test_unknown_item_id_and_repeated_item_id_are_named(fitted):
    listings, pairs, _, pipe = fitted
    store = pipe.build_store(listings)
    with pytest.raises(DataError, match="row 2 names item_id 'nope'"):
        store.rows(["%s" % store.ids[0], "nope"])
    twice = pd.concat([listings.iloc[:2], listings.iloc[:1]])
    with pytest.raises(DataError, match="occurs twice"):
        pipe.build_store(twice)


def test_ragged_columns_round_trip_and_pad(tmp_path):
    store = ListingStore(["a", "b", "c"])
    mats = [np.ones((2, 3), np.float32), None, np.arange(3, dtype=np.float32)[None, :]]
    store.put("img|x", Ragged.from_list(mats, 3))
    store.put("n", np.array([1.0, 2.0, 3.0]))
    store.save(tmp_path / "s")
    again = ListingStore.open(tmp_path / "s")
    assert again.equals(store)
    A, mask = again["img|x"].pad(np.array([2, 1, 0]))
    assert A.shape == (3, 2, 3) and mask.tolist() == [[True, False], [False, False], [True, True]]
    np.testing.assert_array_equal(A[0, 0], [0, 1, 2])


def test_unfitted_objects_raise_not_fitted():
    from dupsearch.features.strings import StringFamily
    from dupsearch.models import DuplicateMatcher
    with pytest.raises(NotFittedError, match="strings"):
        StringFamily().compare(ListingStore(["a"]), np.array([0]), np.array([0]))
    with pytest.raises(NotFittedError):
        FeaturePipeline().build_store(pd.DataFrame({"item_id": ["1"], "title": ["x"]}))
    with pytest.raises(NotFittedError):
        DuplicateMatcher().score(ListingStore(["a"]), np.array([0]), np.array([0]))


def test_family_settings_are_checked_by_name():
    with pytest.raises(ValueError, match="no setting 'feilds'"):
        FeatureConfig(family_settings={"strings": {"feilds": ["title"]}})
    with pytest.raises(ValueError, match="take no settings"):
        FeatureConfig(family_settings={"embeddings": {}})
    cfg = FeatureConfig(families=("strings",), family_settings={"strings": {"fields": ["title"]}})
    listings, pairs, _ = legacy("market")
    X = FeaturePipeline(cfg).fit(listings).transform(listings, pairs)
    assert X.columns.str.startswith("strings.title.").all()


def test_predict_and_dedup_give_identical_scores(tmp_path, market):
    from conftest import fast_config
    from dupsearch.engines import DedupConfig, run_dedup
    from dupsearch.io import write_table
    from dupsearch.models import DuplicateMatcher
    m = DuplicateMatcher(fast_config()).fit(market.listings, market.train)
    m.save(tmp_path / "model")
    write_table(market.listings, tmp_path / "listings.parquet")
    run_dedup(tmp_path / "listings.parquet", tmp_path / "model", tmp_path / "dd", DedupConfig(workers=1),
              progress=False, log=lambda *_: None)
    parts = pd.concat(
        [pd.read_parquet(p) for p in sorted((tmp_path / "dd" / "scores").glob("part-*.parquet"))])
    assert len(parts) > 50
    pairs = parts[["item_id_a", "item_id_b"]].reset_index(drop=True)
    p = DuplicateMatcher.load(tmp_path / "model").predict_proba(market.listings, pairs)
    np.testing.assert_array_equal(parts["score"].to_numpy(), p.astype(np.float32))
    # the store dedup saved is the one score() read: reopening it scores the same again
    store = ListingStore.open(tmp_path / "dd" / "store")
    # (its rows are the listings in locality order, not the input's: row_a/row_b are input rows)
    ia, ib = store.rows(parts["item_id_a"], column="item_id_a"), store.rows(parts["item_id_b"], column="item_id_b")
    assert sorted(store.ids) == sorted(market.listings["item_id"].astype(str))
    again = m.score(store, ia, ib)
    np.testing.assert_array_equal(parts["score"].to_numpy(), again.astype(np.float32))


def test_saved_chunks_concatenate_to_the_whole_store(fitted, tmp_path):
    listings, pairs, _, pipe = fitted
    bounds = [(0, 5), (5, 6), (6, len(listings))]
    parts = []
    for s, e in bounds:
        parts.append(pipe.build_store(listings.iloc[s:e]).save(tmp_path / f"chunk{s}"))
    ListingStore.concat_saved(parts, tmp_path / "whole")
    whole = ListingStore.open(tmp_path / "whole")
    assert whole.equals(pipe.build_store(listings))
    ia, ib = whole.rows(pairs["item_id_a"]), whole.rows(pairs["item_id_b"])
    pd.testing.assert_frame_equal(pipe.compare(whole, ia, ib), pipe.transform(listings, pairs))


def _save_format_1(store, path):
    """The store as format 1 wrote it (one .npy file per array): stores saved before format 2."""
    path.mkdir()
    manifest = {"format": 1, "n": store.n, "meta": store.meta, "columns": {}}
    strings = {"item_id": pa.array(store.ids.astype(str), pa.string())}
    for i, (name, kind) in enumerate(store.columns().items()):
        col, entry = store.get(name), {"kind": kind}
        parts = {"sparse": ("indptr", "indices", "data"), "ragged": ("offsets", "rows")}.get(kind, ())
        if kind == "strings":
            strings[name] = pa.array([str(x) for x in col], pa.string())
        elif kind == "dense":
            entry["file"] = f"c{i:03d}.npy"
            np.save(path / entry["file"], np.asarray(col))
        else:
            entry["files"] = {part: f"c{i:03d}.{part}.npy" for part in parts}
            if kind == "sparse":
                entry["shape"] = list(col.shape)
            for part in parts:
                np.save(path / entry["files"][part], np.asarray(getattr(col, part)))
        manifest["columns"][name] = entry
    with pa.OSFile(str(path / "strings.arrow"), "wb") as sink, pa.ipc.new_file(sink, pa.table(strings).schema) as w:
        w.write_table(pa.table(strings))
    (path / "store.json").write_text(json.dumps(manifest))
    return path


def test_a_store_saved_one_file_per_array_opens_and_concatenates(fitted, tmp_path):
    """Format 2 writes every array into one file; stores of format 1 (a .npy file per array:
    older indexes, resumable dedup chunks) still open, and concatenate with format-2 ones."""
    listings, pairs, _, pipe = fitted
    whole = pipe.build_store(listings)
    saved = whole.save(tmp_path / "new")
    assert sorted(p.name for p in saved.iterdir()) == ["arrays.bin", "store.json", "strings.arrow"]
    old = _save_format_1(pipe.build_store(listings.iloc[:5]), tmp_path / "old")
    assert ListingStore.open(old).equals(pipe.build_store(listings.iloc[:5]))
    rest = pipe.build_store(listings.iloc[5:]).save(tmp_path / "rest")
    ListingStore.concat_saved([old, rest], tmp_path / "joined")
    joined = ListingStore.open(tmp_path / "joined")
    assert joined.equals(whole) and ListingStore.open(saved, mmap=False).equals(whole)
    ia, ib = joined.rows(pairs["item_id_a"]), joined.rows(pairs["item_id_b"])
    pd.testing.assert_frame_equal(pipe.compare(joined, ia, ib), pipe.compare(whole, ia, ib))


def test_concatenation_refuses_a_disk_without_room_before_writing(fitted, tmp_path, monkeypatch):
    """A memory-mapped write that finds the disk full kills the process (SIGBUS) and leaves a
    half-written store: the free space is checked first (issue #16; seen on a 1M-listing run)."""
    import shutil
    from collections import namedtuple
    from dupsearch.errors import DupsearchError
    listings, _, _, pipe = fitted
    parts = [pipe.build_store(listings.iloc[s:e]).save(tmp_path / f"chunk{s}") for s, e in [(0, 5), (5, len(listings))]]
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda p: usage(10**9, 10**9 - 1000, 1000))
    with pytest.raises(DupsearchError, match=r"needs about .* GB of free disk space and 0\.0 GB are free"):
        ListingStore.concat_saved(parts, tmp_path / "whole")
    assert not (tmp_path / "whole").exists() and not list(tmp_path.glob(".whole*"))


def test_a_damaged_store_is_one_error_naming_the_file(fitted, tmp_path):
    listings, _, _, pipe = fitted
    path = pipe.build_store(listings).save(tmp_path / "store")
    victim = path / "arrays.bin"
    victim.write_bytes(b"not an array")
    with pytest.raises(DataError, match=victim.name):
        ListingStore.open(path)
    with pytest.raises(Exception, match="not a dupsearch listing store"):
        ListingStore.open(tmp_path)


def test_string_column_takes_scattered_rows_across_chunks():
    """Rows far apart are taken chunk by chunk (never by joining the whole column), in order,
    repeats kept."""
    import pyarrow as pa
    from dupsearch.features.store import StringColumn
    col = StringColumn(pa.chunked_array([pa.array([f"s{i}" for i in range(j * 100, (j + 1) * 100)])
                                         for j in range(5)]))
    idx = np.array([499, 0, 250, 0, 101, 499])
    assert list(col[idx]) == [f"s{i}" for i in idx]
    # each way of reading gives the same strings: rows close together (one slice), a few rows
    # per chunk touched (scalar reads), many rows in few chunks far apart (a take per chunk)
    big = StringColumn(pa.chunked_array([pa.array([f"s{i}" for i in range(j * 10_000, (j + 1) * 10_000)])
                                         for j in range(3)]))
    for idx in (np.arange(40, 60), np.array([29_995, 5, 15_005, 5]),
                np.r_[np.arange(0, 1_000, 10), 29_999, 3]):
        assert list(big[idx]) == [f"s{i}" for i in idx]
