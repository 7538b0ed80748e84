"""The catalogue index at scale: build, open, recall against dedup's blocking, batch matching.

    python -m dupsearch.bench.index --listings M/listings.parquet --model MODEL --out OUT \\
        [--hold 2000] [--workers 2] [--json OUT/index.json]

From a generated market with its truth (``cluster_id``), ``--hold`` listings that have a
duplicate are held back; the rest is indexed (``Index.build`` in a child process: time, size on
disk, the peak memory of the build or one of its workers). Then, each measured in this process:

- open time of the index (``Index.open``, page cache warm, as a restarted service sees it);
- recall of the held-back re-posts: of the true (held-back, catalogue) pairs, the share the
  index proposes (candidates) and the share in its top 10, against the share dedup's blocking
  proposes over catalogue + held-back listings with the same blocker specs;
- the same top match as dedup would link: for each held-back listing, dedup's candidate pairs
  with the catalogue are scored (``DuplicateMatcher.score``) and the best one compared with the
  index's rank 1 (both above the model's threshold, or both below);
- batch matching: ``Index.match`` of the held-back listings in batches of 1,000 (listings/s).

The HTTP load test (latencies with concurrent clients, upserts/s) is ``scripts/bench_serve.py``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import time
from pathlib import Path

import numpy as np
import pandas as pd


def _folder_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def held_back(listings: pd.DataFrame, n: int, seed: int = 0) -> np.ndarray:
    """Rows of ``n`` listings whose cluster has another member (re-posts to find)."""
    size = listings.groupby("cluster_id")["item_id"].transform("size").to_numpy()
    rng = np.random.default_rng(seed)
    pool = np.flatnonzero(size >= 2)
    return np.sort(rng.choice(pool, min(n, len(pool)), replace=False))


def dedup_cross_pairs(listings: pd.DataFrame, specs: list[str], is_new: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """dedup's blocking over all listings, kept where exactly one side is new: (new row, catalogue row)."""
    from dupsearch.candidates.blocking import candidate_pairs
    from dupsearch.candidates.specs import make_blocker
    c = candidate_pairs(listings, [make_blocker(s) for s in specs], progress=True)
    a, b = c.a, c.b
    keep = is_new[a] != is_new[b]
    a, b = a[keep], b[keep]
    return np.where(is_new[a], a, b), np.where(is_new[a], b, a)


def _build(listings_path: str, hold: int, seed: int, model: str, idx_path: str, specs: list[str], workers: int,
           conn) -> None:
    """The child process of ``_build_in_child``: the catalogue read and held back as ``run`` does."""
    from dupsearch import read_listings
    from dupsearch.index import Index
    listings, _ = read_listings(listings_path)
    is_new = np.zeros(len(listings), bool)
    is_new[held_back(listings, hold, seed)] = True
    catalogue = listings[~is_new].reset_index(drop=True)
    del listings
    t0 = time.perf_counter()
    Index.build(catalogue, model, idx_path, blockers=specs, workers=workers, progress=True)
    conn.send(round(time.perf_counter() - t0, 1))


def _build_in_child(listings_path: Path, hold: int, seed: int, model: Path, idx_path: Path, specs: list[str],
                    workers: int) -> dict:
    """``Index.build`` in a child process. Built in this one, the memory it took (14 GB at a
    million listings; Python keeps what it freed) stayed taken while the matches were timed,
    and the page cache held less of the index: 2,000 matches took 11.0 s after the build and
    4.5-5.1 s in a fresh process, on the same files."""
    import multiprocessing as mp
    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_build, args=(str(listings_path), hold, seed, str(model), str(idx_path), specs,
                                            workers, child))
    proc.start()
    child.close()
    try:
        seconds = parent.recv()
    except EOFError:  # the child ended without sending: it failed (its traceback is on stderr)
        seconds = None
    proc.join()
    if proc.exitcode != 0 or seconds is None:
        raise RuntimeError(f"building the index failed (exit code {proc.exitcode})")
    # the largest child's peak (the build process or one of its workers)
    return {"build_seconds": seconds,
            "build_peak_rss_mb": round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1)}


def run(listings_path: Path, model: Path, out: Path, hold: int = 2000, workers: int = 2, seed: int = 0,
        batch: int = 1000, rebuild: bool = False) -> dict:
    from dupsearch import read_listings
    from dupsearch.candidates.specs import default_blocker_specs
    from dupsearch.index import Index

    listings, _ = read_listings(listings_path)
    rows = held_back(listings, hold, seed)
    is_new = np.zeros(len(listings), bool)
    is_new[rows] = True
    n_catalogue = int((~is_new).sum())
    new = listings[is_new].reset_index(drop=True)
    specs = default_blocker_specs(listings)
    result: dict = {"listings": int(len(listings)), "catalogue": n_catalogue, "held_back": int(len(new)),
                    "blockers": specs, "workers": workers, "cpus": os.cpu_count()}
    idx_path = out / "index"
    if rebuild or not (idx_path / "manifest.json").is_file():
        result.update(_build_in_child(listings_path, hold, seed, model, idx_path, specs, workers))
    result["index_bytes"] = _folder_bytes(idx_path)
    manifest = json.loads((idx_path / "manifest.json").read_text())
    result["build"] = manifest.get("build", {})
    t0 = time.perf_counter()
    idx = Index.open(idx_path)
    result["open_seconds"] = round(time.perf_counter() - t0, 2)
    t0 = time.perf_counter()
    result["warm_bytes"] = idx.warm()  # as `dupsearch serve` does at start (in the background)
    result["warm_seconds"] = round(time.perf_counter() - t0, 2)
    assert len(idx) == n_catalogue, (len(idx), n_catalogue)
    valid = idx.matcher.metrics_.get("valid", {})
    result["model"] = {"n_features": len(idx.matcher.feature_names),
                       "family_settings": idx.matcher.config.features.family_settings,
                       "valid_pr_auc": valid.get("pr_auc"), "valid_best_f1": valid.get("best_f1")}

    # recall: index candidates and top 10 vs dedup's blocking, on the true cross pairs
    cluster = listings["cluster_id"].to_numpy()
    new_rows_all = np.flatnonzero(is_new)
    cat_rows_all = np.flatnonzero(~is_new)
    t0 = time.perf_counter()
    q, r, _ = idx.candidates(new)
    result["candidate_seconds"] = round(time.perf_counter() - t0, 2)
    idx_pairs = set(zip(new_rows_all[q].tolist(), cat_rows_all[r].tolist()))  # global rows = catalogue order
    # batch matching timed here, on the warm index: dedup's blocking below takes gigabytes of
    # memory, and the page cache it evicts would be read again from disk, timed with the matches
    idx.match(new.iloc[:20], top=10)  # first-call set-up (lazy imports, models' first predictions), untimed
    t0 = time.perf_counter()
    matches = []
    for s in range(0, len(new), batch):
        matches.append(idx.match(new.iloc[s:s + batch], top=10))
    match_s = time.perf_counter() - t0
    m = pd.concat(matches, ignore_index=True)
    dq, dr = dedup_cross_pairs(listings, specs, is_new)
    dedup_pairs = set(zip(dq.tolist(), dr.tolist()))
    by_cluster = pd.Series(np.arange(len(listings))).groupby(cluster).apply(list)
    true_pairs = set()
    for i in new_rows_all:
        for j in by_cluster[cluster[i]]:
            if not is_new[j]:
                true_pairs.add((int(i), int(j)))
    row_of = pd.Series(np.arange(len(listings)), index=listings["item_id"].astype(str))
    top10 = set(zip(row_of[m["item_id"]].to_numpy().tolist(), row_of[m["match_id"]].to_numpy().tolist()))
    result["recall"] = {
        "true_pairs": len(true_pairs),
        "dedup_blocking": round(len(true_pairs & dedup_pairs) / len(true_pairs), 4),
        "index_candidates": round(len(true_pairs & idx_pairs) / len(true_pairs), 4),
        "index_top10": round(len(true_pairs & top10) / len(true_pairs), 4),
        "dedup_candidates_per_listing": round(len(dedup_pairs) / len(new), 2),
        "index_candidates_per_listing": round(len(idx_pairs) / len(new), 2),
        "dedup_pairs_missing_from_index": len(dedup_pairs - idx_pairs),
    }
    result["batch_match"] = {"listings": int(len(new)), "batch": batch, "seconds": round(match_s, 2),
                             "listings_per_second": round(len(new) / match_s, 1)}

    # top match: dedup's best-scored candidate vs the index's rank 1
    from dupsearch.models import DuplicateMatcher
    matcher = idx.matcher
    need = np.unique(np.r_[dq, dr])
    store = matcher.build_store(listings.iloc[need].reset_index(drop=True))
    pos = pd.Series(np.arange(len(need)), index=need)
    p = matcher.score(store, pos[dq].to_numpy(), pos[dr].to_numpy())
    d = pd.DataFrame({"q": dq, "r": dr, "p": p}).sort_values(["q", "p"], ascending=[True, False])
    dedup_top = d.drop_duplicates("q").set_index("q")
    first = m[m["rank"] == 1].copy()
    first["q"] = row_of[first["item_id"]].to_numpy()
    first["r"] = row_of[first["match_id"]].to_numpy()
    first = first.set_index("q")
    thr = matcher.threshold_
    linked_dedup = dedup_top[dedup_top["p"] >= thr]
    linked_index = first[first["probability"] >= thr]
    both = linked_dedup.index.intersection(linked_index.index)
    same = int((linked_dedup.loc[both, "r"].to_numpy() == linked_index.loc[both, "r"].to_numpy()).sum())
    result["top_match"] = {
        "threshold": round(float(thr), 4),
        "dedup_linked": int(len(linked_dedup)), "index_linked": int(len(linked_index)),
        "linked_by_both": int(len(both)), "same_top_match": same,
        "same_share_of_dedup_linked": round(same / max(len(linked_dedup), 1), 4),
        "dedup_only": int(len(linked_dedup.index.difference(linked_index.index))),
        "index_only": int(len(linked_index.index.difference(linked_dedup.index))),
    }
    del DuplicateMatcher

    # batch upserts as `dupsearch index add` makes them (no matching), then removed again so that
    # the index is as it was for the service's load test
    t0 = time.perf_counter()
    for s in range(0, len(new), batch):
        idx.upsert(new.iloc[s:s + batch], top=None)
    add_s = time.perf_counter() - t0
    assert len(idx) == n_catalogue + len(new), (len(idx), n_catalogue, len(new))
    t0 = time.perf_counter()
    idx.remove(new["item_id"].astype(str))
    result["batch_upsert"] = {"listings": int(len(new)), "batch": batch, "seconds": round(add_s, 2),
                              "listings_per_second": round(len(new) / add_s, 1),
                              "remove_seconds": round(time.perf_counter() - t0, 2)}
    return result


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--listings", type=Path, required=True)
    ap.add_argument("--model", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--hold", type=int, default=2000)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--rebuild", action="store_true")
    ap.add_argument("--json", type=Path)
    a = ap.parse_args(argv)
    from dupsearch.atomic import atomic_write_json
    from dupsearch.bench.runner import source_commit
    source = source_commit()  # the code that runs: taken before, not after
    res = {**source, **run(a.listings, a.model, a.out, a.hold, a.workers, rebuild=a.rebuild)}
    print(json.dumps(res, indent=1))
    if a.json:
        atomic_write_json(a.json, res)


if __name__ == "__main__":
    main()
