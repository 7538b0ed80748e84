"""Duplicate groups from scored pairs: connected components, CENTER and average-link clustering.

Every method takes the same edge list (two id columns and a match probability)
and returns one int64 cluster label per item id. Labels are numbered 0..k-1 in
order of first appearance when the ids are sorted as strings, so the output
depends only on the input graph, not on the order of the rows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy.cluster.hierarchy import fcluster, linkage
from scipy.sparse.csgraph import connected_components
from scipy.spatial.distance import squareform

from dupsearch.errors import DataError

SCORE_COLUMN = "probability"
# fcluster cuts at distance <= t; 1 - threshold is rarely exact in floating point,
# so allow this much slack for an average that equals the threshold.
_CUT_SLACK = 1e-9


@dataclass(frozen=True)
class _Graph:
    """Deduplicated undirected edges over nodes 0..n-1 (node k is ids[k]; u < v on every edge)."""

    ids: np.ndarray      # sorted unique item ids (str)
    u: np.ndarray        # int64
    v: np.ndarray        # int64
    score: np.ndarray    # float64

    @property
    def n(self) -> int:
        return len(self.ids)

    def above(self, threshold: float) -> np.ndarray:
        return self.score >= threshold


def _id_array(values, name: str) -> np.ndarray:
    arr = np.asarray(values, dtype=object).ravel()
    missing = pd.isna(arr)
    if missing.any():
        raise DataError(f"{int(missing.sum())} missing ids "
                        f"(first at position {int(np.argmax(missing))})",
                        column=name)
    return arr.astype(str)


def _check_scores(s: np.ndarray, threshold: float) -> None:
    if not np.isfinite(threshold) or not 0.0 <= threshold <= 1.0:
        raise ValueError(f"threshold must be in [0, 1]; got {threshold!r}")
    bad = np.isnan(s)
    if bad.any():
        raise DataError(f"{int(bad.sum())} NaN scores (first at position {int(np.argmax(bad))}); "
                        "score every pair or drop the unscored ones", column=SCORE_COLUMN)
    bad = (s < 0.0) | (s > 1.0)
    if bad.any():
        raise DataError(f"{int(bad.sum())} scores outside [0, 1] (first: {s[np.argmax(bad)]!r} at "
                        f"position {int(np.argmax(bad))})", column=SCORE_COLUMN)


def _build_graph(ids_a, ids_b, scores, threshold: float, all_ids=None) -> _Graph:
    a = _id_array(ids_a, "id_a")
    b = _id_array(ids_b, "id_b")
    s = np.asarray(scores, dtype=np.float64).ravel()
    if not (len(a) == len(b) == len(s)):
        raise ValueError(f"ids_a, ids_b and scores must have the same length; got {len(a)}, "
                         f"{len(b)} and {len(s)}")
    _check_scores(s, threshold)
    extra = _id_array(all_ids, "all_ids") if all_ids is not None else np.empty(0, dtype=str)
    ids, codes = np.unique(np.concatenate([a, b, extra]), return_inverse=True)
    ca, cb = codes[:len(a)].astype(np.int64), codes[len(a):2 * len(a)].astype(np.int64)
    return _edges(ids, ca, cb, s)


def graph_from_rows(ids, rows_a, rows_b, scores, threshold: float) -> _Graph:
    """The graph of pairs given as positions in ``ids`` (distinct item ids, every node): the ids
    are sorted once, with no string work per pair (what a catalogue's dedup passes on)."""
    ids = _id_array(ids, "all_ids")
    s = np.asarray(scores, dtype=np.float64).ravel()
    _check_scores(s, threshold)
    order = np.argsort(ids, kind="stable")
    sorted_ids = ids[order]
    same = np.flatnonzero(sorted_ids[1:] == sorted_ids[:-1])
    if len(same):
        raise DataError(f"item id {sorted_ids[same[0]]!r} appears more than once", column="all_ids")
    node = np.empty(len(ids), np.int64)
    node[order] = np.arange(len(ids))
    return _edges(sorted_ids, node[np.asarray(rows_a, np.int64)], node[np.asarray(rows_b, np.int64)], s)


def _edges(ids: np.ndarray, ca: np.ndarray, cb: np.ndarray, s: np.ndarray) -> _Graph:
    u, v = np.minimum(ca, cb), np.maximum(ca, cb)
    # A self-pair says nothing about grouping; a pair listed twice (either order) keeps its
    # highest score so that every method sees one weight per pair.
    keep = u != v
    u, v, s = u[keep], v[keep], s[keep]
    order = np.lexsort((-s, v, u))
    u, v, s = u[order], v[order], s[order]
    first = np.ones(len(u), dtype=bool)
    first[1:] = (u[1:] != u[:-1]) | (v[1:] != v[:-1])
    return _Graph(ids=ids, u=u[first], v=v[first], score=s[first])


def _canonical_labels(raw: np.ndarray) -> np.ndarray:
    """Renumber arbitrary int labels 0..k-1 in order of first appearance."""
    _, first_pos, inverse = np.unique(raw, return_index=True, return_inverse=True)
    rank = np.empty(len(first_pos), dtype=np.int64)
    rank[np.argsort(first_pos, kind="stable")] = np.arange(len(first_pos))
    return rank[inverse.ravel()]


def _as_series(graph: _Graph, raw: np.ndarray) -> pd.Series:
    return pd.Series(_canonical_labels(raw), index=pd.Index(graph.ids, name="id"), name="cluster",
                     dtype=np.int64)


def _components(graph: _Graph, threshold: float) -> np.ndarray:
    keep = graph.above(threshold)
    adjacency = sp.coo_matrix((np.ones(int(keep.sum()), dtype=np.int8),
                               (graph.u[keep], graph.v[keep])), shape=(graph.n, graph.n))
    return connected_components(adjacency, directed=False)[1].astype(np.int64)


def connected_components_clusters(ids_a, ids_b, scores, threshold: float,
                                  all_ids=None) -> pd.Series:
    """Cluster label per item id: connected components of the pairs scoring >= threshold.

    Transitive: a chain of strong links joins its ends even if they were scored low.
    """
    graph = _build_graph(ids_a, ids_b, scores, threshold, all_ids)
    return _as_series(graph, _components(graph, threshold))


METHODS = ("components", "center", "average")


def method_thresholds(threshold) -> dict[str, float]:
    """One threshold per clustering method from a number (all alike) or a mapping."""
    if isinstance(threshold, dict):
        missing = [m for m in METHODS if m not in threshold]
        if missing:
            raise ValueError(f"no threshold for clustering methods {missing}")
        return {m: float(threshold[m]) for m in METHODS}
    return {m: float(threshold) for m in METHODS}


def cluster_graph(graph: _Graph, threshold, max_component: int = 5000) -> dict[str, pd.Series]:
    """The three methods' labels over one graph (built once: see ``graph_from_rows``), each at
    its own threshold when ``threshold`` maps method -> threshold."""
    t = method_thresholds(threshold)
    for v in t.values():
        _check_scores(np.empty(0), v)
    return {"components": _as_series(graph, _components(graph, t["components"])),
            "center": _as_series(graph, _center_raw_labels(graph, t["center"])),
            "average": _average_link(graph, t["average"], max_component)}


def _center_raw_labels(graph: _Graph, threshold: float) -> np.ndarray:
    """Centre node index per node (a node with no kept edge is its own centre)."""
    keep = graph.above(threshold)
    u, v, s = graph.u[keep], graph.v[keep], graph.score[keep]
    # Strongest edges first; ties by the (string-sorted) ids so the result is deterministic.
    order = np.lexsort((v, u, -s))
    UNSEEN, CENTRE, MEMBER = 0, 1, 2
    state = np.zeros(graph.n, dtype=np.int8)
    centre_of = np.arange(graph.n, dtype=np.int64)
    # Sequential by nature: whether a node becomes a centre depends on every stronger edge
    # scanned before it, so this pass cannot be vectorised. Plain ints keep it fast.
    for x, y in zip(u[order].tolist(), v[order].tolist()):
        sx, sy = state[x], state[y]
        if sx == UNSEEN and sy == UNSEEN:
            state[x], state[y], centre_of[y] = CENTRE, MEMBER, x
        elif sx == UNSEEN:
            if sy == CENTRE:
                state[x], centre_of[x] = MEMBER, y
            else:  # partner is a member of another centre: no chaining through it
                state[x] = CENTRE
        elif sy == UNSEEN:
            if sx == CENTRE:
                state[y], centre_of[y] = MEMBER, x
            else:
                state[y] = CENTRE
    return centre_of


def center_clusters(ids_a, ids_b, scores, threshold: float, all_ids=None) -> pd.Series:
    """CENTER clustering (Hassanzadeh et al. 2009) of the pairs scoring >= threshold.

    Edges are scanned strongest first. A node seen for the first time joins its partner if
    the partner is a centre, and otherwise becomes a centre itself (when both ends are new,
    the smaller id is the centre). Every member is linked to its centre by a kept edge, so
    weak chains A-B-C-D do not collapse into one group.
    """
    graph = _build_graph(ids_a, ids_b, scores, threshold, all_ids)
    return _as_series(graph, _center_raw_labels(graph, threshold))


def average_link_clusters(ids_a, ids_b, scores, threshold: float, all_ids=None,
                          max_component: int = 5000) -> pd.Series:
    """Average-linkage clustering: merge groups while their mean pair score is >= threshold.

    Pairs that were not scored count as score 0 (distance 1). Two items in different
    connected components at `threshold` have every cross pair below the threshold, so
    their average is too, and clustering each component on its own is exact. A component
    with more than `max_component` items (the dense distance matrix grows as its square)
    is clustered with CENTER instead; `labels.attrs["report"]` counts these.
    """
    return _average_link(_build_graph(ids_a, ids_b, scores, threshold, all_ids), threshold, max_component)


def _average_link(graph: _Graph, threshold: float, max_component: int) -> pd.Series:
    if max_component < 2:
        raise ValueError(f"max_component must be at least 2; got {max_component!r}")
    component = _components(graph, threshold)
    n_components = int(component.max()) + 1 if graph.n else 0
    size = np.bincount(component, minlength=n_components)

    # Node positions inside their component: nodes sorted by component, minus the block start.
    by_component = np.argsort(component, kind="stable")
    starts = np.concatenate([[0], np.cumsum(size)])
    local = np.empty(graph.n, dtype=np.int64)
    local[by_component] = np.arange(graph.n) - starts[component[by_component]]

    # Raw label = component * n + a within-component label below n, unique across components.
    # Components of one or two items are already a single group (their one edge is kept).
    local_label = np.zeros(graph.n, dtype=np.int64)
    too_large = size > max_component
    fallback_nodes = too_large[component]
    if too_large.any():
        local_label[fallback_nodes] = _center_raw_labels(graph, threshold)[fallback_nodes]

    # Every edge with both ends in one component, including those below the threshold,
    # enters the average with its real score.
    inside = component[graph.u] == component[graph.v]
    edge_component = component[graph.u[inside]]
    edge_order = np.argsort(edge_component, kind="stable")
    eu, ev = local[graph.u[inside]][edge_order], local[graph.v[inside]][edge_order]
    edist = 1.0 - graph.score[inside][edge_order]
    edge_component = edge_component[edge_order]
    to_link = np.flatnonzero((size >= 3) & ~too_large)
    edge_lo = np.searchsorted(edge_component, to_link, side="left")
    edge_hi = np.searchsorted(edge_component, to_link, side="right")
    # One scipy linkage per component: the loop is over components, not pairs.
    for c, lo, hi in zip(to_link.tolist(), edge_lo.tolist(), edge_hi.tolist()):
        m = int(size[c])
        distance = np.ones((m, m))
        distance[eu[lo:hi], ev[lo:hi]] = edist[lo:hi]
        distance[ev[lo:hi], eu[lo:hi]] = edist[lo:hi]
        np.fill_diagonal(distance, 0.0)
        tree = linkage(squareform(distance, checks=False), method="average")
        groups = fcluster(tree, t=1.0 - threshold + _CUT_SLACK, criterion="distance")
        local_label[by_component[starts[c]:starts[c + 1]]] = groups

    labels = _as_series(graph, component * max(graph.n, 1) + local_label)
    labels.attrs["report"] = {
        "components": n_components,
        "linkage_components": int(len(to_link)),
        "fallback_components": int(too_large.sum()),
        "fallback_items": int(fallback_nodes.sum()),
        "max_component": int(max_component),
    }
    return labels
