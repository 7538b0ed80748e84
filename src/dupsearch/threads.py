"""How many threads a library call may use inside dupsearch.

By default every call may use all cores. A process that is one of several workers sharing the
cores (dedup's store-building and scoring pools) calls ``one_thread_each()`` first: rapidfuzz's
``cpdist``, CatBoost's prediction and the BLAS/OpenMP pools then use one thread, so N workers
run N threads on N cores instead of N x N (measured on 2 cores: the two scoring workers gained
only 1.3x over one process while each also asked for every core). ``dupsearch serve`` calls it
too: its requests are its concurrency, and the pools' idle threads spin on the cores the other
requests need.
"""
from __future__ import annotations

_LIMIT: int | None = None


def thread_limit(default: int = -1) -> int:
    """Threads a call may use: the process's limit, else ``default`` (the library's 'all cores')."""
    return _LIMIT if _LIMIT is not None else default


def one_thread_each() -> None:
    """Limit this process (a pool worker, the service) to one thread per library call."""
    global _LIMIT
    _LIMIT = 1
    try:
        from threadpoolctl import threadpool_limits
        threadpool_limits(1)  # BLAS and OpenMP pools of numpy, scipy, scikit-learn
    except ImportError:  # threadpoolctl comes with scikit-learn; without it the pools stay as they are
        pass
