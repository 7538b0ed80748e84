"""Cluster quality against a reference grouping: pairwise and B-cubed precision/recall.

Both are computed from the contingency table n_ij (items in true group i and predicted
cluster j), never by enumerating pairs, so they are linear in the number of items.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics.cluster import contingency_matrix

from dupsearch.errors import DataError


def _aligned_labels(pred: pd.Series, truth: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Predicted and true labels over the same ids (index cast to str), in one order."""
    sides = {}
    for name, labels in (("pred", pred), ("truth", truth)):
        if not isinstance(labels, pd.Series):
            raise TypeError(f"{name} must be a pandas Series indexed by item id; "
                            f"got {type(labels).__name__}")
        labels = labels.copy()
        labels.index = labels.index.astype(str)
        duplicated = labels.index.duplicated()
        if duplicated.any():
            raise DataError(f"{int(duplicated.sum())} item ids appear more than once in {name} "
                            f"(first: {labels.index[duplicated][0]!r})", column=name)
        missing = labels.isna().to_numpy()
        if missing.any():
            raise DataError(f"{int(missing.sum())} items have no {name} label "
                            f"(first: {labels.index[missing][0]!r})", column=name)
        sides[name] = labels
    pred, truth = sides["pred"], sides["truth"]
    only_truth = truth.index.difference(pred.index)
    only_pred = pred.index.difference(truth.index)
    if len(only_truth) or len(only_pred):
        raise DataError(f"pred and truth must label the same items: {len(only_truth)} ids are "
                        f"missing from pred (e.g. {list(only_truth[:3])}), {len(only_pred)} are "
                        f"missing from truth (e.g. {list(only_pred[:3])})", column="id")
    if len(pred) == 0:
        raise DataError("no items to evaluate", column="id")
    truth = truth.reindex(pred.index)
    return pd.factorize(pred.to_numpy())[0], pd.factorize(truth.to_numpy())[0]


def _contingency(pred: pd.Series, truth: pd.Series):
    pred_codes, truth_codes = _aligned_labels(pred, truth)
    # Rows: true groups, columns: predicted clusters; sparse, so many groups stay cheap.
    table = contingency_matrix(truth_codes, pred_codes, sparse=True).tocsr()
    table.sum_duplicates()
    return table


def _f1(precision: float, recall: float) -> float:
    return 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)


def _pairs(counts: np.ndarray) -> int:
    counts = np.asarray(counts, dtype=np.int64)
    return int((counts * (counts - 1) // 2).sum())


def pairwise_metrics(pred: pd.Series, truth: pd.Series) -> dict:
    """Precision, recall and F1 over unordered item pairs placed in one cluster.

    A pair is predicted when both items share a predicted cluster and true when they share
    a true group. With no predicted pairs precision is 1.0 (no wrong merge was made); with
    no true pairs recall is 1.0 (nothing was missed).
    """
    table = _contingency(pred, truth)
    correct = _pairs(table.data)
    predicted = _pairs(np.asarray(table.sum(axis=0)).ravel())
    true = _pairs(np.asarray(table.sum(axis=1)).ravel())
    precision = correct / predicted if predicted else 1.0
    recall = correct / true if true else 1.0
    return {"precision": precision, "recall": recall, "f1": _f1(precision, recall),
            "correct_pairs": correct, "predicted_pairs": predicted, "true_pairs": true}


def bcubed_metrics(pred: pd.Series, truth: pd.Series) -> dict:
    """B-cubed precision, recall and F1 (Bagga & Baldwin 1998), averaged over items.

    Item precision is the share of its predicted cluster in its own true group, item recall
    the share of its true group in its predicted cluster. Summed over items this is
    sum_ij n_ij^2 / |cluster j| and sum_ij n_ij^2 / |group i|.
    """
    table = _contingency(pred, truth).tocoo()
    cluster_size = np.asarray(table.sum(axis=0)).ravel().astype(np.float64)
    group_size = np.asarray(table.sum(axis=1)).ravel().astype(np.float64)
    n_items = float(cluster_size.sum())
    squared = table.data.astype(np.float64) ** 2
    precision = float((squared / cluster_size[table.col]).sum() / n_items)
    recall = float((squared / group_size[table.row]).sum() / n_items)
    return {"precision": precision, "recall": recall, "f1": _f1(precision, recall)}
