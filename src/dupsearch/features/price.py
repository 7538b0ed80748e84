"""Price features (ratio, log difference, missing flags)."""

from __future__ import annotations

import numpy as np

from dupsearch.features.family import Family


class PriceFamily(Family):
    name = "price"

    def _compare(self, store, ia, ib):
        price = np.asarray(store["price"], dtype=float)
        pa, pb = price[ia], price[ib]
        # Zero or negative prices are placeholders on marketplaces ("price on request").
        pa = np.where(pa > 0, pa, np.nan)
        pb = np.where(pb > 0, pb, np.nan)
        lo, hi = np.fmin(pa, pb), np.fmax(pa, pb)
        both = ~np.isnan(pa) & ~np.isnan(pb)
        with np.errstate(invalid="ignore", divide="ignore"):
            return {
                "price.ratio": np.where(both, lo / hi, np.nan),
                "price.log_diff": np.where(both, np.abs(np.log(pa) - np.log(pb)), np.nan),
                "price.rel_diff": np.where(both, (hi - lo) / hi, np.nan),
                "price.log_min": np.where(both, np.log(lo), np.nan),
                "price.n_missing": np.isnan(pa).astype(float) + np.isnan(pb).astype(float),
            }
