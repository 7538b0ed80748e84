"""Candidate generation (blocking) for duplicate search: see :mod:`dupsearch.candidates.blocking`."""

from dupsearch.candidates.blocking import (
    PAIR_COLUMNS,
    PHONE_RE,
    Blocker,
    CategoryBlocker,
    ExactKeyBlocker,
    ImageHashBlocker,
    MinHashLSHBlocker,
    blocking_metrics,
    minhash_signatures,
    phone_tokens,
    skeleton,
    true_pairs_from_clusters,
    union_candidates,
    word_shingles,
)

__all__ = [
    "PAIR_COLUMNS", "PHONE_RE", "Blocker", "CategoryBlocker", "ExactKeyBlocker", "ImageHashBlocker",
    "MinHashLSHBlocker", "blocking_metrics", "minhash_signatures", "phone_tokens", "skeleton",
    "true_pairs_from_clusters", "union_candidates", "word_shingles",
]
