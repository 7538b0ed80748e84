"""Pair kernels over the sparse rows of a listing store, compiled with numba.

Each kernel walks row ``ia[k]`` of one CSR matrix and row ``ib[k]`` of another (sorted column
indices, as the store keeps them) in one merge, straight from the store's (memory-mapped) arrays:
no gathered copies of the rows and no product matrix, which is what scipy's ``A[ia].multiply(B[ib])``
costs. The loop over pairs is the kernel's own, compiled: a Python loop per pair would be the
thing this module exists to avoid. The three pair kernels write the same merge loop out each:
what happens on a shared column is the whole difference, and a callback per shared entry would
cost more than the merge itself.
"""
from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def _pair_dot(pa, ja, xa, pb, jb, xb, ia, ib):  # pragma: no cover - compiled
    n = len(ia)
    out = np.zeros(n)
    for k in range(n):
        a, a_end = pa[ia[k]], pa[ia[k] + 1]
        b, b_end = pb[ib[k]], pb[ib[k] + 1]
        s = 0.0
        while a < a_end and b < b_end:
            u, v = ja[a], jb[b]
            if u == v:
                s += np.float64(xa[a]) * np.float64(xb[b])
                a += 1
                b += 1
            elif u < v:
                a += 1
            else:
                b += 1
        out[k] = s
    return out


@njit(cache=True, nogil=True)
def _pair_shared(pa, ja, pb, jb, ia, ib, n_tags):  # pragma: no cover - compiled
    # n_tags == 1: plain counts; else counts per tag (the low bits of the column index)
    n = len(ia)
    out = np.zeros((n, n_tags))
    mask = n_tags - 1
    for k in range(n):
        a, a_end = pa[ia[k]], pa[ia[k] + 1]
        b, b_end = pb[ib[k]], pb[ib[k] + 1]
        while a < a_end and b < b_end:
            u, v = ja[a], jb[b]
            if u == v:
                out[k, u & mask] += 1.0
                a += 1
                b += 1
            elif u < v:
                a += 1
            else:
                b += 1
    return out


@njit(cache=True, nogil=True)
def _pair_intersect(pa, ja, pb, jb, ia, ib):  # pragma: no cover - compiled
    n = len(ia)
    total = 0
    for k in range(n):  # first pass: how many shared entries, to size the output once
        a, a_end = pa[ia[k]], pa[ia[k] + 1]
        b, b_end = pb[ib[k]], pb[ib[k] + 1]
        while a < a_end and b < b_end:
            u, v = ja[a], jb[b]
            if u == v:
                total += 1
                a += 1
                b += 1
            elif u < v:
                a += 1
            else:
                b += 1
    rows = np.empty(total, np.int64)
    pos_a = np.empty(total, np.int64)
    pos_b = np.empty(total, np.int64)
    t = 0
    for k in range(n):
        a, a_end = pa[ia[k]], pa[ia[k] + 1]
        b, b_end = pb[ib[k]], pb[ib[k] + 1]
        while a < a_end and b < b_end:
            u, v = ja[a], jb[b]
            if u == v:
                rows[t], pos_a[t], pos_b[t] = k, a, b
                t += 1
                a += 1
                b += 1
            elif u < v:
                a += 1
            else:
                b += 1
    return rows, pos_a, pos_b


@njit(cache=True, nogil=True)
def _grouped_rows(doc, cols, n_docs, counted):  # pragma: no cover - compiled
    # bucket the (doc, col) pairs by doc (a counting sort: O(n)), then sort each small bucket
    start = np.zeros(n_docs + 1, np.int64)
    for d in doc:
        start[d + 1] += 1
    for d in range(n_docs):
        start[d + 1] += start[d]
    pos = start[:-1].copy()
    buf = np.empty(len(cols), np.int64)
    for i in range(len(doc)):
        buf[pos[doc[i]]] = cols[i]
        pos[doc[i]] += 1
    indptr = np.zeros(n_docs + 1, np.int64)
    indices = np.empty(len(cols), np.int64)
    counts = np.empty(len(cols) if counted else 0, np.float64)
    w = 0
    for d in range(n_docs):
        seg = buf[start[d]:start[d + 1]]
        seg.sort()  # in place: no array per document
        for j in range(len(seg)):
            if j == 0 or seg[j] != seg[j - 1]:
                indices[w] = seg[j]
                if counted:
                    counts[w] = 1.0
                w += 1
            elif counted:
                counts[w - 1] += 1.0
        indptr[d + 1] = w
    return indptr, indices[:w], counts[:w]


def grouped_rows(doc: np.ndarray, cols: np.ndarray, n_docs: int, counted: bool = False):
    """CSR rows of (document, column) pairs: ``indptr``, each row's distinct columns in order and,
    with ``counted``, how often each occurs (float64); what sorting doc * width + col globally
    gives, bucketed by document instead (per-listing work of the store build)."""
    doc = np.asarray(doc, np.int64)
    if len(doc) and (doc.min() < 0 or doc.max() >= n_docs):
        raise ValueError(f"document numbers outside [0, {n_docs})")
    return _grouped_rows(doc, np.asarray(cols, np.int64), int(n_docs), bool(counted))


def _parts(X):
    return np.asarray(X.indptr), np.asarray(X.indices)


def _rows(ia, ib, A, B):
    ia = np.arange(A.shape[0], dtype=np.int64) if ia is None else np.asarray(ia, np.int64)
    ib = np.arange(B.shape[0], dtype=np.int64) if ib is None else np.asarray(ib, np.int64)
    if len(ia) != len(ib):
        raise ValueError(f"{len(ia)} left rows but {len(ib)} right rows")
    return ia, ib


def pair_dot(A, B, ia=None, ib=None) -> np.ndarray:
    """Dot products of row ia[k] of A and row ib[k] of B (float64 sums); None: every row in order."""
    ia, ib = _rows(ia, ib, A, B)
    return _pair_dot(*_parts(A), np.asarray(A.data), *_parts(B), np.asarray(B.data), ia, ib)


def shared_count(A, B, ia=None, ib=None, n_tags: int = 1) -> np.ndarray:
    """Column indices row ia[k] of A and row ib[k] of B share: a vector, or with ``n_tags`` > 1
    a (pairs, n_tags) array counted by tag (the index's low bits; n_tags a power of two)."""
    ia, ib = _rows(ia, ib, A, B)
    out = _pair_shared(*_parts(A), *_parts(B), ia, ib, int(n_tags))
    return out[:, 0] if n_tags == 1 else out


def intersect(A, B, ia=None, ib=None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Entries row ia[k] of A and row ib[k] of B share: (k, position in A.data, position in B.data)."""
    ia, ib = _rows(ia, ib, A, B)
    return _pair_intersect(*_parts(A), *_parts(B), ia, ib)


@njit(cache=True, nogil=True)
def _copy_rows(indptr, indices, data, rows, out_indices, out_data, at):  # pragma: no cover - compiled
    for k in range(len(rows)):
        a, b = indptr[rows[k]], indptr[rows[k] + 1]
        n = b - a
        out_indices[at:at + n] = indices[a:b]
        out_data[at:at + n] = data[a:b]
        at += n
    return at


def gather_csr(parts: list, width: int):
    """One CSR matrix of the rows ``rows`` of each ``(matrix, rows)`` in ``parts``, one after another,
    copied once into the result (``A[rows]`` then ``vstack`` copies every entry twice: the
    index's candidate rows are ~20 KiB each)."""
    import scipy.sparse as sp
    # the rows' lengths only (a diff of the whole indptr is 8 MB at a million listings)
    counts = [np.asarray(X.indptr)[rows + 1] - np.asarray(X.indptr)[rows] for X, rows in parts]
    total = int(sum(int(c.sum()) for c in counts))
    n = int(sum(len(c) for c in counts))
    idx_dtype = np.int32 if total < 2**31 and width < 2**31 else np.int64
    data_dtype = np.result_type(*[X.data.dtype for X, _ in parts])
    indptr = np.zeros(n + 1, np.int64)
    np.cumsum(np.concatenate(counts) if counts else np.zeros(0, np.int64), out=indptr[1:])
    indices = np.empty(total, idx_dtype)
    data = np.empty(total, data_dtype)
    at = 0
    for X, rows in parts:
        # a source of another dtype is cast entry by entry in the copy, not as a whole column
        at = _copy_rows(np.asarray(X.indptr), np.asarray(X.indices), np.asarray(X.data),
                        np.asarray(rows, np.int64), indices, data, at)
    out = sp.csr_matrix((data, indices, indptr.astype(idx_dtype)), shape=(n, width), copy=False)
    out.has_sorted_indices = True  # each row as its source keeps it: sorted (ListingStore.put)
    return out


# Below this many pairs one thread: starting rapidfuzz's threads costs more than the pairs (an
# online match scores tens of pairs; ~2 ms a call to start them on 2 cores).
SMALL_BATCH = 2_000


def string_pair_scores(a: list, b: list, scorer) -> np.ndarray:
    """``scorer(a[k], b[k])`` for every k (rapidfuzz ``cpdist``: the loop over pairs in C), as
    floats; the process's threads (``dupsearch.threads``) for a large batch, one for a small."""
    from rapidfuzz import process

    from dupsearch.threads import thread_limit
    workers = 1 if len(a) < SMALL_BATCH else thread_limit(-1)
    return process.cpdist(a, b, scorer=scorer, workers=workers).astype(float)
