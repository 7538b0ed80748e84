"""Benchmarks: the shared product-matching datasets, run under their published protocol."""

from dupsearch.bench.runner import run_benchmark

__all__ = ["run_benchmark"]
