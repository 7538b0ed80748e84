"""Price features (ratio, log difference, missing flags)."""

from __future__ import annotations

import numpy as np
import pandas as pd


def price_features(batch: pd.DataFrame) -> pd.DataFrame:
    pa = batch["price_a"].to_numpy(float)
    pb = batch["price_b"].to_numpy(float)
    # Zero or negative prices are placeholders on marketplaces ("price on request").
    pa = np.where(pa > 0, pa, np.nan)
    pb = np.where(pb > 0, pb, np.nan)
    lo, hi = np.fmin(pa, pb), np.fmax(pa, pb)
    both = ~np.isnan(pa) & ~np.isnan(pb)
    with np.errstate(invalid="ignore", divide="ignore"):
        return pd.DataFrame({
            "price.ratio": np.where(both, lo / hi, np.nan),
            "price.log_diff": np.where(both, np.abs(np.log(pa) - np.log(pb)), np.nan),
            "price.rel_diff": np.where(both, (hi - lo) / hi, np.nan),
            "price.log_min": np.where(both, np.log(lo), np.nan),
            "price.n_missing": np.isnan(pa).astype(float) + np.isnan(pb).astype(float),
        })
