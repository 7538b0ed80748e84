"""Training-set enlargement through transitive chains (dupsearch.models.enlarge, issue #6)."""

from __future__ import annotations

from itertools import combinations

import numpy as np
import pandas as pd
import pytest

from dupsearch.errors import DataError
from dupsearch.models.enlarge import EnlargeConfig, enlarge_pairs

NO_CAP = EnlargeConfig(max_new_ratio=float("inf"))


def frame(*edges, **extra):
    """Pairs from (a, b, label) tuples; extra columns as keyword lists."""
    a, b, label = zip(*edges)
    return pd.DataFrame({"item_id_a": a, "item_id_b": b, "label": label, **extra})


def new_pairs(out: pd.DataFrame, origin: str) -> set[frozenset]:
    rows = out[out["origin"] == origin]
    return {frozenset(p) for p in zip(rows["item_id_a"], rows["item_id_b"])}


def unordered(out: pd.DataFrame) -> list[frozenset]:
    return [frozenset(map(str, p)) for p in zip(out["item_id_a"], out["item_id_b"])]


# --- hand-made graphs ---------------------------------------------------------------------------

def test_chain_adds_exactly_the_closing_pair():
    out, rep = enlarge_pairs(frame(("A", "B", 1), ("B", "C", 1)))
    assert len(out) == 3
    new = out.iloc[2]
    assert {new["item_id_a"], new["item_id_b"]} == {"A", "C"}
    assert new["label"] == 1 and new["origin"] == "transitive_positive"
    assert (out["origin"].iloc[:2] == "given").all()
    assert rep["n_clusters"] == 1 and rep["largest_cluster"] == 3
    assert rep["new_positive_candidates"] == rep["new_positive_added"] == 1


def test_negative_spreads_over_both_clusters():
    pairs = frame(("A", "B", 1), ("B", "C", 1), ("D", "E", 1), ("A", "D", 0))
    out, rep = enlarge_pairs(pairs, NO_CAP)
    expected = {frozenset((x, y)) for x in "ABC" for y in "DE"} - {frozenset("AD")}
    assert new_pairs(out, "transitive_negative") == expected
    assert len(expected) == 5
    assert (out.loc[out["origin"] == "transitive_negative", "label"] == 0).all()
    assert new_pairs(out, "transitive_positive") == {frozenset("AC")}
    assert rep["new_negative_added"] == 5 and rep["dropped_by_cap"] == 0


def test_negative_between_singletons_adds_nothing():
    out, rep = enlarge_pairs(frame(("A", "B", 0), ("C", "D", 0)), NO_CAP)
    assert len(out) == 2 and rep["new_negative_candidates"] == 0 and rep["n_clusters"] == 0


def test_conflict_adds_nothing_and_is_reported():
    pairs = frame(("A", "B", 1), ("B", "C", 1), ("A", "C", 0))
    out, rep = enlarge_pairs(pairs, NO_CAP)
    pd.testing.assert_frame_equal(out.drop(columns="origin"), pairs)
    assert rep["conflicting_negatives"] == 1 and rep["conflicted_clusters"] == 1
    assert rep["new_positive_candidates"] == rep["new_negative_candidates"] == 0


def test_conflicted_cluster_withholds_its_positives_and_counts_them():
    pairs = frame(("A", "B", 1), ("B", "C", 1), ("C", "D", 1), ("A", "C", 0))
    out, rep = enlarge_pairs(pairs, NO_CAP)
    assert len(out) == 4
    assert rep["positives_withheld"] == 2          # A-D and B-D
    assert rep["conflicted_clusters"] == 1


def test_big_cluster_is_skipped_and_negatives_spread_only_on_the_reliable_side():
    chain = [(f"n{i}", f"n{i + 1}", 1) for i in range(5)]           # 6 listings in one chain
    pairs = frame(*chain, ("X", "Y", 1), ("n0", "X", 0))
    out, rep = enlarge_pairs(pairs, EnlargeConfig(max_cluster_size=5, max_new_ratio=float("inf")))
    assert rep["skipped_big_clusters"] == 1 and rep["largest_cluster"] == 6
    assert new_pairs(out, "transitive_positive") == set()
    assert rep["positives_withheld"] == 15 - 5
    assert new_pairs(out, "transitive_negative") == {frozenset(("n0", "Y"))}
    assert rep["negatives_touching_unreliable"] == 1
    # The same chain under the default limit is expanded.
    out, rep = enlarge_pairs(pairs, NO_CAP)
    assert rep["skipped_big_clusters"] == 0 and rep["new_positive_added"] == 10
    assert rep["new_negative_added"] == 6 * 2 - 1


def test_reversed_existing_pairs_are_not_added_again():
    pairs = frame(("A", "B", 1), ("B", "C", 1), ("C", "A", 1), ("D", "A", 0), ("C", "D", 0),
                  ("D", "B", 0))
    out, rep = enlarge_pairs(pairs, NO_CAP)
    assert len(out) == len(pairs)
    assert rep["new_positive_candidates"] == rep["new_negative_candidates"] == 0


def test_switches():
    pairs = frame(("A", "B", 1), ("B", "C", 1), ("D", "E", 1), ("A", "D", 0))
    out, rep = enlarge_pairs(pairs, EnlargeConfig(positives=False, max_new_ratio=float("inf")))
    assert set(out["origin"]) == {"given", "transitive_negative"}
    assert rep["new_positive_candidates"] == 0
    out, rep = enlarge_pairs(pairs, EnlargeConfig(negatives=False, max_new_ratio=float("inf")))
    assert set(out["origin"]) == {"given", "transitive_positive"}
    assert rep["new_negative_candidates"] == 0
    out, rep = enlarge_pairs(pairs, EnlargeConfig(positives=False, negatives=False))
    assert len(out) == len(pairs)


def test_self_pairs_are_kept_unchanged_and_counted():
    pairs = frame(("A", "A", 1), ("A", "B", 1), ("B", "C", 1), ("C", "C", 0))
    out, rep = enlarge_pairs(pairs, NO_CAP)
    pd.testing.assert_frame_equal(out.iloc[:4].drop(columns="origin"), pairs)
    assert rep["self_pairs"] == 2
    assert new_pairs(out, "transitive_positive") == {frozenset("AC")}


def test_ids_keep_their_dtype_and_extra_columns_are_nan_for_new_rows():
    pairs = pd.DataFrame({"item_id_a": [1, 2], "item_id_b": [2, 3], "label": [1, 1],
                          "category": ["x", "y"], "origin": ["manual", "manual"]})
    out, _ = enlarge_pairs(pairs)
    assert out["item_id_a"].dtype == np.int64 and out["item_id_b"].dtype == np.int64
    assert {out["item_id_a"].iloc[2], out["item_id_b"].iloc[2]} == {1, 3}
    assert list(out.columns) == list(pairs.columns)
    assert out["origin"].tolist() == ["manual", "manual", "transitive_positive"]
    assert pd.isna(out["category"].iloc[2])


def test_group_propagation():
    pairs = frame(("A", "B", 1), ("B", "C", 1), ("C", "D", 1),     # cluster ABCD: groups g, g, h
                  ("E", "F", 1), ("F", "G", 1),                      # cluster EFG: group k
                  ("A", "E", 0),                                     # negative in group n
                  group=["g", "g", "h", "k", "k", "n"])
    out, rep = enlarge_pairs(pairs, NO_CAP)
    new = out[out["origin"] != "given"]
    groups = {frozenset(ab): g for *ab, g in zip(new["item_id_a"], new["item_id_b"], new["group"])}
    for pair in [frozenset("AC"), frozenset("AD"), frozenset("BD")]:
        assert groups[pair] == "g"                                   # most common group wins
    assert groups[frozenset("EG")] == "k"
    assert all(groups[frozenset((x, y))] == "n" for x in "ABCD" for y in "EFG" if x + y != "AE")
    assert rep["group_disagreements"] == 1


def test_missing_label_column():
    with pytest.raises(DataError, match="label") as err:
        enlarge_pairs(pd.DataFrame({"item_id_a": ["A"], "item_id_b": ["B"]}))
    assert err.value.column == "label"


def test_missing_id_column():
    with pytest.raises(DataError) as err:
        enlarge_pairs(pd.DataFrame({"item_id_a": ["A"], "label": [1]}))
    assert err.value.column == "item_id_b"


def test_bad_label_names_column_and_first_row():
    pairs = frame(("A", "B", 1), ("B", "C", 2), ("C", "D", 3))
    pairs.index = [10, 11, 12]
    with pytest.raises(DataError, match=r"column 'label'.*\b2\b.*index 11"):
        enlarge_pairs(pairs)


def test_bad_config():
    with pytest.raises(ValueError, match="max_new_ratio"):
        enlarge_pairs(frame(("A", "B", 1)), EnlargeConfig(max_new_ratio=-1))
    with pytest.raises(ValueError, match="max_cluster_size"):
        enlarge_pairs(frame(("A", "B", 1)), EnlargeConfig(max_cluster_size=1))


# --- random graphs ----------------------------------------------------------------------------

def random_pairs(n_pairs: int, n_nodes: int, positive_share: float, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    a = rng.integers(0, n_nodes, n_pairs)
    b = rng.integers(0, n_nodes, n_pairs)
    label = (rng.random(n_pairs) < positive_share).astype(int)
    return pd.DataFrame({"item_id_a": [f"i{x}" for x in a], "item_id_b": [f"i{x}" for x in b],
                         "label": label, "group": rng.integers(0, 3, n_pairs)})


def reference(pairs: pd.DataFrame, max_cluster_size: int):
    """Brute force with Python sets: (new positives, new negatives, counts)."""
    edges = [(a, b, l) for a, b, l in zip(pairs["item_id_a"], pairs["item_id_b"], pairs["label"])
             if a != b]
    parent: dict[str, str] = {}

    def find(x):
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, b, l in edges:
        find(a), find(b)
        if l == 1:
            parent[find(a)] = find(b)
    clusters: dict[str, set] = {}
    for x in parent:
        clusters.setdefault(find(x), set()).add(x)
    conflicted = {find(a) for a, b, l in edges if l == 0 and find(a) == find(b)}
    big = {r for r, m in clusters.items() if len(m) > max_cluster_size}
    unreliable = conflicted | big
    existing = {frozenset((a, b)) for a, b, _ in edges}
    new_pos = {frozenset(p) for r, m in clusters.items() if len(m) >= 2 and r not in unreliable
               for p in combinations(sorted(m), 2)} - existing

    def spread(x):
        return {x} if find(x) in unreliable else clusters[find(x)]

    new_neg = {frozenset((x, y)) for a, b, l in edges if l == 0 and find(a) != find(b)
               for x in spread(a) for y in spread(b)} - existing
    counts = {"conflicting_negatives": sum(l == 0 and find(a) == find(b) for a, b, l in edges),
              "conflicted_clusters": len(conflicted), "skipped_big_clusters": len(big),
              "n_clusters": sum(len(m) >= 2 for m in clusters.values())}
    return new_pos, new_neg, counts


@pytest.mark.parametrize("seed", [0, 1])
def test_random_graph_matches_brute_force(seed):
    # 3,000 listings, 40% positives: a giant chain (skipped), conflicts, many small clusters.
    pairs = random_pairs(5000, 3000, 0.4, seed)
    out, rep = enlarge_pairs(pairs, EnlargeConfig(max_new_ratio=float("inf"), max_cluster_size=20))
    ref_pos, ref_neg, counts = reference(pairs, 20)
    got_pos, got_neg = new_pairs(out, "transitive_positive"), new_pairs(out, "transitive_negative")
    assert got_pos == ref_pos and got_neg == ref_neg
    assert len(ref_pos) > 100 and len(ref_neg) > 100          # the case is not trivial
    assert rep["new_positive_candidates"] == len(ref_pos)
    assert rep["new_negative_candidates"] == len(ref_neg)
    for key, value in counts.items():
        assert rep[key] == value, key
    assert counts["conflicting_negatives"] > 0 and counts["skipped_big_clusters"] > 0
    new = out.iloc[len(pairs):]
    assert len(set(unordered(new))) == len(new)                            # no duplicates
    assert not set(unordered(new)) & set(unordered(pairs))                  # nothing given twice
    pd.testing.assert_frame_equal(out.iloc[:len(pairs)].drop(columns="origin"), pairs)


def test_cap_respects_ratio_is_stratified_and_seeded():
    pairs = random_pairs(2000, 1500, 0.4, 7)
    full, rep_full = enlarge_pairs(pairs, EnlargeConfig(max_new_ratio=float("inf")))
    n_pos, n_neg = rep_full["new_positive_candidates"], rep_full["new_negative_candidates"]
    assert n_pos + n_neg > 0.3 * len(pairs)
    cfg = EnlargeConfig(max_new_ratio=0.3, seed=1)
    out, rep = enlarge_pairs(pairs, cfg)
    limit = int(0.3 * len(pairs))
    assert len(out) - len(pairs) == limit == rep["new_positive_added"] + rep["new_negative_added"]
    assert rep["dropped_by_cap"] == n_pos + n_neg - limit
    assert rep["new_positive_added"] == round(limit * n_pos / (n_pos + n_neg))
    # Sampled rows are a subset of the uncapped candidates, with the same labels and groups.
    key = ["item_id_a", "item_id_b", "label", "group", "origin"]
    assert set(map(tuple, out[key].to_numpy())) <= set(map(tuple, full[key].to_numpy()))
    again, _ = enlarge_pairs(pairs, cfg)
    pd.testing.assert_frame_equal(out, again)
    other, _ = enlarge_pairs(pairs, EnlargeConfig(max_new_ratio=0.3, seed=2))
    assert len(other) == len(out) and not out.equals(other)


def test_deterministic_without_cap():
    pairs = random_pairs(3000, 2000, 0.4, 3)
    out1, rep1 = enlarge_pairs(pairs, NO_CAP)
    out2, rep2 = enlarge_pairs(pairs.copy(), NO_CAP)
    pd.testing.assert_frame_equal(out1, out2)
    assert rep1 == rep2


def test_empty_pairs():
    pairs = pd.DataFrame({"item_id_a": pd.Series([], dtype=str),
                          "item_id_b": pd.Series([], dtype=str), "label": pd.Series([], dtype=int)})
    out, rep = enlarge_pairs(pairs)
    assert len(out) == 0 and rep["n_given"] == 0 and rep["largest_cluster"] == 0
