"""Training-set enlargement through transitive chains (issue #6).

Labelled pairs imply more labels than they state: if A~B and B~C, then A~C; and if A!~D, every
listing of A's duplicate cluster is a non-duplicate of every listing of D's cluster. This module
adds those implied pairs to a pairs table, bounded and reported, so the effect on a model can be
measured with the enlargement switched on and off.

Rules (the tests in tests/test_enlarge.py pin them down):

* duplicate clusters are the connected components of the graph of positive edges only;
  a listing without a positive edge is a cluster of size 1;
* a cluster is *unreliable* when it is bigger than `max_cluster_size` (a long chain of label
  noise can glue unrelated products together) or when a negative edge has both ends in it
  (a conflict: the labels contradict each other);
* new positives: every missing pair inside each reliable cluster of size >= 2;
* new negatives: for each non-conflicting negative edge (a, b), every missing pair of
  cluster(a) x cluster(b). An unreliable cluster is dissolved into singletons for this, so
  only its own listing takes part: a negative edge into a suspicious cluster still spreads
  over the reliable side, never over the suspicious one;
* the new pairs are capped at `max_new_ratio * len(pairs)`, sampled (seeded) so that positives
  and negatives keep their share of the candidates.

New pairs never contradict a given label: a new positive lies inside a cluster without negative
edges, a new negative joins two different positive clusters, and no given positive does that.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components

from dupsearch.errors import DataError

ORIGIN_GIVEN = "given"
ORIGIN_POSITIVE = "transitive_positive"
ORIGIN_NEGATIVE = "transitive_negative"
REQUIRED_COLUMNS = ("item_id_a", "item_id_b", "label")


@dataclass
class EnlargeConfig:
    """What `enlarge_pairs` adds and how much of it."""

    positives: bool = True        # A~B, B~C => A~C inside confirmed duplicate clusters
    negatives: bool = True        # A!~B => each x in cluster(A), y in cluster(B) is a non-duplicate
    max_new_ratio: float = 1.0    # at most this many new pairs per given pair (inf: no cap)
    max_cluster_size: int = 50    # bigger positive clusters are suspicious chains: not expanded
    seed: int = 0                 # seeds the sampling under the cap


def enlarge_pairs(pairs: pd.DataFrame, config: EnlargeConfig | None = None
                  ) -> tuple[pd.DataFrame, dict]:
    """Return (given pairs + new pairs, report).

    The given rows come first, unchanged and in their order (the index is reset to 0..n-1),
    then the new positives, then the new negatives. New rows carry `item_id_a`, `item_id_b`,
    `label`, `origin` and, when the table has one, `group`; other columns are NaN for them.
    Rows get `origin="given"` unless the table already has an `origin` column, which is kept.
    The same input and config give the same output, row order included.
    """
    cfg = config or EnlargeConfig()
    _check_config(cfg)
    labels = _validated(pairs)
    n_given = len(pairs)
    has_group = "group" in pairs.columns

    raw_a, raw_b = pairs["item_id_a"].to_numpy(), pairs["item_id_b"].to_numpy()
    str_a = pairs["item_id_a"].astype(str).to_numpy()
    str_b = pairs["item_id_b"].astype(str).to_numpy()
    is_self = str_a == str_b
    rows = np.flatnonzero(~is_self)       # positions of the rows the graph is built from
    n_rows = len(rows)

    # Listings as nodes 0..N-1 (first-appearance order, so deterministic); each node keeps the
    # first raw id it was seen as, so new rows use the table's own id values and dtype.
    codes, _ = pd.factorize(np.concatenate([str_a[rows], str_b[rows]]))
    n_nodes = int(codes.max()) + 1 if n_rows else 0
    _, first_seen = np.unique(codes, return_index=True)
    node_value = np.concatenate([raw_a[rows], raw_b[rows]])[first_seen]
    a, b = codes[:n_rows].astype(np.int64), codes[n_rows:].astype(np.int64)
    lab = labels[rows]
    pos, neg = lab == 1, lab == 0

    # Duplicate clusters: components of the positive edges (unconnected listings are singletons).
    graph = sp.coo_matrix((np.ones(int(pos.sum())), (a[pos], b[pos])), shape=(n_nodes, n_nodes))
    n_comp, comp = connected_components(graph, directed=False) if n_nodes else (0, np.zeros(0, int))
    comp = comp.astype(np.int64)
    comp_size = np.bincount(comp, minlength=n_comp)

    neg_a, neg_b, neg_rows = a[neg], b[neg], rows[neg]
    conflict = comp[neg_a] == comp[neg_b]
    conflicted = np.zeros(n_comp, bool)
    conflicted[comp[neg_a[conflict]]] = True
    too_big = comp_size > cfg.max_cluster_size
    unreliable = conflicted | too_big

    existing = np.unique(_pair_key(a, b, n_nodes))   # given pairs, either order
    group_codes = (pd.factorize(pairs["group"], use_na_sentinel=True)[0] if has_group
                   else np.full(n_given, -1))

    report = {
        "n_given": n_given,
        "n_positive_given": int((labels == 1).sum()),
        "n_negative_given": int((labels == 0).sum()),
        "self_pairs": int(is_self.sum()),
        "n_clusters": int((comp_size >= 2).sum()),
        "largest_cluster": int(comp_size.max()) if n_comp else 0,
        "skipped_big_clusters": int(too_big.sum()),
        "conflicting_negatives": int(conflict.sum()),
        "conflicted_clusters": int(conflicted.sum()),
        # Missing pairs inside unreliable clusters: the positives withheld from them.
        "positives_withheld": _missing_inside(unreliable, comp, comp_size, a, b, existing, n_nodes),
        # Non-conflicting negatives with an end in an unreliable cluster: expanded on the
        # reliable side only.
        "negatives_touching_unreliable": int((~conflict & (unreliable[comp[neg_a]]
                                                           | unreliable[comp[neg_b]])).sum()),
    }

    # --- new positives -------------------------------------------------------------------
    pos_x = pos_y = pos_row = np.zeros(0, np.int64)
    group_disagreements = 0
    if cfg.positives:
        expand = (comp_size >= 2) & ~unreliable
        pos_x, pos_y, pos_comp = _pairs_inside(expand, comp, comp_size)
        keep = ~np.isin(_pair_key(pos_x, pos_y, n_nodes), existing)
        pos_x, pos_y, pos_comp = pos_x[keep], pos_y[keep], pos_comp[keep]
        rep_row, disagree = _cluster_group(comp[a[pos]], rows[pos], group_codes, n_comp)
        group_disagreements = int((disagree & expand).sum()) if has_group else 0
        pos_row = rep_row[pos_comp]

    # --- new negatives -------------------------------------------------------------------
    neg_x = neg_y = neg_row = np.zeros(0, np.int64)
    negative_group_disagreements = 0
    if cfg.negatives:
        # Expansion clusters: reliable clusters as they are, unreliable ones dissolved into
        # singletons (ids n_comp + node, distinct from every cluster id).
        ecl = np.where(unreliable[comp], n_comp + np.arange(n_nodes), comp)
        n_ecl = n_comp + n_nodes
        ex, ey, erow = ecl[neg_a[~conflict]], ecl[neg_b[~conflict]], neg_rows[~conflict]
        # Many negatives may join the same two clusters; expand each cluster pair once, from
        # its first edge (its orientation and group). A node pair has one cluster pair, so this
        # dedupes the new negatives exactly.
        ckey = _pair_key(ex, ey, n_ecl)
        uniq, first, inverse = np.unique(ckey, return_index=True, return_inverse=True)
        if has_group:
            negative_group_disagreements = _count_multi_group(inverse, group_codes[erow])
        first = np.sort(first)
        neg_x, neg_y, edge = _cross_pairs(ex[first], ey[first], ecl, n_ecl)
        neg_row = erow[first][edge]
        keep = ~np.isin(_pair_key(neg_x, neg_y, n_nodes), existing)
        neg_x, neg_y, neg_row = neg_x[keep], neg_y[keep], neg_row[keep]

    report["new_positive_candidates"] = len(pos_x)
    report["new_negative_candidates"] = len(neg_x)

    # --- cap -----------------------------------------------------------------------------
    limit = _cap(cfg.max_new_ratio, n_given)
    keep_pos, keep_neg = _stratified_sample(len(pos_x), len(neg_x), limit, cfg.seed)
    pos_x, pos_y, pos_row = pos_x[keep_pos], pos_y[keep_pos], pos_row[keep_pos]
    neg_x, neg_y, neg_row = neg_x[keep_neg], neg_y[keep_neg], neg_row[keep_neg]
    report["cap_limit"] = limit          # None: no cap
    report["new_positive_added"] = len(pos_x)
    report["new_negative_added"] = len(neg_x)
    report["dropped_by_cap"] = (report["new_positive_candidates"]
                                + report["new_negative_candidates"]
                                - len(pos_x) - len(neg_x))
    report["group_disagreements"] = group_disagreements
    report["negative_group_disagreements"] = negative_group_disagreements
    report = {k: (int(v) if isinstance(v, (int, np.integer)) else v) for k, v in report.items()}

    out = _assemble(pairs, node_value,
                    np.concatenate([pos_x, neg_x]), np.concatenate([pos_y, neg_y]),
                    np.concatenate([pos_row, neg_row]), len(pos_x), has_group)
    return out, report


# ---------------------------------------------------------------------------------------------
# validation

def _check_config(cfg: EnlargeConfig) -> None:
    if not (isinstance(cfg.max_new_ratio, (int, float)) and cfg.max_new_ratio >= 0):
        raise ValueError(f"max_new_ratio must be a number >= 0 (inf for no cap), "
                         f"got {cfg.max_new_ratio!r}")
    if not (isinstance(cfg.max_cluster_size, (int, np.integer)) and cfg.max_cluster_size >= 2):
        raise ValueError(f"max_cluster_size must be an integer >= 2, got {cfg.max_cluster_size!r}")


def _validated(pairs: pd.DataFrame) -> np.ndarray:
    """The labels as int8 0/1, after checking the columns the enlargement reads."""
    for column in REQUIRED_COLUMNS:
        if column not in pairs.columns:
            raise DataError(f"pairs need a {column!r} column to be enlarged (they have "
                            f"{list(pairs.columns)})", column=column)
    for column in ("item_id_a", "item_id_b"):
        missing = np.flatnonzero(pairs[column].isna().to_numpy())
        if len(missing):
            i = int(missing[0])
            raise DataError(f"{len(missing)} empty item id(s); the first at index "
                            f"{_shown(pairs.index[i])}", row=i + 1, column=column)
    values = pd.to_numeric(pairs["label"], errors="coerce").to_numpy(dtype=float)
    bad = np.flatnonzero(~np.isin(values, (0.0, 1.0)))
    if len(bad):
        i = int(bad[0])
        raise DataError(f"labels must be 0 or 1; {len(bad)} are not, the first is "
                        f"{_shown(pairs['label'].iloc[i])} at index {_shown(pairs.index[i])}",
                        row=i + 1, column="label")
    return values.astype(np.int8)


def _shown(value) -> str:
    """repr of a value as a person wrote it (2, not np.int64(2))."""
    return repr(value.item() if isinstance(value, np.generic) else value)


# ---------------------------------------------------------------------------------------------
# graph arithmetic (all vectorized; the loops are over distinct sizes, never over pairs)

def _pair_key(x: np.ndarray, y: np.ndarray, n: int) -> np.ndarray:
    """Order-free int64 key of node pairs: min * n + max."""
    x, y = np.asarray(x, np.int64), np.asarray(y, np.int64)
    return np.minimum(x, y) * n + np.maximum(x, y)


def _members(labels: np.ndarray, n_labels: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Nodes sorted by cluster (ascending node within one), each cluster's start and size."""
    order = np.argsort(labels, kind="stable")
    size = np.bincount(labels, minlength=n_labels)
    start = np.concatenate([[0], np.cumsum(size)[:-1]]).astype(np.int64)
    return order, start, size


def _pairs_inside(selected: np.ndarray, comp: np.ndarray, comp_size: np.ndarray
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All unordered node pairs inside the selected clusters, with their cluster."""
    order, start, _ = _members(comp, len(comp_size))
    xs, ys, cs = [np.zeros(0, np.int64)], [np.zeros(0, np.int64)], [np.zeros(0, np.int64)]
    # One pass per distinct cluster size (at most max_cluster_size of them): clusters of one
    # size form a (clusters x size) member matrix, and triu_indices gives all their pairs at once.
    for s in np.unique(comp_size[selected]):
        clusters = np.flatnonzero(selected & (comp_size == s))
        member = order[start[clusters][:, None] + np.arange(s)]
        iu, ju = np.triu_indices(int(s), 1)
        xs.append(member[:, iu].ravel())
        ys.append(member[:, ju].ravel())
        cs.append(np.repeat(clusters, len(iu)))
    return np.concatenate(xs), np.concatenate(ys), np.concatenate(cs)


def _cross_pairs(cx: np.ndarray, cy: np.ndarray, labels: np.ndarray, n_labels: int
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every (x, y) with x in cluster cx[e], y in cluster cy[e], and the e it comes from."""
    order, start, size = _members(labels, n_labels)
    sx, sy = size[cx], size[cy]
    count = sx * sy
    edge = np.repeat(np.arange(len(cx)), count)
    offset = np.arange(int(count.sum())) - np.repeat(np.cumsum(count) - count, count)
    x = order[start[cx][edge] + offset // sy[edge]]
    y = order[start[cy][edge] + offset % sy[edge]]
    return x, y, edge


def _missing_inside(selected: np.ndarray, comp: np.ndarray, comp_size: np.ndarray,
                    a: np.ndarray, b: np.ndarray, existing: np.ndarray, n_nodes: int) -> int:
    """How many unordered pairs inside the selected clusters are not given."""
    all_pairs = int((comp_size[selected] * (comp_size[selected] - 1) // 2).sum())
    inside = (comp[a] == comp[b]) & selected[comp[a]]
    return all_pairs - len(np.unique(_pair_key(a[inside], b[inside], n_nodes)))


def _cluster_group(edge_comp: np.ndarray, edge_row: np.ndarray, group_codes: np.ndarray,
                   n_comp: int) -> tuple[np.ndarray, np.ndarray]:
    """Per cluster: a row whose group is the cluster's most common group, and whether the
    positive edges of the cluster carry more than one group.

    Ties go to the group seen first in the table; empty groups count only when a cluster has
    nothing else. Clusters without a positive edge get row -1 (never used: they add nothing).
    """
    code = group_codes[edge_row]
    width = int(group_codes.max(initial=-1)) + 2    # codes -1..max shifted to 0..width-1
    key = edge_comp * width + (code + 1)
    uniq, first, count = np.unique(key, return_index=True, return_counts=True)
    cluster, shifted = uniq // width, uniq % width
    is_empty = shifted == 0
    # Sort candidates: cluster, non-empty first, most edges first, earliest group first.
    pick = np.lexsort((shifted, -count, is_empty, cluster))
    head = np.ones(len(pick), bool)
    head[1:] = cluster[pick][1:] != cluster[pick][:-1]
    rep_row = np.full(n_comp, -1, np.int64)
    rep_row[cluster[pick][head]] = edge_row[first[pick][head]]
    n_groups = np.bincount(cluster[~is_empty], minlength=n_comp)
    return rep_row, n_groups > 1


def _count_multi_group(owner: np.ndarray, code: np.ndarray) -> int:
    """How many owners (cluster pairs) have edges of more than one non-empty group."""
    ok = code >= 0
    pairs = np.unique(np.stack([owner[ok], code[ok]]), axis=1)
    return int((np.bincount(pairs[0]) > 1).sum()) if pairs.size else 0


# ---------------------------------------------------------------------------------------------
# cap and output

def _cap(ratio: float, n_given: int) -> int | None:
    if math.isinf(ratio):
        return None
    return int(math.floor(ratio * n_given + 1e-9))


def _stratified_sample(n_pos: int, n_neg: int, limit: int | None, seed: int
                       ) -> tuple[np.ndarray, np.ndarray]:
    """Indices of the positives and negatives kept under `limit`, in their original order.

    Each kind keeps its share of the candidates (rounded; the remainder goes to the kind whose
    exact share lost more to rounding, so the total is exactly `limit`).
    """
    if limit is None or n_pos + n_neg <= limit:
        return np.arange(n_pos), np.arange(n_neg)
    k_pos = int(round(limit * n_pos / (n_pos + n_neg)))
    k_pos = min(max(k_pos, limit - n_neg), n_pos)
    k_neg = limit - k_pos
    rng = np.random.default_rng(seed)
    keep_pos = np.sort(rng.choice(n_pos, size=k_pos, replace=False))
    keep_neg = np.sort(rng.choice(n_neg, size=k_neg, replace=False))
    return keep_pos, keep_neg


def _assemble(pairs: pd.DataFrame, node_value: np.ndarray,
              x: np.ndarray, y: np.ndarray, source_row: np.ndarray, n_new_pos: int,
              has_group: bool) -> pd.DataFrame:
    given = pairs.reset_index(drop=True)
    if "origin" not in given.columns:
        given = given.assign(origin=ORIGIN_GIVEN)
    if len(x) == 0:
        return given
    label_dtype = pairs["label"].dtype
    new_label = np.r_[np.ones(n_new_pos, np.int64), np.zeros(len(x) - n_new_pos, np.int64)]
    if pd.api.types.is_numeric_dtype(label_dtype) or pd.api.types.is_bool_dtype(label_dtype):
        new_label = new_label.astype(label_dtype)
    new = {
        "item_id_a": pd.Series(node_value[x]).infer_objects(),
        "item_id_b": pd.Series(node_value[y]).infer_objects(),
        "label": new_label,
        "origin": np.where(np.arange(len(x)) < n_new_pos, ORIGIN_POSITIVE, ORIGIN_NEGATIVE),
    }
    if has_group:
        new["group"] = pairs["group"].to_numpy()[source_row]
    new_rows = pd.DataFrame(new)
    return pd.concat([given, new_rows], ignore_index=True)[given.columns]
