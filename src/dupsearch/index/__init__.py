"""The catalogue index: online matching of new listings against a saved catalogue.

``Index.build(listings, model_dir, out)`` saves the listing store, the blockers' persistent
structures (key tables, frozen text vectorisers, vectors and HNSW graphs per large partition)
and the model, as append-only segments under an atomically switched manifest.
``Index.open(path).match(listings)`` answers, for each new listing, the catalogue listings that
dedup's blockers would propose, scored by ``DuplicateMatcher.score``.
"""

from dupsearch.index.core import MATCH_COLUMNS, Index, IndexBusyError, ListingNotFoundError

__all__ = ["Index", "IndexBusyError", "ListingNotFoundError", "MATCH_COLUMNS"]
