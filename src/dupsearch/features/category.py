"""Category features (seed item 1): level matches, level-4 partial match, fill rates,
and the raw top-level category as a categorical feature."""

from __future__ import annotations

import numpy as np
from rapidfuzz import fuzz

from dupsearch.features.base import CATEGORY_COLUMNS, hash_strings
from dupsearch.features.family import Family
from dupsearch.features.kernels import string_pair_scores

# Categorical columns are returned as strings; the model marks them categorical.
CATEGORICAL = ["category.l1_pair"]
_EMPTY = hash_strings([""])[0]


class CategoryFamily(Family):
    name = "category"

    def listing_state(self, builder):
        # One hash per level: equality of two listings' categories is an integer comparison.
        return {"category.codes": np.stack([hash_strings(builder.texts(c)) for c in CATEGORY_COLUMNS], axis=1)}

    def _compare(self, store, ia, ib):
        out: dict[str, np.ndarray] = {}
        codes = np.asarray(store["category.codes"])
        A, B = codes[ia], codes[ib]
        path_equal = np.ones(len(ia), dtype=bool)
        for level in range(1, len(CATEGORY_COLUMNS) + 1):
            a, b = A[:, level - 1], B[:, level - 1]
            known = (a != _EMPTY) & (b != _EMPTY)
            out[f"category.l{level}_equal"] = np.where(known, (a == b).astype(float), np.nan)
            path_equal &= a == b
            out[f"category.l{level}_missing"] = (a == _EMPTY).astype(float) + (b == _EMPTY).astype(float)
        out["category.path_equal"] = path_equal.astype(float)
        # Level-4 names are often near-duplicates of each other ("iphone 12" / "iphone 12 pro").
        l4 = store["category_l4"]
        a4, b4 = l4[ia], l4[ib]
        known4 = (A[:, 3] != _EMPTY) & (B[:, 3] != _EMPTY)
        partial = string_pair_scores(list(a4), list(b4), fuzz.token_set_ratio) / 100.0
        out["category.l4_partial"] = np.where(known4, partial, np.nan)
        fill = np.asarray(store["fill_rate"], dtype=float)
        fa, fb = fill[ia], fill[ib]
        out["category.fill_rate_min"] = np.minimum(fa, fb)
        out["category.fill_rate_max"] = np.maximum(fa, fb)
        out["category.fill_rate_diff"] = np.abs(fa - fb)
        # Raw top-level category: the shared one, or both sorted so A|B == B|A.
        l1 = store["category_l1"]
        a1, b1 = l1[ia], l1[ib]
        same = A[:, 0] == B[:, 0]
        lo = np.where(a1 <= b1, a1, b1)
        hi = np.where(a1 <= b1, b1, a1)
        out["category.l1_pair"] = np.where(same, a1, lo + "|" + hi).astype(object)
        return out
