"""Length features: ratio and absolute difference of lengths in characters and tokens."""

from __future__ import annotations

import numpy as np

from dupsearch.features.base import safe_div
from dupsearch.features.family import FieldFamily

FIELDS = ("title", "description", "text", "attrs")


class LengthFamily(FieldFamily):
    name = "lengths"

    FIELDS = FIELDS

    def listing_state(self, builder):
        out = {}
        for field in self.fields:
            chars = np.fromiter(map(len, builder.texts(field)), float, count=builder.n)
            toks = builder.token_hashes(field)[1].astype(float)
            out[f"lengths.{field}"] = np.stack([chars, toks], axis=1)
        return out

    def _compare(self, store, ia, ib):
        out: dict[str, np.ndarray] = {}
        for field in self.fields:
            L = np.asarray(store[f"lengths.{field}"])
            # two empty fields have no lengths to compare (a difference of 0 would read as
            # "the same text"); one empty field is a fact, kept
            both_empty = (L[ia, 0] == 0) & (L[ib, 0] == 0)
            for j, unit in enumerate(("chars", "tokens")):
                x, y = L[ia, j], L[ib, j]
                out[f"lengths.{field}.{unit}_ratio"] = safe_div(np.minimum(x, y), np.maximum(x, y))
                out[f"lengths.{field}.{unit}_diff"] = np.where(both_empty, np.nan, np.abs(x - y))
                out[f"lengths.{field}.{unit}_min"] = np.minimum(x, y)
        return out
