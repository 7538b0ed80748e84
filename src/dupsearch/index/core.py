"""The catalogue index: a listing store, the blockers' saved structures and a model, in segments.

Layout of an index folder::

    IDX/.dupsearch.json          marker (kind "index")
    IDX/manifest.json            the current generation: segments, deleted rows, every file's digest
    IDX/model/                   the model (its own manifest and digests)
    IDX/vectorizers/b1.*.npy     frozen text vectorisers of the ANN blockers (IDF, projection)
    IDX/segments/seg-000001/     append-only: store/, keys/b0.*.npy, ann/b1.*.npy, ann/b1.hnsw-*.usearch
    IDX/deleted-000007.npy       global rows removed (upserted again or deleted), this generation
    IDX/.lock                    held by the one writer

A write builds its segment in a temporary folder, fsyncs it, renames it into place, then switches
``manifest.json`` atomically (fsynced): a reader sees the generation before or after a write, never
between, and a killed writer leaves at most an unreferenced temporary folder (removed by the next
writer). Files are never changed after they are written; rows are numbered across segments in
manifest order (a segment's ``offset``).

Matching a new listing asks each blocker what dedup's blocking would propose for it:

- key blockers (seller+category, title, phone, MinHash bands, photo hashes): the catalogue rows
  sharing a key, unless the key's block (its catalogue rows plus the new listing) is larger than
  the blocker's ``max_block`` -- dedup skips such blocks too;
- ANN blockers: the ``k`` nearest catalogue listings in the listing's partition (exact search, or
  the partition's saved HNSW graph when it is large), and every catalogue listing that would have
  the new one among *its* ``k`` nearest (its saved k-th neighbour similarity, the "radius"): a
  dedup pair is proposed when either listing has the other among its neighbours. In a graph's
  partition the rows the search did not return are scanned exactly where their radius is at most
  the last similarity it returned (isolated rows, which many listings are near).

The candidates are scored by ``DuplicateMatcher.score`` over a store of the new listings followed
by the candidates' stored rows: the same per-listing state and the same scoring path as
``dupsearch predict``.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import pandas as pd

from dupsearch.errors import DataError, DupsearchError

log = logging.getLogger(__name__)

INDEX_FORMAT = 3  # 2: an ANN blocker's vectors are saved in partition order; 3: in a partition
# with an HNSW graph, by radius within it (segments marked "graph_order": see _vector_order)
READ_FORMATS = (2, 3)  # a format-2 index is read and written as such (its segments unmarked)
MANIFEST = "manifest.json"
LOCK = ".lock"
MODEL_DIR = "model"
SEGMENTS = "segments"
VECTORIZERS = "vectorizers"
MATCH_COLUMNS = ["item_id", "rank", "match_id", "probability", "blockers"]
HNSW_MIN = 5_000          # partitions above this many rows get a saved HNSW graph (as dedup's exact_limit)
MERGE_SEGMENTS = 12       # more segments than this: the newest are merged (size-tiered: _merge_newer)
# 12: as many segments on average (8.8) as merging every newer segment at 16 gave (9.0), so a
# match searches no more of them; 16 tiered kept 11.3 and 200 writers upserted 193 -> 147/s
LISTING_GROUP = 1024      # listings per Parquet row group in a segment's listings.parquet


class IndexBusyError(DupsearchError):
    """Another process is writing the index."""


class ListingNotFoundError(DupsearchError, KeyError):
    """An item id that is not in the index."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class IndexFormatError(DupsearchError):
    """A folder that is not a readable dupsearch index (or a file that does not match its digest)."""


# ------------------------------------------------------------------------------- durable files

def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_tree(path: Path) -> None:
    """fsync every file and folder under ``path`` (and it): on disk before it is referenced."""
    for root, dirs, files in os.walk(path):
        for f in files:
            fd = os.open(Path(root) / f, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        _fsync_dir(Path(root))


def _write_json_durable(path: Path, data: dict) -> None:
    from dupsearch.atomic import atomic_write, strict_json
    try:  # the manifest is plain data: walking it to make it plain costs ~10 ms a write
        text = json.dumps(data, indent=1, ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError):  # a numpy number or a NaN somewhere: made plain
        text = strict_json(data, indent=1, ensure_ascii=False)

    def write(fh):
        fh.write(text.encode("utf-8"))
        fh.flush()
        os.fsync(fh.fileno())
    atomic_write(path, write)
    _fsync_dir(path.parent)


def _save_npy(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, np.ascontiguousarray(array))


def _file_entry(path: Path) -> dict:
    from dupsearch.digests import file_sha256
    return {"bytes": path.stat().st_size, "sha256": file_sha256(path)}


def _folder_entries(folder: Path, base: Path) -> dict[str, dict]:
    return {str(p.relative_to(base)): _file_entry(p) for p in sorted(folder.rglob("*")) if p.is_file()}


# ------------------------------------------------------------------------------- segments

@dataclass
class _AnnPart:
    """One ANN blocker's structures in one segment (rows local to the segment)."""
    vectors: np.ndarray            # (n, d) float32 unit rows (zero: no vector) of rows ``order``
    part: np.ndarray               # (n,) uint64 partition key
    radius: np.ndarray             # (n,) float32 k-th neighbour similarity when saved (-inf: < k neighbours)
    order: np.ndarray              # rows sorted by partition key (stable)
    sorted_part: np.ndarray        # part[order]
    hnsw: dict = field(default_factory=dict)   # partition key -> usearch index (keys: local rows)

    def __post_init__(self):
        # an ndarray over the same mapped pages: slicing a np.memmap costs ~8 us a slice in Python
        self.flat_vectors = self.vectors.view(np.ndarray) if isinstance(self.vectors, np.memmap) else self.vectors

    def by_radius(self, lo: int, hi: int) -> tuple[np.ndarray, np.ndarray, bool]:
        """The positions lo..hi-1 (one partition, in the vectors' order) sorted by their rows'
        radius, those radii, and whether that is the saved order (a prefix is then a slice of
        the file: see _vector_order); kept per partition once asked for."""
        cache = self.__dict__.setdefault("_by_radius", {})
        found = cache.get(lo)
        if found is None:
            rad = self.radius[self.order[lo:hi]]
            o = np.argsort(rad, kind="stable")
            found = cache[lo] = (lo + o, rad[o], bool(np.all(o[1:] > o[:-1])))
        return found


@dataclass
class _Segment:
    name: str
    path: Path
    offset: int
    n: int
    store: object                                  # ListingStore (memory-mapped)
    keys: dict = field(default_factory=dict)       # blocker -> (sorted uint64 keys, local rows)
    ann: dict = field(default_factory=dict)        # blocker -> _AnnPart
    _pf: object = None
    _id_index: object = None
    warmed: bool = False

    def mapped_arrays(self) -> list[np.ndarray]:
        """The memory-mapped arrays a match reads (store, key tables, vectors)."""
        out = self.store.mapped_arrays()
        for keys, rows in self.keys.values():
            out += [keys, rows]
        out += [ap.vectors for ap in self.ann.values()]
        return out

    def id_index(self) -> pd.Index:
        if self._id_index is None:
            self._id_index = pd.Index(self.store.ids)
        return self._id_index

    def listings_file(self):
        import pyarrow.parquet as pq
        if self._pf is None:
            self._pf = pq.ParquetFile(self.path / "listings.parquet")
        return self._pf


def live_listings(path: Path) -> int:
    """The listings an index holds, from its manifest alone (no segment is opened)."""
    mf = Path(path) / MANIFEST
    try:
        manifest = json.loads(mf.read_text(encoding="utf-8"))
        total = sum(int(entry["n"]) for entry in manifest["segments"])
        deleted = np.load(Path(path) / manifest["deleted"], mmap_mode="r") if manifest.get("deleted") else ()
    except (OSError, ValueError, KeyError, TypeError) as e:
        why = f"no field {e}" if isinstance(e, KeyError) else str(e)
        raise IndexFormatError(f"{path} is not a readable dupsearch index ({mf}: {why}); build one with "
                               "`dupsearch index build LISTINGS --model MODEL --out IDX`") from None
    return total - len(deleted)


def _file_stamp(path: Path) -> tuple | None:
    """(inode, mtime, size) of a file, None if it is not there: an atomic replace changes it."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_ino, st.st_mtime_ns, st.st_size


def _touch_pages(a: np.ndarray) -> None:
    flat = np.asarray(a).reshape(-1)
    if flat.size and flat.flags.c_contiguous:
        flat.view(np.uint8)[::4096].max()  # one byte a page: the kernel maps the page (and its neighbours)


def _available_memory() -> int | None:
    """MemAvailable (free memory plus page cache the kernel can reclaim), None where unknown."""
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    return None


def _hnsw_search(graph, Q: np.ndarray, k: int, threads: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """(keys, similarities) of each query's k nearest in a usearch graph, shape (len(Q), k); a
    missing hit has key -1 and similarity -inf (usearch answers one query with a flat result)."""
    found = graph.search(np.ascontiguousarray(Q, np.float32), k, threads=threads)
    keys = np.asarray(found.keys, np.int64).reshape(len(Q), -1)
    sims = (1 - np.asarray(found.distances, np.float32)).reshape(len(Q), -1)
    counts = np.asarray(getattr(found, "counts", [keys.shape[1]]), np.int64).reshape(-1)
    valid = np.arange(keys.shape[1])[None, :] < counts[:, None]
    return np.where(valid, keys, -1), np.where(valid, sims, -np.inf).astype(np.float32)


def _vector_order(part: np.ndarray, radius: np.ndarray, graph_keys: Sequence[str] = ()) -> np.ndarray:
    """The rows in the order a segment saves an ANN blocker's vectors: by partition key, rows in
    a partition with an HNSW graph (``graph_keys``, hex) by their radius, then by row. The scan
    for reverse neighbours beside a graph search (``Index._ann_candidates``) reads the rows of
    least radius: with them first it multiplies a slice of the mapped file in place. Gathering
    them cost as much as the product (a few thousand rows a listing, half the partition at the
    90th percentile). Exact partitions keep row order: their ties at the k-th neighbour are
    broken by it."""
    if not len(graph_keys):
        return np.argsort(part, kind="stable")
    in_graph = np.isin(part, np.array([int(k, 16) for k in graph_keys], np.uint64))
    within = np.where(in_graph, radius, 0).astype(np.float64)
    return np.lexsort((np.arange(len(part)), within, part))


def _hnsw_file(blocker: str, key: int) -> str:
    return f"ann/{blocker}.hnsw-{int(key):016x}.usearch"


def _open_segment(path: Path, entry: dict, offset: int, blockers: dict, verify: bool) -> _Segment:
    from dupsearch.features.store import ListingStore
    files = entry.get("files", {})
    for rel, info in files.items():
        f = path / rel
        if not f.is_file() or f.stat().st_size != info["bytes"]:
            raise IndexFormatError(f"index segment file {f} is missing or has another size than the "
                                   "manifest says: the index is damaged (restore it, or build it again)")
        if verify:
            from dupsearch.digests import file_sha256
            if file_sha256(f) != info["sha256"]:
                raise IndexFormatError(f"index segment file {f} does not match its sha256 in the manifest")
    seg = _Segment(entry["name"], path, offset, int(entry["n"]), ListingStore.open(path / "store"))
    seg.listings_file()  # opened now: a reader keeps it after a later merge removes the segment
    for name, b in blockers.items():
        if b["kind"] == "key":
            keys = np.load(path / f"keys/{name}.keys.npy", mmap_mode="r")
            rows = np.load(path / f"keys/{name}.rows.npy", mmap_mode="r")
            seg.keys[name] = (keys, rows)
        else:
            v = np.load(path / f"ann/{name}.vectors.npy", mmap_mode="r")
            part = np.load(path / f"ann/{name}.part.npy")
            radius = np.load(path / f"ann/{name}.radius.npy")
            graphs = entry.get("hnsw", {}).get(name, [])
            order = _vector_order(part, radius, graphs if entry.get("graph_order") == "radius" else ())
            ap = _AnnPart(v, part, radius, order, part[order])
            for key in entry.get("hnsw", {}).get(name, []):
                from usearch.index import Index as UIndex
                ap.hnsw[np.uint64(int(key, 16))] = UIndex.restore(str(path / _hnsw_file(name, int(key, 16))), view=True)
            seg.ann[name] = ap
    return seg


# ------------------------------------------------------------------------------- the index

class Index:
    """A catalogue index (see the module docstring). Open one with ``Index.open(path)``; build
    one with ``Index.build(listings, model_dir, out)``.

    Reads (``match``, ``duplicates``) never block and see one generation; writes (``upsert``,
    ``remove``, ``compact``) take the index's lock for their duration and are durable when they
    return. One ``Index`` object may be shared by threads: its writes are serialised.
    """

    def __init__(self, path: Path, manifest: dict, matcher, blockers: dict, specs: dict,
                 vectorizers: dict, segments: list[_Segment], deleted: np.ndarray):
        self.path = Path(path)
        self.manifest = manifest
        self.matcher = matcher
        self._blockers = blockers      # name -> {"kind": "key"|"ann", "spec": str}
        self._made = specs             # name -> Blocker object
        self._vectorizers = vectorizers
        self._segments = segments
        self._write_lock = threading.RLock()
        self.lock_wait_s = 0.0          # how long a write waits for another process's writer
        self._stamp = None              # the manifest file read (see stale())
        self._set_rows(deleted)

    # ---- opening ---------------------------------------------------------------------------
    @classmethod
    def open(cls, path: str | os.PathLike, verify: bool = False, trust: bool = False) -> "Index":
        """Open the index at ``path`` (memory-mapped). ``verify`` also checks every segment
        file's sha256 (sizes are always checked; the model's digests are always checked).
        ``trust``: as ``DuplicateMatcher.load`` (a model with pickled LightAutoML parts)."""
        from dupsearch.candidates.specs import make_blocker
        from dupsearch.models import DuplicateMatcher
        path = Path(path)
        mf = path / MANIFEST
        stamp = _file_stamp(mf)  # before reading: a switch in between is seen as stale, not missed
        if not mf.is_file():
            raise IndexFormatError(f"{path} is not a dupsearch index (no {MANIFEST}); build one with "
                                   "`dupsearch index build LISTINGS --model MODEL --out IDX`")
        try:
            manifest = json.loads(mf.read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise IndexFormatError(f"{mf}: unreadable index manifest ({e})") from None
        if manifest.get("kind") != "index" or manifest.get("format") not in READ_FORMATS:
            known = " or ".join(map(str, READ_FORMATS))
            raise IndexFormatError(f"{mf}: not an index manifest of format {known} (an index "
                                   "written by another dupsearch version: build it again)")
        matcher = DuplicateMatcher.load(path / MODEL_DIR, trust=trust)
        if matcher.pipeline_.digest() != manifest["pipeline"]:
            raise IndexFormatError(f"{path / MODEL_DIR} is not the model this index was built with")
        blockers = manifest["blockers"]
        made = {name: make_blocker(b["spec"]) for name, b in blockers.items()}
        vectorizers = {}
        for name, vz in manifest.get("vectorizers", {}).items():
            from dupsearch.candidates.ann import HashedTfidfVectors
            state = {}
            for part, rel in vz["files"].items():
                f = path / rel
                from dupsearch.digests import file_sha256  # a few MB: always checked
                if not f.is_file() or file_sha256(f) != vz["sha256"][part]:
                    raise IndexFormatError(f"index file {f} is missing or does not match its sha256")
                state[part] = np.load(f)
            vectorizers[name] = HashedTfidfVectors.from_state(vz["settings"], state)
        segments, offset = [], 0
        for entry in manifest["segments"]:
            seg = _open_segment(path / SEGMENTS / entry["name"], entry, offset, blockers, verify)
            segments.append(seg)
            offset += seg.n
        deleted = np.load(path / manifest["deleted"]) if manifest.get("deleted") else np.empty(0, np.int64)
        index = cls(path, manifest, matcher, blockers, made, vectorizers, segments, deleted)
        index._trust = trust
        index._stamp = stamp
        return index

    def _set_rows(self, deleted: np.ndarray) -> None:
        """Row bookkeeping for the current segments and removed rows (item ids stay per segment:
        a commit does not rebuild an index of a million ids)."""
        self._offsets = np.array([s.offset for s in self._segments], np.int64)
        self._n_rows = int(sum(s.n for s in self._segments))
        self._deleted = np.asarray(deleted, np.int64)
        live = np.ones(self._n_rows, bool)
        live[self._deleted] = False
        self._live = live
        self._n_live = int(live.sum())

    def _segment_of(self, rows: np.ndarray) -> np.ndarray:
        return np.searchsorted(self._offsets, rows, side="right") - 1

    def _ids_of(self, rows: np.ndarray) -> np.ndarray:
        """The item ids at global ``rows``."""
        rows = np.asarray(rows, np.int64)
        out = np.empty(len(rows), dtype=object)
        seg_of = self._segment_of(rows)
        for si in np.unique(seg_of):
            sel = seg_of == si
            seg = self._segments[si]
            out[sel] = seg.store.ids[rows[sel] - seg.offset]
        return out

    def _live_rows_of(self, item_ids) -> np.ndarray:
        """The global row of each live listing by item id (-1 when it is not in the index)."""
        # one pandas Index of the ids for every segment (get_indexer would infer the type of a
        # plain array again for each of them)
        ids = pd.Index(np.asarray([str(i) for i in item_ids], dtype=object))
        out = np.full(len(ids), -1, np.int64)
        for seg in reversed(self._segments):  # the newest copy of an id is the live one
            todo = np.flatnonzero(out < 0)
            if not len(todo):
                break
            loc = seg.id_index().get_indexer(ids[todo])
            hit = loc >= 0
            g = loc[hit] + seg.offset
            alive = self._live[g]
            out[todo[hit][alive]] = g[alive]
        return out

    def __len__(self) -> int:
        return self._n_live

    def __contains__(self, item_id) -> bool:
        return bool(self._live_rows_of([item_id])[0] >= 0)

    def contains(self, item_ids: Sequence) -> np.ndarray:
        """Which of ``item_ids`` are live in the index (booleans, in order): ``in`` for many."""
        return self._live_rows_of(item_ids) >= 0

    def row(self, item_id) -> int:
        """The global row of a live listing (ListingNotFoundError when absent)."""
        r = int(self._live_rows_of([item_id])[0])
        if r < 0:
            raise ListingNotFoundError(f"item_id {str(item_id)!r} is not in the index")
        return r

    def stats(self) -> dict:
        return {"listings": len(self), "rows": self._n_rows, "deleted_rows": int(len(self._deleted)),
                "segments": len(self._segments), "generation": int(self.manifest["generation"]),
                "blockers": {k: v["spec"] for k, v in self._blockers.items()}}

    def warm(self, max_share: float = 0.5) -> int:
        """Touch every page of the segments' memory-mapped files once (segments not yet warm), so
        that matches do not fault on each first read of a page: in a freshly opened index of a
        million listings that is ~40% of scoring a new listing. Skipped when the files are larger
        than ``max_share`` of the memory available. Returns the bytes touched."""
        todo = [seg for seg in self._segments if not seg.warmed]
        arrays = [a for seg in todo for a in seg.mapped_arrays()]
        total = int(sum(a.nbytes for a in arrays))
        available = _available_memory()
        if available is not None and total > max_share * available:
            log.info("index not warmed: %.1f GiB of files, %.1f GiB of memory available",
                     total / 2**30, available / 2**30)
            return 0
        for a in arrays:
            _touch_pages(a)
        for seg in todo:
            ids = seg.id_index()
            ids.get_indexer(ids[:1])  # its hash table: the first write or lookup by id took ~0.5 s at a million
            seg.warmed = True
        return total

    def close(self) -> None:
        self._segments = []

    # ---- building ---------------------------------------------------------------------------
    @classmethod
    def build(cls, listings: pd.DataFrame, model_dir: str | os.PathLike, out: str | os.PathLike,
              blockers: Sequence[str] | None = None, workers: int = 1, progress: bool = False,
              trust: bool = False) -> "Index":
        """Build an index of ``listings`` (a validated listings frame) scored by the model in
        ``model_dir``, into the new or empty folder ``out`` (or an index dupsearch wrote there)."""
        from dupsearch.artifacts import claim_dir, mark
        from dupsearch.candidates.specs import default_blocker_specs, make_blocker
        from dupsearch.models import DuplicateMatcher
        out = Path(out)
        claim_dir(out, "index", inputs=[model_dir])
        matcher = DuplicateMatcher.load(model_dir, trust=trust)  # a broken model fails before any work
        specs = list(blockers) if blockers else default_blocker_specs(listings)
        described, made = _describe_blockers(specs)
        t0 = time.perf_counter()
        out.parent.mkdir(parents=True, exist_ok=True)
        # a fresh folder of our own: nothing that exists is ever removed to make room for it
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.building.", dir=out.parent))
        from dupsearch.atomic import _umask
        os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp's folder is private; the index reads like any folder
        try:
            shutil.copytree(model_dir, tmp / MODEL_DIR)
            vectorizers, vz_manifest = {}, {}
            for name, b in described.items():
                if b["kind"] == "ann" and made[name].encoder is None:
                    vz = made[name].fit_vectorizer(listings)
                    vectorizers[name] = vz
                    files, digests = {}, {}
                    for part, arr in vz.state().items():
                        rel = f"{VECTORIZERS}/{name}.{part}.npy"
                        _save_npy(tmp / rel, arr)
                        files[part] = rel
                        digests[part] = _file_entry(tmp / rel)["sha256"]
                    vz_manifest[name] = {"settings": vz.settings(), "files": files, "sha256": digests}
            manifest = {"kind": "index", "format": INDEX_FORMAT, "generation": 1,
                        "pipeline": matcher.pipeline_.digest(), "blockers": described,
                        "vectorizers": vz_manifest, "segments": [], "deleted": None, "next_segment": 1,
                        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
            from dupsearch.features.chunks import build_store_chunks
            from dupsearch.features.store import ListingStore
            seg_name = "seg-000001"
            seg_dir = tmp / SEGMENTS / seg_name
            seg_dir.mkdir(parents=True)
            chunks = build_store_chunks(matcher, listings, tmp / "store.chunks",
                                        {"pipeline": matcher.pipeline_.digest(), "n": len(listings)},
                                        workers, progress)
            ListingStore.concat_saved(chunks, seg_dir / "store")
            shutil.rmtree(tmp / "store.chunks")
            store_s = time.perf_counter() - t0
            entry = _write_blocker_files(seg_dir, seg_name, listings, described, made, vectorizers,
                                         full_knn=True, progress=progress, graph_order=True)
            entry["files"] = _folder_entries(seg_dir, seg_dir)
            manifest["segments"] = [entry]
            manifest["next_segment"] = 2
            manifest["build"] = {"listings": int(len(listings)), "store_seconds": round(store_s, 2),
                                 "seconds": round(time.perf_counter() - t0, 2)}
            _fsync_tree(tmp)
            _write_json_durable(tmp / MANIFEST, manifest)
            mark(tmp, "index")
            if out.exists():
                from dupsearch.artifacts import remove_own
                remove_own(out, "index")
            out.parent.mkdir(parents=True, exist_ok=True)
            os.replace(tmp, out) if not out.exists() else _move_into(tmp, out)
            _fsync_dir(out.parent)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return cls.open(out, trust=trust)

    # ---- matching ---------------------------------------------------------------------------
    def candidates(self, listings: pd.DataFrame, self_rows: np.ndarray | None = None,
                   vectors: dict | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """What the blockers propose for each listing: (query row, global catalogue row, blocker
        bit mask), one entry per distinct pair. ``self_rows``: each query's own global row (it is
        never its own candidate), -1 for new listings."""
        nq = len(listings)
        self_rows = np.full(nq, -1, np.int64) if self_rows is None else np.asarray(self_rows, np.int64)
        qs, rs, bits = [], [], []
        for bit, (name, b) in enumerate(self._blockers.items()):
            if b["kind"] == "key":
                q, r = self._key_candidates(name, listings)
            else:
                q, r = self._ann_candidates(name, listings, (vectors or {}).get(name))
            keep = r != self_rows[q]
            qs.append(q[keep])
            rs.append(r[keep])
            bits.append(np.full(int(keep.sum()), 1 << bit, np.int64))
        if not qs:
            return np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, np.int64)
        q, r, m = np.concatenate(qs), np.concatenate(rs), np.concatenate(bits)
        code = q * np.int64(max(self._n_rows, 1)) + r
        order = np.argsort(code, kind="stable")
        code, m = code[order], m[order]
        first = np.flatnonzero(np.r_[True, code[1:] != code[:-1]]) if len(code) else np.empty(0, np.int64)
        mask = np.bitwise_or.reduceat(m, first) if len(first) else np.empty(0, np.int64)
        code = code[first]
        n = np.int64(max(self._n_rows, 1))
        return code // n, code % n, mask

    def _key_candidates(self, name: str, listings: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        from dupsearch.candidates.blocking import key_hashes
        blocker = self._made[name]
        qrow, keys = blocker.block_keys(listings)
        h = key_hashes(keys)
        qk_parts, r_parts = [], []
        for seg in self._segments:
            K, R = seg.keys[name]
            lo = np.searchsorted(K, h, side="left")
            hi = np.searchsorted(K, h, side="right")
            cnt = hi - lo
            total = int(cnt.sum())
            if not total:
                continue
            qk = np.repeat(np.arange(len(h)), cnt)
            starts = np.repeat(lo - np.r_[0, np.cumsum(cnt)[:-1]], cnt)
            pos = starts + np.arange(total)
            qk_parts.append(qk)
            r_parts.append(np.asarray(R)[pos].astype(np.int64) + seg.offset)
        if not qk_parts:
            return np.empty(0, np.int64), np.empty(0, np.int64)
        qk, r = np.concatenate(qk_parts), np.concatenate(r_parts)
        live = self._live[r]
        qk, r = qk[live], r[live]
        limit = getattr(blocker, "max_block", None)
        if limit is not None:
            size = np.bincount(qk, minlength=len(h)) + 1  # the block dedup would see: these rows and the new one
            ok = size[qk] <= limit
            qk, r = qk[ok], r[ok]
        return np.asarray(qrow, np.int64)[qk], r

    def _ann_candidates(self, name: str, listings: pd.DataFrame, given: tuple | None = None
                        ) -> tuple[np.ndarray, np.ndarray]:
        blocker = self._made[name]
        k = blocker.k
        if given is not None:  # the listings' (vectors, partition keys), computed by the caller
            V, part = given
        else:
            V = blocker.listing_vectors(listings, self._vectorizers.get(name))
            part = blocker.partition_keys(listings)
        has_vec = np.abs(V).sum(axis=1) > 0 if V.shape[1] else np.zeros(len(listings), bool)
        empty = np.empty(0, np.int64), np.empty(0, np.int64)
        # the listings grouped by partition once; each segment looks all the keys up at once
        qrows, ukeys, kstart, kend = _grouped_by_key(part, has_vec)
        if not len(qrows):
            return empty
        q_parts, r_parts, s_parts, near_parts = [], [], [], []
        scanned = False  # rows scanned beside an HNSW search: a pair may then come twice
        for seg in self._segments:
            ap = seg.ann[name]
            lo = np.searchsorted(ap.sorted_part, ukeys, side="left")
            hi = np.searchsorted(ap.sorted_part, ukeys, side="right")
            for j in np.flatnonzero(hi > lo).tolist():
                qs, l, h = qrows[kstart[j]:kend[j]], int(lo[j]), int(hi[j])
                Q = V[qs]
                index = ap.hnsw.get(ukeys[j]) if ap.hnsw else None
                if index is not None:
                    keys, sims = _hnsw_search(index, Q, min(2 * k + 8, h - l))
                    valid = keys >= 0
                    cand, sim = keys[valid], sims[valid]
                    qi = np.broadcast_to(qs[:, None], keys.shape)[valid]
                    g = cand + seg.offset
                    ok = self._live[g]
                    qi, cand, sim, g = qi[ok], cand[ok], sim[ok], g[ok]
                    near = sim >= ap.radius[cand]
                    # Rows that have a listing among their k nearest but were not returned (a
                    # row far down the listing's list, with a low radius: an isolated listing):
                    # dedup proposes such pairs from the row's side. A row the search did not
                    # return is (up to the graph's misses) no more similar than the last it
                    # returned, so only rows whose radius is at most that are scanned, exactly.
                    last = np.where(valid, sims, np.inf).min(axis=1)
                    pos, rad, in_place = ap.by_radius(l, h)
                    m = int(np.searchsorted(rad, last.max(), side="right"))
                    rows = ap.order[pos[:m]]
                    if m:
                        S = Q @ (ap.flat_vectors[l:l + m] if in_place else ap.flat_vectors[pos[:m]]).T
                        hit = (S >= rad[:m][None, :]) & self._live[rows + seg.offset][None, :]
                        qi_r, ci_r = np.nonzero(hit)
                        if len(qi_r):
                            scanned = True
                            qi = np.r_[qi, qs[qi_r]]
                            g = np.r_[g, rows[ci_r] + seg.offset]
                            sim = np.r_[sim, S[qi_r, ci_r]]
                            near = np.r_[near, np.ones(len(qi_r), bool)]
                else:
                    # exact: every row of the partition, cut here to what can be kept (each
                    # listing's k most similar live rows, and the rows it is near to), so that
                    # the ranking below sorts tens of rows a listing, not the partition
                    # (ties at the k-th similarity all kept: the ranking picks among them)
                    rows = ap.order[l:h]
                    live = self._live[rows + seg.offset]
                    S = Q @ ap.flat_vectors[l:h].T
                    S[:, ~live] = -np.inf
                    near_all = (S >= ap.radius[rows][None, :]) & live[None, :]
                    if h - l > k:
                        kth = np.partition(S, h - l - k, axis=1)[:, h - l - k]
                        keep = (near_all | (S >= kth[:, None])) & live[None, :]
                    else:
                        keep = np.broadcast_to(live[None, :], S.shape)
                    qi_l, ci_l = np.nonzero(keep)
                    qi, cand, sim, near = qs[qi_l], rows[ci_l], S[qi_l, ci_l], near_all[qi_l, ci_l]
                    g = cand + seg.offset
                q_parts.append(qi)
                r_parts.append(g)
                s_parts.append(sim)
                near_parts.append(near)
        if not q_parts:
            return empty
        q, r, s, near = (np.concatenate(x) for x in (q_parts, r_parts, s_parts, near_parts))
        if scanned:  # one entry a pair: its highest similarity, near if either entry was
            code = q * np.int64(max(self._n_rows, 1)) + r
            order = np.lexsort((-s, code))
            first = np.flatnonzero(np.r_[True, code[order][1:] != code[order][:-1]])
            near = np.logical_or.reduceat(near[order], first)
            q, r, s = q[order[first]], r[order[first]], s[order[first]]
        if blocker.min_similarity is not None:
            keep = s >= blocker.min_similarity
            q, r, s, near = q[keep], r[keep], s[keep], near[keep]
        # the k most similar per listing (over all segments), as dedup's search in its partition
        order = np.lexsort((-s, q))
        q, r, s, near = q[order], r[order], s[order], near[order]
        start = np.flatnonzero(np.r_[True, q[1:] != q[:-1]]) if len(q) else np.empty(0, np.int64)
        rank = np.arange(len(q)) - np.repeat(start, np.diff(np.r_[start, len(q)]))
        keep = (rank < k) | near
        return q[keep], r[keep]

    def _blocker_names(self, mask: np.ndarray) -> np.ndarray:
        names = [b["name"] for b in self._blockers.values()]
        uniq, inv = np.unique(mask, return_inverse=True)  # as dedup's candidates: 'seller_id+category_l2|ann_text'
        text = np.array(["|".join(n for i, n in enumerate(names) if m >> i & 1) for m in uniq], dtype=object)
        return text[inv]

    def _stored(self, rows: np.ndarray, before=None):
        """A store of the listings at global ``rows`` (in that order), gathered from their
        segments in one copy, after the rows of the store ``before`` (if given)."""
        from dupsearch.features.store import ListingStore
        rows = np.asarray(rows, np.int64)
        offsets = np.array([s.offset for s in self._segments], np.int64)
        seg_of = np.searchsorted(offsets, rows, side="right") - 1
        order = np.argsort(seg_of, kind="stable")
        parts, placed = [] if before is None else [(before, None)], []
        for si in np.unique(seg_of):
            sel = order[seg_of[order] == si]
            parts.append((self._segments[si].store, rows[sel] - self._segments[si].offset))
            placed.append(sel)
        store = ListingStore.gather(parts, lazy=True)
        back = np.empty(len(rows), np.int64)
        back[np.concatenate(placed) if placed else np.empty(0, np.int64)] = np.arange(len(rows))
        return store, back  # row i of `rows` is store row back[i] (after `before`'s rows)

    def _score(self, query_store, q: np.ndarray, r: np.ndarray) -> np.ndarray:
        """Probabilities of (query store row q, global row r) pairs: the candidates' stored rows
        after the queries', through ``DuplicateMatcher.score``."""
        if not len(q):
            return np.zeros(0)
        uniq, inv = np.unique(r, return_inverse=True)
        both, back = self._stored(uniq, before=query_store)
        return self.matcher.score(both, q, query_store.n + back[inv])

    def _ranked(self, ids: np.ndarray, q, r, mask, p, top: int) -> pd.DataFrame:
        q, p = np.asarray(q, np.int64), np.asarray(p, np.float64)
        match_ids = self._ids_of(r).astype(str) if len(r) else np.empty(0, object)
        # by query, most probable first, ties by match id (numpy: pandas' sort and groupby cost
        # more than the rest of ranking one listing's candidates)
        _, id_rank = np.unique(match_ids, return_inverse=True)
        order = np.lexsort((id_rank.ravel(), -p, q))
        qs = q[order]
        start = np.flatnonzero(np.r_[True, qs[1:] != qs[:-1]]) if len(qs) else np.empty(0, np.int64)
        rank = np.arange(len(qs)) - np.repeat(start, np.diff(np.r_[start, len(qs)])) + 1
        keep = order[rank <= top] if top else order
        rank = rank[rank <= top] if top else rank
        out = pd.DataFrame({"item_id": np.asarray(ids, dtype=object)[q[keep]], "rank": rank.astype(np.int64),
                            "match_id": match_ids[keep], "probability": p[keep],
                            "blockers": self._blocker_names(np.asarray(mask)[keep])}, columns=MATCH_COLUMNS)
        for c in ("item_id", "match_id", "blockers"):
            out[c] = out[c].astype(str)
        return out

    def match(self, listings: pd.DataFrame, top: int = 10) -> pd.DataFrame:
        """For each listing, its top ``top`` candidates in the index (MATCH_COLUMNS; rank 1 is the
        most probable duplicate; a listing without candidates has no rows). Listings already in
        the index are matched as new ones (their stored copy is a candidate like any other)."""
        listings = _validated(listings)
        if not len(listings):
            return pd.DataFrame({c: pd.Series(dtype=object if c != "probability" else float) for c in MATCH_COLUMNS})
        q, r, mask = self.candidates(listings)
        store = self.matcher.build_store(listings)
        p = self._score(store, q, r)
        return self._ranked(listings["item_id"].astype(str).to_numpy(dtype=object), q, r, mask, p, top)

    def duplicates(self, item_id, top: int = 10) -> pd.DataFrame:
        """The top candidates of a listing already in the index (itself left out)."""
        return self.duplicates_of([item_id], top)

    # ---- writing ---------------------------------------------------------------------------
    @contextmanager
    def _writing(self):
        import fcntl
        with self._write_lock:
            fh = open(self.path / LOCK, "a+")
            deadline = time.monotonic() + self.lock_wait_s
            while True:  # flock has no timeout: poll (a commit takes milliseconds to seconds)
                try:
                    fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except OSError:
                    if time.monotonic() >= deadline:
                        fh.close()
                        raise IndexBusyError(f"{self.path} is being written by another process; "
                                             "wait for it") from None
                    time.sleep(0.002)
            try:
                self._refresh_locked()
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)
                fh.close()

    def _refresh_locked(self) -> None:
        """Another writer may have switched the manifest since we read it: read it again."""
        self._pick_up()

    def stale(self) -> bool:
        """Whether the manifest on disk is another than the one this object read (one stat: cheap
        enough before every read; another process's commit switches the file)."""
        return _file_stamp(self.path / MANIFEST) != self._stamp

    def refresh(self) -> bool:
        """Pick up a generation another process wrote; True when there was one."""
        if not self.stale():
            return False
        try:
            with self._write_lock:
                return self._pick_up()
        except (OSError, ValueError):
            return False

    def _pick_up(self) -> bool:
        stamp = _file_stamp(self.path / MANIFEST)
        current = json.loads((self.path / MANIFEST).read_text(encoding="utf-8"))
        if all(current.get(k) == self.manifest.get(k) for k in ("generation", "created")):
            self._stamp = stamp
            return False
        same_build = all(current.get(k) == self.manifest.get(k)
                         for k in ("created", "pipeline", "blockers", "vectorizers", "format"))
        if same_build:
            # segments never change once written: open only those the generation adds
            self._apply(current)
            self._stamp = stamp
        else:  # the index was built again in place: everything anew
            fresh = Index.open(self.path, trust=self._trust)
            self.__dict__.update({k: v for k, v in fresh.__dict__.items() if k not in ("_write_lock", "lock_wait_s")})
        return True

    def _clean_temporaries(self) -> None:
        referenced = {e["name"] for e in self.manifest["segments"]}
        for p in (self.path / SEGMENTS).iterdir():
            if p.name.startswith(".") and p.name.endswith(".tmp"):
                shutil.rmtree(p, ignore_errors=True)
            elif p.is_dir() and p.name.startswith("seg-") and p.name not in referenced:
                shutil.rmtree(p, ignore_errors=True)  # a merged-away segment, or one a killed writer named
        for p in self.path.glob("deleted-*.npy"):
            if p.name != self.manifest.get("deleted"):
                p.unlink(missing_ok=True)

    def _commit(self, manifest: dict, deleted: np.ndarray | None) -> None:
        manifest["generation"] = int(self.manifest["generation"]) + 1
        if deleted is not None and len(deleted):
            name = f"deleted-{manifest['generation']:06d}.npy"
            with open(self.path / name, "wb") as fh:
                np.save(fh, np.unique(np.asarray(deleted, np.int64)))
                fh.flush()
                os.fsync(fh.fileno())
            manifest["deleted"] = name
        elif deleted is not None:
            manifest["deleted"] = None
        _write_json_durable(self.path / MANIFEST, manifest)
        self._stamp = _file_stamp(self.path / MANIFEST)

    def upsert(self, listings: pd.DataFrame, top: int | None = 10) -> pd.DataFrame:
        """Add ``listings`` (replacing those whose item_id is in the index); durable when it
        returns. Returns their matches against the index (other listings, the batch included;
        ``top=None``: no matching, an empty table)."""
        listings = _validated(listings)
        if not len(listings):
            return self.match(listings, top or 1)
        with self._writing():
            self._clean_temporaries()
            ids = listings["item_id"].astype(str).to_numpy(dtype=object)
            replaced = self._live_rows_of(ids)
            replaced = replaced[replaced >= 0]
            manifest = json.loads(json.dumps(self.manifest))
            vectors: dict = {}  # the ANN blockers' vectors of the listings, computed once
            with self._new_segment(manifest) as (name, seg_tmp, entry):
                store = self.matcher.build_store(listings)
                store.save(seg_tmp / "store")
                entry.update(_write_blocker_files(seg_tmp, name, listings, self._blockers, self._made,
                                                  self._vectorizers, full_knn=False, index=self,
                                                  computed=vectors))
            manifest["segments"].append(entry)
            deleted = np.concatenate([self._deleted, replaced]) if len(replaced) else None
            self._commit(manifest, deleted)
            self._apply(manifest)
            found = None
            if top is not None:  # the batch's matches, from the listings and store in hand
                rows = self._segments[-1].offset + np.arange(len(listings))
                q, r, mask = self.candidates(listings, self_rows=rows, vectors=vectors)
                found = self._ranked(ids, q, r, mask, self._score(store, q, r), top)
            if len(self._segments) > MERGE_SEGMENTS:
                try:
                    self._merge_newer()
                except Exception as exc:  # noqa: BLE001 - the write is committed; merging is upkeep
                    log.warning("index %s: merging segments failed (%s); the index stays as committed",
                                self.path, exc)
        return found if found is not None else self._ranked(ids, *(np.empty(0, np.int64),) * 3, np.zeros(0), 1)

    @contextmanager
    def _new_segment(self, manifest: dict):
        """Yields (name, temporary folder, manifest entry) for the caller to fill; then records
        every file's digest, fsyncs the folder and renames it into place (nothing is referenced
        until the caller commits a manifest naming it; on error the folder is removed)."""
        number = int(manifest["next_segment"])
        name = f"seg-{number:06d}"
        seg_tmp = self.path / SEGMENTS / f".{name}.tmp"
        seg_tmp.mkdir(parents=True)
        entry: dict = {}
        try:
            yield name, seg_tmp, entry
            entry["files"] = _folder_entries(seg_tmp, seg_tmp)
            _fsync_tree(seg_tmp)
            os.replace(seg_tmp, self.path / SEGMENTS / name)
            _fsync_dir(self.path / SEGMENTS)
        except BaseException:
            shutil.rmtree(seg_tmp, ignore_errors=True)
            raise
        manifest["next_segment"] = number + 1

    def duplicates_of(self, item_ids: Sequence[str], top: int = 10) -> pd.DataFrame:
        """``duplicates`` of several listings in the index at once."""
        rows = np.array([self.row(i) for i in item_ids], np.int64)
        store, back = self._stored(rows)
        frames = self._listing_frames(rows)
        q, r, mask = self.candidates(frames, self_rows=rows)
        p = self._score(store, back[q], r) if len(q) else np.zeros(0)
        return self._ranked(np.asarray([str(i) for i in item_ids], dtype=object), q, r, mask, p, top)

    def _listing_frames(self, rows: np.ndarray) -> pd.DataFrame:
        """The saved listings at global ``rows`` (in that order), as the blockers read them:
        only the Parquet row groups that hold them are read."""
        import pyarrow as pa
        rows = np.asarray(rows, np.int64)
        offsets = np.array([s.offset for s in self._segments], np.int64)
        seg_of = np.searchsorted(offsets, rows, side="right") - 1
        tables, placed = [], []
        for si in np.unique(seg_of):
            seg = self._segments[si]
            sel = np.flatnonzero(seg_of == si)
            local = rows[sel] - seg.offset
            pf = seg.listings_file()
            groups = np.unique(local // LISTING_GROUP)
            t = pf.read_row_groups([int(g) for g in groups])
            start = {int(g): i * LISTING_GROUP for i, g in enumerate(groups)}
            at = np.array([start[int(r // LISTING_GROUP)] + int(r % LISTING_GROUP) for r in local], np.int64)
            tables.append(t.take(pa.array(at)))
            placed.append(sel)
        # per segment to pandas first: a segment whose photo lists are all empty has another
        # Arrow type for them (list<null>) than one with photos
        table = pd.concat([t.to_pandas() for t in tables], ignore_index=True)
        order = np.empty(len(rows), np.int64)
        order[np.concatenate(placed)] = np.arange(len(rows))
        return _restore_listings(table.iloc[order].reset_index(drop=True))

    def remove(self, item_ids: Iterable) -> int:
        """Delete listings by item_id (durable on return); how many were in the index."""
        ids = np.asarray([str(i) for i in item_ids], dtype=object)
        with self._writing():
            rows = self._live_rows_of(ids)
            rows = np.unique(rows[rows >= 0])
            if not len(rows):
                return 0
            manifest = json.loads(json.dumps(self.manifest))
            self._commit(manifest, np.concatenate([self._deleted, rows]))
            self._apply(manifest)
            return int(len(rows))

    def _apply(self, manifest: dict) -> None:
        """Make ``manifest`` (just committed) this object's generation, opening only the segments
        it adds (a merge replaces the newer segments; reopening a million-listing index for it
        took 2.6 s of a 3.3 s merge)."""
        have = {s.name: s for s in self._segments}
        segments, offset = [], 0
        for entry in manifest["segments"]:
            seg = have.get(entry["name"])
            if seg is None or seg.offset != offset:
                seg = _open_segment(self.path / SEGMENTS / entry["name"], entry, offset, self._blockers, False)
            segments.append(seg)
            offset += seg.n
        self._segments = segments
        self.manifest = manifest
        deleted = np.load(self.path / manifest["deleted"]) if manifest.get("deleted") else np.empty(0, np.int64)
        self._set_rows(deleted)

    def compact(self, progress: bool = False) -> dict:
        """Merge every segment into one without deleted rows (HNSW graphs for large partitions
        rebuilt, every radius recomputed); readers of older generations keep their files open."""
        with self._writing():
            before = len(self._segments)
            self._merge(0, full_knn=True)
            return {"segments_before": before, "segments": len(self._segments), "listings": len(self)}

    def _merge_newer(self) -> None:
        """Merge the newest segments into one (never the bulk-built first), size-tiered: the
        newest half at least, then, going back, each older segment no larger than those taken so
        far. Merging every segment after the first rewrote all the listings ever upserted every
        MERGE_SEGMENTS commits, so each merge of a long stream of upserts took longer than the
        last (and held the write lock); tiered, a listing is rewritten a few times (4.8 over
        2,000 commits of 20, simulated, against 91 at MERGE_SEGMENTS 12).
        Sizes count live rows: a segment whose listings were mostly replaced is merged sooner."""
        live = [int(self._live[s.offset:s.offset + s.n].sum()) for s in self._segments]
        self._merge(_merge_start(live, MERGE_SEGMENTS), full_knn=False)

    def _merge(self, first: int, full_knn: bool) -> None:
        if len(self._segments) - first < 2 and not (first == 0 and len(self._deleted)):
            return
        merged = self._segments[first:]
        start = merged[0].offset
        rows = np.arange(start, self._n_rows)
        rows = rows[self._live[rows]]
        manifest = json.loads(json.dumps(self.manifest))
        with self._new_segment(manifest) as (name, seg_tmp, entry):
            listings = self._listing_frames(rows) if len(rows) else None
            if listings is None:
                raise DupsearchError("nothing to merge")
            store, back = self._stored(rows)
            if not np.array_equal(back, np.arange(len(back))):  # rows ascend: segment order already
                store = store.take(back)
            store.save(seg_tmp / "store")
            kept_radius = {}
            if not full_knn:
                for bname, b in self._blockers.items():
                    if b["kind"] == "ann":
                        kept_radius[bname] = np.concatenate([s.ann[bname].radius for s in merged])[
                            rows - start]
            entry.update(_write_blocker_files(seg_tmp, name, listings, self._blockers, self._made,
                                              self._vectorizers, full_knn=full_knn, radius=kept_radius or None,
                                              graph_order=self.manifest["format"] >= 3))
        manifest["segments"] = manifest["segments"][:first] + [entry]
        keep_deleted = self._deleted[self._deleted < start]
        self._commit(manifest, keep_deleted)
        self._apply(manifest)
        self._clean_temporaries()


# ------------------------------------------------------------------------------- helpers

def _merge_start(sizes: Sequence[int], limit: int) -> int:
    """The first segment of the newest ones ``_merge_newer`` merges, given the segments' sizes
    (the first, bulk-built segment is never merged here)."""
    first = max(1, len(sizes) - max(2, len(sizes) - limit // 2))
    taken = sum(sizes[first:])
    while first > 1 and sizes[first - 1] <= taken:
        first -= 1
        taken += sizes[first]
    return first


def _move_into(tmp: Path, out: Path) -> None:
    """Move the built index's entries into the existing (empty or emptied) folder ``out``."""
    for p in tmp.iterdir():
        os.replace(p, out / p.name)
    tmp.rmdir()


def _describe_blockers(specs: Sequence[str]) -> tuple[dict, dict]:
    """name -> {"kind", "spec"} and name -> Blocker, for the blockers an index can keep."""
    from dupsearch.candidates.ann import ANNBlocker
    from dupsearch.candidates.blocking import _KeyBlocker
    from dupsearch.candidates.specs import make_blocker
    described, made = {}, {}
    for i, spec in enumerate(specs):
        try:
            b = make_blocker(spec)
        except ValueError as e:
            raise DataError(str(e), column="--block") from None
        name = f"b{i}"
        if isinstance(b, _KeyBlocker):
            kind = "key"
        elif isinstance(b, ANNBlocker):
            if not b.frozen_vectors:
                raise DupsearchError(f"blocker {spec!r}: the index keeps ANN blockers over text with the "
                                     "default vectors or an encoder that needs no fitting (not photos, "
                                     "given vectors or a fitted encoder)")
            if b.exclude:
                raise DupsearchError(f"blocker {spec!r}: exclude= is not supported by the index yet")
            kind = "ann"
        else:
            raise DupsearchError(f"blocker {spec!r} cannot be kept in an index")
        described[name] = {"kind": kind, "spec": spec, "name": b.name}
        made[name] = b
    return described, made


def _knn_radius(V: np.ndarray, part: np.ndarray, k: int, threads: int = 0
                ) -> tuple[np.ndarray, dict]:
    """Each row's k-th neighbour similarity within its partition (-inf with fewer than k
    neighbours), and an HNSW graph (usearch) for each partition above HNSW_MIN rows."""
    from dupsearch.candidates.ann import _exact_knn
    n = len(V)
    radius = np.full(n, -np.inf, np.float32)
    graphs = {}
    has_vec = np.abs(V).sum(axis=1) > 0 if V.shape[1] else np.zeros(n, bool)
    order = np.argsort(part, kind="stable")
    order = order[has_vec[order]]
    sp_ = part[order]
    starts = np.flatnonzero(np.r_[True, sp_[1:] != sp_[:-1]]) if len(order) else np.empty(0, np.int64)
    ends = np.r_[starts[1:], len(order)]
    for s, e in zip(starts, ends):
        rows = order[s:e]
        if len(rows) <= k:
            continue  # fewer than k neighbours: every newcomer is among them
        X = np.ascontiguousarray(V[rows])
        if len(rows) <= HNSW_MIN:
            _, sims = _exact_knn(X, k)
            radius[rows] = sims[:, k - 1]
        else:
            from usearch.index import Index as UIndex
            g = UIndex(ndim=X.shape[1], metric="ip", dtype="f32", connectivity=16,
                       expansion_add=128, expansion_search=128)
            g.add(rows.astype(np.uint64), X, threads=threads)
            keys, sims = _hnsw_search(g, X, k + 1, threads)
            # the k-th best hit that is not the listing itself
            ranked = -np.sort(-np.where(keys != rows[:, None], sims, -np.inf), axis=1)
            radius[rows] = ranked[:, k - 1]
            graphs[int(part[rows[0]])] = g
    return radius, graphs


def _write_blocker_files(seg_dir: Path, name: str, listings: pd.DataFrame, described: dict, made: dict,
                         vectorizers: dict, full_knn: bool, progress: bool = False, index: Index | None = None,
                         radius: dict | None = None, computed: dict | None = None,
                         graph_order: bool = False) -> dict:
    """The segment's listings, key tables and vectors; returns its manifest entry (no files yet).
    ``computed``: filled with each ANN blocker's (vectors, partition keys) of the listings;
    ``graph_order``: graph partitions' vectors by radius (format 3, see _vector_order)."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    from dupsearch.candidates.blocking import key_hashes
    from dupsearch.io.readers import _arrow_column
    n = len(listings)
    frame = listings.reset_index(drop=True)
    # small row groups: a listing is read back by its row (GET duplicates) without the rest
    pq.write_table(pa.Table.from_arrays([_arrow_column(frame.iloc[:, i]) for i in range(frame.shape[1])],
                                        names=[str(c) for c in frame.columns]),
                   seg_dir / "listings.parquet", row_group_size=LISTING_GROUP)
    entry = {"name": name, "n": int(n), "hnsw": {}}
    for bname, b in described.items():
        blocker = made[bname]
        if b["kind"] == "key":
            rows, keys = blocker.block_keys(listings)
            h = key_hashes(keys)
            order = np.argsort(h, kind="stable")
            _save_npy(seg_dir / f"keys/{bname}.keys.npy", h[order])
            _save_npy(seg_dir / f"keys/{bname}.rows.npy", np.asarray(rows, np.int64)[order])
            continue
        V = blocker.listing_vectors(listings, vectorizers.get(bname))
        part = blocker.partition_keys(listings)
        if computed is not None:
            computed[bname] = (V, part)
        keys_hex: list[str] = []
        if radius is not None and bname in radius:
            r = radius[bname]
        elif full_knn:
            r, graphs = _knn_radius(V, part, blocker.k, blocker.threads)
            (seg_dir / "ann").mkdir(parents=True, exist_ok=True)
            for key, g in graphs.items():
                g.save(str(seg_dir / _hnsw_file(bname, key)))
                keys_hex.append(f"{key:016x}")
            entry["hnsw"][bname] = keys_hex
        else:
            r = _new_radius(index, bname, blocker, V, part)
        r = np.asarray(r, np.float32)
        # in the order _AnnPart reads them (_open_segment)
        _save_npy(seg_dir / f"ann/{bname}.vectors.npy",
                  V[_vector_order(part, r, keys_hex if graph_order else ())])
        _save_npy(seg_dir / f"ann/{bname}.part.npy", part)
        _save_npy(seg_dir / f"ann/{bname}.radius.npy", r)
    if graph_order and any(entry["hnsw"].values()):
        entry["graph_order"] = "radius"
    return entry


def _new_radius(index: Index | None, bname: str, blocker, V: np.ndarray, part: np.ndarray) -> np.ndarray:
    """k-th neighbour similarity of new rows among the live catalogue and the new rows themselves
    (-inf with fewer than k neighbours). The new rows grouped by partition once; each segment
    looks all their keys up at once (a loop over keys and segments cost 80% of a bulk upsert's
    writing once a few segments had been added)."""
    n, k = len(V), blocker.k
    out = np.full(n, -np.inf, np.float32)
    has_vec = np.abs(V).sum(axis=1) > 0 if V.shape[1] else np.zeros(n, bool)
    qrows, ukeys, kstart, kend = _grouped_by_key(part, has_vec)
    if not len(qrows):
        return out
    groups = [qrows[a:b] for a, b in zip(kstart.tolist(), kend.tolist())]
    best = []  # per key: its new rows' k best similarities so far (the batch's own first)
    for q in groups:
        own = V[q] @ V[q].T  # the new rows among themselves
        np.fill_diagonal(own, -np.inf)
        best.append(_k_best(own, k))
    for seg in (index._segments if index is not None else []):
        ap = seg.ann[bname]
        lo = np.searchsorted(ap.sorted_part, ukeys, side="left")
        hi = np.searchsorted(ap.sorted_part, ukeys, side="right")
        for j in np.flatnonzero(hi > lo).tolist():
            q, l, h = groups[j], int(lo[j]), int(hi[j])
            g = ap.hnsw.get(ukeys[j]) if ap.hnsw else None
            if g is not None:
                keys, sims = _hnsw_search(g, V[q], min(k + 1, h - l))
                sims = np.where((keys >= 0) & index._live[np.maximum(keys, 0) + seg.offset], sims, -np.inf)
            else:
                sims = V[q] @ ap.flat_vectors[l:h].T
                sims = np.where(index._live[ap.order[l:h] + seg.offset][None, :], sims, -np.inf)
            best[j] = _k_best(np.hstack([best[j], sims]), k)
    for q, sims in zip(groups, best):
        if sims.shape[1] >= k:
            out[q] = sims.min(axis=1)
    return out


def _grouped_by_key(part: np.ndarray, has_vec: np.ndarray):
    """The rows with a vector sorted by partition key (stable), the distinct keys, and where
    each key's rows start and end in that order: a batch's listings looked up once per segment."""
    qrows = np.flatnonzero(has_vec)
    qrows = qrows[np.argsort(part[qrows], kind="stable")]
    ukeys, kstart = np.unique(part[qrows], return_index=True)
    return qrows, ukeys, kstart, np.r_[kstart[1:], len(qrows)]


def _k_best(sims: np.ndarray, k: int) -> np.ndarray:
    """Each row's k largest values (all of them when there are fewer), in no order."""
    return -np.partition(-sims, k - 1, axis=1)[:, :k] if sims.shape[1] > k else sims


def _validated(listings: pd.DataFrame) -> pd.DataFrame:
    from dupsearch.io.schema import normalize_listings
    if "item_id" not in listings.columns:
        raise DataError("missing required column", column="item_id")
    frame, report = normalize_listings(listings)
    return frame.reset_index(drop=True)


def _restore_listings(table: pd.DataFrame) -> pd.DataFrame:
    """A listings frame read back from a segment's Parquet (attributes/images as written)."""
    return _validated(table)
