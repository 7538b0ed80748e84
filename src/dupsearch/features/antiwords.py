"""Anti-words and model codes (seed item 2): distinguishing tokens present in one
listing only. Two ads that differ in a number, a size, a colour, a model code or a
negation are rarely the same item however similar the rest of the text is."""

from __future__ import annotations

import numpy as np
import pandas as pd
from rapidfuzz import fuzz, process

from dupsearch.features.base import binary_hasher, row_nnz, rowwise_dot, safe_div, sides
from dupsearch.text.normalize import split_tokens, tokenize

CLASSES = ("number", "code", "size", "colour", "negation")


def _identity(tokens: list[str]) -> list[str]:
    return tokens


def _class_matrices(a: np.ndarray, b: np.ndarray):
    """Per class, binary token-set matrices of side A and side B."""
    uniq, inv = np.unique(np.concatenate([a, b]).astype(str), return_inverse=True)
    split = [split_tokens(tokenize(t)) for t in uniq]
    n = len(a)
    hasher = binary_hasher(_identity)
    mats = {}
    for cls in CLASSES:
        X = hasher.transform([s[cls] for s in split]).tocsr()
        mats[cls] = (X[inv[:n]], X[inv[n:]])
    codes_joined = np.array([" ".join(sorted(set(s["code"]))) for s in split], dtype=object)
    return mats, codes_joined[inv[:n]], codes_joined[inv[n:]]


def antiword_features(batch: pd.DataFrame, fields=("title", "all")) -> pd.DataFrame:
    out: dict[str, np.ndarray] = {}
    code_sets = {}
    for field in fields:
        a, b = sides(batch, field)
        mats, ca, cb = _class_matrices(a, b)
        code_sets[field] = mats["code"]
        for cls, (A, B) in mats.items():
            inter = rowwise_dot(A, B)
            na, nb = row_nnz(A), row_nnz(B)
            only_a, only_b = na - inter, nb - inter
            p = f"antiwords.{field}.{cls}"
            out[f"{p}_one_side"] = only_a + only_b
            out[f"{p}_one_side_min"] = np.minimum(only_a, only_b)
            out[f"{p}_shared"] = inter
            out[f"{p}_jaccard"] = safe_div(inter, na + nb - inter)
            # Both listings name some, and none agree: the strongest "different item" signal.
            out[f"{p}_conflict"] = ((na > 0) & (nb > 0) & (inter == 0)).astype(float)
        # Codes that differ by a suffix ("lds4821ww" / "lds4821wh") are near misses, not conflicts.
        both = np.array([bool(x) and bool(y) for x, y in zip(ca, cb)])
        fuzzy = process.cpdist(list(ca), list(cb), scorer=fuzz.token_set_ratio, workers=-1) / 100.0
        out[f"antiwords.{field}.code_fuzzy"] = np.where(both, fuzzy, np.nan)
    if "title" in code_sets and "all" in code_sets:
        # A code in one title found anywhere in the other listing (title, text, attributes).
        (ta, tb), (aa, ab) = code_sets["title"], code_sets["all"]
        ab_hit = safe_div(rowwise_dot(ta, ab), row_nnz(ta))
        ba_hit = safe_div(rowwise_dot(tb, aa), row_nnz(tb))
        out["antiwords.title_code_in_other_min"] = np.fmin(ab_hit, ba_hit)
        out["antiwords.title_code_in_other_max"] = np.fmax(ab_hit, ba_hit)
    return pd.DataFrame(out)
