"""Pair batches and the sparse helpers every set-based feature family uses.

A *pair batch* is a pandas DataFrame with one row per pair and, for every
prepared listing field ``f``, the columns ``f_a`` and ``f_b``. It carries
everything a feature function needs, so the same function runs locally, in a
worker process or inside Spark's ``mapInArrow`` with no hidden global state.
"""

from __future__ import annotations

import json
from typing import Callable, Iterable

import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.feature_extraction.text import HashingVectorizer

from dupsearch.text.normalize import normalize_text, tokenize

CATEGORY_COLUMNS = ["category_l1", "category_l2", "category_l3", "category_l4"]
# Text fields of a prepared listing; ``text`` is title + description, ``all`` adds
# attribute values (model numbers often live only there).
TEXT_FIELDS = ["title", "description", "text", "attrs"]
PREPARED_COLUMNS = (
    ["item_id", "title", "description", "title_raw", "description_raw", "text", "attrs", "attrs_key",
     "all", "attributes", "price",
     "n_images", "fill_rate"] + CATEGORY_COLUMNS
)
# Fields whose fill rate describes how complete a listing is (seed item 1).
_FILL_FIELDS = ["title", "description", *CATEGORY_COLUMNS, "attributes", "price", "images"]

# Hash width for binary n-gram sets: collisions at 2**22 are negligible for
# listing-sized texts and no vocabulary has to be fitted or saved.
HASH_FEATURES = 2**22


def _missing(v: object) -> bool:
    return v is None or (isinstance(v, float) and np.isnan(v))


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
    """Normalized per-listing fields, computed once per listing (not per pair).

    `cleaner` (a fitted ``HomoglyphCleaner``) undoes look-alike letter swaps in title
    and description before normalization; ``title_raw``/``description_raw`` keep the
    uncleaned text for the "broken word" features.
    """
    n = len(listings)
    col = lambda name, default: listings[name] if name in listings else pd.Series([default] * n, index=listings.index)  # noqa: E731
    out = pd.DataFrame({"item_id": listings["item_id"].astype(str).to_numpy()})
    raw_title = ["" if _missing(t) else str(t) for t in col("title", "")]
    raw_desc = ["" if _missing(t) else str(t) for t in col("description", "")]
    out["title_raw"] = [normalize_text(t) for t in raw_title]
    out["description_raw"] = [normalize_text(t) for t in raw_desc]
    if cleaner is not None:
        out["title"] = [normalize_text(t) for t in cleaner.clean_many(raw_title)]
        out["description"] = [normalize_text(t) for t in cleaner.clean_many(raw_desc)]
    else:
        out["title"] = out["title_raw"]
        out["description"] = out["description_raw"]
    out["text"] = (out["title"] + " " + out["description"]).str.strip()
    attrs = [_norm_attributes(a) for a in col("attributes", None)]
    out["attributes"] = attrs
    out["attrs"] = [" ".join(f"{k} {v}" for k, v in sorted(a.items())) for a in attrs]
    # Unambiguous identity of an attribute dict ("attrs" text can coincide for different dicts).
    out["attrs_key"] = [json.dumps(sorted(a.items()), ensure_ascii=False) for a in attrs]
    out["all"] = (out["text"] + " " + [" ".join(a.values()) for a in attrs]).str.strip()
    for c in CATEGORY_COLUMNS:
        out[c] = [normalize_text(t) for t in col(c, "")]
    out["price"] = pd.to_numeric(col("price", np.nan), errors="coerce").to_numpy(dtype=float)
    images = col("images", None)
    out["n_images"] = [len(x) if isinstance(x, (list, tuple, np.ndarray)) else 0 for x in images]
    filled = np.zeros(n)
    for f in _FILL_FIELDS:
        if f == "attributes":
            filled += np.array([len(a) > 0 for a in attrs])
        elif f == "price":
            filled += out["price"].to_numpy() > 0  # 0 is a placeholder price, as in price features
        elif f == "images":
            filled += out["n_images"].to_numpy() > 0
        else:
            filled += (out[f].str.len() > 0).to_numpy()
    out["fill_rate"] = filled / len(_FILL_FIELDS)
    return out


def join_pairs(prepared: pd.DataFrame, pairs: pd.DataFrame) -> pd.DataFrame:
    """Gather both sides of each pair into one batch (columns ``f_a``, ``f_b``)."""
    index = pd.Index(prepared["item_id"])
    ia = index.get_indexer(pairs["item_id_a"].astype(str))
    ib = index.get_indexer(pairs["item_id_b"].astype(str))
    if (ia < 0).any() or (ib < 0).any():
        bad = np.flatnonzero((ia < 0) | (ib < 0))[0]
        missing = pairs["item_id_a"].iloc[bad] if ia[bad] < 0 else pairs["item_id_b"].iloc[bad]
        raise KeyError(f"pair row {bad + 1} names item_id {missing!r} that is not among the listings")
    # Every prepared column travels, embedding columns included (see features.embeddings).
    cols = [c for c in prepared.columns if c != "item_id"]
    a = prepared[cols].iloc[ia].reset_index(drop=True).add_suffix("_a")
    b = prepared[cols].iloc[ib].reset_index(drop=True).add_suffix("_b")
    return pd.concat([a, b], axis=1)


def sides(batch: pd.DataFrame, field: str) -> tuple[np.ndarray, np.ndarray]:
    return batch[f"{field}_a"].to_numpy(dtype=object), batch[f"{field}_b"].to_numpy(dtype=object)


def encode_sides(a: np.ndarray, b: np.ndarray, encode: Callable[[np.ndarray], sp.csr_matrix]
                 ) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """Encode each *distinct* value once, then gather rows for both sides."""
    n = len(a)
    uniq, inv = np.unique(np.concatenate([a, b]).astype(str), return_inverse=True)
    X = sp.csr_matrix(encode(uniq))
    return X[inv[:n]], X[inv[n:]]


def rowwise_dot(A: sp.spmatrix, B: sp.spmatrix) -> np.ndarray:
    return np.asarray(A.multiply(B).sum(axis=1)).ravel()


def row_nnz(A: sp.csr_matrix) -> np.ndarray:
    return np.diff(A.indptr).astype(float)


def safe_div(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num / den with NaN where den == 0 (undefined, e.g. both texts empty)."""
    num = np.asarray(num, dtype=float)
    den = np.asarray(den, dtype=float)
    out = np.full(num.shape, np.nan)
    np.divide(num, den, out=out, where=den != 0)
    return out


def set_overlap(A: sp.csr_matrix, B: sp.csr_matrix) -> dict[str, np.ndarray]:
    """IoU, Dice and containment of two binary set matrices, row by row."""
    inter = rowwise_dot(A, B)
    na, nb = row_nnz(A), row_nnz(B)
    return {
        "iou": safe_div(inter, na + nb - inter),
        "dice": safe_div(2 * inter, na + nb),
        "containment": safe_div(inter, np.minimum(na, nb)),
        "inter": inter,
    }


_NGRAM_MOD = np.uint64(2**31 - 1)  # column space of hashed n-gram sets (fits int32 indices)
_NGRAM_MUL = np.uint64(1_000_003)


def ngram_set_matrix(ids: np.ndarray, lengths: np.ndarray, order: int) -> sp.csr_matrix:
    """Binary sets of n-grams (rows = documents) from a flat array of symbol ids.

    `ids` holds the symbols (token ids, or character code points) of every document
    one after another, `lengths` how many belong to each. The n-grams are hashed
    with a rolling polynomial over the whole array at once, so no Python loop runs
    per document or per n-gram. Hashes are only compared within one batch.
    """
    n_docs = len(lengths)
    m = len(ids) - order + 1
    if m <= 0:
        return sp.csr_matrix((n_docs, int(_NGRAM_MOD)), dtype=np.float32)
    doc_of = np.repeat(np.arange(n_docs, dtype=np.int64), lengths)
    sym = ids.astype(np.uint64) + np.uint64(1)
    h = np.zeros(m, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for k in range(order):  # wraps modulo 2**64 by design
            h = h * _NGRAM_MUL + sym[k:k + m]
    within = doc_of[:m] == doc_of[order - 1:order - 1 + m]
    rows = doc_of[:m][within].astype(np.uint64)
    cols = h[within] % _NGRAM_MOD
    key = np.unique(rows * _NGRAM_MOD + cols)
    rows, cols = (key // _NGRAM_MOD).astype(np.int64), (key % _NGRAM_MOD).astype(np.int64)
    return sp.csr_matrix((np.ones(len(key), dtype=np.float32), (rows, cols)),
                         shape=(n_docs, int(_NGRAM_MOD)))


def token_ids(token_lists: list[list[str]]) -> tuple[np.ndarray, np.ndarray]:
    """Flat batch-local token ids and per-document token counts."""
    vocab: dict[str, int] = {}
    flat = [vocab.setdefault(t, len(vocab)) for toks in token_lists for t in toks]
    return np.asarray(flat, dtype=np.int64), np.fromiter(map(len, token_lists), dtype=np.int64,
                                                         count=len(token_lists))


def char_codes(texts) -> tuple[np.ndarray, np.ndarray]:
    """Flat code points of texts padded with a space each side (word-boundary n-grams)."""
    padded = [f" {t} " if t else "" for t in texts]
    codes = np.frombuffer("".join(padded).encode("utf-32-le"), dtype=np.uint32)
    return codes.astype(np.int64), np.fromiter(map(len, padded), dtype=np.int64, count=len(padded))


class NgramAnalyzer:
    """Word n-grams of a pre-tokenized document (picklable, unlike a lambda)."""

    def __init__(self, n: int):
        self.n = n

    def __call__(self, tokens: list[str]) -> list[str]:
        n = self.n
        return [" ".join(tokens[i:i + n]) for i in range(len(tokens) - n + 1)]


def binary_hasher(analyzer: Callable) -> HashingVectorizer:
    return HashingVectorizer(analyzer=analyzer, n_features=HASH_FEATURES, binary=True,
                             norm=None, alternate_sign=False, dtype=np.float32)


def tokenized(texts: Iterable[str]) -> list[list[str]]:
    return [tokenize(t) for t in texts]


def symmetric(name: str, x_ab: np.ndarray, x_ba: np.ndarray) -> dict[str, np.ndarray]:
    """Order-free view of a directional score: min and max over the two directions.

    Keeps every feature identical for (A, B) and (B, A), which is what pair-order
    test-time augmentation buys, at no extra cost.
    """
    return {f"{name}_min": np.fmin(x_ab, x_ba), f"{name}_max": np.fmax(x_ab, x_ba)}
