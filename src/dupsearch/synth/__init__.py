"""A synthetic Russian classified-ads marketplace with known duplicates.

>>> from dupsearch.synth import generate_marketplace, split_pairs
>>> m = generate_marketplace(5000, seed=0)
>>> train, valid, test = split_pairs(m, (0.6, 0.2, 0.2), seed=0)
>>> m.write("data/market")

See :mod:`dupsearch.synth.generator` for how listings, duplicates and hard negatives are made,
:mod:`dupsearch.synth.catalog` for categories and attribute schemas.
"""

from dupsearch.synth.catalog import FAMILY_KEYS, KINDS, TOP_LEVEL
from dupsearch.synth.generator import GENERATOR_VERSION, Marketplace, generate_marketplace
from dupsearch.synth.pairs import PAIR_KINDS, PairSplits, split_pairs

__all__ = ["FAMILY_KEYS", "GENERATOR_VERSION", "KINDS", "Marketplace", "PAIR_KINDS", "PairSplits",
           "TOP_LEVEL", "generate_marketplace", "split_pairs"]
