"""From scored pairs to duplicate groups, and how well the groups match the truth."""

from dupsearch.cluster.graph import (average_link_clusters, center_clusters,
                                     connected_components_clusters)
from dupsearch.cluster.metrics import bcubed_metrics, pairwise_metrics

__all__ = ["average_link_clusters", "bcubed_metrics", "center_clusters",
           "connected_components_clusters", "pairwise_metrics"]
