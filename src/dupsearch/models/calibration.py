"""Probability alignment and calibration of pair scores.

- `prior_shift`: the seed's post-processing (item 16). A model trained where duplicates made up
  a share rho1 of the pairs reports probabilities for that prior; re-weighting its odds by
  (pi1/pi0)/(rho1/rho0) gives the probability under another prior pi1:
  p' = p*pi1*rho0 / (p*pi1*rho0 + (1-p)*pi0*rho1). Used to put per-category models on the
  general model's scale before blending them.
- `CategoryCalibrator`: a monotone map per category (Platt or isotonic) learned on out-of-fold
  scores; what the seed did with hand multipliers (x1.2, x1.3 per category), learned instead.
  Categories with too few pairs share one map fitted on all pairs.
"""

from __future__ import annotations

import numpy as np

CALIBRATION_METHODS = ("none", "platt", "isotonic")
_EPS = 1e-6


def prior_shift(p: np.ndarray, target_prior, train_prior) -> np.ndarray:
    """Probabilities of a model trained under positive rate `train_prior` (rho1), moved to
    positive rate `target_prior` (pi1). Scalars or arrays (one prior per row) both work."""
    p = np.asarray(p, dtype=float)
    pi1 = np.asarray(target_prior, dtype=float)
    rho1 = np.asarray(train_prior, dtype=float)
    if np.any((pi1 <= 0) | (pi1 >= 1)) or np.any((rho1 <= 0) | (rho1 >= 1)):
        raise ValueError("priors must lie strictly between 0 and 1")
    num = p * pi1 * (1 - rho1)
    den = num + (1 - p) * (1 - pi1) * rho1
    # p = 0 and p = 1 stay put; den is 0 only when p is 0 and 1 at once (impossible)
    return np.where(den > 0, num / np.where(den > 0, den, 1.0), p)


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype=float), _EPS, 1 - _EPS)
    return np.log(p / (1 - p))


class _Platt:
    """p -> sigmoid(a * logit(p) + b), fitted by logistic regression (almost no regularisation)."""

    def fit(self, p, y):
        from sklearn.linear_model import LogisticRegression
        lr = LogisticRegression(C=1e4, max_iter=1000).fit(_logit(p)[:, None], y)
        self.a, self.b = float(lr.coef_[0, 0]), float(lr.intercept_[0])
        return self

    def transform(self, p):
        return 1.0 / (1.0 + np.exp(-(self.a * _logit(p) + self.b)))

    def to_dict(self):
        return {"a": self.a, "b": self.b}

    @classmethod
    def from_dict(cls, d):
        self = cls()
        self.a, self.b = d["a"], d["b"]
        return self


class _Isotonic:
    """Isotonic regression, kept as its breakpoints so it saves as plain JSON."""

    def fit(self, p, y):
        from sklearn.isotonic import IsotonicRegression
        iso = IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0).fit(p, y)
        self.x, self.y = iso.X_thresholds_.tolist(), iso.y_thresholds_.tolist()
        return self

    def transform(self, p):
        return np.interp(np.asarray(p, dtype=float), self.x, self.y)

    def to_dict(self):
        return {"x": self.x, "y": self.y}

    @classmethod
    def from_dict(cls, d):
        self = cls()
        self.x, self.y = d["x"], d["y"]
        return self


_MAPS = {"platt": _Platt, "isotonic": _Isotonic}


class CategoryCalibrator:
    """One monotone map per category (with enough pairs of both classes), one shared map for
    the rest and for categories never seen in training."""

    def __init__(self, method: str = "platt", min_pairs: int = 200, min_positives: int = 20):
        if method not in _MAPS:
            raise ValueError(f"unknown calibration {method!r}; choose one of {sorted(_MAPS)}")
        self.method, self.min_pairs, self.min_positives = method, min_pairs, min_positives
        self.shared_ = None
        self.per_category_: dict[str, object] = {}

    def fit(self, p: np.ndarray, y: np.ndarray, category: np.ndarray) -> "CategoryCalibrator":
        p, y, category = np.asarray(p, float), np.asarray(y, int), np.asarray(category).astype(str)
        self.shared_ = _MAPS[self.method]().fit(p, y)
        self.per_category_ = {}
        for c in np.unique(category):
            m = category == c
            pos = int(y[m].sum())
            # enough pairs of both classes (as CategoryModels.eligible): one negative among
            # hundreds of positives is no basis for a map of its own
            if m.sum() >= self.min_pairs and self.min_positives <= pos <= m.sum() - self.min_positives:
                self.per_category_[str(c)] = _MAPS[self.method]().fit(p[m], y[m])
        return self

    def transform(self, p: np.ndarray, category: np.ndarray) -> np.ndarray:
        p, category = np.asarray(p, float), np.asarray(category).astype(str)
        out = self.shared_.transform(p)
        for c, cal in self.per_category_.items():
            m = category == c
            if m.any():
                out[m] = cal.transform(p[m])
        return out

    def to_dict(self) -> dict:
        return {"method": self.method, "min_pairs": self.min_pairs, "min_positives": self.min_positives,
                "shared": self.shared_.to_dict(),
                "per_category": {c: m.to_dict() for c, m in self.per_category_.items()}}

    @classmethod
    def from_dict(cls, d: dict) -> "CategoryCalibrator":
        self = cls(d["method"], d["min_pairs"], d["min_positives"])
        kind = _MAPS[self.method]
        self.shared_ = kind.from_dict(d["shared"])
        self.per_category_ = {c: kind.from_dict(v) for c, v in d["per_category"].items()}
        return self
