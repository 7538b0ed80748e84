"""Active labelling: the pairs that teach a model most, asked in a terminal or on a local page."""

from dupsearch.label.active import ActiveLabeler, LabelConfig, LabelFile

__all__ = ["ActiveLabeler", "LabelConfig", "LabelFile"]
