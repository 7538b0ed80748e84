"""Embedding similarity features (seed items 5, 9, 10, 11): text and photo encoders.

Embeddings are computed once per listing (``FeaturePipeline.build_store``) into store columns:

- ``emb|<encoder>|text`` / ``emb|<encoder>|title``: (n, dim) unit vectors of "title | category |
  description" and of the title alone, with a ``.present`` mask (no text: no vector);
- ``words|<encoder>``: ragged (words, dim) unit word vectors (FastText word alignment);
- ``img|<encoder>``: ragged (photos, dim), one row per readable photo.

Pair work gathers rows by index and pads the ragged ones of a sub-batch into dense
(pairs, rows, dim) arrays.
"""

from __future__ import annotations

import numpy as np
from dupsearch.features.base import symmetric
from dupsearch.features.family import Family
from dupsearch.features.store import Ragged

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


def image_set_stats(A: np.ndarray, ma: np.ndarray, B: np.ndarray, mb: np.ndarray,
                    metric: str = "cosine") -> dict[str, np.ndarray]:
    """Summaries of the similarity matrices of padded photo sets ``A`` (n, R, d) / ``B`` with row
    masks ``ma`` / ``mb`` (see ``image_set_features`` for the names); NaN where a side has none."""
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
    if metric == "hamming":
        for lv in HAMMING_LEVELS:
            vals[f"n_within_{lv:g}"] = (m & (S >= 1 - lv)).sum((1, 2))
        vals["hamming_min"] = (1 - mx) * dim
        vals["hamming_mean"] = (1 - mean) * dim
    else:
        for lv in COSINE_LEVELS:
            vals[f"n_above_{lv:g}"] = (m & (S >= lv)).sum((1, 2))
    return {k: np.where(ok, v, np.nan).astype(float) for k, v in vals.items()}


def image_set_features(photos: Ragged, ia: np.ndarray, ib: np.ndarray, prefix: str,
                       metric: str = "cosine", max_rows: int | None = None) -> dict[str, np.ndarray]:
    """Photo-set similarity summaries of pairs of listings (rows ``ia``, ``ib`` of ``photos``).

    cosine encoders: max, mean, mean of row-wise best match (both directions: min, max and their
    mean), and the number of photo pairs above each level of ``COSINE_LEVELS``. Hamming
    (perceptual hash) encoders: the same over the share of equal bits, plus the minimum and mean
    Hamming distance in bits and the number of photo pairs within ``HAMMING_LEVELS`` of the hash
    length. NaN when either listing has no readable photo.
    """
    n = len(ia)
    cols: dict[str, np.ndarray] = {}
    for s in range(0, max(n, 1), SUB_BATCH):
        A, ma = photos.pad(ia[s:s + SUB_BATCH], max_rows)
        B, mb = photos.pad(ib[s:s + SUB_BATCH], max_rows)
        for k, v in image_set_stats(A, ma, B, mb, metric).items():
            cols.setdefault(k, np.full(n, np.nan))[s:s + SUB_BATCH] = v[:n - s]
    return {f"{prefix}.{k}": v for k, v in cols.items()}


def word_alignment(words: Ragged, ia: np.ndarray, ib: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Soft word overlap: each word of A matched to its most similar word of B, averaged (and
    back). NaN when a side has no word vectors."""
    n = len(ia)
    ab, ba = np.full(n, np.nan), np.full(n, np.nan)
    for s in range(0, n, SUB_BATCH):
        A, ma = words.pad(ia[s:s + SUB_BATCH])
        B, mb = words.pad(ib[s:s + SUB_BATCH])
        S = np.einsum("nid,njd->nij", A, B)
        S_rows = np.where(mb[:, None, :], S, -np.inf).max(axis=2)  # best B word per A word
        S_cols = np.where(ma[:, :, None], S, -np.inf).max(axis=1)  # best A word per B word
        ka, kb = ma.sum(1), mb.sum(1)
        ok = (ka > 0) & (kb > 0)
        r = np.where(ma, S_rows, 0.0).sum(1)
        c = np.where(mb, S_cols, 0.0).sum(1)
        ab[s:s + SUB_BATCH] = np.where(ok, r / np.maximum(ka, 1), np.nan)
        ba[s:s + SUB_BATCH] = np.where(ok, c / np.maximum(kb, 1), np.nan)
    return ab, ba


def present_column(name: str) -> str:
    return f"{name}.present"


class TextEmbeddingFamily(Family):
    """Cosines of text / title embeddings, principal-direction products, FastText word alignment.
    The pipeline encodes each listing once into the store (``text_column`` / ``words_column``)."""

    name = "embeddings"

    def __init__(self, encoders=(), word_encoders=(), components: int = 0):
        super().__init__()
        self.encoders = tuple(encoders)
        self.word_encoders = tuple(word_encoders)
        self.components = components

    def settings(self) -> dict:
        return {"encoders": list(self.encoders), "word_encoders": list(self.word_encoders),
                "components": self.components}

    def _compare(self, store, ia, ib):
        out: dict[str, np.ndarray] = {}
        for enc in self.encoders:
            for field in ("text", "title"):
                col = text_column(enc, field)
                E = np.asarray(store[col])
                present = np.asarray(store[present_column(col)])
                A, B = E[ia].astype(np.float32), E[ib].astype(np.float32)
                na, nb = np.linalg.norm(A, axis=1), np.linalg.norm(B, axis=1)
                ok = present[ia] & present[ib] & (na > 0) & (nb > 0)
                cos = np.full(len(ia), np.nan)
                cos[ok] = np.einsum("ij,ij->i", A[ok], B[ok]) / (na[ok] * nb[ok])
                out[f"embeddings.{enc}.{field}_cosine"] = cos
            col = text_column(enc, "proj")
            if col in store:
                P = np.asarray(store[col])
                present = np.asarray(store[present_column(text_column(enc, "text"))])
                ok = present[ia] & present[ib]
                A, B = P[ia], P[ib]
                for j in range(P.shape[1]):
                    out[f"embeddings.{enc}.pc{j}_product"] = np.where(ok, A[:, j] * B[:, j], np.nan)
                    out[f"embeddings.{enc}.pc{j}_absdiff"] = np.where(ok, np.abs(A[:, j] - B[:, j]), np.nan)
            if enc in self.word_encoders:
                # Directional, so computed both ways and averaged: the seed's pair-order test-time
                # augmentation for FastText, with min and max kept beside the mean.
                ab, ba = word_alignment(store[words_column(enc)], ia, ib)
                out[f"embeddings.{enc}.align_tta"] = (ab + ba) / 2
                out.update(symmetric(f"embeddings.{enc}.align", ab, ba))
        return out


class ImageFamily(Family):
    """Photo-set similarities under each image encoder (``image_set_features``); the pipeline
    encodes each photo once into the store (``image_column``)."""

    name = "images"

    def __init__(self, encoders=(), metrics=(), max_photos: int = 10):
        super().__init__()
        self.encoders = tuple(encoders)
        self.metrics = tuple(metrics)
        self.max_photos = max_photos

    def settings(self) -> dict:
        return {"encoders": list(self.encoders), "metrics": list(self.metrics), "max_photos": self.max_photos}

    def _compare(self, store, ia, ib):
        out: dict[str, np.ndarray] = {}
        for enc, metric in zip(self.encoders, self.metrics):
            out.update(image_set_features(store[image_column(enc)], ia, ib, f"images.{enc}", metric,
                                          self.max_photos))
        return out
