"""Attribute-dictionary features (seed items 3 and 8): keys in common, equal values,
a match weighted by how informative each key is within the category, and matches
over each category's most frequent ("top") attributes."""

from __future__ import annotations

from collections import Counter, defaultdict

import numpy as np
import pandas as pd
import scipy.sparse as sp

from dupsearch.features.base import safe_div

GLOBAL = ""  # category key of the fallback (all listings) statistics
TOP_K = 10


class AttributeStats:
    """Per-category key weights and top keys, fitted on training listings.

    A key's weight is the chance that two listings of the category that both have
    it carry *different* values (Gini impurity of its values): agreeing on a key
    that almost always agrees ("condition: used") says little, agreeing on a
    model number says a lot.
    """

    def __init__(self, top_k: int = TOP_K):
        self.top_k = top_k

    def fit(self, prepared: pd.DataFrame) -> "AttributeStats":
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
        return self

    def transform(self, batch: pd.DataFrame) -> pd.DataFrame:
        n = len(batch)
        # Distinct attribute dicts are identified by their canonical JSON form.
        texts = np.concatenate([batch["attrs_key_a"].to_numpy(object), batch["attrs_key_b"].to_numpy(object)])
        dicts = np.concatenate([batch["attributes_a"].to_numpy(object), batch["attributes_b"].to_numpy(object)])
        uniq, first, inv = np.unique(texts.astype(str), return_index=True, return_inverse=True)
        key_ids: dict[str, int] = {}
        value_ids: dict[str, int] = {}
        rows, cols, vals = [], [], []
        for r, i in enumerate(first):
            for k, v in dicts[i].items():
                rows.append(r)
                cols.append(key_ids.setdefault(k, len(key_ids)))
                vals.append(value_ids.setdefault(v, len(value_ids) + 1))  # 1-based: 0 is "absent"
        shape = (len(uniq), max(len(key_ids), 1))
        V = sp.csr_matrix((np.array(vals, float), (rows, cols)), shape=shape)
        Va, Vb = V[inv[:n]], V[inv[n:]]
        Ka, Kb = (Va != 0).astype(float), (Vb != 0).astype(float)
        common = Ka.multiply(Kb).tocsr()
        # On common keys, the value ids differ exactly where the values differ.
        differ = (common.multiply(Va - Vb) != 0).astype(float)
        equal = (common - differ).tocsr()
        equal.eliminate_zeros()

        na, nb = np.diff(Ka.tocsr().indptr), np.diff(Kb.tocsr().indptr)
        n_common = np.asarray(common.sum(axis=1)).ravel()
        n_equal = np.asarray(equal.sum(axis=1)).ravel()
        out = {
            "attributes.keys_min": np.minimum(na, nb).astype(float),
            "attributes.keys_max": np.maximum(na, nb).astype(float),
            "attributes.keys_common": n_common,
            "attributes.keys_jaccard": safe_div(n_common, na + nb - n_common),
            "attributes.values_equal": n_equal,
            "attributes.values_equal_share": safe_div(n_equal, n_common),
            "attributes.values_conflict": n_common - n_equal,
        }

        # Weighted and top-key matches use the statistics of the pair's shared category
        # (all listings when the sides differ, so (A, B) == (B, A), or when it is unknown).
        keys = np.array(sorted(key_ids, key=key_ids.get), dtype=object)
        cats = batch["category_l1_a"].astype(str).to_numpy()
        cats = np.where(cats == batch["category_l1_b"].astype(str).to_numpy(), cats, GLOBAL)
        w_common, w_equal = np.zeros(n), np.zeros(n)
        t_common, t_equal = np.zeros(n), np.zeros(n)
        for cat in np.unique(cats):
            idx = np.flatnonzero(cats == cat)
            stats_cat = cat if cat in self.weights_ else GLOBAL
            wmap = self.weights_[stats_cat]
            gmap = self.weights_[GLOBAL]
            # Keys never seen in training get the median weight: unknown, not worthless.
            default = float(np.median(list(gmap.values()))) if gmap else 0.5
            w = np.array([wmap.get(k, gmap.get(k, default)) for k in keys], dtype=float)
            top = set(self.top_keys_.get(stats_cat, []))
            t = np.array([k in top for k in keys], dtype=float)
            if len(w) < shape[1]:  # no keys at all in this batch
                w = np.zeros(shape[1]); t = np.zeros(shape[1])
            w_common[idx] = common[idx] @ w
            w_equal[idx] = equal[idx] @ w
            t_common[idx] = common[idx] @ t
            t_equal[idx] = equal[idx] @ t
        out["attributes.weighted_match"] = safe_div(w_equal, w_common)
        out["attributes.weighted_equal"] = w_equal
        out["attributes.weighted_conflict"] = w_common - w_equal
        out["attributes.top_common"] = t_common
        out["attributes.top_equal"] = t_equal
        out["attributes.top_equal_share"] = safe_div(t_equal, t_common)
        return pd.DataFrame(out)
