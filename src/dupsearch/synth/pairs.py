"""Labelled pairs of the synthetic marketplace and their leak-free split.

Positives are listings of one underlying item (``cluster_id``). Negatives are sampled by
mechanism, so a model meets the hard cases a marketplace has; most are hard:

- ``hard_negative_same_model`` (60 %): same category and model, another item -- often a unit
  that differs in one detail (year, memory, size, colour, floor...) or in none the ad shows,
  written by the same seller from the same template;
- ``same_seller`` (15 %): one account's different items;
- ``template`` (15 %): a shop's ads, which share most of their text;
- ``random_same_category`` (10 %, and what the others cannot supply): two unrelated items of
  one second-level category.

Labels may carry a little noise (``label_noise``); ``kind`` always says how a pair was made.

Every pair lies inside one *bucket* of sellers (see the generator), so splitting by connected
groups of items keeps nearly all pairs.
"""

from __future__ import annotations

import logging
from typing import NamedTuple, Sequence

import numpy as np
import pandas as pd
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

_log = logging.getLogger(__name__)

POSITIVE = "repost"
NEGATIVE_SHARES = {"hard_negative_same_model": 0.6, "same_seller": 0.15, "template": 0.15,
                   "random_same_category": 0.1}
PAIR_KINDS = (POSITIVE, *NEGATIVE_SHARES, "random_same_bucket")


def positive_pairs(cluster: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """All unordered pairs of rows that share a cluster."""
    order = np.argsort(cluster, kind="stable")
    cs = cluster[order]
    a_parts, b_parts = [], []
    d = 1
    while d < len(cs):
        same = cs[:-d] == cs[d:]
        if not same.any():
            break
        a_parts.append(order[:-d][same])
        b_parts.append(order[d:][same])
        d += 1
    if not a_parts:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    return np.concatenate(a_parts).astype(np.int64), np.concatenate(b_parts).astype(np.int64)


def _pair_key(a: np.ndarray, b: np.ndarray, n: int) -> np.ndarray:
    return np.minimum(a, b).astype(np.int64) * n + np.maximum(a, b)


def sample_within(rng: np.random.Generator, key: np.ndarray, cluster: np.ndarray, m: int,
                  used: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Up to ``m`` new pairs of rows with equal ``key`` (>= 0) and different clusters.

    ``used`` holds the sorted keys of pairs already taken; new pairs avoid them and each other.
    """
    n = len(key)
    empty = (np.empty(0, np.int64), np.empty(0, np.int64))
    if m <= 0:
        return empty
    elig = np.flatnonzero(key >= 0)
    if len(elig) < 2:
        return empty
    order = elig[np.argsort(key[elig], kind="stable")]
    ks = key[order]
    starts = np.flatnonzero(np.r_[True, ks[1:] != ks[:-1]])
    sizes = np.diff(np.r_[starts, len(ks)])
    group = np.repeat(np.arange(len(starts)), sizes)
    cand = np.flatnonzero(sizes[group] >= 2)
    if not len(cand):
        return empty
    got_a, got_b = [], []
    taken = used
    need = m
    for _ in range(6):
        draws = int(need * 2.5) + 16
        i = cand[rng.integers(len(cand), size=draws)]
        g = group[i]
        j = starts[g] + np.floor(rng.random(draws) * sizes[g]).astype(np.int64)
        a, b = order[i], order[j]
        ok = cluster[a] != cluster[b]
        a, b = a[ok], b[ok]
        k = _pair_key(a, b, n)
        _, first = np.unique(k, return_index=True)
        first.sort()
        a, b, k = a[first], b[first], k[first]
        fresh = ~np.isin(k, taken, assume_unique=False)
        a, b, k = a[fresh][:need], b[fresh][:need], k[fresh][:need]
        got_a.append(a)
        got_b.append(b)
        taken = np.union1d(taken, k)
        need -= len(a)
        if need <= 0:
            break
    return np.concatenate(got_a), np.concatenate(got_b)


def make_pairs(rng: np.random.Generator, *, cluster: np.ndarray, bucket: np.ndarray,
               family: np.ndarray, seller: np.ndarray, shop: np.ndarray, category: np.ndarray,
               n_pairs: int | None, positive_rate: float, label_noise: float = 0.0
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Row indices (a, b), labels and kind codes (index into PAIR_KINDS) of the pairs.

    ``family``, ``seller``, ``shop``: -1 where a row takes no part in that kind of negative.
    The positive rate is kept as asked; when too few positives (or negatives) exist, the number
    of pairs shrinks rather than the rate drifting. ``label_noise``: share of pairs whose label
    is wrong, as an assessor's now and then is (half of them each way, so the rate holds);
    ``kind`` still says how the pair was made.
    """
    n = len(cluster)
    pa, pb = positive_pairs(cluster)
    p_all = len(pa)
    r = float(positive_rate)
    if n_pairs is None:
        n_pos = p_all if r > 0 else 0
        n_neg = int(round(n_pos * (1 - r) / r)) if r > 0 else n
    else:
        n_pos = min(int(round(n_pairs * r)), p_all)
        n_neg = int(n_pairs - round(n_pairs * r))
        if n_pos < round(n_pairs * r) and r > 0:
            n_neg = int(round(n_pos * (1 - r) / r)) if r < 1 else 0
            _log.warning("only %d positive pairs exist; writing %d pairs to keep the positive rate "
                         "%.3f", p_all, n_pos + n_neg, r)
    if n_pos < p_all:
        sel = np.sort(rng.choice(p_all, size=n_pos, replace=False))
        pa, pb = pa[sel], pb[sel]
    used = np.unique(_pair_key(pa, pb, n))
    parts_a, parts_b, parts_k = [pa], [pb], [np.zeros(len(pa), np.int8)]
    n_buckets = int(bucket.max()) + 1 if n else 1
    keys = {
        "hard_negative_same_model": family,
        "same_seller": seller,
        "template": shop,
        "random_same_category": np.where(category >= 0, category.astype(np.int64) * n_buckets + bucket, -1),
    }
    got_neg = 0
    for kind, share in NEGATIVE_SHARES.items():
        # the random negatives (listed last) also take up what the other kinds could not supply
        want = n_neg - got_neg if kind == "random_same_category" else int(round(n_neg * share))
        a, b = sample_within(rng, keys[kind], cluster, want, used)
        parts_a.append(a), parts_b.append(b)
        parts_k.append(np.full(len(a), PAIR_KINDS.index(kind), np.int8))
        used = np.union1d(used, _pair_key(a, b, n))
        got_neg += len(a)
    missing = n_neg - got_neg
    if missing > 0:  # tiny markets: fill with any two items of one bucket
        a, b = sample_within(rng, bucket.astype(np.int64), cluster, missing, used)
        parts_a.append(a), parts_b.append(b)
        parts_k.append(np.full(len(a), PAIR_KINDS.index("random_same_bucket"), np.int8))
        got_neg += len(a)
    a = np.concatenate(parts_a)
    b = np.concatenate(parts_b)
    kinds = np.concatenate(parts_k)
    if r > 0 and got_neg < n_neg and r < 1:
        # keep the positive rate: drop positives in proportion
        keep_pos = int(round(got_neg * r / (1 - r)))
        if keep_pos < n_pos:
            _log.warning("only %d negative pairs could be sampled; keeping %d positives", got_neg, keep_pos)
            pos_idx = np.flatnonzero(kinds == 0)
            drop = rng.choice(pos_idx, size=n_pos - keep_pos, replace=False)
            keep = np.ones(len(a), bool)
            keep[drop] = False
            a, b, kinds = a[keep], b[keep], kinds[keep]
    label = (kinds == 0).astype(np.int8)
    if label_noise > 0 and len(label):
        pos, neg = np.flatnonzero(label == 1), np.flatnonzero(label == 0)
        k = min(int(round(len(label) * label_noise / 2)), len(pos), len(neg))
        if k:
            label[rng.choice(pos, size=k, replace=False)] = 0
            label[rng.choice(neg, size=k, replace=False)] = 1
    # random side order and row order
    swap = rng.random(len(a)) < 0.5
    a, b = np.where(swap, b, a), np.where(swap, a, b)
    perm = rng.permutation(len(a))
    return a[perm], b[perm], label[perm], kinds[perm]


# --------------------------------------------------------------------------- split


class PairSplits(NamedTuple):
    train: pd.DataFrame
    valid: pd.DataFrame
    test: pd.DataFrame


def split_pairs(market, fractions: Sequence[float] = (0.6, 0.2, 0.2), seed: int = 0) -> PairSplits:
    """Split ``market.pairs`` into train/valid/test so that no item is in two splits.

    Items (``cluster_id``) linked by any pair form connected groups; whole groups are dealt to
    the splits, largest first, each to the split furthest below its share of pairs. Pairs are
    never cut, so every pair lands in exactly one split and all duplicates of an item (and
    every listing) stay on one side.
    """
    if len(fractions) != 3 or any(f < 0 for f in fractions) or sum(fractions) <= 0:
        raise ValueError(f"fractions must be three non-negative numbers, got {tuple(fractions)}")
    frac = np.asarray(fractions, float) / float(sum(fractions))
    listings, pairs = market.listings, market.pairs
    index = pd.Index(listings["item_id"].astype(str))
    clusters = listings["cluster_id"].to_numpy()
    ia = index.get_indexer(pairs["item_id_a"].astype(str))
    ib = index.get_indexer(pairs["item_id_b"].astype(str))
    if (ia < 0).any() or (ib < 0).any():
        raise ValueError("pairs name item_ids that are not in the listings")
    _, inv = np.unique(clusters, return_inverse=True)
    ca, cb = inv[ia], inv[ib]
    n_nodes = int(inv.max()) + 1 if len(inv) else 0
    graph = coo_matrix((np.ones(len(ca)), (ca, cb)), shape=(n_nodes, n_nodes))
    _, comp = connected_components(graph, directed=False)
    pair_comp = comp[ca]
    uniq, pair_comp = np.unique(pair_comp, return_inverse=True)
    sizes = np.bincount(pair_comp, minlength=len(uniq))
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(uniq))
    order = order[np.argsort(-sizes[order], kind="stable")]
    target = frac * len(pairs)
    filled = np.zeros(3)
    split_of = np.zeros(len(uniq), np.int8)
    for c in order.tolist():
        k = int(np.argmax(np.where(frac > 0, (target - filled) / np.maximum(target, 1), -np.inf)))
        split_of[c] = k
        filled[k] += sizes[c]
    which = split_of[pair_comp]
    parts = [pairs[which == k].reset_index(drop=True) for k in range(3)]
    return PairSplits(*parts)
