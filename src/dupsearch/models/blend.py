"""Blend weights learned on out-of-fold predictions.

The seed fixed its weights by hand (0.5 * general + 0.5 * (0.7 * CatBoost-category +
0.3 * AutoML-category)). Here the weights of a convex combination of the models' probabilities
are fitted by maximum likelihood on out-of-fold predictions: when the truth is such a mixture,
this recovers its weights (tested); otherwise it finds the mixture closest in log-loss.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import minimize

_EPS = 1e-7


def blend_log_loss(w: np.ndarray, P: np.ndarray, y: np.ndarray) -> float:
    p = np.clip(P @ w, _EPS, 1 - _EPS)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


def learn_blend_weights(P: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Non-negative weights summing to 1 that minimise the log-loss of ``P @ w``.

    P: (n_pairs, n_models) probabilities; y: 0/1 labels. Returns (n_models,)."""
    P = np.asarray(P, dtype=float)
    y = np.asarray(y, dtype=float)
    if P.ndim != 2 or len(P) != len(y):
        raise ValueError(f"P must be (n_pairs, n_models) with n_pairs = len(y); got {P.shape} and {len(y)}")
    if np.isnan(P).any():  # checked first: one model's NaN scores are no better than several's
        raise ValueError("out-of-fold predictions hold NaN; every model must score every pair")
    k = P.shape[1]
    if k == 1:
        return np.ones(1)

    def grad(w, P, y):
        p = np.clip(P @ w, _EPS, 1 - _EPS)
        return -(P * (y / p - (1 - y) / (1 - p))[:, None]).mean(axis=0)

    res = minimize(blend_log_loss, np.full(k, 1.0 / k), args=(P, y), jac=grad, method="SLSQP",
                   bounds=[(0.0, 1.0)] * k,
                   constraints=[{"type": "eq", "fun": lambda w: w.sum() - 1.0, "jac": lambda w: np.ones(k)}],
                   options={"ftol": 1e-12, "maxiter": 500})
    w = np.clip(res.x, 0.0, None)
    return w / w.sum()
