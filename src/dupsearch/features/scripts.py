"""Broken-word features (seed item 8): how many words of each listing mix Cyrillic
and Latin letters, i.e. carry homoglyph swaps. Computed on the raw text, before any
cleaning: the same seller tends to swap letters the same way in every ad, so the
shares of the two listings of a pair are a weak identity signal.

Columns per field (``title``, ``description`` and ``text`` = both together):
``scripts.<field>.mixed_share_min`` / ``_max`` (share of words that mix scripts,
symmetric over the pair), ``_ratio`` (min / max; NaN when neither has any) and
``_diff`` (absolute difference). A listing without words has an undefined share
(NaN), which min/max skip.
"""

from __future__ import annotations

import numpy as np

from dupsearch.features.base import safe_div
from dupsearch.features.family import FieldFamily
from dupsearch.text.homoglyphs import script_counts

FIELDS = ("title", "description")


def _family(out: dict, field: str, wa, ma, wb, mb) -> None:
    sa, sb = safe_div(ma, wa), safe_div(mb, wb)
    out[f"scripts.{field}.mixed_share_min"] = np.fmin(sa, sb)
    out[f"scripts.{field}.mixed_share_max"] = np.fmax(sa, sb)
    out[f"scripts.{field}.mixed_share_ratio"] = safe_div(np.minimum(sa, sb), np.maximum(sa, sb))
    out[f"scripts.{field}.mixed_share_diff"] = np.abs(sa - sb)


class ScriptFamily(FieldFamily):
    name = "scripts"

    FIELDS = FIELDS

    def listing_state(self, builder):
        out = {}
        for field in self.fields:
            # the raw (uncleaned) text: the swaps are the signal
            texts = builder.texts(f"{field}_raw")
            counts = {t: script_counts(t) for t in dict.fromkeys(texts)}
            out[f"scripts.{field}"] = np.array([counts[t] for t in texts], dtype=float).reshape(-1, 2)
        return out

    def _compare(self, store, ia, ib):
        out: dict[str, np.ndarray] = {}
        tot = [np.zeros(len(ia)) for _ in range(4)]
        for field in self.fields:
            C = np.asarray(store[f"scripts.{field}"])
            parts = (C[ia, 0], C[ia, 1], C[ib, 0], C[ib, 1])
            _family(out, field, *parts)
            for acc, x in zip(tot, parts):
                acc += x
        if len(self.fields) > 1:
            _family(out, "text", *tot)
        return out
