"""Cross-validation that never puts one listing in two folds (seed item 4).

Groups are connected components of the pair graph: if A-B is in one fold and
B-C in another, B's text leaks across folds; components make that impossible.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from dupsearch.errors import DataError
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components
from sklearn.model_selection import StratifiedGroupKFold


def pair_components(pairs: pd.DataFrame) -> np.ndarray:
    """Connected-component id of each pair in the graph whose edges are the pairs."""
    ids, inv = np.unique(np.concatenate([pairs["item_id_a"].astype(str).to_numpy(),
                                         pairs["item_id_b"].astype(str).to_numpy()]),
                         return_inverse=True)
    n = len(pairs)
    a, b = inv[:n], inv[n:]
    g = sp.coo_matrix((np.ones(n), (a, b)), shape=(len(ids), len(ids)))
    _, labels = connected_components(g, directed=False)
    return labels[a]


def choose_groups(pairs: pd.DataFrame, n_splits: int) -> tuple[np.ndarray, str]:
    """Groups for cross-validation and the name of the rule that made them.

    1. the user's `group` column, when given;
    2. connected components of the pair graph, when no component is too big for
       one fold (then no listing is ever in two folds);
    3. otherwise (candidate graphs of benchmarks are often one giant component)
       the left listing `item_id_a`: a listing is never on the left in two folds,
       but may appear on the right of pairs in other folds. The rule used is
       reported, so CV figures are read with that in mind.
    """
    if "group" in pairs:
        return pairs["group"].astype(str).to_numpy(), "group column"
    comp = pair_components(pairs)
    largest = np.bincount(comp).max()
    if largest <= 1.5 * len(pairs) / n_splits:
        return comp, "pair-graph components"
    return pairs["item_id_a"].astype(str).to_numpy(), "item_id_a (pair graph too connected)"


def group_folds(pairs: pd.DataFrame, y: np.ndarray, n_splits: int = 5, seed: int = 0
                ) -> tuple[list[tuple[np.ndarray, np.ndarray]], str]:
    """StratifiedGroupKFold folds (train index, test index) and the grouping rule used."""
    groups, rule = choose_groups(pairs, n_splits)
    n_groups = len(np.unique(groups))
    if n_groups < n_splits:
        raise DataError(
            f"only {n_groups} independent groups of pairs ({rule}); need at least {n_splits} "
            f"for {n_splits}-fold cross-validation: give a `group` column, fewer --folds or "
            "--valid pairs")
    classes = np.unique(y)
    if len(classes) < 2:
        raise DataError(f"every training pair has label {int(classes[0])}: a classifier needs "
                        "duplicates (1) and non-duplicates (0)")
    skf = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    return [(tr, te) for tr, te in skf.split(np.zeros(len(y)), y, groups)], rule
