"""Models: gradient boosting, cross-validation, metrics and the pairwise matcher."""

from dupsearch.models.gbdt import GBDTConfig, GBDTModel
from dupsearch.models.matcher import DuplicateMatcher, MatcherConfig
from dupsearch.models.metrics import binary_metrics, per_category_metrics

__all__ = ["DuplicateMatcher", "GBDTConfig", "GBDTModel", "MatcherConfig", "binary_metrics",
           "per_category_metrics"]
