"""Pairwise similarity features, one module per family.

Each family (``features.family.Family``) adds its per-listing columns to a ``ListingStore``
once and compares pairs of store rows; ``FeaturePipeline`` fits and runs them all.
"""

from dupsearch.features.base import prepare_listings
from dupsearch.features.family import Family
from dupsearch.features.pipeline import ALL_FAMILIES, FeatureConfig, FeaturePipeline
from dupsearch.features.store import ListingStore

__all__ = ["ALL_FAMILIES", "Family", "FeatureConfig", "FeaturePipeline", "ListingStore", "prepare_listings"]
