"""Metrics of a pairwise duplicate classifier: PR-AUC (the contest metric),
ROC-AUC, best F1 with its threshold, and the same per top-level category."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score, precision_recall_curve, roc_auc_score


def best_f1_threshold(y: np.ndarray, p: np.ndarray) -> tuple[float, float]:
    """(best F1, threshold reaching it): predict duplicate when p >= threshold."""
    y = np.asarray(y)
    if y.sum() == 0:
        return float("nan"), 0.5
    prec, rec, thr = precision_recall_curve(y, p)
    f1 = 2 * prec[:-1] * rec[:-1] / np.maximum(prec[:-1] + rec[:-1], 1e-12)
    i = int(np.argmax(f1))
    return float(f1[i]), float(thr[i])


def half_best_f1_threshold(y: np.ndarray, p: np.ndarray) -> tuple[float, float]:
    """(best F1, half of it as the threshold). For calibrated probabilities the F1-optimal
    threshold is half the optimal F1 (Lipton, Elkan and Naryanaswamy 2014): one number read off
    the curve, where the arg-max's threshold moves with every pair near the cut."""
    f, _ = best_f1_threshold(y, p)
    return f, (0.5 if np.isnan(f) else f / 2)


THRESHOLD_RULES = {"best-f1": best_f1_threshold, "half-best-f1": half_best_f1_threshold}


def f1_at(y: np.ndarray, p: np.ndarray, threshold: float) -> float:
    y = np.asarray(y).astype(bool)
    pred = np.asarray(p) >= threshold
    tp = float(np.sum(pred & y))
    denom = float(pred.sum() + y.sum())
    return 2 * tp / denom if denom else float("nan")


def binary_metrics(y: np.ndarray, p: np.ndarray, threshold: float | None = None) -> dict:
    """PR-AUC, ROC-AUC, best F1 (and its threshold); F1/precision/recall at `threshold` if given."""
    y = np.asarray(y).astype(int)
    p = np.asarray(p, dtype=float)
    both = 0 < y.sum() < len(y)
    out = {
        "n_pairs": int(len(y)),
        "n_positive": int(y.sum()),
        "pr_auc": float(average_precision_score(y, p)) if both else float("nan"),
        "roc_auc": float(roc_auc_score(y, p)) if both else float("nan"),
    }
    out["best_f1"], out["best_f1_threshold"] = best_f1_threshold(y, p) if both else (float("nan"), 0.5)
    if threshold is not None:
        pred = p >= threshold
        tp = int(np.sum(pred & (y == 1)))
        out["threshold"] = float(threshold)
        out["f1"] = f1_at(y, p, threshold)
        out["precision"] = tp / pred.sum() if pred.sum() else float("nan")
        out["recall"] = tp / y.sum() if y.sum() else float("nan")
    return out


def per_category_metrics(y: np.ndarray, p: np.ndarray, category: np.ndarray,
                         threshold: float | None = None) -> pd.DataFrame:
    """binary_metrics per top-level category (empty category shown as '(none)')."""
    frame = pd.DataFrame({"y": np.asarray(y), "p": np.asarray(p),
                          "category": pd.Series(category).fillna("").replace("", "(none)").to_numpy()})
    rows = []
    for cat, g in frame.groupby("category", sort=True):
        m = binary_metrics(g["y"].to_numpy(), g["p"].to_numpy(), threshold)
        rows.append({"category": cat, **m})
    return pd.DataFrame(rows)
