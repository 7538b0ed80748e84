"""Price features: ratio, log and relative difference, missing flags."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from helpers import field_pairs, price_features


def prices(*pairs):
    return price_features(field_pairs("price", *pairs))


def test_both_prices_known():
    f = prices((100.0, 50.0), (30.0, 30.0)).reset_index(drop=True)
    assert f["price.ratio"].iloc[0] == pytest.approx(0.5)
    assert f["price.log_diff"].iloc[0] == pytest.approx(math.log(2))
    assert f["price.rel_diff"].iloc[0] == pytest.approx(0.5)
    assert f["price.log_min"].iloc[0] == pytest.approx(math.log(50))
    assert f["price.n_missing"].iloc[0] == 0
    assert f["price.ratio"].iloc[1] == pytest.approx(1.0)
    assert f["price.log_diff"].iloc[1] == pytest.approx(0.0)
    assert f["price.rel_diff"].iloc[1] == pytest.approx(0.0)


@pytest.mark.parametrize("a,b,n_missing", [
    (np.nan, 100.0, 1), (100.0, np.nan, 1), (np.nan, np.nan, 2),
    (0.0, 100.0, 1),      # zero price: a placeholder, treated as missing
    (0.0, 0.0, 2),
    (-5.0, 100.0, 1),     # negative price: treated as missing too
    ("n/a", 100.0, 1),    # unparseable text
])
def test_missing_prices(a, b, n_missing):
    f = prices((a, b)).iloc[0]
    assert f["price.n_missing"] == n_missing
    for c in ("price.ratio", "price.log_diff", "price.rel_diff", "price.log_min"):
        assert np.isnan(f[c]), c


def test_numeric_strings_are_parsed():
    f = prices(("1500", 1000)).iloc[0]
    assert f["price.ratio"] == pytest.approx(1000 / 1500)
    assert f["price.rel_diff"] == pytest.approx(500 / 1500)


def test_symmetric_in_pair_order():
    pairs = [(100.0, 50.0), (np.nan, 3.0), (0.0, 7.0), (2.0, 2.0)]
    pd.testing.assert_frame_equal(prices(*pairs), prices(*[(b, a) for a, b in pairs]))
