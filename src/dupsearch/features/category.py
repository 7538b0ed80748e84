"""Category features (seed item 1): level matches, level-4 partial match, fill rates,
and the raw top-level category as a categorical feature."""

from __future__ import annotations

import numpy as np
import pandas as pd
from rapidfuzz import fuzz, process

from dupsearch.features.base import CATEGORY_COLUMNS, sides

# Categorical columns are returned as strings; the model marks them categorical.
CATEGORICAL = ["category.l1_pair"]


def category_features(batch: pd.DataFrame) -> pd.DataFrame:
    out: dict[str, np.ndarray] = {}
    path_equal = np.ones(len(batch), dtype=bool)
    for level, c in enumerate(CATEGORY_COLUMNS, start=1):
        a, b = sides(batch, c)
        a, b = a.astype(str), b.astype(str)
        known = (a != "") & (b != "")
        eq = np.where(known, (a == b).astype(float), np.nan)
        out[f"category.l{level}_equal"] = eq
        path_equal &= a == b
        out[f"category.l{level}_missing"] = (a == "").astype(float) + (b == "").astype(float)
    out["category.path_equal"] = path_equal.astype(float)
    # Level-4 names are often near-duplicates of each other ("iphone 12" / "iphone 12 pro").
    a4, b4 = sides(batch, "category_l4")
    a4, b4 = list(a4.astype(str)), list(b4.astype(str))
    known4 = np.array([bool(x) and bool(y) for x, y in zip(a4, b4)])
    partial = process.cpdist(a4, b4, scorer=fuzz.token_set_ratio, workers=-1) / 100.0
    out["category.l4_partial"] = np.where(known4, partial, np.nan)
    fa, fb = batch["fill_rate_a"].to_numpy(float), batch["fill_rate_b"].to_numpy(float)
    out["category.fill_rate_min"] = np.minimum(fa, fb)
    out["category.fill_rate_max"] = np.maximum(fa, fb)
    out["category.fill_rate_diff"] = np.abs(fa - fb)
    # Raw top-level category: the shared one, or both sorted so A|B == B|A.
    a1, b1 = sides(batch, "category_l1")
    out["category.l1_pair"] = np.array(
        [x if x == y else "|".join(sorted((x, y))) for x, y in zip(a1.astype(str), b1.astype(str))],
        dtype=object)
    return pd.DataFrame(out)
