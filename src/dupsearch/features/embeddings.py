"""Embedding similarity features (seed items 5, 9, 10, 11): text and photo encoders.

Embeddings are computed once per listing (see ``EmbeddingStore`` in ``features.pipeline``) and
travel in the pair batch as object columns holding one array per listing:

- ``emb|<encoder>|text`` / ``emb|<encoder>|title``: a 1-D unit vector of "title | category |
  description" and of the title alone;
- ``words|<encoder>``: a (words, dim) matrix of unit word vectors (FastText word alignment);
- ``img|<encoder>``: a (photos, dim) matrix, one row per readable photo.

Every function here is a pure function of such a batch, vectorized by padding the per-listing
matrices of a sub-batch into dense (pairs, rows, dim) arrays.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from dupsearch.features.base import symmetric

SUB_BATCH = 2048  # pairs per dense block: bounds memory of (pairs, rows, rows) similarity blocks
# Similarity levels counted for photo pairs: near-identical (re-encoded, resized) and close
# (cropped, recoloured). Hamming thresholds are fractions of the hash length in bits.
COSINE_LEVELS = (0.9, 0.97)
HAMMING_LEVELS = (0.1, 0.2)


def text_column(encoder: str, field: str) -> str:
    return f"emb|{encoder}|{field}"


def words_column(encoder: str) -> str:
    return f"words|{encoder}"


def image_column(encoder: str) -> str:
    return f"img|{encoder}"


def _stack(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Object array of 1-D vectors (or None) -> (matrix, present mask)."""
    present = np.fromiter((v is not None and len(v) > 0 for v in values), bool, count=len(values))
    dim = next((len(v) for v, ok in zip(values, present) if ok), 1)
    out = np.zeros((len(values), dim), np.float32)
    if present.any():
        out[present] = np.stack([values[i] for i in np.flatnonzero(present)]).astype(np.float32)
    return out, present


def _pad(values: np.ndarray, max_rows: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Object array of (rows_i, dim) matrices -> dense (n, R, dim) array and (n, R) row mask."""
    rows = np.fromiter((0 if v is None else len(v) for v in values), np.int64, count=len(values))
    R = int(rows.max()) if len(rows) else 0
    if max_rows is not None:
        R = min(R, max_rows)
    dim = next((v.shape[1] for v in values if v is not None and len(v)), 1)
    out = np.zeros((len(values), max(R, 1), dim), np.float32)
    mask = np.zeros((len(values), max(R, 1)), bool)
    for i, v in enumerate(values):  # a copy per listing, not per pair element: cheap
        k = min(rows[i], R)
        if k:
            out[i, :k] = v[:k]
            mask[i, :k] = True
    return out, mask


def text_embedding_features(batch: pd.DataFrame, encoder: str) -> pd.DataFrame:
    """Cosine of the two listings' text and title embeddings (NaN when a side has no text)."""
    out = {}
    for field in ("text", "title"):
        col = text_column(encoder, field)
        if f"{col}_a" not in batch:
            continue
        A, pa = _stack(batch[f"{col}_a"].to_numpy())
        B, pb = _stack(batch[f"{col}_b"].to_numpy())
        na, nb = np.linalg.norm(A, axis=1), np.linalg.norm(B, axis=1)
        ok = pa & pb & (na > 0) & (nb > 0)
        cos = np.full(len(batch), np.nan)
        cos[ok] = np.einsum("ij,ij->i", A[ok], B[ok]) / (na[ok] * nb[ok])
        out[f"embeddings.{encoder}.{field}_cosine"] = cos
    col = text_column(encoder, "proj")
    if f"{col}_a" in batch:
        A, pa = _stack(batch[f"{col}_a"].to_numpy())
        B, pb = _stack(batch[f"{col}_b"].to_numpy())
        ok = (pa & pb)[:, None]
        for j in range(A.shape[1]):
            out[f"embeddings.{encoder}.pc{j}_product"] = np.where(ok[:, 0], A[:, j] * B[:, j], np.nan)
            out[f"embeddings.{encoder}.pc{j}_absdiff"] = np.where(ok[:, 0], np.abs(A[:, j] - B[:, j]), np.nan)
    return pd.DataFrame(out)


def word_alignment_features(batch: pd.DataFrame, encoder: str) -> pd.DataFrame:
    """Soft word overlap: each word of A matched to its most similar word of B, averaged.

    The score is directional, so it is computed for (A, B) and (B, A) and averaged — the seed's
    pair-order test-time augmentation for FastText — with min and max kept beside the mean.
    """
    col = words_column(encoder)
    wa, wb = batch[f"{col}_a"].to_numpy(), batch[f"{col}_b"].to_numpy()
    n = len(batch)
    ab, ba = np.full(n, np.nan), np.full(n, np.nan)
    for s in range(0, n, SUB_BATCH):
        A, ma = _pad(wa[s:s + SUB_BATCH])
        B, mb = _pad(wb[s:s + SUB_BATCH])
        S = np.einsum("nid,njd->nij", A, B)
        S_rows = np.where(mb[:, None, :], S, -np.inf).max(axis=2)  # best B word per A word
        S_cols = np.where(ma[:, :, None], S, -np.inf).max(axis=1)  # best A word per B word
        ka, kb = ma.sum(1), mb.sum(1)
        ok = (ka > 0) & (kb > 0)
        r = np.where(ma, S_rows, 0.0).sum(1)
        c = np.where(mb, S_cols, 0.0).sum(1)
        ab[s:s + SUB_BATCH] = np.where(ok, r / np.maximum(ka, 1), np.nan)
        ba[s:s + SUB_BATCH] = np.where(ok, c / np.maximum(kb, 1), np.nan)
    out = {f"embeddings.{encoder}.align_tta": (ab + ba) / 2}
    out.update(symmetric(f"embeddings.{encoder}.align", ab, ba))
    return pd.DataFrame(out)


def image_set_features(batch: pd.DataFrame, encoder: str, metric: str = "cosine") -> pd.DataFrame:
    """Summaries of the similarity matrix between the two listings' photo sets.

    cosine encoders: max, mean, mean of row-wise best match (both directions: min, max and their
    mean), and the number of photo pairs above each level of ``COSINE_LEVELS``. Hamming
    (perceptual hash) encoders: the same over the share of equal bits, plus the minimum and mean
    Hamming distance in bits and the number of photo pairs within ``HAMMING_LEVELS`` of the hash
    length. NaN when either listing has no readable photo.
    """
    col = image_column(encoder)
    ia, ib = batch[f"{col}_a"].to_numpy(), batch[f"{col}_b"].to_numpy()
    n = len(batch)
    names = ["max", "mean", "best_mean", "best_min", "best_max"]
    levels = HAMMING_LEVELS if metric == "hamming" else COSINE_LEVELS
    cols = {k: np.full(n, np.nan) for k in names}
    for lv in levels:
        cols[f"n_{'within' if metric == 'hamming' else 'above'}_{lv:g}"] = np.full(n, np.nan)
    if metric == "hamming":
        cols["hamming_min"] = np.full(n, np.nan)
        cols["hamming_mean"] = np.full(n, np.nan)
    for s in range(0, n, SUB_BATCH):
        sl = slice(s, s + SUB_BATCH)
        A, ma = _pad(ia[sl])
        B, mb = _pad(ib[sl])
        dim = A.shape[2]
        S = np.einsum("nid,njd->nij", A, B)
        if metric == "hamming":
            S = (S + dim) / (2 * dim)  # +-1 codes: share of equal bits, in [0, 1]
        m = ma[:, :, None] & mb[:, None, :]
        cnt = m.sum((1, 2))
        ok = cnt > 0
        Sm = np.where(m, S, -np.inf)
        mx = Sm.max((1, 2))
        mean = np.where(m, S, 0.0).sum((1, 2)) / np.maximum(cnt, 1)
        ka, kb = ma.sum(1), mb.sum(1)
        row_best = np.where(ma, Sm.max(2), 0.0).sum(1) / np.maximum(ka, 1)
        col_best = np.where(mb, Sm.max(1), 0.0).sum(1) / np.maximum(kb, 1)
        vals = {"max": mx, "mean": mean, "best_mean": (row_best + col_best) / 2,
                "best_min": np.minimum(row_best, col_best), "best_max": np.maximum(row_best, col_best)}
        for lv in levels:
            if metric == "hamming":
                vals[f"n_within_{lv:g}"] = (m & (S >= 1 - lv)).sum((1, 2))
            else:
                vals[f"n_above_{lv:g}"] = (m & (S >= lv)).sum((1, 2))
        if metric == "hamming":
            vals["hamming_min"] = (1 - mx) * dim
            vals["hamming_mean"] = (1 - mean) * dim
        for k, v in vals.items():
            cols[k][sl] = np.where(ok, v, np.nan)
    return pd.DataFrame({f"images.{encoder}.{k}": v for k, v in cols.items()})
