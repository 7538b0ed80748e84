"""The compiled pair kernels equal the scipy expressions they replace, on random sparse rows."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
import scipy.sparse as sp

from dupsearch.features import kernels
from dupsearch.features.store import StringColumn


def random_rows(rng, n, width, density, dtype):
    X = sp.random(n, width, density=density, format="csr", random_state=rng, dtype=np.float64)
    X.data = (X.data * 10).astype(dtype) if dtype != np.int8 else np.ones(X.nnz, np.int8)
    X = sp.csr_matrix(X, dtype=dtype)
    X.sort_indices()
    keep = np.ones(n)
    keep[3] = 0  # an empty row
    X = sp.csr_matrix(sp.diags(keep) @ X, dtype=dtype)
    X.eliminate_zeros()
    X.sort_indices()
    return X


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int8])
def test_kernels_equal_scipy(dtype):
    rng = np.random.default_rng(0)
    A, B = random_rows(rng, 60, 500, 0.05, dtype), random_rows(rng, 40, 500, 0.08, dtype)
    ia, ib = rng.integers(0, 60, 300), rng.integers(0, 40, 300)
    ia[:5] = 3  # empty rows on one side
    prod = sp.csr_matrix(A[ia].multiply(B[ib]))
    np.testing.assert_allclose(kernels.pair_dot(A, B, ia, ib),
                               np.asarray(prod.astype(np.float64).sum(axis=1)).ravel(), rtol=1e-6)
    np.testing.assert_array_equal(kernels.shared_count(A, B, ia, ib), np.diff(prod.indptr))
    tags = kernels.shared_count(A, B, ia, ib, n_tags=8)
    want = np.zeros((len(ia), 8))
    for k in range(len(ia)):
        for c in prod[k].indices:
            want[k, c & 7] += 1
    np.testing.assert_array_equal(tags, want)
    rows, pa_, pb_ = kernels.intersect(A, B, ia, ib)
    assert len(rows) == prod.nnz
    np.testing.assert_array_equal(A.indices[pa_], B.indices[pb_])  # the same column on both sides
    np.testing.assert_array_equal(np.bincount(rows, minlength=len(ia)), np.diff(prod.indptr))
    with pytest.raises(ValueError, match="left rows"):
        kernels.pair_dot(A, B, ia, ib[:-1])


def test_grouped_rows_equal_a_global_sort():
    rng = np.random.default_rng(1)
    n = 50
    doc = rng.integers(0, n - 1, 4000)  # the last document has nothing
    cols = rng.integers(0, 300, 4000)
    indptr, idx, counts = kernels.grouped_rows(doc, cols, n, counted=True)
    key, cnt = np.unique(doc * 1000 + cols, return_counts=True)
    np.testing.assert_array_equal(idx, key % 1000)
    np.testing.assert_array_equal(counts, cnt)
    np.testing.assert_array_equal(np.diff(indptr), np.bincount(key // 1000, minlength=n))
    assert indptr[-1] == indptr[-2]
    with pytest.raises(ValueError, match="outside"):
        kernels.grouped_rows(np.array([n]), np.array([1]), n)


def test_string_column_takes_near_and_far_rows_alike():
    col = StringColumn(pa.chunked_array([pa.array([f"s{i}" for i in range(1000)])]))
    near = np.array([500, 501, 503, 500, 502])
    far = np.array([3, 990, 3, 500])
    assert col[near].tolist() == [f"s{i}" for i in near]
    assert col[far].tolist() == [f"s{i}" for i in far]
    assert col[np.zeros(0, np.int64)].tolist() == []
