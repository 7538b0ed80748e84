"""Reading, validating and writing listings/pairs tables, and loading the benchmarks.

The data contract (canonical columns and dtypes) lives in :mod:`dupsearch.io.schema`.
"""

from dupsearch.io.benchmark import BenchmarkData, load_benchmark, load_benchmark_split
from dupsearch.io.mapping import ColumnMapping
from dupsearch.io.readers import (
    SUPPORTED_EXTENSIONS,
    DataFileNotFoundError,
    read_listings,
    read_pairs,
    read_table,
    write_table,
)
from dupsearch.io.schema import (
    CATEGORY_COLUMNS,
    LISTING_COLUMNS,
    PAIR_COLUMNS,
    LoadReport,
    normalize_listings,
    normalize_pairs,
)

__all__ = [
    "BenchmarkData",
    "CATEGORY_COLUMNS",
    "ColumnMapping",
    "DataFileNotFoundError",
    "LISTING_COLUMNS",
    "LoadReport",
    "PAIR_COLUMNS",
    "SUPPORTED_EXTENSIONS",
    "load_benchmark",
    "load_benchmark_split",
    "normalize_listings",
    "normalize_pairs",
    "read_listings",
    "read_pairs",
    "read_table",
    "write_table",
]
