"""Clustering thresholds chosen for groups, not for pairs.

The pair classifier's best-F1 threshold is not the best cut for groups: a method that averages
(average-link) or refuses chains (CENTER) wants its own. Each method's threshold here is the
one whose groups best match the true groups by B-cubed F1, over scores the model did not
train on (out-of-fold or validation scores of the labelled pairs), so the choice uses training
data only and is not flattered by in-sample scores.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components

from dupsearch.cluster.graph import METHODS, _build_graph, cluster_graph

# Thresholds tried: the whole useful range at a step finer than the curves' noise.
GRID = np.round(np.arange(0.05, 0.951, 0.01), 2)
# Fewer true groups than this and a B-cubed curve says little: no thresholds are chosen.
MIN_TRUE_GROUPS = 10


def truth_groups(ids_a, ids_b, y, clusters: pd.Series | None = None) -> tuple[pd.Series, str]:
    """The true group of every item named by the pairs, and where it came from.

    ``clusters`` (item id -> group label, e.g. the generator's ``cluster_id``) is used when
    given; items it does not label are their own group. Otherwise the groups are the
    connected components of the pairs labelled duplicates: what the labels say, transitively.
    """
    a = np.asarray(ids_a, dtype=object).astype(str)
    b = np.asarray(ids_b, dtype=object).astype(str)
    ids, codes = np.unique(np.concatenate([a, b]), return_inverse=True)
    if clusters is not None:
        lab = pd.Series(clusters.to_numpy(), index=clusters.index.astype(str)).reindex(ids)
        lab = lab.astype("string").fillna(pd.Series(["\x1f_single_" + i for i in ids], index=ids))
        return pd.Series(lab.to_numpy(), index=ids), "cluster column"
    pos = np.asarray(y).astype(bool)
    n = len(ids)
    ca, cb = codes[:len(a)][pos], codes[len(a):][pos]
    comp = connected_components(sp.coo_matrix((np.ones(len(ca), np.int8), (ca, cb)), shape=(n, n)),
                                directed=False)[1]
    return pd.Series(comp.astype(str), index=ids), "pairs labelled duplicates (connected)"


def _f1s(pred: np.ndarray, truth: np.ndarray) -> tuple[float, float]:
    """(B-cubed F1, pairwise F1) of predicted codes against true codes, item by item aligned
    (the same figures as ``bcubed_metrics`` / ``pairwise_metrics``, without their alignment)."""
    cell = truth.astype(np.int64) * (int(pred.max()) + 1) + pred
    _, cell_inv, n_ij = np.unique(cell, return_inverse=True, return_counts=True)
    cluster_size = np.bincount(pred).astype(np.float64)
    group_size = np.bincount(truth).astype(np.float64)
    first = np.unique(cell_inv, return_index=True)[1]
    ci, gi = pred[first], truth[first]
    n = float(len(pred))
    sq = n_ij.astype(np.float64) ** 2
    p = float((sq / cluster_size[ci]).sum() / n)
    r = float((sq / group_size[gi]).sum() / n)
    bcubed = 0.0 if p + r == 0 else 2 * p * r / (p + r)

    def pairs(c):
        c = np.asarray(c, np.int64)
        return int((c * (c - 1) // 2).sum())
    correct, predicted, true = pairs(n_ij), pairs(cluster_size), pairs(group_size)
    pp = correct / predicted if predicted else 1.0
    pr = correct / true if true else 1.0
    pairwise = 0.0 if pp + pr == 0 else 2 * pp * pr / (pp + pr)
    return bcubed, pairwise


def choose_cluster_thresholds(ids_a, ids_b, scores, truth: pd.Series, grid=GRID,
                              max_component: int = 5000, all_ids=None) -> dict:
    """Each method's threshold by B-cubed F1 of its groups (over the items the pairs name)
    against ``truth``, the curves behind the choice, and the default method (the best of the
    three). Ties go to the middle of the best thresholds, away from a cliff. ``all_ids`` adds
    items with no pair (each its own group in every method)."""
    graph = _build_graph(ids_a, ids_b, scores, 0.0, all_ids)
    truth_codes = pd.factorize(truth.reindex(graph.ids).to_numpy())[0]
    n_groups = int(pd.Series(truth_codes).value_counts().gt(1).sum())
    report: dict = {"items": int(graph.n), "pairs": int(len(graph.u)), "true_groups": n_groups}
    if n_groups < MIN_TRUE_GROUPS:
        report["skipped"] = (f"{n_groups} true groups of two or more among the pairs' items; "
                             f"need {MIN_TRUE_GROUPS} to choose thresholds")
        return report
    grid = np.asarray(grid, dtype=np.float64)
    curves = {m: {"threshold": grid.tolist(), "bcubed_f1": [], "pairwise_f1": []} for m in METHODS}
    for t in grid:
        labels = cluster_graph(graph, float(t), max_component=max_component)
        for m in METHODS:
            b, pw = _f1s(labels[m].to_numpy(), truth_codes)
            curves[m]["bcubed_f1"].append(round(b, 6))
            curves[m]["pairwise_f1"].append(round(pw, 6))
    thresholds, best = {}, {}
    for m in METHODS:
        f = np.asarray(curves[m]["bcubed_f1"])
        top = np.flatnonzero(f == f.max())
        k = int(top[len(top) // 2])
        thresholds[m] = float(grid[k])
        best[m] = {"threshold": float(grid[k]), "bcubed_f1": float(f[k]),
                   "pairwise_f1": float(curves[m]["pairwise_f1"][k])}
    method = max(METHODS, key=lambda m: (best[m]["bcubed_f1"], -METHODS.index(m)))
    report.update({"thresholds": thresholds, "method": method, "best": best, "curves": curves})
    return report
