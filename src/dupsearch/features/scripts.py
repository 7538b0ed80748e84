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
import pandas as pd

from dupsearch.features.base import safe_div
from dupsearch.text.homoglyphs import script_counts

FIELDS = ("title", "description")


def _column(batch: pd.DataFrame, field: str) -> str | None:
    """The raw (uncleaned) column of a field when the batch has it, else the prepared one."""
    for name in (f"{field}_raw", field):
        if f"{name}_a" in batch.columns and f"{name}_b" in batch.columns:
            return name
    return None


def _counts(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(words, mixed words) of side A and side B, counted once per distinct text."""
    n = len(a)
    both = np.concatenate([a, b])
    both = np.array(["" if (x is None or (isinstance(x, float) and x != x)) else str(x) for x in both],
                    dtype=object)
    uniq, inv = np.unique(both.astype(str), return_inverse=True)
    counts = np.array([script_counts(t) for t in uniq], dtype=float).reshape(-1, 2)
    words, mixed = counts[inv, 0], counts[inv, 1]
    return words[:n], mixed[:n], words[n:], mixed[n:]


def _family(out: dict, field: str, wa, ma, wb, mb) -> None:
    sa, sb = safe_div(ma, wa), safe_div(mb, wb)
    lo, hi = np.fmin(sa, sb), np.fmax(sa, sb)
    out[f"scripts.{field}.mixed_share_min"] = lo
    out[f"scripts.{field}.mixed_share_max"] = hi
    out[f"scripts.{field}.mixed_share_ratio"] = safe_div(np.minimum(sa, sb), np.maximum(sa, sb))
    out[f"scripts.{field}.mixed_share_diff"] = np.abs(sa - sb)


def script_features(batch: pd.DataFrame, fields=FIELDS) -> pd.DataFrame:
    """Mixed-script word shares of both listings of every pair (see module doc)."""
    out: dict[str, np.ndarray] = {}
    n = len(batch)
    tot = [np.zeros(n) for _ in range(4)]
    have_any = False
    for field in fields:
        col = _column(batch, field)
        if col is None:
            continue
        have_any = True
        wa, ma, wb, mb = _counts(batch[f"{col}_a"].to_numpy(dtype=object),
                                 batch[f"{col}_b"].to_numpy(dtype=object))
        _family(out, field, wa, ma, wb, mb)
        for acc, x in zip(tot, (wa, ma, wb, mb)):
            acc += x
    if have_any and len(fields) > 1:
        _family(out, "text", *tot)
    return pd.DataFrame(out, index=range(n))
