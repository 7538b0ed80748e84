"""The catalogue index (dupsearch.index): build, match, upsert, remove, compaction, crash safety.

A module fixture generates a small market (the generator's columns: seller, city, categories)
and trains a small model; each test builds its own index from it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from helpers import one_line, run_cli, small_market_and_model

N_LISTINGS = 700


@pytest.fixture(scope="module")
def market(tmp_path_factory):
    from dupsearch import read_listings
    root = tmp_path_factory.mktemp("index_market")
    data, model, _ = small_market_and_model(root, N_LISTINGS, seed=11)
    listings, _ = read_listings(data / "listings.parquet")
    rng = np.random.default_rng(0)
    held = np.sort(rng.choice(len(listings), 60, replace=False))
    return {"root": root, "data": data, "model": model, "listings": listings,
            "catalogue": listings.drop(index=held).reset_index(drop=True),
            "new": listings.iloc[held].reset_index(drop=True)}


@pytest.fixture
def built(market, tmp_path):
    from dupsearch.index import Index
    return Index.build(market["catalogue"], market["model"], tmp_path / "idx")


def _pairs_of(frame: pd.DataFrame) -> set[tuple[str, str]]:
    return set(zip(frame["item_id"], frame["match_id"]))


def test_match_scores_equal_predict(market, built):
    from dupsearch import DuplicateMatcher
    res = built.match(market["new"], top=5)
    assert len(res) > 0 and set(res["item_id"]) <= set(market["new"]["item_id"])
    assert (res.groupby("item_id")["rank"].max() <= 5).all()
    assert res.groupby("item_id")["probability"].apply(lambda p: (np.diff(p.to_numpy()) <= 0).all()).all()
    pairs = res.rename(columns={"item_id": "item_id_a", "match_id": "item_id_b"})[["item_id_a", "item_id_b"]]
    p = DuplicateMatcher.load(market["model"]).predict_proba(market["listings"], pairs)
    np.testing.assert_allclose(res["probability"].to_numpy(), p, rtol=0, atol=1e-12)


def test_candidates_hold_what_dedup_blocking_proposes(market, built):
    """Key blockers: exactly dedup's pairs between a new listing and the catalogue; all blockers:
    at least the true re-posts dedup's blocking finds (the held-back listings' truth)."""
    from dupsearch.candidates.blocking import candidate_pairs
    from dupsearch.candidates.specs import default_blocker_specs, make_blocker
    listings, new = market["listings"], market["new"]
    specs = default_blocker_specs(listings)
    is_new = listings["item_id"].isin(new["item_id"]).to_numpy()
    ids = listings["item_id"].to_numpy(dtype=object)

    def cross(blockers):
        c = candidate_pairs(listings, blockers)
        a, b = c.a, c.b
        keep = is_new[a] != is_new[b]
        q, r = np.where(is_new[a[keep]], a[keep], b[keep]), np.where(is_new[a[keep]], b[keep], a[keep])
        return set(zip(ids[q], ids[r]))

    q, r, _ = built.candidates(new)
    found = set(zip(new["item_id"].to_numpy(dtype=object)[q], built._ids_of(r)))
    keys_only = cross([make_blocker(specs[0])])
    assert specs[0].startswith("key:") and keys_only
    key_q, key_r = built._key_candidates("b0", new)
    assert set(zip(new["item_id"].to_numpy(dtype=object)[key_q], built._ids_of(key_r))) == keys_only
    truth = listings.set_index("item_id")["cluster_id"]
    true_cross = {(a, b) for a, b in cross([make_blocker(s) for s in specs]) if truth[a] == truth[b]}
    assert true_cross and true_cross <= found


def test_upsert_remove_and_reopen(market, built):
    from dupsearch.index import Index, ListingNotFoundError
    new = market["new"]
    n0 = len(built)
    res = built.upsert(new.iloc[:20], top=3)
    assert len(built) == n0 + 20 and set(res["item_id"]) <= set(new["item_id"][:20])
    assert not (res["item_id"] == res["match_id"]).any()  # never its own match
    reopened = Index.open(built.path)
    assert len(reopened) == n0 + 20 and new["item_id"][5] in reopened
    pd.testing.assert_frame_equal(reopened.duplicates(new["item_id"][5]), built.duplicates(new["item_id"][5]))
    # replace: same id, other text; the old version is gone
    changed = new.iloc[[5]].copy()
    changed["title"] = "совсем другой товар " + changed["title"]
    built.upsert(changed)
    assert len(built) == n0 + 20
    assert built._listing_frames(np.array([built.row(new["item_id"][5])]))["title"][0].startswith("совсем")
    assert built.remove([new["item_id"][5], "no-such-id"]) == 1
    assert new["item_id"][5] not in built and len(Index.open(built.path)) == n0 + 19
    assert built.contains([new["item_id"][6], new["item_id"][5], "no-such-id", new["item_id"][6]]).tolist() \
        == [True, False, False, True]
    with pytest.raises(ListingNotFoundError):
        built.duplicates(new["item_id"][5])


def test_upsert_equals_build_of_the_union(market, tmp_path):
    """With key blockers (nothing refitted), an index built from A then given B matches like
    one built from A and B together."""
    from dupsearch.index import Index
    cat, new = market["catalogue"], market["new"]
    specs = ["key:seller_id+category_l2", "key:category_l3"]
    grown = Index.build(cat, market["model"], tmp_path / "grown", blockers=specs)
    grown.upsert(new.iloc[:30])
    whole = Index.build(pd.concat([cat, new.iloc[:30]], ignore_index=True), market["model"], tmp_path / "whole",
                        blockers=specs)
    probe = new.iloc[30:]
    pd.testing.assert_frame_equal(grown.match(probe, top=0), whole.match(probe, top=0))


def test_merging_is_size_tiered_so_a_stream_of_upserts_is_rewritten_a_few_times():
    """Over 2,000 commits of 20 listings each, the index never holds more than MERGE_SEGMENTS
    segments and each upserted listing is rewritten by merges a few times, not once per
    MERGE_SEGMENTS commits (merging every segment after the first rewrote 91 times what was
    upserted at 12)."""
    from dupsearch.index.core import MERGE_SEGMENTS, _merge_start
    sizes, rewritten, most = [1_000_000], 0, 0
    for _ in range(2000):
        sizes.append(20)
        if len(sizes) > MERGE_SEGMENTS:
            first = _merge_start(sizes, MERGE_SEGMENTS)
            assert first >= 1 and first <= len(sizes) - 2  # never the bulk-built segment; at least two merged
            merged = sum(sizes[first:])
            sizes = sizes[:first] + [merged]
            rewritten, most = rewritten + merged, max(most, len(sizes))
    assert most <= MERGE_SEGMENTS and sizes[0] == 1_000_000 and sum(sizes) == 1_000_000 + 2000 * 20
    assert rewritten < 6 * 2000 * 20, rewritten / (2000 * 20)


def test_merge_and_compact_keep_the_answers(market, built, monkeypatch):
    from dupsearch.index import core
    new = market["new"]
    monkeypatch.setattr(core, "MERGE_SEGMENTS", 3)
    for i in range(5):  # more segments than MERGE_SEGMENTS: the newer ones are merged
        built.upsert(new.iloc[i * 4:(i + 1) * 4])
    assert len(built._segments) <= 3
    built.remove([new["item_id"][0]])
    probe = new.iloc[40:]
    before = built.match(probe, top=0)
    rep = built.compact()
    assert rep["segments"] == 1 and len(built) == len(market["catalogue"]) + 19
    after = built.match(probe, top=0)
    # radii recomputed over the merged rows: the ANN candidates may differ a little, scores not
    common = before.merge(after, on=["item_id", "match_id"])
    assert len(common) >= 0.8 * len(before)
    np.testing.assert_allclose(common["probability_x"], common["probability_y"], atol=1e-12)
    assert not list((built.path / "segments").glob(".*.tmp"))


def test_one_writer_readers_never_blocked(market, built):
    import fcntl
    from dupsearch.index import Index, IndexBusyError
    with open(built.path / ".lock", "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)  # another writer holds the index
        other = Index.open(built.path)
        assert len(other.match(market["new"].iloc[:3])) > 0
        with pytest.raises(IndexBusyError):
            other.upsert(market["new"].iloc[:1])
    other.upsert(market["new"].iloc[:1])  # free again


def test_a_second_handle_picks_up_commits_by_opening_only_new_segments(market, built):
    """Another process's commit (here another handle): ``stale`` sees it with one stat,
    ``refresh`` opens only the segments it added, and the answers are the writer's."""
    from dupsearch.index import Index
    new = market["new"]
    reader = Index.open(built.path)
    assert not reader.stale() and reader.refresh() is False
    first = reader._segments[0]
    built.upsert(new.iloc[:4], top=None)
    assert reader.stale() and new["item_id"][0] not in reader
    assert reader.refresh() is True
    assert reader._segments[0] is first and len(reader._segments) == len(built._segments)
    assert not reader.stale() and reader.refresh() is False
    assert len(reader) == len(built) and all(i in reader for i in new["item_id"][:4])
    pd.testing.assert_frame_equal(reader.match(new.iloc[4:10]), built.match(new.iloc[4:10]))
    built.remove([new["item_id"][1]])
    assert reader.refresh() and new["item_id"][1] not in reader and len(reader) == len(built)


def test_a_writer_waits_for_another_processs_lock_when_told_to(market, built):
    import fcntl
    import threading
    from dupsearch.index import IndexBusyError
    new = market["new"]
    fh = open(built.path / ".lock", "a+")
    fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)  # another writer holds the index for 0.5 s
    threading.Timer(0.5, lambda: (fcntl.flock(fh, fcntl.LOCK_UN), fh.close())).start()
    with pytest.raises(IndexBusyError):
        built.upsert(new.iloc[:1], top=None)  # lock_wait_s = 0: refused at once
    built.lock_wait_s = 30.0
    t0 = time.monotonic()
    built.upsert(new.iloc[:1], top=None)
    assert time.monotonic() - t0 >= 0.3 and new["item_id"][0] in built


WRITER = textwrap.dedent("""
    import sys, pandas as pd
    from dupsearch.index import Index
    idx = Index.open(sys.argv[1])
    new = pd.read_parquet(sys.argv[2])
    for i in range(len(new)):
        idx.upsert(new.iloc[[i]], top=None)
        print(new["item_id"].iloc[i], flush=True)  # acknowledged: upsert returned
""")


def test_kill_9_during_upserts_loses_no_acknowledged_write(market, built, tmp_path):
    from dupsearch.index import Index
    new = market["new"]
    new.to_parquet(tmp_path / "new.parquet")
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(built.path), str(tmp_path / "new.parquet")],
                            stdout=subprocess.PIPE, text=True)
    acked = []
    deadline = time.time() + 120
    while len(acked) < 8 and time.time() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        acked.append(line.strip())
    time.sleep(0.05)  # somewhere inside the next write
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    acked += [x.strip() for x in proc.stdout.read().splitlines()]
    assert len(acked) >= 8
    idx = Index.open(built.path, verify=True)  # opens clean: every file matches its digest
    assert all(i in idx for i in acked)
    assert len(idx) in (len(market["catalogue"]) + len(acked), len(market["catalogue"]) + len(acked) + 1)
    idx.upsert(new.iloc[[-1]])  # the next writer cleans what the killed one left
    assert not list((built.path / "segments").glob(".*.tmp"))


def test_cli_build_add_match_remove_verify(market, tmp_path):
    data = market["data"]
    idx = tmp_path / "idx"
    market["catalogue"].to_parquet(tmp_path / "cat.parquet")
    market["new"].to_parquet(tmp_path / "new.parquet")
    run_cli("index", "build", tmp_path / "cat.parquet", "--model", market["model"], "--out", idx, check_ok=True)
    out = run_cli("match", idx, tmp_path / "new.parquet", "--out", tmp_path / "m.csv", "--top", 2, check_ok=True)
    assert "listings matched" in out.stdout + out.stderr
    m = pd.read_csv(tmp_path / "m.csv", dtype={"item_id": str, "match_id": str})
    assert list(m.columns) == ["item_id", "rank", "match_id", "probability", "blockers", "is_duplicate"]
    assert m["rank"].max() == 2
    run_cli("index", "add", idx, tmp_path / "new.parquet", check_ok=True)
    (tmp_path / "ids.txt").write_text("\n".join(market["new"]["item_id"][:10]) + "\nnot-there\n")
    out = run_cli("index", "remove", idx, "--ids", tmp_path / "ids.txt", check_ok=True)
    assert "10 of 11 listings removed" in one_line(out.stdout + out.stderr)
    run_cli("index", "compact", idx, check_ok=True)
    run_cli("index", "verify", idx, check_ok=True)
    # a damaged file: one line naming it, exit 2
    seg = next((idx / "segments").iterdir())
    vec = next((seg / "ann").glob("*.vectors.npy"))
    data_bytes = bytearray(vec.read_bytes())
    data_bytes[-1] ^= 0xFF
    vec.write_bytes(bytes(data_bytes))
    bad = run_cli("index", "verify", idx)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert str(vec) in one_line(bad.stderr) and "sha256" in bad.stderr
    vec.write_bytes(bytes(data_bytes[:-100]))
    bad = run_cli("match", idx, tmp_path / "new.parquet", "--out", tmp_path / "m2.csv")
    assert bad.returncode == 2 and "another size" in one_line(bad.stderr) and "Traceback" not in bad.stderr


def test_cli_refuses_bad_input_and_foreign_outputs(market, tmp_path):
    idx = tmp_path / "idx"
    market["catalogue"].to_parquet(tmp_path / "cat.parquet")
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "todo.txt").write_text("mine")
    r = run_cli("index", "build", tmp_path / "cat.parquet", "--model", market["model"], "--out", notes)
    assert r.returncode == 2 and "did not write" in one_line(r.stderr) and (notes / "todo.txt").read_text() == "mine"
    run_cli("index", "build", tmp_path / "cat.parquet", "--model", market["model"], "--out", idx, check_ok=True)
    # no item_id column: file and column named
    market["new"].drop(columns=["item_id"]).to_parquet(tmp_path / "noid.parquet")
    r = run_cli("match", idx, tmp_path / "noid.parquet", "--out", tmp_path / "m.csv")
    assert r.returncode == 2 and "item_id" in r.stderr and "noid.parquet" in one_line(r.stderr)
    assert "Traceback" not in r.stderr
    # output inside the index folder: refused, nothing written there
    r = run_cli("match", idx, tmp_path / "cat.parquet", "--out", idx / "m.csv")
    assert r.returncode == 2 and not (idx / "m.csv").exists()
    r = run_cli("match", tmp_path / "notes", tmp_path / "cat.parquet", "--out", tmp_path / "m.csv")
    assert r.returncode == 2 and "not a dupsearch index" in one_line(r.stderr)
    r = run_cli("index", "build", tmp_path / "cat.parquet", "--model", market["model"], "--out",
                tmp_path / "i2", "--block", "ann:photos?encoder=colorhist")
    assert r.returncode == 2 and "Traceback" not in r.stderr and "photos" in r.stderr


def test_large_partitions_use_saved_hnsw_graphs(market, tmp_path, monkeypatch):
    """Partitions above HNSW_MIN rows are searched in their saved graph (memory-mapped on open):
    one listing or many, before and after upserts, as exact search finds."""
    from dupsearch.index import Index, core
    monkeypatch.setattr(core, "HNSW_MIN", 20)
    specs = ["ann:text?k=5&partition=category_l1"]
    graph = Index.build(market["catalogue"], market["model"], tmp_path / "graph", blockers=specs)
    assert graph.manifest["segments"][0]["hnsw"]["b0"] and list((graph.path / "segments").rglob("*.usearch"))
    monkeypatch.setattr(core, "HNSW_MIN", 10**9)
    exact = Index.build(market["catalogue"], market["model"], tmp_path / "exact", blockers=specs)
    new = market["new"]
    # HNSW is approximate (its graph depends on the build's threads): one listing's top 5 may
    # miss a neighbour; over many listings 90% of the exact top matches must be found
    for probe, share in ((new.iloc[[0]], 0.6), (new.iloc[[1]], 0.6), (new, 0.9)):
        a, b = Index.open(graph.path).match(probe, top=5), exact.match(probe, top=5)
        assert len(a) and len(set(zip(a.item_id, a.match_id)) & set(zip(b.item_id, b.match_id))) >= share * len(b)
    graph.upsert(new.iloc[:5])
    assert len(graph.duplicates(new["item_id"][0], top=3)) > 0



def test_rows_that_have_a_new_listing_among_their_nearest_are_proposed_from_a_graph_too(market, tmp_path,
                                                                                        monkeypatch):
    """dedup pairs a listing with every row that has it among its k nearest. In a partition
    with a saved graph the new listing's search returns its own nearest only; an isolated row
    (low radius) far down that list must still be proposed. Checked against brute force over
    the saved vectors and radii, with cases beyond what the search returns (rows more similar
    than the last the search returned are the graph's to find: it is approximate)."""
    from dupsearch.index import Index, core
    monkeypatch.setattr(core, "HNSW_MIN", 20)
    k = 2  # the search asks for 2k + 8 = 12 neighbours
    idx = Index.build(market["catalogue"], market["model"], tmp_path / "graph",
                      blockers=[f"ann:text?k={k}&partition=category_l1"])
    new = market["new"]
    blocker, ap = idx._made["b0"], idx._segments[0].ann["b0"]
    V = blocker.listing_vectors(new, idx._vectorizers["b0"])
    part = blocker.partition_keys(new)
    expected, beyond_search = set(), 0
    for i in range(len(new)):
        lo, hi = np.searchsorted(ap.sorted_part, part[i]), np.searchsorted(ap.sorted_part, part[i], side="right")
        if part[i] not in ap.hnsw or not np.abs(V[i]).sum():
            continue
        sims = np.asarray(ap.vectors[lo:hi]) @ V[i]
        rows = ap.order[lo:hi]
        rank = np.argsort(np.argsort(-sims))
        keys, found = core._hnsw_search(ap.hnsw[part[i]], V[[i]], min(2 * k + 8, hi - lo))
        last = found[0][keys[0] >= 0].min()
        for j in np.flatnonzero((sims >= ap.radius[rows]) & (sims <= last)):
            expected.add((i, int(rows[j])))
            beyond_search += rank[j] >= 2 * k + 8
    assert beyond_search > 0, "no case beyond the search's own list: the test would not test the scan"
    q, r = idx._ann_candidates("b0", new)
    assert expected <= set(zip(q.tolist(), r.tolist()))


def test_graph_partitions_are_saved_by_radius_and_format_2_indexes_read_as_before(market, tmp_path, monkeypatch):
    """Format 3 saves a graph partition's vectors by radius, so that the reverse-neighbour scan
    multiplies a slice of the file in place. An index of format 2 (vectors in partition order,
    segments unmarked) opens, answers exactly as the same index in format 3, and its writes
    keep format 2's layout (a format-2 reader would misread the other)."""
    import json
    import shutil
    from dupsearch.index import Index, core
    monkeypatch.setattr(core, "HNSW_MIN", 20)
    v3 = Index.build(market["catalogue"], market["model"], tmp_path / "v3",
                     blockers=["ann:text?k=2&partition=category_l1"])
    entry = v3.manifest["segments"][0]
    assert v3.manifest["format"] == 3 and entry["graph_order"] == "radius" and entry["hnsw"]["b0"]
    ap = v3._segments[0].ann["b0"]
    spans = [(int(np.searchsorted(ap.sorted_part, key)), int(np.searchsorted(ap.sorted_part, key, side="right")))
             for key in ap.hnsw]
    for lo, hi in spans:
        assert np.all(np.diff(ap.radius[ap.order[lo:hi]]) >= 0) and ap.by_radius(lo, hi)[2]
    # the same index as format 2 wrote it: vectors in partition order, the segment unmarked
    shutil.copytree(v3.path, tmp_path / "v2")
    seg, rel = tmp_path / "v2" / "segments" / entry["name"], "ann/b0.vectors.npy"
    by_row = np.empty_like(np.load(seg / rel))
    by_row[ap.order] = np.load(seg / rel)
    np.save(seg / rel, by_row[np.argsort(ap.part, kind="stable")])
    manifest = json.loads((tmp_path / "v2" / "manifest.json").read_text())
    manifest["format"] = 2
    del manifest["segments"][0]["graph_order"]
    manifest["segments"][0]["files"][rel] = core._file_entry(seg / rel)
    (tmp_path / "v2" / "manifest.json").write_text(json.dumps(manifest))
    v2 = Index.open(tmp_path / "v2", verify=True)
    assert not all(v2._segments[0].ann["b0"].by_radius(lo, hi)[2] for lo, hi in spans)
    new = market["new"]
    q3, r3 = v3._ann_candidates("b0", new)
    q2, r2 = v2._ann_candidates("b0", new)
    assert len(q3) and sorted(zip(q3.tolist(), r3.tolist())) == sorted(zip(q2.tolist(), r2.tolist()))
    pd.testing.assert_frame_equal(v2.match(new, top=5), v3.match(new, top=5))
    v2.upsert(new.iloc[:5])
    v2.compact()
    assert v2.manifest["format"] == 2 and "graph_order" not in v2.manifest["segments"][0]
    pd.testing.assert_frame_equal(Index.open(v2.path, verify=True).match(new, top=5), v2.match(new, top=5))


def test_new_rows_radius_is_their_kth_neighbour_over_every_segment(market, tmp_path):
    """An upsert saves each new row's k-th neighbour similarity among the live listings (every
    segment, deleted rows left out) and the rows upserted with it: brute force over the saved
    vectors agrees (up to float rounding: the products have other shapes)."""
    from dupsearch.index import Index, core
    idx = Index.build(market["catalogue"], market["model"], tmp_path / "idx",
                      blockers=["ann:text?k=3&partition=category_l1"])
    new = market["new"]
    idx.upsert(new.iloc[:20])
    idx.remove(list(market["catalogue"]["item_id"].astype(str).iloc[:50]) + [str(new["item_id"].iloc[0])])
    batch = new.iloc[20:50]
    blocker = idx._made["b0"]
    V = blocker.listing_vectors(batch, idx._vectorizers["b0"])
    part = blocker.partition_keys(batch)
    got = core._new_radius(idx, "b0", blocker, V, part)
    rows_v, rows_p = [], []
    for seg in idx._segments:
        ap = seg.ann["b0"]
        live = idx._live[ap.order + seg.offset]
        rows_v.append(np.asarray(ap.vectors)[live])
        rows_p.append(ap.sorted_part[live])
    cat_v, cat_p = np.vstack(rows_v), np.concatenate(rows_p)
    assert len(idx._segments) == 2 and len(cat_v) == len(idx)
    checked = 0
    for i in range(len(batch)):
        if not np.abs(V[i]).sum():
            continue
        sims = np.r_[cat_v[cat_p == part[i]] @ V[i], np.delete(V[part == part[i]] @ V[i], np.sum(part[:i] == part[i]))]
        want = np.sort(sims)[::-1][2] if len(sims) >= 3 else -np.inf
        np.testing.assert_allclose(got[i], want, rtol=0, atol=1e-6)
        checked += np.isfinite(want)
    assert checked >= 20


def test_warm_touches_each_segment_once_and_respects_memory(market, built, monkeypatch):
    from dupsearch.index import core
    before = built.match(market["new"], top=3)
    monkeypatch.setattr(core, "_available_memory", lambda: 1024)  # far less than the files
    assert built.warm() == 0 and not any(seg.warmed for seg in built._segments)
    monkeypatch.setattr(core, "_available_memory", lambda: None)  # unknown: warm
    touched = built.warm()
    files = sum(p.stat().st_size for p in (built.path / "segments").rglob("*") if p.suffix in (".npy", ".bin"))
    assert touched > 0.5 * files and all(seg.warmed for seg in built._segments)
    assert built.warm() == 0  # already warm
    pd.testing.assert_frame_equal(built.match(market["new"], top=3), before)  # warming changes no answer
    built.upsert(market["new"].iloc[:5])
    assert 0 < built.warm() < touched  # only the new segment
