"""Fuzzy string similarities (seed item 2), vectorized with rapidfuzz ``cpdist``.

``cpdist`` scores element i of one list against element i of the other in C,
on all cores, so there is no per-pair Python loop.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from rapidfuzz import fuzz, process
from rapidfuzz.distance import JaroWinkler, LCSseq, Levenshtein, Prefix

from dupsearch.features.base import sides

# Partial ratio is quadratic in length; descriptions are cut to keep it bounded.
MAX_CHARS = {"title": 300, "description": 600, "text": 800, "attrs": 400}

SCORERS = {
    "ratio": (fuzz.ratio, 100.0),
    "partial_ratio": (fuzz.partial_ratio, 100.0),
    "token_set_ratio": (fuzz.token_set_ratio, 100.0),
    "token_sort_ratio": (fuzz.token_sort_ratio, 100.0),
    "jaro_winkler": (JaroWinkler.normalized_similarity, 1.0),
    "levenshtein": (Levenshtein.normalized_similarity, 1.0),
    "lcsseq": (LCSseq.normalized_similarity, 1.0),
}


def string_features(batch: pd.DataFrame, fields=("title", "description", "text", "attrs")
                    ) -> pd.DataFrame:
    out: dict[str, np.ndarray] = {}
    for field in fields:
        a, b = sides(batch, field)
        cut = MAX_CHARS.get(field, 600)
        a = [s[:cut] for s in a.astype(str)]
        b = [s[:cut] for s in b.astype(str)]
        empty = np.array([not x or not y for x, y in zip(a, b)])
        for name, (scorer, scale) in SCORERS.items():
            v = process.cpdist(a, b, scorer=scorer, workers=-1).astype(float) / scale
            out[f"strings.{field}.{name}"] = np.where(empty, np.nan, v)
        prefix = process.cpdist(a, b, scorer=Prefix.similarity, workers=-1).astype(float)
        shorter = np.array([min(len(x), len(y)) for x, y in zip(a, b)], dtype=float)
        out[f"strings.{field}.common_prefix"] = np.where(empty, np.nan, prefix / np.maximum(shorter, 1))
        # Longest common subsequence length relative to the shorter text.
        lcs = process.cpdist(a, b, scorer=LCSseq.similarity, workers=-1).astype(float)
        out[f"strings.{field}.lcsseq_shorter"] = np.where(empty, np.nan, lcs / np.maximum(shorter, 1))
    return pd.DataFrame(out)
