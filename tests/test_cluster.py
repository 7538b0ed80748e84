"""Clustering of scored pairs on hand-made graphs, and cluster metrics against brute force."""

from __future__ import annotations

from itertools import combinations

import numpy as np
import pandas as pd
import pytest

from dupsearch.cluster import (average_link_clusters, bcubed_metrics, center_clusters,
                               connected_components_clusters, pairwise_metrics)
from dupsearch.errors import DataError

METHODS = [connected_components_clusters, center_clusters, average_link_clusters]


def groups(labels: pd.Series) -> set[frozenset]:
    return {frozenset(members) for members in labels.groupby(labels).groups.values()}


def two_triangles(bridge: float):
    # Triangles a1-a2-a3 and b1-b2-b3 (all 0.9), joined by one a1-b1 edge.
    ids_a = ["a1", "a1", "a2", "b1", "b1", "b2", "a1"]
    ids_b = ["a2", "a3", "a3", "b2", "b3", "b3", "b1"]
    return ids_a, ids_b, [0.9] * 6 + [bridge]


# Chain A-B, B-C, C-D at 0.9; A-C, A-D, B-D never scored.
CHAIN = (["A", "B", "C"], ["B", "C", "D"], [0.9, 0.9, 0.9])


def test_components_split_on_weak_bridge_and_join_on_strong_one():
    weak = connected_components_clusters(*two_triangles(0.3), threshold=0.5)
    assert groups(weak) == {frozenset({"a1", "a2", "a3"}), frozenset({"b1", "b2", "b3"})}
    strong = connected_components_clusters(*two_triangles(0.7), threshold=0.5)
    assert groups(strong) == {frozenset({"a1", "a2", "a3", "b1", "b2", "b3"})}


def test_components_chain_into_one_cluster():
    labels = connected_components_clusters(*CHAIN, threshold=0.5)
    assert labels.to_dict() == {"A": 0, "B": 0, "C": 0, "D": 0}


def test_center_does_not_chain():
    # Edges tie at 0.9, so they are scanned by ids: (A,B), (B,C), (C,D).
    # (A,B): both new -> A is a centre, B joins A.
    # (B,C): C is new, B is a member (not a centre) -> C becomes a centre of its own.
    # (C,D): D is new, C is a centre -> D joins C.   Result {A,B}, {C,D}.
    labels = center_clusters(*CHAIN, threshold=0.5)
    assert labels.to_dict() == {"A": 0, "B": 0, "C": 1, "D": 1}


def test_center_strongest_edge_picks_the_centre():
    # (B,C) 0.95 first: B centre, C member. (A,B) 0.9: A new, B centre -> A joins B.
    # (C,D) 0.8: D new, C a member -> D becomes a centre alone.  Result {A,B,C}, {D}.
    labels = center_clusters(["A", "B", "C"], ["B", "C", "D"], [0.9, 0.95, 0.8], threshold=0.5)
    assert labels.to_dict() == {"A": 0, "B": 0, "C": 0, "D": 1}


def test_average_link_splits_the_chain():
    # A-B and C-D merge first (distance 0.1). Then {A,B} vs {C,D}: mean of
    # A-C 0, A-D 0, B-C 0.9, B-D 0 = 0.225 < 0.5 -> stop.  With all three edges tied
    # the only other first merge, B-C, gives {A}-{B,C} mean 0.45 < 0.5: still no chain.
    labels = average_link_clusters(*CHAIN, threshold=0.5)
    assert labels.nunique() > 1
    assert max(len(g) for g in groups(labels)) <= 2
    # Without ties the answer is exact.
    labels = average_link_clusters(["A", "B", "C"], ["B", "C", "D"], [0.9, 0.85, 0.9],
                                   threshold=0.5)
    assert labels.to_dict() == {"A": 0, "B": 0, "C": 1, "D": 1}
    assert labels.attrs["report"]["linkage_components"] == 1


def test_average_link_merges_when_mean_reaches_threshold():
    # Triangle x-y 0.9, y-z 0.9, x-z 0.3: x,y merge (0.9); {x,y}-z mean (0.3+0.9)/2 = 0.6.
    ids_a, ids_b, scores = ["x", "y", "x"], ["y", "z", "z"], [0.9, 0.9, 0.3]
    assert average_link_clusters(ids_a, ids_b, scores, threshold=0.6).nunique() == 1
    assert average_link_clusters(ids_a, ids_b, scores, threshold=0.61).nunique() == 2


def test_average_link_falls_back_to_center_for_large_components():
    labels = average_link_clusters(*two_triangles(0.7), threshold=0.5, max_component=4)
    expected = center_clusters(*two_triangles(0.7), threshold=0.5)
    pd.testing.assert_series_equal(labels, expected)
    report = labels.attrs["report"]
    assert report["fallback_components"] == 1 and report["fallback_items"] == 6
    assert report["linkage_components"] == 0


@pytest.mark.parametrize("method", METHODS)
def test_all_ids_add_singletons_and_labels_are_canonical(method):
    labels = method([2, 5], [1, 7], [0.9, 0.2], threshold=0.5, all_ids=[9, 3, 1])
    # Sorted string ids: 1,2,3,5,7,9; only 1-2 is kept.
    assert labels.index.tolist() == ["1", "2", "3", "5", "7", "9"]
    assert labels.tolist() == [0, 0, 1, 2, 3, 4]
    assert labels.dtype == np.int64


@pytest.mark.parametrize("method", METHODS)
def test_deterministic_under_row_order_and_duplicate_pairs(method):
    rng = np.random.default_rng(0)
    n_items, n_pairs = 60, 300
    a = rng.integers(0, n_items, n_pairs)
    b = rng.integers(0, n_items, n_pairs)
    scores = rng.choice([0.3, 0.6, 0.8, 0.9], n_pairs)
    base = method(a, b, scores, threshold=0.5)
    perm = rng.permutation(n_pairs)
    # Same pairs, shuffled and with the two ends swapped: same labels.
    pd.testing.assert_series_equal(method(b[perm], a[perm], scores[perm], threshold=0.5), base)
    assert base.tolist() == method(a, b, scores, threshold=0.5).tolist()
    assert set(base) == set(range(base.nunique()))


@pytest.mark.parametrize("method", [center_clusters, average_link_clusters])
def test_strict_methods_refine_components(method):
    rng = np.random.default_rng(1)
    a, b = rng.integers(0, 80, 400), rng.integers(0, 80, 400)
    scores = rng.random(400)
    components = connected_components_clusters(a, b, scores, threshold=0.7)
    strict = method(a, b, scores, threshold=0.7)
    # Each strict cluster sits inside one component.
    assert (strict.groupby(strict).apply(lambda g: components[g.index].nunique()) == 1).all()


@pytest.mark.parametrize("method", METHODS)
def test_input_validation(method):
    with pytest.raises(ValueError, match="ids_a, ids_b and scores"):
        method(["a", "b"], ["c"], [0.5, 0.5], threshold=0.5)
    with pytest.raises(DataError, match="'probability'.*1 NaN"):
        method(["a", "b"], ["c", "d"], [0.5, np.nan], threshold=0.5)
    with pytest.raises(DataError, match="outside"):
        method(["a"], ["c"], [1.5], threshold=0.5)
    with pytest.raises(DataError, match="'id_b'"):
        method(["a"], [None], [0.5], threshold=0.5)
    with pytest.raises(ValueError, match="threshold"):
        method(["a"], ["c"], [0.5], threshold=2.0)


def test_empty_input_gives_empty_labels():
    for method in METHODS:
        assert len(method([], [], [], threshold=0.5)) == 0


# Truth {1,2,3}, {4,5}; prediction {1,2}, {3,4,5}.
TRUTH = pd.Series({1: "t1", 2: "t1", 3: "t1", 4: "t2", 5: "t2"})
PRED = pd.Series({"1": 0, "2": 0, "3": 1, "4": 1, "5": 1})


def test_pairwise_metrics_by_hand():
    # Predicted pairs: 12, 34, 35, 45 (4). True pairs: 12, 13, 23, 45 (4). Correct: 12, 45.
    m = pairwise_metrics(PRED, TRUTH)
    assert (m["correct_pairs"], m["predicted_pairs"], m["true_pairs"]) == (2, 4, 4)
    assert m["precision"] == m["recall"] == m["f1"] == pytest.approx(0.5)


def test_bcubed_metrics_by_hand():
    # Item precision (share of its cluster in its true group): 1: 1, 2: 1, 3: 1/3, 4: 2/3,
    # 5: 2/3 -> 11/15. Item recall (share of its group in its cluster): 1: 2/3, 2: 2/3,
    # 3: 1/3, 4: 1, 5: 1 -> 11/15.
    m = bcubed_metrics(PRED, TRUTH)
    assert m["precision"] == pytest.approx(11 / 15)
    assert m["recall"] == pytest.approx(11 / 15)
    assert m["f1"] == pytest.approx(11 / 15)


def test_bcubed_one_big_cluster():
    # Everything merged: recall 1; item precision 3/5 for group t1 items, 2/5 for t2
    # -> (3*3/5 + 2*2/5) / 5 = 13/25.
    m = bcubed_metrics(pd.Series(0, index=TRUTH.index), TRUTH)
    assert m["recall"] == pytest.approx(1.0)
    assert m["precision"] == pytest.approx(13 / 25)


@pytest.mark.parametrize("metrics", [pairwise_metrics, bcubed_metrics])
def test_perfect_and_singleton_clusterings(metrics):
    perfect = metrics(TRUTH.map({"t1": 7, "t2": 8}), TRUTH)
    assert perfect["precision"] == perfect["recall"] == perfect["f1"] == pytest.approx(1.0)
    singletons = pd.Series(np.arange(5), index=TRUTH.index)
    m = metrics(singletons, TRUTH)
    assert m["precision"] == pytest.approx(1.0)
    if metrics is pairwise_metrics:
        # No predicted pairs: precision is 1.0 by convention (no wrong merge), recall 0.
        assert m["recall"] == 0.0 and m["f1"] == 0.0
    else:
        assert m["recall"] == pytest.approx((3 * 1 / 3 + 2 * 1 / 2) / 5)


def brute_force(pred: pd.Series, truth: pd.Series) -> dict:
    ids = list(pred.index)
    same_pred = {(i, j) for i, j in combinations(ids, 2) if pred[i] == pred[j]}
    same_true = {(i, j) for i, j in combinations(ids, 2) if truth[i] == truth[j]}
    correct = len(same_pred & same_true)
    # Item i's precision: share of its predicted cluster in its true group; recall the reverse.
    b3_p = np.mean([np.mean([truth[j] == truth[i] for j in ids if pred[j] == pred[i]])
                    for i in ids])
    b3_r = np.mean([np.mean([pred[j] == pred[i] for j in ids if truth[j] == truth[i]])
                    for i in ids])
    return {"precision": correct / len(same_pred) if same_pred else 1.0,
            "recall": correct / len(same_true) if same_true else 1.0,
            "b3_precision": b3_p, "b3_recall": b3_r}


@pytest.mark.parametrize("seed", range(3))
def test_metrics_from_contingency_match_brute_force(seed):
    rng = np.random.default_rng(seed)
    ids = [f"i{k}" for k in range(70)]
    truth = pd.Series(rng.integers(0, 15, len(ids)), index=ids)
    pred = pd.Series(rng.integers(0, 20, len(ids)), index=ids).sample(frac=1, random_state=seed)
    expected = brute_force(pred, truth)
    pairwise, bcubed = pairwise_metrics(pred, truth), bcubed_metrics(pred, truth)
    assert pairwise["precision"] == pytest.approx(expected["precision"])
    assert pairwise["recall"] == pytest.approx(expected["recall"])
    assert bcubed["precision"] == pytest.approx(expected["b3_precision"])
    assert bcubed["recall"] == pytest.approx(expected["b3_recall"])


@pytest.mark.parametrize("metrics", [pairwise_metrics, bcubed_metrics])
def test_metric_validation(metrics):
    missing = r"3 ids are missing from pred \(e.g. \['3', '4', '5'\]\), 2 are missing from truth"
    with pytest.raises(DataError, match=missing):
        metrics(pd.Series([0, 0, 1, 1], index=[1, 2, 6, 7]), TRUTH)
    with pytest.raises(DataError, match="more than once in pred"):
        metrics(pd.Series([0, 0], index=["1", 1]), TRUTH)
    with pytest.raises(DataError, match="no truth label"):
        metrics(PRED, TRUTH.where(TRUTH.index != 3))
    with pytest.raises(TypeError, match="pandas Series"):
        metrics(PRED.to_numpy(), TRUTH)


def test_one_graph_from_rows_gives_each_method_s_labels():
    # what dedup does: rows of a catalogue's ids, the graph built once for the three methods
    from dupsearch.cluster.graph import cluster_graph, graph_from_rows
    rng = np.random.default_rng(3)
    ids = np.array([f"x{i}" for i in rng.permutation(60)], dtype=object)
    ra, rb = rng.integers(0, 60, 150), rng.integers(0, 60, 150)
    keep = ra != rb
    ra, rb = ra[keep], rb[keep]
    s = rng.random(len(ra))
    got = cluster_graph(graph_from_rows(ids, ra, rb, s, 0.5), 0.5, max_component=8)
    a, b = ids[ra], ids[rb]
    want = {"components": connected_components_clusters(a, b, s, 0.5, all_ids=ids),
            "center": center_clusters(a, b, s, 0.5, all_ids=ids),
            "average": average_link_clusters(a, b, s, 0.5, all_ids=ids, max_component=8)}
    for method in want:
        pd.testing.assert_series_equal(got[method], want[method])
    assert got["average"].attrs["report"]["fallback_components"] >= 0
    with pytest.raises(DataError, match="more than once"):
        graph_from_rows(np.array(["a", "a"], dtype=object), [0], [1], [0.9], 0.5)
