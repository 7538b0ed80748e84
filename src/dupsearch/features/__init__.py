"""Pairwise similarity features, one module per family.

Each family is a pure function of a pair batch (or, for fitted families, a
method of an object whose state is saved with the model).
"""

from dupsearch.features.base import join_pairs, prepare_listings
from dupsearch.features.pipeline import ALL_FAMILIES, FeatureConfig, FeaturePipeline

__all__ = ["ALL_FAMILIES", "FeatureConfig", "FeaturePipeline", "join_pairs", "prepare_listings"]
