"""What the Spark engine's executors run (:mod:`dupsearch.engines.spark`): the listings read
and validated, blocking keys, ANN vectors and partitions, a scoring group's store and scores, a
bucket of components clustered. Each is a plain function of Arrow data, so PySpark ships it by
reference (dupsearch is installed on every executor) and the local tests call the same code."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from dupsearch.errors import DataError, DupsearchError

ERROR_MARK = "\x1fdupsearch-error\x1f"  # an executor's DupsearchError, carried to the driver


def _carried(e: DupsearchError) -> RuntimeError:
    return RuntimeError(f"{ERROR_MARK}{e}{ERROR_MARK}")


def _guarded(fn, arity: int = 1):
    """``fn`` for an executor: a DupsearchError travels to the driver as its one line. Spark
    reads the arity of the function it is given, so the wrapper has ``fn``'s (1 or 2)."""
    def one(x):
        try:
            return fn(x)
        except DupsearchError as e:
            raise _carried(e) from None

    def two(x, y):
        try:
            return fn(x, y)
        except DupsearchError as e:
            raise _carried(e) from None

    return one if arity == 1 else two


def _guarded_batches(fn):
    """``_guarded`` for a ``mapInArrow`` function: its errors come while Spark iterates."""
    def batches(it):
        try:
            yield from fn(it)
        except DupsearchError as e:
            raise _carried(e) from None
    return batches


def _to_arrow(frame: pd.DataFrame, rows: np.ndarray, schema: pa.Schema | None = None) -> pa.Table:
    """A normalised listings frame as the stage-1 table: ``row`` and the canonical columns
    (attributes map<string,string>, images list<string>, price double, texts string); other
    columns as text, as the blockers compare them."""
    arrays, names = [pa.array(np.asarray(rows, np.int64))], ["row"]
    for c in frame.columns:
        s = frame[c]
        if c == "attributes":
            arr = pa.array([[(str(k), str(v)) for k, v in d.items()] if isinstance(d, dict) else None
                            for d in s.tolist()], type=pa.map_(pa.string(), pa.string()))
        elif c == "images":
            arr = pa.array([[str(p) for p in ps] if isinstance(ps, (list, tuple, np.ndarray)) else None
                            for ps in s.tolist()], type=pa.list_(pa.string()))
        elif c == "price":
            arr = pa.array(pd.to_numeric(s, errors="coerce").astype(float), type=pa.float64(), from_pandas=True)
        else:
            arr = pa.array(s.astype("string"), type=pa.string(), from_pandas=True)
        arrays.append(arr)
        names.append(str(c))
    table = pa.Table.from_arrays(arrays, names=names)
    if schema is not None:
        extra = [c for c in table.column_names if c not in schema.names]
        if extra:
            raise DataError(f"column {extra[0]!r} is not in the first row group of the input; every "
                            "file of a folder must have the same columns", column=extra[0])
        for name in schema.names:
            if name not in table.column_names:
                table = table.append_column(name, pa.nulls(len(table), schema.field(name).type))
        table = table.select(schema.names).cast(schema)
    return table


def _listings_of(table: pa.Table) -> tuple[pd.DataFrame, np.ndarray]:
    """Stage-1 rows back as the frame the local engine reads, sorted by row: (frame, rows)."""
    from dupsearch.io.schema import normalize_listings
    frame = table.to_pandas()
    frame = frame.sort_values("row", kind="stable").reset_index(drop=True)
    rows = frame.pop("row").to_numpy(np.int64)
    frame, _ = normalize_listings(frame)
    return frame, rows


def _read_row_groups(tasks, path_of, mapping, schema, base_dir):
    """Tasks (file, row group, offset and length in it, first row) -> validated listings (stage 1)."""
    from dupsearch.io.readers import _as_mapping
    from dupsearch.io.schema import normalize_listings
    mapping = _as_mapping(mapping)
    for batch in tasks:
        for f, rg, offset, length, first in zip(*(batch.column(i).to_pylist() for i in range(5))):
            path = path_of[f]
            try:
                df = pq.ParquetFile(path).read_row_group(rg).slice(offset, length).to_pandas()
            except (pa.ArrowException, OSError) as e:
                raise DataError(f"cannot read row group {rg} as parquet: {e}", path=path) from None
            if mapping is not None:
                df = mapping.apply_listings(df, path)
            frame, report = normalize_listings(df, source=path, first_row=first + 1)
            frame["images"] = [[p if os.path.isabs(p) or "://" in p else str(Path(base_dir) / p) for p in ps]
                               for ps in frame["images"]]
            out = _to_arrow(frame, np.arange(first, first + len(frame)), schema)
            notes = json.dumps({"skipped": report.skipped, "notes": report.notes, "read": report.rows_read})
            yield from out.append_column("load_report", pa.array([notes] + [None] * (len(out) - 1),
                                                                 pa.string())).to_batches()


def _block_keys(batches, specs):
    """Listings -> (blocker bit, key, row) of every key blocker."""
    from dupsearch.candidates.specs import make_blocker
    blockers = [(bit, make_blocker(s)) for bit, s in specs]
    for batch in batches:
        frame, rows = _listings_of(pa.Table.from_batches([batch]))
        for bit, b in blockers:
            r, keys = b.block_keys(frame)
            keys = np.asarray(keys)
            text = (keys.astype(str) if keys.dtype.kind in "iuU" else
                    np.array([str(k) for k in keys], dtype=object))
            yield pa.record_batch([pa.array(np.full(len(r), bit, np.int32)), pa.array(text, pa.string()),
                                   pa.array(rows[np.asarray(r, np.int64)], pa.int64())],
                                  names=["bit", "key", "row"])


def _partition_text(frame: pd.DataFrame, columns) -> np.ndarray:
    """The values of ``columns`` joined: equal for listings of one partition (``_group_codes``)."""
    if not columns:
        return np.full(len(frame), "", dtype=object)
    parts = [frame[c].astype("string").fillna("").str.strip() for c in columns]
    joined = parts[0].str.cat(parts[1:], sep="\x1f") if len(parts) > 1 else parts[0]
    return joined.to_numpy(dtype=object)


def _ann_vectors(batches, specs, vectorizers):
    """Listings -> (blocker bit, partition, row, exclude key, vector) of every ANN blocker,
    listings with a vector only."""
    from dupsearch.candidates.specs import make_blocker
    blockers = [(bit, make_blocker(s)) for bit, s in specs]
    for batch in batches:
        frame, rows = _listings_of(pa.Table.from_batches([batch]))
        for bit, b in blockers:
            if b.encoder is None and b.column is None and bit not in vectorizers:
                continue  # fewer than two listings: nothing to fit, no vectors (as locally)
            v = b.listing_vectors(frame, vectorizers.get(bit))
            has = np.abs(v).sum(axis=1) > 0 if v.shape[1] else np.zeros(len(frame), bool)
            part = _partition_text(frame, b.partition)
            if b.exclude:
                values = [frame[c].astype("string").fillna("").str.strip() for c in b.exclude]
                blank = np.logical_or.reduce([x.eq("").to_numpy() for x in values])
                ex = _partition_text(frame, b.exclude)
                ex[blank] = None
            else:
                ex = np.full(len(frame), None, dtype=object)
            sel = np.flatnonzero(has)
            vec = np.ascontiguousarray(v[sel], np.float32)
            yield pa.record_batch([pa.array(np.full(len(sel), bit, np.int32)), pa.array(part[sel], pa.string()),
                                   pa.array(rows[sel], pa.int64()), pa.array(ex[sel], pa.string()),
                                   pa.array([r.tobytes() for r in vec], pa.binary())],
                                  names=["bit", "part", "row", "exclude", "vector"])


def _ann_partition(table: pa.Table, specs: dict) -> pa.Table:
    """One ANN partition -> its pairs (a < b rows) with the blocker's bit."""
    from dupsearch.candidates.specs import make_blocker
    empty = pa.table({"a": pa.array([], pa.int64()), "b": pa.array([], pa.int64()), "bit": pa.array([], pa.int32())})
    if table.num_rows < 2:
        return empty
    bit = int(table.column("bit")[0].as_py())
    order = np.argsort(table.column("row").to_numpy(), kind="stable")  # catalogue order, as locally
    table = table.take(pa.array(order))
    rows = table.column("row").to_numpy()
    blocker = make_blocker(specs[bit])
    v = np.frombuffer(b"".join(table.column("vector").to_pylist()), np.float32).reshape(len(rows), -1)
    g = None
    if blocker.exclude:
        g = pd.factorize(pd.Series(table.column("exclude").to_pylist(), dtype=object), use_na_sentinel=True)[0]
        g = g.astype(np.int64)
    src, nb, _, _ = blocker.partition_pairs(v, g)
    a, b = rows[src], rows[nb]
    keep = a != b
    lo, hi = np.minimum(a, b)[keep], np.maximum(a, b)[keep]
    return pa.table({"a": pa.array(lo, pa.int64()), "b": pa.array(hi, pa.int64()),
                     "bit": pa.array(np.full(len(lo), bit, np.int32))})


_MATCHERS: dict = {}


def _matcher(name: str, digest: str, trust: bool):
    """The model, loaded once per Python worker from the copy ``addFile`` shipped."""
    if digest not in _MATCHERS:
        from pyspark import SparkFiles
        from dupsearch.models import DuplicateMatcher
        from dupsearch.threads import one_thread_each
        one_thread_each()  # one Python worker per core
        _MATCHERS[digest] = DuplicateMatcher.load(SparkFiles.get(name), trust=trust)
    return _MATCHERS[digest]


def _score_group(pairs: pa.Table, listings: pa.Table, model: tuple) -> pa.Table:
    """One scoring group: a store of its listings, built once, and its pairs' probabilities."""
    empty = pa.table({"row_a": pa.array([], pa.int64()), "row_b": pa.array([], pa.int64()),
                      "score": pa.array([], pa.float32())})
    if pairs.num_rows == 0:
        return empty
    matcher = _matcher(*model)
    frame, rows = _listings_of(listings.drop_columns(["home"]))
    store = matcher.build_store(frame)
    ra, rb = pairs.column("row_a").to_numpy(), pairs.column("row_b").to_numpy()
    p = matcher.score(store, np.searchsorted(rows, ra), np.searchsorted(rows, rb))
    return pa.table({"row_a": pa.array(ra, pa.int64()), "row_b": pa.array(rb, pa.int64()),
                     "score": pa.array(np.asarray(p, np.float32))})


def _cluster_components(table: pa.Table, thresholds: dict, max_component: int) -> pa.Table:
    """The connected components of one bucket (their pairs, with item ids) -> each member's
    cluster under the three methods (each at its threshold), named by the cluster's smallest
    item id, and its component at the average-link threshold (``key_linked``: what average-link
    clusters one by one, for the report). Components are independent of each other (every
    method works inside one), so one ``cluster_graph`` call serves the whole bucket, as one call
    serves the whole catalogue locally."""
    from dupsearch.cluster.graph import _as_series, _components, cluster_graph, graph_from_rows
    ia = np.asarray(table.column("id_a").to_pylist(), dtype=object)
    ib = np.asarray(table.column("id_b").to_pylist(), dtype=object)
    ids, codes = np.unique(np.concatenate([ia, ib]).astype(str), return_inverse=True)
    n = len(ia)
    graph = graph_from_rows(ids, codes[:n], codes[n:], table.column("score").to_numpy().astype(np.float64),
                            min(thresholds.values()))
    labels = cluster_graph(graph, thresholds, max_component=max_component)
    labels["linked"] = _as_series(graph, _components(graph, thresholds["average"]))
    out = {"item_id": pa.array(ids, pa.string())}
    for method, lab in labels.items():
        lab = lab.reindex(ids).to_numpy()
        first = pd.Series(ids).groupby(lab).transform("min").to_numpy(dtype=object)
        out[f"key_{method}"] = pa.array(first.astype(str), pa.string())
    return pa.table(out)
