"""Attribute-dictionary features (seed items 3 and 8): keys in common, equal values,
a match weighted by how informative each key is within the category, and matches
over each category's most frequent ("top") attributes."""

from __future__ import annotations

from collections import Counter, defaultdict

import numpy as np
import pandas as pd
import scipy.sparse as sp

from dupsearch.features.base import SET_COLUMNS, hash_strings, intersect, pair_sum, safe_div
from dupsearch.features.family import Family

GLOBAL = ""  # category key of the fallback (all listings) statistics
TOP_K = 10


class AttributeFamily(Family):
    """Per-category key weights and top keys, fitted on training listings.

    A key's weight is the chance that two listings of the category that both have
    it carry *different* values (Gini impurity of its values): agreeing on a key
    that almost always agrees ("condition: used") says little, agreeing on a
    model number says a lot.

    Per listing (once): a CSR row whose columns are its keys (hashed) and whose values are codes
    of its values, and the hash of its category. Per pair: one sparse intersection gives the
    common keys and whether their values agree.
    """

    name = "attributes"

    def __init__(self, top_k: int = TOP_K):
        super().__init__()
        self.top_k = top_k

    def settings(self) -> dict:
        return {"top_k": self.top_k}

    def _fit(self, prepared: pd.DataFrame) -> None:
        values: dict[str, dict[str, Counter]] = defaultdict(lambda: defaultdict(Counter))
        for cat, attrs in zip(prepared["category_l1"], prepared["attributes"]):
            for k, v in attrs.items():
                values[cat][k][v] += 1
                if cat != GLOBAL:
                    values[GLOBAL][k][v] += 1
        self.weights_: dict[str, dict[str, float]] = {}
        self.top_keys_: dict[str, list[str]] = {}
        for cat, keys in values.items():
            w = {}
            for k, counts in keys.items():
                total = sum(counts.values())
                p = np.array(list(counts.values()), dtype=float) / total
                w[k] = float(1.0 - np.sum(p * p))
            self.weights_[cat] = w
            by_fill = sorted(keys, key=lambda k: (-sum(keys[k].values()), k))
            self.top_keys_[cat] = by_fill[: self.top_k]
        self.weights_.setdefault(GLOBAL, {})
        self.top_keys_.setdefault(GLOBAL, [])
        self._index()

    def _index(self) -> None:
        """Per category: its keys as sorted hashed columns with their weights and top flags."""
        gmap = self.weights_[GLOBAL]
        # Keys never seen in training get the median weight: unknown, not worthless.
        self.default_weight_ = float(np.median(list(gmap.values()))) if gmap else 0.5
        self.lookup_ = {}
        for cat in self.weights_:
            keys = sorted(set(self.weights_[cat]) | set(gmap))
            cols = _key_columns(keys)
            w = np.array([self.weights_[cat].get(k, gmap.get(k, self.default_weight_)) for k in keys])
            top = set(self.top_keys_.get(cat, []))
            t = np.array([k in top for k in keys], dtype=float)
            order = np.argsort(cols, kind="stable")
            self.lookup_[int(hash_strings([cat]).view(np.int64)[0])] = (cols[order], w[order], t[order])
        self.global_code_ = int(hash_strings([GLOBAL]).view(np.int64)[0])

    def listing_state(self, builder):
        dicts = builder.column("attributes").tolist()
        lengths = np.fromiter(map(len, dicts), np.int64, count=len(dicts))
        keys = np.fromiter((k for d in dicts for k in d), object, count=int(lengths.sum()))
        vals = np.fromiter((v for d in dicts for v in d.values()), object, count=int(lengths.sum()))
        doc = np.repeat(np.arange(builder.n, dtype=np.int64), lengths)
        cols = _key_columns(keys)
        # value codes: exact in float64, 0 never used (a stored zero would vanish from the CSR)
        codes = (hash_strings(vals) % np.uint64(2**52)).astype(np.float64) + 1
        key = doc * SET_COLUMNS + cols
        order = np.argsort(key, kind="stable")
        indptr = np.zeros(builder.n + 1, np.int64)
        np.cumsum(lengths, out=indptr[1:])
        V = sp.csr_matrix((codes[order], cols[order].astype(np.int32), indptr), shape=(builder.n, SET_COLUMNS))
        return {"attributes.values": V,
                "attributes.category": hash_strings(builder.texts("category_l1")).view(np.int64)}

    def _compare(self, store, ia, ib):
        n = len(ia)
        V = store["attributes.values"]
        rows, pa, pb = intersect(V, V, ia, ib)
        data, indptr = np.asarray(V.data), np.asarray(V.indptr)
        equal = data[pa] == data[pb]
        na, nb = (indptr[ia + 1] - indptr[ia]).astype(float), (indptr[ib + 1] - indptr[ib]).astype(float)
        n_common = pair_sum(rows, np.ones(len(rows)), n)
        n_equal = pair_sum(rows, equal.astype(float), n)
        out = {
            "attributes.keys_min": np.minimum(na, nb),
            "attributes.keys_max": np.maximum(na, nb),
            "attributes.keys_common": n_common,
            "attributes.keys_jaccard": safe_div(n_common, na + nb - n_common),
            "attributes.values_equal": n_equal,
            "attributes.values_equal_share": safe_div(n_equal, n_common),
            "attributes.values_conflict": n_common - n_equal,
        }
        # Weighted and top-key matches use the statistics of the pair's shared category
        # (all listings when the sides differ, so (A, B) == (B, A), or when it is unknown).
        cat = np.asarray(store["attributes.category"])
        pc = np.where(cat[ia] == cat[ib], cat[ia], self.global_code_)
        keys = np.asarray(V.indices)[pa].astype(np.int64)
        ec = pc[rows]
        w = np.full(len(rows), np.nan)
        t = np.zeros(len(rows))
        for c in np.unique(ec):
            sel = ec == c
            cols, wc, tc = self.lookup_.get(int(c), self.lookup_[self.global_code_])
            pos = np.minimum(np.searchsorted(cols, keys[sel]), max(len(cols) - 1, 0))
            hit = (cols[pos] == keys[sel]) if len(cols) else np.zeros(int(sel.sum()), bool)
            w[sel] = np.where(hit, wc[pos] if len(cols) else 0.0, self.default_weight_)
            t[sel] = np.where(hit, tc[pos] if len(cols) else 0.0, 0.0)
        w_common, w_equal = pair_sum(rows, w, n), pair_sum(rows, w * equal, n)
        t_common, t_equal = pair_sum(rows, t, n), pair_sum(rows, t * equal, n)
        out["attributes.weighted_match"] = safe_div(w_equal, w_common)
        out["attributes.weighted_equal"] = w_equal
        out["attributes.weighted_conflict"] = w_common - w_equal
        out["attributes.top_common"] = t_common
        out["attributes.top_equal"] = t_equal
        out["attributes.top_equal_share"] = safe_div(t_equal, t_common)
        return out


def _key_columns(keys) -> np.ndarray:
    return (hash_strings(np.asarray(keys, dtype=object)) % np.uint64(SET_COLUMNS)).astype(np.int64)
