"""Length features: ratio and absolute difference of lengths in characters and tokens."""

from __future__ import annotations

import numpy as np
import pandas as pd

from dupsearch.features.base import safe_div, sides
from dupsearch.text.normalize import TOKEN_RE


def _counts(a: np.ndarray, b: np.ndarray):
    uniq, inv = np.unique(np.concatenate([a, b]).astype(str), return_inverse=True)
    chars = np.fromiter((len(s) for s in uniq), dtype=float, count=len(uniq))
    toks = np.fromiter((len(TOKEN_RE.findall(s)) for s in uniq), dtype=float, count=len(uniq))
    n = len(a)
    return chars[inv[:n]], chars[inv[n:]], toks[inv[:n]], toks[inv[n:]]


def length_features(batch: pd.DataFrame, fields=("title", "description", "text", "attrs")
                    ) -> pd.DataFrame:
    out: dict[str, np.ndarray] = {}
    for field in fields:
        a, b = sides(batch, field)
        ca, cb, ta, tb = _counts(a, b)
        for unit, x, y in (("chars", ca, cb), ("tokens", ta, tb)):
            out[f"lengths.{field}.{unit}_ratio"] = safe_div(np.minimum(x, y), np.maximum(x, y))
            out[f"lengths.{field}.{unit}_diff"] = np.abs(x - y)
            out[f"lengths.{field}.{unit}_min"] = np.minimum(x, y)
    return pd.DataFrame(out)
