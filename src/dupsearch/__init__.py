"""dupsearch: find duplicate listings on online marketplaces.

The names a user needs, in one place (loaded on first use, so ``import dupsearch`` stays light):

    >>> import dupsearch
    >>> listings, _ = dupsearch.read_listings("listings.parquet")
    >>> pairs, _ = dupsearch.read_pairs("train_pairs.parquet")
    >>> m = dupsearch.DuplicateMatcher(dupsearch.MatcherConfig(n_models=1)).fit(listings, pairs)
    >>> store = m.build_store(listings)                   # each listing's work, once
    >>> p = m.score(store, store.rows(["1", "2"]), store.rows(["3", "4"]))
    >>> dupsearch.run_dedup("listings.parquet", "model/", "dedup/", dupsearch.DedupConfig(workers=2))
"""

__version__ = "0.1.0"

# Bumped when the on-disk layout of a trained model directory changes in a way
# an older/newer dupsearch cannot read (2: feature families over a listing store; 3: no pickle,
# every file listed with its sha256 in the manifest).
MODEL_FORMAT_VERSION = 3

from dupsearch.errors import DataError, DupsearchError, ModelVersionError, NotFittedError  # noqa: E402

# name -> module that defines it
_PUBLIC = {
    "DuplicateMatcher": "dupsearch.models.matcher",
    "MatcherConfig": "dupsearch.config",
    "FeatureConfig": "dupsearch.config",
    "GBDTConfig": "dupsearch.config",
    "EnsembleConfig": "dupsearch.config",
    "StackingConfig": "dupsearch.config",
    "DedupConfig": "dupsearch.config",
    "ConfigError": "dupsearch.config",
    "FeaturePipeline": "dupsearch.features.pipeline",
    "ListingStore": "dupsearch.features.store",
    "Index": "dupsearch.index",
    "read_listings": "dupsearch.io.readers",
    "read_pairs": "dupsearch.io.readers",
    "write_table": "dupsearch.io.readers",
    "load_benchmark": "dupsearch.io.benchmark",
    "run_dedup": "dupsearch.engines.local",
    "make_blocker": "dupsearch.candidates.specs",
    "generate_marketplace": "dupsearch.synth.generator",
    "binary_metrics": "dupsearch.models.metrics",
}

__all__ = ["__version__", "MODEL_FORMAT_VERSION", "DataError", "DupsearchError", "ModelVersionError",
           "NotFittedError", *_PUBLIC]


def __getattr__(name: str):
    if name in _PUBLIC:
        import importlib
        value = getattr(importlib.import_module(_PUBLIC[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'dupsearch' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_PUBLIC))
