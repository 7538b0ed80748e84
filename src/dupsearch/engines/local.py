"""Catalogue-scale dedup on one machine: blocking -> scoring in batches -> clustering.

Output directory::

    OUT/manifest.json          what this run is (input digest, model, blockers, batch size); a
                               restart with other ones is refused instead of mixing results. The
                               clustering settings (threshold, max_component) are not part of it:
                               a rerun with another --threshold reuses every score and re-clusters
    OUT/store/                 the listing store: every listing's per-listing work, once (memory-
                               mapped by the scoring workers; reused by a rerun with the same model)
    OUT/candidates.parquet     every candidate pair (item ids, listing rows, proposing blockers),
                               in the order scoring reads them
    OUT/scores/part-NNNNN.parquet   scored batches: item_id_a, item_id_b, blockers, score
    OUT/duplicates.parquet     the scored pairs at or above the pair threshold: item_id_a, item_id_b, score
    OUT/clusters.parquet       item_id, cluster_components, cluster_center, cluster_average (each
                               method at its own threshold: the model's, chosen for groups), and
                               cluster (the default method's groups)
    OUT/report.json            counts, timings per stage, peak memory, blocking and cluster figures
    OUT/groups.html            the default method's groups, for a person to browse (cluster.page)

Every file is written atomically (a temporary file moved into place), so a run killed at any
moment leaves only whole files. A restart reuses the candidates and every finished part and
scores only the missing parts; the result is identical to an uninterrupted run.

Memory stays bounded by the catalogue, not by the pairs: candidates are int64 row indices,
scoring reads one batch at a time (``DuplicateMatcher.score(store, row_a, row_b)``, the one
scoring path), and clustering holds one float per pair above threshold. Batches follow the
candidates' order, which puts pairs of the same partition side by side, so a batch reads
store rows that lie close together.
"""

from __future__ import annotations

import json
import logging
import os
import resource
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from dupsearch.atomic import atomic_write, atomic_write_json, atomic_write_text, strict_json
from dupsearch.config import DedupConfig
from dupsearch.digests import file_sha256, folder_sha256
from dupsearch.engines.base import (LOCK, Engine, RunLock, RunMismatchError,  # noqa: F401 (LOCK)
                                    clustering_settings, locked_run)
from dupsearch.errors import DataError, DupsearchError
from dupsearch.features.chunks import build_store_chunks as _build_store_chunks
from dupsearch.progress import steps as _progress
from dupsearch.threads import one_thread_each

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
CANDIDATES = "candidates.parquet"
SCORES_DIR = "scores"
PART_KEY = b"dupsearch_part"  # a score part's identity (schema metadata): see DedupRun._part_identity
CLUSTERS = "clusters.parquet"
DUPLICATES = "duplicates.parquet"
REPORT = "report.json"
STORE_DIR = "store"
STORE_CHUNKS = "store.chunks"
METHODS = ("components", "center", "average")
FORMAT_VERSION = 1


def peak_memory_mb(children: bool = False) -> float:
    """Peak resident memory (MB) of this process, or with ``children`` of its largest finished
    child process (a worker; pages it shares with this process copy-on-write count in both)."""
    rss = resource.getrusage(resource.RUSAGE_CHILDREN if children else resource.RUSAGE_SELF).ru_maxrss
    return rss / 1024 if sys.platform != "darwin" else rss / 2 ** 20


def _write_parquet(table: pa.Table, path: Path) -> None:
    atomic_write(path, lambda fh: pq.write_table(table, fh, compression="zstd"))


def locality_order(listings: pd.DataFrame) -> np.ndarray:
    """Rank of each listing when sorted by category, city and seller (those present): pairs
    sorted by these ranks come in batches that share listings."""
    cols = [c for c in ("category_l1", "category_l2", "city", "seller_id") if c in listings.columns]
    if not cols:
        return np.arange(len(listings))
    keys = [pd.factorize(listings[c].astype("string").fillna(""), sort=True)[0] for c in reversed(cols)]
    order = np.lexsort(keys)
    rank = np.empty(len(listings), np.int64)
    rank[order] = np.arange(len(listings))
    return rank


def scoring_order(rank: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Order of candidate pairs (rows a, b) for scoring: by the locality rank of their first
    listing, then of their second. The store holds the listings in rank order, so a batch
    reads store rows that lie close together (pages a catalogue larger than memory keeps)."""
    return np.lexsort((rank[b], np.minimum(rank[a], rank[b])))


@dataclass
class DedupRun:
    """One dedup run into ``out``; ``run()`` does (or resumes) every stage."""

    listings: pd.DataFrame
    model_dir: Path
    out: Path
    config: DedupConfig = field(default_factory=DedupConfig)
    input_digest: str = ""
    progress: bool = True
    log: Callable[[str], None] = print
    report: dict = field(default_factory=dict)

    def __post_init__(self):
        self.out = Path(self.out)
        self.model_dir = Path(self.model_dir)
        self.ids = self.listings["item_id"].astype(str).to_numpy(dtype=object)
        # store row of each listing: the store keeps listings in locality order (see scoring_order)
        self.store_rows = locality_order(self.listings)

    # -- manifest
    def _manifest(self) -> dict:
        from dupsearch.candidates.specs import default_blocker_specs
        if self.config.blockers is None:
            self.config.blockers = default_blocker_specs(self.listings)
        return {"format": FORMAT_VERSION, "input_digest": self.input_digest,
                "n_listings": int(len(self.listings)), "model_dir": str(self.model_dir.resolve()),
                "model_digest": self._model_digest(),
                "blockers": list(self.config.blockers), "batch_size": self.config.batch_size}

    def _run_identity(self) -> str:
        """The sha256 of the manifest (input, model, blockers, batch size): what the candidates and
        so every part belong to."""
        import hashlib
        return hashlib.sha256(json.dumps(self._manifest(), sort_keys=True).encode()).hexdigest()

    def _check_manifest(self) -> None:
        want = self._manifest()
        path = self.out / MANIFEST
        if path.exists():
            have = json.loads(path.read_text())
            diff = {k: (have.get(k), v) for k, v in want.items() if have.get(k) != v}
            if diff:
                what = "; ".join(f"{k}: was {a!r}, now {b!r}" for k, (a, b) in diff.items())
                raise RunMismatchError(f"{self.out} holds a dedup run with other input or settings ({what}); "
                                       f"use another --out, or --restart to start it over")
            self.resumed = True
        else:
            # Written once the candidates exist: a run that fails in blocking (a misspelt column)
            # leaves nothing that would hold the next, corrected command to its settings.
            self._pending_manifest = want
            self.resumed = False
            stale = sorted((self.out / SCORES_DIR).glob("part-*.parquet"))
            if stale:  # parts without a manifest belong to no known run: never mix them in
                self.log(f"removing {len(stale)} score parts of an unknown earlier run in {self.out / SCORES_DIR}")
                for p in stale:
                    p.unlink()

    # -- stage 1
    def candidates(self) -> pd.DataFrame:
        path = self.out / CANDIDATES
        table = self._candidates(path)
        if getattr(self, "_pending_manifest", None) is not None:
            atomic_write_text(self.out / MANIFEST, json.dumps(self._pending_manifest, indent=2))
            self._pending_manifest = None
        return table

    def _candidates(self, path: Path) -> pa.Table:
        run_id = self._run_identity()
        if path.exists() and self.resumed:  # without a manifest it may be another run's: redo it
            try:
                meta = pq.read_schema(path).metadata or {}
            except (OSError, pa.ArrowInvalid):
                meta = {}
            if meta.get(b"dupsearch_run", b"").decode() == run_id:
                self.log(f"candidates: reusing {path}")
                table = pq.read_table(path)
                self.report.setdefault("blocking", json.loads(table.schema.metadata[b"dupsearch_blocking"]))
                return table
            self.log(f"candidates: {path} is not this run's (or is damaged): blocking again")
        from dupsearch.candidates.blocking import candidate_pairs
        from dupsearch.candidates.specs import make_blocker
        blockers = [make_blocker(s) for s in self.config.blockers]
        t0 = time.perf_counter()
        cands = candidate_pairs(self.listings, blockers, progress=self.progress)
        order = scoring_order(self.store_rows, cands.a, cands.b)
        a, b = cands.a[order], cands.b[order]
        ids = pa.array(self.ids, type=pa.string())
        labels = cands.labels(cands.mask[order])
        n = len(self.listings)
        blocking = {"blockers": cands.report, "n_candidates": int(len(a)),
                    "candidates_per_listing": round(len(a) / max(n, 1), 3),
                    "reduction_ratio": 1 - len(a) / (n * (n - 1) / 2) if n > 1 else float("nan"),
                    "seconds": round(time.perf_counter() - t0, 2)}
        truth = self.config.truth_column
        if truth and truth in self.listings.columns:
            blocking.update(self._blocking_recall(a, b))
        table = pa.table({"item_id_a": ids.take(pa.array(a)), "item_id_b": ids.take(pa.array(b)),
                          "row_a": pa.array(a, pa.int64()), "row_b": pa.array(b, pa.int64()),
                          "blockers": pa.array(labels, pa.string())})
        table = table.replace_schema_metadata({"dupsearch_blocking": strict_json(blocking),
                                               "dupsearch_run": run_id})
        _write_parquet(table, path)
        self.report["blocking"] = blocking
        self.log(f"candidates: {len(a):,} pairs ({blocking['candidates_per_listing']:.2f} per listing, "
                 f"reduction ratio {blocking['reduction_ratio']:.6f}) in {blocking['seconds']:.1f} s"
                 + (f"; pair recall {blocking['pair_recall']:.4f}" if "pair_recall" in blocking else ""))
        return table

    def _blocking_recall(self, a: np.ndarray, b: np.ndarray) -> dict:
        n = len(self.listings)
        from dupsearch.candidates.blocking import true_pair_codes
        truth = true_pair_codes(self.listings, self.config.truth_column)
        cand = np.unique(np.minimum(a, b) * np.int64(n) + np.maximum(a, b))
        found = int(np.isin(truth, cand, assume_unique=True).sum())
        return {"truth_column": self.config.truth_column, "n_true_pairs": int(len(truth)),
                "n_true_found": found, "pair_recall": found / len(truth) if len(truth) else float("nan")}

    # -- stage 2
    def _part_path(self, i: int) -> Path:
        return self.out / SCORES_DIR / f"part-{i:05d}.parquet"

    def _part_identity(self, candidates: pa.Table, i: int) -> str:
        """What part ``i`` scores: the run's identity (input digest, model digest, blockers, batch
        size) and the part's pairs as listing rows, hashed. A saved part is reused only when it
        records the same (never by its row count)."""
        import hashlib
        if not hasattr(self, "_run_id"):
            self._run_id = self._run_identity()
        bs = self.config.batch_size
        part = candidates.slice(i * bs, bs)
        h = hashlib.sha256(self._run_id.encode())
        for col in ("row_a", "row_b"):
            h.update(np.ascontiguousarray(part.column(col).to_numpy(), dtype=np.int64).tobytes())
        return h.hexdigest()

    def _saved_identity(self, i: int) -> str | None:
        try:
            meta = pq.read_schema(self._part_path(i)).metadata or {}
        except (OSError, pa.ArrowInvalid):
            return None  # missing or unreadable (truncated): scored again
        value = meta.get(PART_KEY)
        return value.decode() if value else None

    def store(self, matcher):
        """Every listing's per-listing work, once, saved in OUT/store (memory-mapped when reused;
        a store of another model or other listings is rebuilt)."""
        from dupsearch.features.store import ListingStore
        path = self.out / STORE_DIR
        want = {"pipeline": matcher.pipeline_.digest(), "model_digest": self._model_digest(),
                "input_digest": self.input_digest, "n": int(len(self.listings)), "row_order": "locality"}
        if path.is_dir():
            try:
                store = ListingStore.open(path)
                if all(store.meta.get("dedup", {}).get(k) == v for k, v in want.items()):
                    self.log(f"store: reusing {path}")
                    self.report["store"] = {**store.meta.get("report", {}), "reused": True}
                    return store
            except DupsearchError:
                pass
        t0 = time.perf_counter()
        chunks_dir = self.out / STORE_CHUNKS
        in_order = self.listings.iloc[np.argsort(self.store_rows)]
        chunks = _build_store_chunks(matcher, in_order, chunks_dir, want, self.config.workers, self.progress)
        build_s = time.perf_counter() - t0
        t1 = time.perf_counter()
        ListingStore.concat_saved(chunks, path, meta={"dedup": want})
        import shutil
        for chunk in chunks:  # only the chunks this run built or verified (their manifests name it)
            shutil.rmtree(chunk)
        if chunks_dir.is_dir() and not any(chunks_dir.iterdir()):
            chunks_dir.rmdir()
        secs = time.perf_counter() - t0
        size = sum(p.stat().st_size for p in path.iterdir())
        report = {"listings": int(len(self.listings)), "build_seconds": round(build_s, 2),
                  "concat_seconds": round(time.perf_counter() - t1, 2), "seconds": round(secs, 2),
                  "workers": self.config.workers, "chunks": len(chunks), "bytes": int(size)}
        self.report["store"] = {**report, "reused": False}
        manifest = json.loads((path / "store.json").read_text())
        manifest["meta"]["report"] = report
        atomic_write_text(path / "store.json", json.dumps(manifest, indent=1, ensure_ascii=False))
        self.log(f"store: {len(self.listings):,} listings in {secs:.1f} s ({size / 2**20:,.0f} MiB) -> {path}")
        # Scoring reads the saved copy: memory-mapped pages that forked workers share.
        return ListingStore.open(path)

    def _model_digest(self) -> str:
        if not hasattr(self, "_model_digest_value"):
            self._model_digest_value = folder_sha256(self.model_dir)
        return self._model_digest_value

    def score(self, candidates: pa.Table) -> None:
        from dupsearch.models import DuplicateMatcher
        n = candidates.num_rows
        bs = self.config.batch_size
        n_parts = (n + bs - 1) // bs
        (self.out / SCORES_DIR).mkdir(parents=True, exist_ok=True)
        for stale in (self.out / SCORES_DIR).glob(".part-*.tmp"):  # left by a killed run
            stale.unlink()
        self._identities = [self._part_identity(candidates, i) for i in range(n_parts)]
        todo = [i for i in range(n_parts) if self._saved_identity(i) != self._identities[i]]
        stale = sum(self._part_path(i).exists() for i in todo)
        if stale:
            self.log(f"scores: {stale} saved parts do not match this run's candidates or model: scoring them again")
        self.report["scoring"] = {"parts": n_parts, "parts_reused": n_parts - len(todo),
                                  "parts_rescored": int(stale), "batch_size": bs}
        if not todo:
            self.log(f"scores: all {n_parts} parts present")
            return
        t0 = time.perf_counter()
        matcher = DuplicateMatcher.load(self.model_dir, trust=self.config.trust_model)
        self.clustering = clustering_settings(matcher, self.config.threshold)
        store = self.store(matcher)
        prep_s = time.perf_counter() - t0
        self.log(f"scores: scoring {len(todo)} of {n_parts} parts of {bs:,} pairs")
        t1 = time.perf_counter()
        global _SCORING
        _SCORING = (self, matcher, store, candidates)
        workers = min(self.config.workers, len(todo))
        try:
            with _progress(self.progress, len(todo), "scoring candidate pairs") as advance:
                if workers > 1:
                    import multiprocessing as mp
                    # fork: the workers share the model and the memory-mapped store
                    with mp.get_context("fork").Pool(workers, initializer=one_thread_each) as pool:
                        counts = []
                        for rows_done in pool.imap_unordered(_score_part, todo):
                            counts.append(rows_done)
                            advance()
                else:
                    counts = []
                    for i in todo:
                        counts.append(_score_part(i))
                        advance()
        finally:
            _SCORING = None
        scored = int(sum(counts))
        secs = time.perf_counter() - t1
        self.report["scoring"].update({"workers": workers, "pairs_scored": int(scored), "prepare_seconds": round(prep_s, 2),
                                       "score_seconds": round(secs, 2),
                                       "pairs_per_second": round(scored / secs, 1) if secs > 0 else None})

    # -- stage 3
    def read_scores(self, columns: Sequence[str] | None = None) -> pa.Table:
        bs = self.config.batch_size
        n = int(pq.read_metadata(self.out / CANDIDATES).num_rows)
        n_parts = (n + bs - 1) // bs
        tables = []
        for i in range(n_parts):
            path = self._part_path(i)
            if not path.exists():
                raise DupsearchError(f"{path} is missing: the scoring stage did not finish")
            t = pq.read_table(path, columns=columns)
            expected = min(bs, n - i * bs)
            want = getattr(self, "_identities", None)
            if t.num_rows != expected or (want is not None and
                                          (t.schema.metadata or {}).get(PART_KEY, b"").decode() != want[i]):
                raise DataError(f"does not hold the scores of this run's part {i} (rows or digest differ): "
                                f"rerun the command, which scores it again", path=str(path))
            tables.append(t)
        if tables:
            return pa.concat_tables(tables)
        empty = pa.table({"item_id_a": pa.array([], pa.string()), "item_id_b": pa.array([], pa.string()),
                          "blockers": pa.array([], pa.string()), "score": pa.array([], pa.float32()),
                          "row_a": pa.array([], pa.int64()), "row_b": pa.array([], pa.int64())})
        return empty.select(list(columns)) if columns else empty

    def cluster(self) -> pd.DataFrame:
        from dupsearch.cluster import bcubed_metrics, pairwise_metrics
        from dupsearch.cluster.graph import cluster_graph, graph_from_rows
        t0 = time.perf_counter()
        scores = self.read_scores(["row_a", "row_b", "score"])
        if not hasattr(self, "clustering"):
            from dupsearch.models import DuplicateMatcher
            self.clustering = clustering_settings(
                DuplicateMatcher.load(self.model_dir, trust=self.config.trust_model), self.config.threshold)
        plan = self.clustering
        ra = scores.column("row_a").to_numpy()
        rb = scores.column("row_b").to_numpy()
        s = scores.column("score").to_numpy().astype(float)
        thr = plan["threshold"]
        n_scored, n_above = len(s), int((s >= thr).sum())
        # Only edges inside a connected component at the lowest method threshold can change any
        # method's groups, so the others never reach the string-keyed graph code: exact, and
        # millions of pairs lighter.
        from scipy.sparse import coo_matrix
        from scipy.sparse.csgraph import connected_components
        above = s >= thr
        n = len(self.ids)
        ids = pa.array(self.ids, type=pa.string())
        _write_parquet(pa.table({"item_id_a": ids.take(pa.array(ra[above])),
                                 "item_id_b": ids.take(pa.array(rb[above])),
                                 "score": pa.array(s[above].astype(np.float32))}), self.out / DUPLICATES)
        linked = s >= min(plan["thresholds"].values())
        comp = connected_components(coo_matrix((np.ones(int(linked.sum()), np.int8), (ra[linked], rb[linked])),
                                               shape=(n, n)), directed=False)[1]
        inside = comp[ra] == comp[rb]
        graph = graph_from_rows(self.ids, ra[inside], rb[inside], s[inside], thr)
        del scores, ra, rb
        labels = cluster_graph(graph, plan["thresholds"], max_component=self.config.max_component)
        frame = pd.DataFrame({"item_id": pd.array(self.ids, dtype="str")})
        summary = {**plan, "pairs_scored": n_scored, "pairs_above_threshold": n_above, "methods": {}}
        truth_col = self.config.truth_column
        truth = None
        if truth_col and truth_col in self.listings.columns:
            t = self.listings[truth_col]
            # a listing without a truth label is its own group
            t = t.astype("string").fillna(pd.Series(["_single_" + i for i in self.ids], index=t.index))
            truth = pd.Series(t.to_numpy(), index=self.ids)
        for method, lab in labels.items():
            lab = lab.reindex(self.ids)
            frame[f"cluster_{method}"] = lab.to_numpy(dtype=np.int64)
            sizes = np.bincount(pd.factorize(lab)[0])
            m = {"threshold": plan["thresholds"][method], "clusters": int(len(sizes)), "groups_of_2_or_more": int((sizes >= 2).sum()),
                 "listings_in_groups": int(sizes[sizes >= 2].sum()), "largest": int(sizes.max()) if len(sizes) else 0}
            if "report" in lab.attrs:
                m["report"] = lab.attrs["report"]
            if truth is not None:
                m["bcubed"] = bcubed_metrics(lab, truth)
                m["pairwise"] = pairwise_metrics(lab, truth)
            summary["methods"][method] = m
        frame["cluster"] = frame[f"cluster_{plan['method']}"]  # the default method's groups
        _write_parquet(pa.Table.from_pandas(frame, preserve_index=False), self.out / CLUSTERS)
        self._groups_page(frame["cluster"].to_numpy(), plan)
        summary["seconds"] = round(time.perf_counter() - t0, 2)
        self.report["clustering"] = summary
        return frame

    def _groups_page(self, label: np.ndarray, plan: dict) -> None:
        """groups.html: the default method's groups with the scored pairs inside them."""
        from dupsearch.cluster.page import write_groups_page
        t = self.read_scores(["row_a", "row_b", "score", "blockers"])
        ra, rb = t.column("row_a").to_numpy(), t.column("row_b").to_numpy()
        same = label[ra] == label[rb]
        ids = np.asarray(self.ids, dtype=object)
        pairs = pd.DataFrame({"item_id_a": ids[ra[same]], "item_id_b": ids[rb[same]],
                              "score": t.column("score").to_numpy()[same],
                              "blockers": t.column("blockers").filter(pa.array(same)).to_numpy(zero_copy_only=False)})
        method = plan["method"]
        path = write_groups_page(self.out, self.listings, pd.Series(label, index=ids), pairs,
                                 method=method, threshold=plan["thresholds"][method])
        self.log(f"groups page: {path}")

    def run(self) -> dict:
        return locked_run(self.out, self._run)

    def _run(self, t0: float) -> dict:
        self._check_manifest()
        self.report.update({"listings": int(len(self.listings)), "out": str(self.out),
                            "resumed": self.resumed, "blockers": list(self.config.blockers)})
        from dupsearch.engines.base import StageClock
        clock = StageClock()  # wall time and peak memory (with the worker processes) per stage
        with clock.stage("candidates"):
            cands = self.candidates()
        with clock.stage("scoring"):  # the listing store is built (or reused) here
            self.score(cands)
        del cands
        with clock.stage("clustering"):
            self.cluster()
        self.report["stages"] = clock.report
        self.report["wall_seconds"] = round(time.perf_counter() - t0, 2)
        self.report["peak_memory_mb"] = round(peak_memory_mb(), 1)
        if self.config.workers > 1:
            self.report["peak_worker_memory_mb"] = round(peak_memory_mb(children=True), 1)
        atomic_write_json(self.out / REPORT, self.report)
        return self.report


_run_lock = RunLock  # the name the tests and older callers use


_SCORING: tuple | None = None  # (run, matcher, store, candidates) while parts are scored


def _score_part(i: int) -> int:
    """Score candidate part ``i`` and write it (atomically); runs in the main process or a worker."""
    run, matcher, store, candidates = _SCORING
    bs = run.config.batch_size
    part = candidates.slice(i * bs, bs)
    rows = run.store_rows
    p = matcher.score(store, rows[part.column("row_a").to_numpy()], rows[part.column("row_b").to_numpy()]).astype(np.float32)
    out = pa.table({"item_id_a": part.column("item_id_a"), "item_id_b": part.column("item_id_b"),
                    "blockers": part.column("blockers"), "score": pa.array(p),
                    "row_a": part.column("row_a"), "row_b": part.column("row_b")})
    out = out.replace_schema_metadata({PART_KEY: run._identities[i]})
    _write_parquet(out, run._part_path(i))
    return part.num_rows


def _restart(out: Path, log) -> None:
    """--restart: remove what dupsearch wrote in ``out`` (nothing else), under the run lock."""
    from dupsearch.artifacts import remove_own
    if not out.exists():
        return
    with _run_lock(out):  # never under a run that is writing there
        kept = remove_own(out, "dedup")
    if kept:
        log(f"--restart: kept {len(kept)} entries of {out} that dupsearch did not write "
            f"({', '.join(p.name for p in kept[:3])}{' ...' if len(kept) > 3 else ''})")


class LocalEngine(Engine):
    """Processes on this machine (``DedupRun``): the listings read into memory, the listing store
    on disk, scoring in resumable parts."""

    name = "local"

    def dedup(self, listings_path, model_dir, out, config, *, mapping=None, restart=None, progress=True,
              log=print, require_truth=False) -> dict:
        from dupsearch.io import read_listings
        t0 = time.perf_counter()
        listings, load_report = read_listings(listings_path, mapping=mapping)
        truth = config.truth_column
        if require_truth and truth and truth not in listings.columns:
            raise DataError(f"no such column (asked for with --truth); the columns are "
                            f"{', '.join(map(str, listings.columns))}", path=str(listings_path), column=truth)
        log(f"{load_report}")
        if restart is not None:
            restart()
        run = DedupRun(listings.reset_index(drop=True), model_dir, out, config,
                       input_digest=file_sha256(Path(listings_path)), progress=progress, log=log)
        run.report["load_seconds"] = round(time.perf_counter() - t0, 2)
        return run.run()


def run_dedup(listings_path: str | os.PathLike, model_dir: str | os.PathLike, out: str | os.PathLike,
              config: DedupConfig | None = None, mapping=None, restart: bool = False,
              progress: bool = True, log: Callable[[str], None] = print, require_truth: bool = False,
              engine: str = "local", spark_master: str | None = None) -> dict:
    """Read the listings, then run (or resume) the dedup into ``out``; returns the report.
    ``require_truth``: the config's truth column was asked for by name, so its absence is an
    error (the default column is used only when present). ``engine``: ``"local"`` (processes on
    this machine) or ``"spark"`` (:mod:`dupsearch.engines.spark`; ``spark_master`` a Spark master
    URL, default ``local[*]`` or what ``spark-submit`` set), the same outputs either way."""
    from dupsearch.engines.base import make_engine
    runner = make_engine(engine, **({"master": spark_master} if engine == "spark" else {}))
    from dupsearch.errors import ModelNotFoundError
    model_dir, out = Path(model_dir), Path(out)
    if not (model_dir / "manifest.json").is_file():
        what = "is not a dupsearch model (no manifest.json)" if model_dir.is_dir() else "does not exist"
        raise ModelNotFoundError(f"model directory {model_dir} {what}: train one with "
                                 f"`dupsearch train LISTINGS PAIRS --out {model_dir}`")
    from dupsearch.artifacts import claim_dir
    # before any work: OUT is new, empty or a dedup run of ours, and holds neither input
    claim_dir(out, "dedup", inputs=[listings_path, model_dir])
    # the model is read (digests, every file parsed) before any work: a broken model fails now,
    # not after blocking a catalogue
    from dupsearch.models import DuplicateMatcher
    config = config or DedupConfig()
    DuplicateMatcher.load(model_dir, trust=config.trust_model)
    return runner.dedup(Path(listings_path), model_dir, out, config, mapping=mapping,
                        restart=(lambda: _restart(out, log)) if restart else None, progress=progress,
                        log=log, require_truth=require_truth)
