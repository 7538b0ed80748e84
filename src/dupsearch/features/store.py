"""ListingStore: everything per listing that any feature family needs, computed once.

A store has integer rows, one per listing, and four kinds of columns:

- ``strings``: cleaned text fields (object arrays; Arrow/Parquet on disk, converted on first use);
- ``dense``: numbers per listing, ``(n,)`` or ``(n, d)`` (lengths, prices, counts, embeddings);
- ``sparse``: CSR rows per listing (hashed n-gram sets, TF-IDF / BM25 rows, attribute codes);
- ``ragged``: a variable number of dense rows per listing (photo embeddings, word vectors), as
  ``offsets`` (n + 1,) and ``rows`` (m, d).

Every column is a function of one listing and the fitted pipeline alone (hashes are stable, no
batch-local vocabulary), so ``a.append(b)`` equals a store built from the listings of ``a`` and
``b`` together, and a store built in a worker process, a Spark executor or the service holds the
same numbers. Pair work reads rows by integer index: ``family.compare(store, ia, ib)``.

On disk (``save`` / ``open``): ``store.json`` (column kinds, shapes, pipeline digest),
``strings.arrow`` (Arrow IPC, uncompressed) and ``arrays.bin``, every array laid one after
another (64-byte aligned; ``store.json`` names each one's offset, dtype and shape), all opened
memory-mapped, so worker processes share the pages and a store of a million listings opens in
well under a second; no pickle. One file of arrays, not a ``.npy`` file each: an index segment
of 20 upserted listings wrote, fsynced and mapped ~60 files for its store. Format-1 stores (one
``.npy`` file per array) still open. String columns of an opened store are ``StringColumn`` views:
indexing with row arrays gives the strings of those rows only.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import pandas as pd
import pyarrow as pa
import scipy.sparse as sp

from dupsearch.errors import DataError, DupsearchError

STORE_FORMAT = 2
READ_FORMATS = (1, 2)  # 1: one .npy file per array
STORE_FILE = "store.json"
STRINGS_FILE = "strings.arrow"
ARRAYS_FILE = "arrays.bin"
_ALIGN = 64
KINDS = ("strings", "dense", "sparse", "ragged")


class Ragged:
    """A variable number of ``d``-dim rows per listing: listing i owns rows[offsets[i]:offsets[i+1]]."""

    def __init__(self, offsets: np.ndarray, rows: np.ndarray):
        self.offsets = np.asarray(offsets, dtype=np.int64)
        self.rows = rows if rows.ndim == 2 else rows.reshape(len(rows), -1)

    @classmethod
    def from_list(cls, mats: list, dim: int | None = None, dtype=np.float32) -> "Ragged":
        counts = np.fromiter((0 if m is None else len(m) for m in mats), np.int64, count=len(mats))
        offsets = np.zeros(len(mats) + 1, np.int64)
        np.cumsum(counts, out=offsets[1:])
        present = [np.asarray(m, dtype=dtype) for m in mats if m is not None and len(m)]
        if present:
            rows = np.concatenate(present).astype(dtype, copy=False)
        else:
            rows = np.zeros((0, dim or 1), dtype)
        return cls(offsets, rows)

    def __len__(self) -> int:
        return len(self.offsets) - 1

    @property
    def counts(self) -> np.ndarray:
        return np.diff(self.offsets)

    def pad(self, idx: np.ndarray, max_rows: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Rows of listings ``idx`` as a dense ``(len(idx), R, d)`` float32 array and its
        ``(len(idx), R)`` mask, gathered in one fancy index (no loop over listings)."""
        idx = np.asarray(idx, np.int64)
        cnt = self.counts[idx]
        R = int(cnt.max()) if len(cnt) else 0
        if max_rows is not None:
            R = min(R, max_rows)
        R = max(R, 1)
        cnt = np.minimum(cnt, R)
        d = self.rows.shape[1]
        out = np.zeros((len(idx), R, d), np.float32)
        mask = np.arange(R)[None, :] < cnt[:, None]
        if mask.any():
            pi, ri = np.nonzero(mask)
            out[pi, ri] = self.rows[self.offsets[idx][pi] + ri]
        return out, mask

    def concat(self, other: "Ragged") -> "Ragged":
        parts = [np.asarray(r) for r in (self.rows, other.rows) if len(r)]
        rows = np.concatenate(parts) if parts else np.asarray(self.rows)
        return Ragged(np.concatenate([self.offsets, other.offsets[1:] + self.offsets[-1]]), rows)

    def take(self, idx: np.ndarray) -> "Ragged":
        idx = np.asarray(idx, np.int64)
        cnt = self.counts[idx]
        offsets = np.zeros(len(idx) + 1, np.int64)
        np.cumsum(cnt, out=offsets[1:])
        src = np.repeat(self.offsets[idx], cnt) + (np.arange(offsets[-1]) - np.repeat(offsets[:-1], cnt))
        return Ragged(offsets, np.asarray(self.rows)[src])


def _folder_bytes(folder: Path) -> int:
    return sum(f.stat().st_size for f in Path(folder).rglob("*") if f.is_file())


def check_free_space(folder: Path, needed: int, what: str, margin: float = 1.05) -> None:
    """An error naming the folder when it has less free space than ``needed`` bytes (plus 5%):
    the store is written through memory maps, and a write that finds the disk full kills the
    process (SIGBUS) instead of raising, leaving gigabytes of a half-written store behind."""
    import shutil
    folder = Path(folder)
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    free = shutil.disk_usage(folder).free
    if free < needed * margin:
        raise DupsearchError(f"{folder}: {what} needs about {needed * margin / 1e9:.1f} GB of free disk "
                             f"space and {free / 1e9:.1f} GB are free; free some space or write --out "
                             "to another disk")


class StringColumn:
    """A string column of a store opened from disk: a memory-mapped Arrow array; ``col[idx]``
    gives the strings of rows ``idx`` as an object array (only those become Python strings)."""

    def __init__(self, array: pa.ChunkedArray):
        self.array = array
        self._starts = np.cumsum([0] + [len(c) for c in array.chunks])[:-1].astype(np.int64)

    def __len__(self) -> int:
        return len(self.array)

    def __getitem__(self, idx) -> np.ndarray:
        idx = np.asarray(idx)
        if idx.dtype == bool:
            idx = np.flatnonzero(idx)
        # each distinct row becomes a Python string once (a batch of pairs repeats its listings)
        uniq, inverse = np.unique(idx.astype(np.int64), return_inverse=True)
        if not len(uniq):
            return np.empty(0, dtype=object)
        lo, span = int(uniq[0]), int(uniq[-1] - uniq[0]) + 1
        strings = np.empty(len(uniq), dtype=object)
        if span <= 4 * len(uniq):  # rows close together (dedup's batches): a zero-copy slice
            near = np.empty(span, dtype=object)
            near[:] = self.array.slice(lo, span).to_pylist()
            strings[:] = near[uniq - lo]
        else:
            chunk_of = np.searchsorted(self._starts, uniq, side="right") - 1
            touched = np.unique(chunk_of)
            if len(uniq) <= 16 * len(touched):
                # rows scattered over many chunks (an online match's candidates): a scalar read
                # costs ~0.6 us a row, a take ~10-25 us a chunk touched
                array = self.array
                strings[:] = [array[i].as_py() for i in uniq.tolist()]
            else:
                # chunk by chunk: ChunkedArray.take joins every chunk first (a copy of the whole
                # column per call: ~5 ms a column at 300,000 listings, for a handful of rows)
                for c in touched:
                    sel = chunk_of == c
                    local = pa.array(uniq[sel] - self._starts[c], pa.int64())
                    strings[sel] = self.array.chunk(int(c)).take(local).to_pylist()
        return strings[inverse.ravel()]

    def __array__(self, dtype=None, copy=None):
        out = np.empty(len(self), dtype=object)
        out[:] = self.array.to_pylist()
        return out if dtype is None else out.astype(dtype)

    def __iter__(self):
        return iter(self.array.to_pylist())


def _gather_column(parts: list, name: str, kind: str):
    """Column ``name`` of the rows of each ``(store, rows)`` in ``parts``, one after another."""
    cols = [(s.get(name), rows) for s, rows in parts]
    if kind == "sparse":
        from dupsearch.features.kernels import gather_csr
        return gather_csr(cols, cols[0][0].shape[1])
    if kind == "ragged":
        col = cols[0][0].take(cols[0][1])
        for c, rows in cols[1:]:
            col = col.concat(c.take(rows))
        return col
    return np.concatenate([_taken(c, rows) for c, rows in cols])


def _taken(col, rows: np.ndarray) -> np.ndarray:
    """Rows ``rows`` of a column: ``np.take`` on an array (a memmap viewed as a plain array:
    indexing a memmap builds a memmap subclass, 3-5x slower for the few thousand rows a match
    gathers), the column's own indexing otherwise (StringColumn)."""
    if isinstance(col, np.ndarray):
        return np.take(col.view(np.ndarray) if isinstance(col, np.memmap) else col, rows, axis=0)
    return np.asarray(col[rows])


class ListingStore:
    """Per-listing state of a fitted feature pipeline over a listings table (see module doc).

    Build one with ``FeaturePipeline.build_store(listings)`` (or ``DuplicateMatcher.build_store``),
    save it with ``save(dir)`` and open it memory-mapped with ``ListingStore.open(dir)``.
    """

    def __init__(self, item_ids: Iterable, meta: dict | None = None):
        ids = item_ids if isinstance(item_ids, np.ndarray) else np.asarray(list(item_ids), dtype=object)
        if ids.dtype != object or not all(type(v) is str for v in ids.tolist()):
            ids = pd.Series(ids, dtype=object).astype(str).to_numpy(dtype=object)
        self.ids = ids
        self.meta = dict(meta or {})
        self.strings: dict[str, np.ndarray] = {}
        self.dense: dict[str, np.ndarray] = {}
        self.sparse: dict[str, sp.csr_matrix] = {}
        self.ragged: dict[str, Ragged] = {}
        self._arrow: pa.Table | None = None  # string columns of a store opened from disk
        # column -> (kind, maker): gathered when first read (an online match reads a few columns)
        self._lazy: dict[str, tuple[str, Any]] = {}
        self._sources: list | None = None  # a lazily gathered store's (store, rows) parts
        self._nonempty: dict[str, np.ndarray] = {}
        self._index: pd.Index | None = None

    # ---- columns --------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.ids)

    @property
    def n(self) -> int:
        return len(self.ids)

    def put(self, name: str, value) -> None:
        """Add a column; its kind follows from the value's type."""
        if isinstance(value, Ragged):
            kind, store = "ragged", self.ragged
        elif sp.issparse(value):
            if not (type(value) is sp.csr_matrix and value.has_sorted_indices):  # (a gathered column is)
                value = sp.csr_matrix(value)
                value.sort_indices()
            kind, store = "sparse", self.sparse
        else:
            value = np.asarray(value)
            kind, store = ("strings", self.strings) if value.dtype == object else ("dense", self.dense)
        if (len(value) if kind != "sparse" else value.shape[0]) != self.n:
            raise ValueError(f"column {name!r} has {len(value)} rows, the store {self.n}")
        for other in KINDS:
            if other != kind:
                getattr(self, other).pop(name, None)
        self._lazy.pop(name, None)
        self._nonempty.pop(name, None)
        store[name] = value

    def get(self, name: str):
        lazy = self._lazy.pop(name, None)
        if lazy is not None:
            self.put(name, lazy[1]())
        for kind in KINDS:
            col = getattr(self, kind)
            if name in col:
                return col[name]
        if self._arrow is not None and name in self._arrow.column_names:
            col = StringColumn(self._arrow.column(name))
            self.strings[name] = col
            return col
        raise KeyError(f"the listing store has no column {name!r}")

    __getitem__ = get

    def nonempty(self, name: str) -> np.ndarray:
        """Per row: whether the string column ``name`` is non-empty (cached). A store opened from
        disk reads the Arrow offsets, and a lazily gathered one asks its sources: no Python string
        is made (an online match's candidates would otherwise turn a long text column into
        strings only to test it: ~30 ms a thousand listings for ``all``)."""
        found = self._nonempty.get(name)
        if found is None:
            if name in self._lazy and self._sources is not None:
                found = np.concatenate([s.nonempty(name)[rows] for s, rows in self._sources])
            else:
                col = self.get(name)
                if isinstance(col, StringColumn):
                    import pyarrow.compute as pc
                    found = pc.binary_length(col.array).to_numpy(zero_copy_only=False) > 0
                else:
                    found = np.fromiter(map(len, col), dtype=np.int64, count=len(col)) > 0
            found = self._nonempty[name] = np.asarray(found, bool)
        return found

    def __contains__(self, name: str) -> bool:
        return any(name in getattr(self, k) for k in KINDS) or name in self._lazy or (
            self._arrow is not None and name in self._arrow.column_names)

    def columns(self) -> dict[str, str]:
        out = {}
        names = list(self.strings) + ([c for c in self._arrow.column_names if c != "item_id"]
                                      if self._arrow is not None else [])
        for name in names:
            out[name] = "strings"
        for kind in KINDS[1:]:
            for name in getattr(self, kind):
                out[name] = kind
        for name, (kind, _) in self._lazy.items():
            out[name] = kind
        return out

    # ---- rows -----------------------------------------------------------------------
    def rows(self, item_ids, what: str = "pairs", column: str = "item_id") -> np.ndarray:
        """Row of each item id; an id that is not in the store is a DataError naming it."""
        if self._index is None:
            self._index = pd.Index(self.ids)
            if not self._index.is_unique:
                dup = self._index[self._index.duplicated()][0]
                raise DataError(f"item_id {dup!r} occurs twice in the listing store", column="item_id")
        ids = pd.Series(item_ids).astype(str).to_numpy(dtype=object)
        r = self._index.get_indexer(ids)
        if (r < 0).any():
            bad = int(np.flatnonzero(r < 0)[0])
            raise DataError(f"{what} row {bad + 1} names item_id {ids[bad]!r} that is not among the listings",
                            column=column)
        return r.astype(np.int64)

    def take(self, idx: np.ndarray) -> "ListingStore":
        """A store of the listings at rows ``idx`` (in that order)."""
        return ListingStore.gather([(self, idx)])

    @staticmethod
    def gather(parts: list, lazy: bool = False) -> "ListingStore":
        """One store of the rows ``rows`` of each ``(store, rows)`` in ``parts`` (``rows`` None: all),
        one after another, each value copied once (``take`` then ``append`` copies twice).
        ``lazy``: each column is gathered when it is first read (scoring a few pairs reads a
        fraction of the columns; the long texts are the costly ones to gather)."""
        stores = [s for s, _ in parts]
        first = stores[0]
        for other in stores[1:]:
            if first.meta.get("pipeline") != other.meta.get("pipeline"):
                raise DupsearchError("cannot append a listing store built by another feature pipeline")
            if other.columns() != first.columns():
                raise DupsearchError(f"cannot append a listing store with other columns "
                                     f"({sorted(set(first.columns()) ^ set(other.columns()))})")
        parts = [(s, np.arange(s.n, dtype=np.int64) if rows is None else np.asarray(rows, np.int64))
                 for s, rows in parts]
        out = ListingStore(np.concatenate([s.ids[rows] for s, rows in parts]), first.meta)
        if lazy:
            out._sources = parts
        for name, kind in first.columns().items():
            if lazy:
                out._lazy[name] = (kind, lambda name=name, kind=kind: _gather_column(parts, name, kind))
            else:
                out.put(name, _gather_column(parts, name, kind))
        return out

    def frame(self, idx: np.ndarray | None = None) -> pd.DataFrame:
        """The string and 1-D number columns as a DataFrame (what stacked models read)."""
        idx = np.arange(self.n) if idx is None else np.asarray(idx, np.int64)
        data = {"item_id": self.ids[idx]}
        for name, kind in self.columns().items():
            if kind == "strings" or (kind == "dense" and self.get(name).ndim == 1):
                data[name] = self.get(name)[idx]
        return pd.DataFrame(data)

    def mapped_arrays(self) -> list[np.ndarray]:
        """The arrays behind the columns (memory-mapped in a store opened from disk), the string
        columns' Arrow buffers as bytes: what ``Index.warm`` touches."""
        out: list[np.ndarray] = list(self.dense.values())
        for m in self.sparse.values():
            out += [m.data, m.indices, m.indptr]
        for r in self.ragged.values():
            out += [r.offsets, r.rows]
        if self._arrow is not None:
            for column in self._arrow.columns:
                for chunk in column.chunks:
                    out += [np.frombuffer(b, np.uint8) for b in chunk.buffers() if b is not None]
        return out

    def append(self, other: "ListingStore") -> "ListingStore":
        """This store followed by ``other``'s rows: equal to a store built from both tables at once."""
        return ListingStore.gather([(self, None), (other, None)])

    # ---- disk -----------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        """Write the store as a directory (atomically: a half-written store never appears)."""
        from dupsearch.atomic import atomic_directory
        path = Path(path)
        with atomic_directory(path, own=(STORE_FILE,)) as tmp:
            strings = {"item_id": pa.array(self.ids.astype(str), pa.string())}
            manifest = {"format": STORE_FORMAT, "n": self.n, "meta": self.meta, "columns": {}}
            with open(tmp / ARRAYS_FILE, "wb") as fh:
                packed = _ArrayWriter(fh)
                for name, kind in self.columns().items():
                    col = self.get(name)
                    entry: dict = {"kind": kind}
                    if kind == "strings":
                        strings[name] = pa.array([str(x) for x in col], pa.string())
                    elif kind == "dense":
                        entry["array"] = packed.add(col)
                    elif kind == "sparse":
                        entry["shape"] = list(col.shape)
                        entry["arrays"] = {part: packed.add(getattr(col, part)) for part in ("indptr", "indices", "data")}
                    else:
                        entry["arrays"] = {"offsets": packed.add(col.offsets), "rows": packed.add(col.rows)}
                    manifest["columns"][name] = entry
            _write_strings(tmp / STRINGS_FILE, pa.table(strings))
            (tmp / STORE_FILE).write_text(json.dumps(manifest, indent=1, ensure_ascii=False))
        return path

    @classmethod
    def open(cls, path: str | Path, mmap: bool = True) -> "ListingStore":
        """Open a saved store; arrays are memory-mapped (pages load when rows are read)."""
        path = Path(path)
        mf = path / STORE_FILE
        if not mf.is_file():
            raise DupsearchError(f"{path} is not a dupsearch listing store (no {STORE_FILE})")
        try:
            manifest = json.loads(mf.read_text())
        except (OSError, ValueError) as e:
            raise DataError(f"unreadable listing store manifest ({e})", path=str(mf)) from None
        array = _array_reader(path, manifest, mmap)  # refuses a format this code does not read
        try:
            table = pa.ipc.open_file(pa.memory_map(str(path / STRINGS_FILE))).read_all()
        except (OSError, pa.ArrowInvalid) as e:
            raise DataError(f"unreadable listing store strings ({e})", path=str(path / STRINGS_FILE)) from None
        self = cls(table.column("item_id").to_numpy(zero_copy_only=False), manifest.get("meta"))
        self._arrow = table
        for name, e in manifest["columns"].items():
            if e["kind"] == "dense":
                self.dense[name] = array(e, None)
            elif e["kind"] == "sparse":
                self.sparse[name] = sp.csr_matrix((array(e, "data"), array(e, "indices"), array(e, "indptr")),
                                                  shape=tuple(e["shape"]), copy=False)
            elif e["kind"] == "ragged":
                self.ragged[name] = Ragged(array(e, "offsets"), array(e, "rows"))
        if self.n != manifest["n"]:
            raise DataError(f"holds {self.n} listings, its manifest says {manifest['n']}", path=str(path))
        return self

    @staticmethod
    def concat_saved(parts: list[str | Path], path: str | Path, meta: dict | None = None) -> Path:
        """Write the saved stores ``parts`` one after another as one saved store at ``path``,
        column by column into memory-mapped files: memory stays bounded by one part's column
        however large the result (a catalogue's chunks, built in parallel)."""
        from dupsearch.atomic import atomic_directory
        parts = [Path(p) for p in parts]
        if not parts:
            raise ValueError("concat_saved needs at least one store")
        manifests = [json.loads((p / STORE_FILE).read_text()) for p in parts]
        readers = [_array_reader(p, m, mmap=True) for p, m in zip(parts, manifests)]  # formats checked
        first = manifests[0]
        for p, m in zip(parts, manifests):
            if {k: v["kind"] for k, v in m["columns"].items()} != {k: v["kind"] for k, v in first["columns"].items()} \
                    or m["meta"].get("pipeline") != first["meta"].get("pipeline"):
                raise DupsearchError(f"cannot concatenate {p}: other columns or another feature pipeline")
        counts = [m["n"] for m in manifests]
        n = int(sum(counts))
        check_free_space(Path(path).parent, sum(_folder_bytes(p) for p in parts), "the listing store")
        with atomic_directory(Path(path), own=(STORE_FILE,)) as tmp:
            tables = [pa.ipc.open_file(pa.memory_map(str(p / STRINGS_FILE))) for p in parts]
            with pa.OSFile(str(tmp / STRINGS_FILE), "wb") as sink, \
                    pa.ipc.new_file(sink, tables[0].schema) as writer:
                for t in tables:
                    for i in range(t.num_record_batches):
                        writer.write_batch(t.get_batch(i))
            out_cols, plan = {}, []  # plan: (entry, part, fill, sources, dtype, shape) per output array
            for name, e in first["columns"].items():
                kind = e["kind"]
                entry = out_cols[name] = {k: v for k, v in e.items()
                                          if k not in ("file", "files", "array", "arrays", "shape")}
                sources = lambda part, name=name: [read(m["columns"][name], part)  # noqa: E731
                                                   for read, m in zip(readers, manifests)]
                if kind == "dense":
                    arrays = sources(None)
                    plan.append((entry, None, _fill_rows, arrays, arrays[0].dtype, (n, *arrays[0].shape[1:])))
                elif kind == "sparse":
                    entry["shape"] = [n, e["shape"][1]]
                    indices, data = sources("indices"), sources("data")
                    # one index dtype for indices and indptr (scipy would copy mixed ones to int64)
                    nnz = int(sum(len(a) for a in indices))
                    idx = np.int32 if nnz < 2**31 and all(a.dtype == np.int32 for a in indices) else np.int64
                    plan += [(entry, "indptr", _fill_offsets, sources("indptr"), idx, (n + 1,)),
                             (entry, "indices", _fill_rows, indices, idx, (nnz,)),
                             (entry, "data", _fill_rows, data, data[0].dtype, (nnz,))]
                elif kind == "ragged":
                    rows = sources("rows")
                    rows = [r for r in rows if len(r)] or rows[:1]
                    plan += [(entry, "offsets", _fill_offsets, sources("offsets"), np.int64, (n + 1,)),
                             (entry, "rows", _fill_rows, rows, rows[0].dtype,
                              (int(sum(len(r) for r in rows)), *rows[0].shape[1:]))]
            size = 0
            for entry, part, _, _, dtype, shape in plan:
                size += -size % _ALIGN
                ref = {"offset": size, "dtype": np.dtype(dtype).str, "shape": [int(x) for x in shape]}
                if part is None:
                    entry["array"] = ref
                else:
                    entry.setdefault("arrays", {})[part] = ref
                size += int(np.prod(shape, dtype=np.int64)) * np.dtype(dtype).itemsize
            if size:  # filled through one memory map: memory stays bounded by the parts' pages
                out = np.memmap(tmp / ARRAYS_FILE, dtype=np.uint8, mode="w+", shape=(size,))
                for entry, part, fill, arrays, _, _ in plan:
                    fill(_array_at(out, entry["array"] if part is None else entry["arrays"][part]), arrays)
                out.flush()
                del out
            else:
                (tmp / ARRAYS_FILE).write_bytes(b"")
            manifest = {"format": STORE_FORMAT, "n": n, "meta": {**first["meta"], **(meta or {})}, "columns": out_cols}
            (tmp / STORE_FILE).write_text(json.dumps(manifest, indent=1, ensure_ascii=False))
        return Path(path)

    def equals(self, other: "ListingStore") -> bool:
        """Same ids and the same values in every column (for tests and checks)."""
        if not np.array_equal(self.ids, other.ids) or self.columns() != other.columns():
            return False
        for name, kind in self.columns().items():
            a, b = self.get(name), other.get(name)
            if kind == "sparse":
                if a.shape != b.shape or (a != b).nnz:
                    return False
            elif kind == "ragged":
                if not (np.array_equal(a.offsets, b.offsets) and np.array_equal(np.asarray(a.rows), np.asarray(b.rows))):
                    return False
            elif kind == "strings":
                if not np.array_equal(np.asarray(a).astype(str), np.asarray(b).astype(str)):
                    return False
            elif not np.array_equal(np.asarray(a), np.asarray(b), equal_nan=True):
                return False
        return True


class _ArrayWriter:
    """Arrays written one after another into one open file, each at a 64-byte aligned offset;
    ``add`` returns what ``store.json`` records of it (offset, dtype, shape)."""

    def __init__(self, fh):
        self.fh, self.at = fh, 0

    def add(self, array: np.ndarray) -> dict:
        a = np.ascontiguousarray(array)
        if a.dtype.hasobject:
            raise TypeError("a listing store holds no object arrays outside its string columns")
        pad = -self.at % _ALIGN
        self.fh.write(b"\0" * pad)
        self.at += pad
        ref = {"offset": self.at, "dtype": a.dtype.str, "shape": list(a.shape)}
        self.fh.write(a.reshape(-1).view(np.uint8))
        self.at += a.nbytes
        return ref


def _array_at(buf: np.ndarray, ref: dict) -> np.ndarray:
    """The array ``ref`` (offset, dtype, shape) names in the bytes ``buf``: a view, no copy."""
    dtype, shape, at = np.dtype(ref["dtype"]), tuple(int(x) for x in ref["shape"]), int(ref["offset"])
    nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if dtype.hasobject or at < 0 or at + nbytes > len(buf):
        raise ValueError(f"an array of {nbytes} bytes at {at} does not fit the file's {len(buf)} bytes")
    return buf[at:at + nbytes].view(dtype).reshape(shape)


def _array_reader(path: Path, manifest: dict, mmap: bool):
    """``read(entry, part)``: a saved store's array (``part`` None: a dense column's one array),
    memory-mapped when ``mmap``; a damaged file is a DataError naming it, a format this code
    does not read a DupsearchError."""
    if manifest.get("format") not in READ_FORMATS:
        raise DupsearchError(f"{path} holds listing store format {manifest.get('format')}; this dupsearch "
                             f"reads formats {', '.join(map(str, READ_FORMATS))}: build it again")
    if manifest.get("format") == 1:  # one .npy file per array
        def read_npy(e: dict, part: str | None) -> np.ndarray:
            f = path / (e["file"] if part is None else e["files"][part])
            try:
                return np.load(f, mmap_mode="r" if mmap else None, allow_pickle=False)
            except (OSError, ValueError) as exc:
                raise DataError(f"unreadable listing store array ({exc})", path=str(f)) from None
        return read_npy
    file = path / ARRAYS_FILE
    try:
        if not file.stat().st_size:  # every array empty (a file of no bytes cannot be mapped)
            buf = np.zeros(0, np.uint8)
        else:
            buf = np.memmap(file, dtype=np.uint8, mode="r") if mmap else np.fromfile(file, np.uint8)
    except (OSError, ValueError) as exc:
        raise DataError(f"unreadable listing store arrays ({exc})", path=str(file)) from None

    def read(e: dict, part: str | None) -> np.ndarray:
        try:
            return _array_at(buf, e["array"] if part is None else e["arrays"][part])
        except (KeyError, TypeError, ValueError) as exc:
            raise DataError(f"unreadable listing store array ({exc})", path=str(file)) from None
    return read


def _fill_rows(out: np.ndarray, arrays: list[np.ndarray]) -> None:
    """Arrays stacked along the first axis into ``out``, one array read at a time."""
    at = 0
    for a in arrays:
        out[at:at + len(a)] = a
        at += len(a)


def _fill_offsets(out: np.ndarray, offsets: list[np.ndarray]) -> None:
    """CSR indptr / ragged offsets of parts laid one after another (each shifted by the rows before)."""
    at, base = 0, 0
    out[0] = 0
    for o in offsets:
        out[at + 1:at + len(o)] = np.asarray(o[1:], np.int64) + base
        at += len(o) - 1
        base += int(o[-1])


def _write_strings(path: Path, table: pa.Table) -> None:
    """String columns as an uncompressed Arrow IPC file (memory-mappable), in batches of 64k rows."""
    with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
        for batch in table.to_batches(max_chunksize=65_536):
            writer.write_batch(batch)
