"""Prepared listings and the hashing and sparse-row helpers every feature family uses.

Per listing (once): ``prepare_listings`` cleans and normalises the fields; ``hash_strings``
gives stable 64-bit hashes of tokens and values (the same in every process, so a listing store
built anywhere holds the same columns); ``set_matrix`` turns (listing, hashed n-gram) pairs
into binary CSR rows. Per pair (vectorised over integer rows ``ia``, ``ib``): ``intersect``
finds the entries two rows share, ``pair_sum`` adds them up per pair.
"""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pandas as pd
import scipy.sparse as sp

from dupsearch.io.schema import cell_text
from dupsearch.text.normalize import normalize_text

CATEGORY_COLUMNS = ["category_l1", "category_l2", "category_l3", "category_l4"]
# Text fields of a prepared listing; ``text`` is title + description, ``all`` adds
# attribute values (model numbers often live only there).
TEXT_FIELDS = ["title", "description", "text", "attrs"]
PREPARED_COLUMNS = (
    ["item_id", "title", "description", "title_raw", "description_raw", "text", "attrs", "attrs_key",
     "all", "attributes", "price", "images",
     "n_images", "fill_rate"] + CATEGORY_COLUMNS
)
# Fields whose fill rate describes how complete a listing is (seed item 1).
_FILL_FIELDS = ["title", "description", *CATEGORY_COLUMNS, "attributes", "price", "images"]



def _norm_attributes(attrs: object) -> dict[str, str]:
    if attrs is None or (isinstance(attrs, float) and np.isnan(attrs)):
        return {}
    if isinstance(attrs, str):
        attrs = json.loads(attrs) if attrs.strip() else {}
    out = {}
    for k, v in dict(attrs).items():
        k, v = normalize_text(k), normalize_text(v)
        if k and v:
            out[k] = v
    return out


def prepare_listings(listings: pd.DataFrame, cleaner=None) -> pd.DataFrame:
    """Normalized per-listing fields, computed once per listing (not per pair), as a DataFrame
    (``prepared_columns``)."""
    return pd.DataFrame(prepared_columns(listings, cleaner), columns=PREPARED_COLUMNS, copy=False)


def prepared_columns(listings: pd.DataFrame, cleaner=None) -> dict:
    """Normalized per-listing fields, computed once per listing (not per pair): column name ->
    Series (or array), in ``PREPARED_COLUMNS``. A store is built from these columns as they are
    (a DataFrame of them cost ~0.6 ms: a few percent of matching one listing).

    `cleaner` (a fitted ``HomoglyphCleaner``) undoes look-alike letter swaps in title
    and description before normalization; ``title_raw``/``description_raw`` keep the
    uncleaned text for the "broken word" features.

    Text columns are object columns of Python strings, built as lists and put into the frame
    once: the families read them as Python strings, and pandas' Arrow strings (or one column
    assignment at a time) would cost more than the rest of preparing one listing.
    """
    n = len(listings)

    def col(name, default):
        return listings[name].tolist() if name in listings else [default] * n

    raw_title = [cell_text(t) for t in col("title", "")]
    raw_desc = [cell_text(t) for t in col("description", "")]
    out: dict[str, list] = {"item_id": listings["item_id"].astype(str).tolist()}
    out["title_raw"] = [normalize_text(t) for t in raw_title]
    out["description_raw"] = [normalize_text(t) for t in raw_desc]
    if cleaner is not None:
        out["title"] = [normalize_text(t) for t in cleaner.clean_many(raw_title)]
        out["description"] = [normalize_text(t) for t in cleaner.clean_many(raw_desc)]
    else:
        out["title"] = out["title_raw"]
        out["description"] = out["description_raw"]
    out["text"] = [f"{t} {d}".strip() for t, d in zip(out["title"], out["description"])]
    attrs = [_norm_attributes(a) for a in col("attributes", None)]
    out["attributes"] = attrs
    out["attrs"] = [" ".join(f"{k} {v}" for k, v in sorted(a.items())) for a in attrs]
    # Unambiguous identity of an attribute dict ("attrs" text can coincide for different dicts).
    out["attrs_key"] = [json.dumps(sorted(a.items()), ensure_ascii=False) for a in attrs]
    out["all"] = [f"{t} {' '.join(a.values())}".strip() for t, a in zip(out["text"], attrs)]
    for c in CATEGORY_COLUMNS:
        out[c] = [normalize_text(t) for t in col(c, "")]
    price = listings["price"] if "price" in listings else pd.Series(np.full(n, np.nan))
    price = (price.to_numpy(dtype=float) if pd.api.types.is_float_dtype(price.dtype)
             else pd.to_numeric(price, errors="coerce").to_numpy(dtype=float))
    images = [[str(p) for p in x] if isinstance(x, (list, tuple, np.ndarray)) else [] for x in col("images", None)]
    n_images = np.fromiter(map(len, images), np.int64, count=n)
    filled = np.zeros(n)
    for f in _FILL_FIELDS:
        if f == "attributes":
            filled += np.fromiter(map(len, attrs), np.int64, count=n) > 0
        elif f == "price":
            filled += price > 0  # 0 is a placeholder price, as in price features
        elif f == "images":
            filled += n_images > 0
        else:
            filled += np.fromiter(map(len, out[f]), np.int64, count=n) > 0
    frame = {c: _object_array(v) for c, v in out.items()}
    frame.update(price=price, images=_object_array(images), n_images=n_images, fill_rate=filled / len(_FILL_FIELDS))
    return {c: frame[c] for c in PREPARED_COLUMNS}


def _object_array(values: list) -> pd.Series:
    """A list as an object column (its items kept as they are, dicts and lists included; strings
    stay Python strings: pandas would infer its Arrow string type)."""
    out = np.empty(len(values), dtype=object)
    out[:] = values
    return pd.Series(out, dtype=object, copy=False)


def safe_div(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num / den with NaN where den == 0 (undefined, e.g. both texts empty)."""
    num = np.asarray(num, dtype=float)
    den = np.asarray(den, dtype=float)
    out = np.full(num.shape, np.nan)
    np.divide(num, den, out=out, where=den != 0)
    return out


_NGRAM_MUL = np.uint64(1_000_003)


def symmetric(name: str, x_ab: np.ndarray, x_ba: np.ndarray) -> dict[str, np.ndarray]:
    """Order-free view of a directional score: min and max over the two directions.

    Keeps every feature identical for (A, B) and (B, A), which is what pair-order
    test-time augmentation buys, at no extra cost.
    """
    return {f"{name}_min": np.fmin(x_ab, x_ba), f"{name}_max": np.fmax(x_ab, x_ba)}


# ---- stable hashing and set rows (per listing) -------------------------------------------
# Columns of hashed set rows: a 28-bit hash and a 3-bit tag (n-gram order, token class), so the
# sets of one field live in one CSR matrix and one intersection serves every order.
TAG_BITS = 3
SET_HASH_MOD = np.uint64(2**28 - 1)
SET_COLUMNS = 2**31 - 1


def hash_strings(values) -> np.ndarray:
    """Stable 64-bit hash of each string (blake2b; the same in every process and run).
    Each distinct value is hashed once."""
    values = np.asarray(values, dtype=object)
    if not len(values):
        return np.zeros(0, np.uint64)
    codes, uniq = pd.factorize(values)
    h = np.fromiter((int.from_bytes(hashlib.blake2b(str(u).encode("utf-8"), digest_size=8).digest(), "little")
                     for u in uniq), np.uint64, count=len(uniq))
    return h[codes]


def ngram_hashes(sym: np.ndarray, lengths: np.ndarray, order: int) -> tuple[np.ndarray, np.ndarray]:
    """(document, hash) of every n-gram of ``order`` symbols, from the symbols of all documents
    one after another (``lengths`` per document); a rolling polynomial, no loop per document."""
    n_docs = len(lengths)
    m = len(sym) - order + 1
    if m <= 0:
        return np.zeros(0, np.int64), np.zeros(0, np.uint64)
    doc_of = np.repeat(np.arange(n_docs, dtype=np.int64), lengths)
    sym = sym.astype(np.uint64)
    h = np.zeros(m, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for k in range(order):  # wraps modulo 2**64 by design
            h = h * _NGRAM_MUL + sym[k:k + m] + np.uint64(1)
    within = doc_of[:m] == doc_of[order - 1:order - 1 + m]
    return doc_of[:m][within], h[within]


def tagged_columns(h: np.ndarray, tag: int) -> np.ndarray:
    return (((h % SET_HASH_MOD).astype(np.int64)) << TAG_BITS) | int(tag)


def sorted_unique(x: np.ndarray) -> np.ndarray:
    """np.unique by sorting (numpy 2's hash-based unique is several times slower on ints)."""
    x = np.sort(x, kind="stable" if x.dtype == object else None)
    if len(x) < 2:
        return x
    return x[np.r_[True, x[1:] != x[:-1]]]


def set_matrix(doc: np.ndarray, cols: np.ndarray, n_docs: int) -> sp.csr_matrix:
    """Binary CSR rows (one per document) of the distinct columns each document has."""
    from dupsearch.features.kernels import grouped_rows
    indptr, cols, _ = grouped_rows(doc, cols, n_docs)
    # int8 ones: a set row is its indices; the smallest data keeps row gathers cheap
    return sp.csr_matrix((np.ones(len(cols), np.int8), cols.astype(np.int32), indptr),
                         shape=(n_docs, SET_COLUMNS))


def tag_counts(X: sp.csr_matrix) -> np.ndarray:
    """(rows, 2**TAG_BITS) number of entries of each tag in each row."""
    rows = np.repeat(np.arange(X.shape[0]), np.diff(X.indptr))
    k = 1 << TAG_BITS
    return np.bincount(rows * k + (X.indices & (k - 1)), minlength=X.shape[0] * k).reshape(-1, k).astype(float)


def flat_tokens(token_lists: list[list[str]]) -> tuple[np.ndarray, np.ndarray]:
    """All tokens one after another (object array) and the number per document."""
    flat = np.fromiter((t for toks in token_lists for t in toks), dtype=object,
                       count=sum(map(len, token_lists)))
    return flat, np.fromiter(map(len, token_lists), dtype=np.int64, count=len(token_lists))


# ---- pair work (vectorised over row indices) --------------------------------------------
def intersect(A: sp.csr_matrix, B: sp.csr_matrix, ia=None, ib=None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Entries that row ia[k] of A and row ib[k] of B share (every row in order when None):
    (k, position in A.data, position in B.data), from one compiled merge of the sorted rows."""
    from dupsearch.features import kernels
    return kernels.intersect(A, B, ia, ib)


def shared_count(A: sp.csr_matrix, B: sp.csr_matrix, ia=None, ib=None, by_tag: bool = False) -> np.ndarray:
    """Entries row ia[k] of A and row ib[k] of B share; with ``by_tag`` a (pairs, 2**TAG_BITS) array."""
    from dupsearch.features import kernels
    return kernels.shared_count(A, B, ia, ib, n_tags=(1 << TAG_BITS) if by_tag else 1)


def pair_dot(A: sp.csr_matrix, B: sp.csr_matrix, ia=None, ib=None) -> np.ndarray:
    """Row-wise dot products of row ia[k] of A and row ib[k] of B."""
    from dupsearch.features import kernels
    return kernels.pair_dot(A, B, ia, ib)


def pair_sum(rows: np.ndarray, weights: np.ndarray, n: int) -> np.ndarray:
    return np.bincount(rows, weights=weights, minlength=n).astype(float)


def nan_where(mask: np.ndarray, values: np.ndarray) -> np.ndarray:
    return np.where(mask, np.nan, values)
