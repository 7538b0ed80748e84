"""Set overlaps of word and character n-grams (seed items 2 and 8), as sparse matrices.

Each distinct text is hashed once into a binary n-gram row; overlaps of the two
sides are row-wise products, so the cost is linear in the number of n-grams.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from dupsearch.features.base import (char_codes, ngram_set_matrix, set_overlap, sides, token_ids,
                                     tokenized)

# Word n-gram orders per field: 1..7 where texts are long enough to have them.
WORD_NGRAMS = {"title": range(1, 4), "description": range(1, 8), "text": range(1, 8),
               "attrs": range(1, 3)}
CHAR_NGRAM = 3


class CharNgrams:
    """Character n-grams of a text with word boundaries padded by spaces."""

    def __init__(self, n: int):
        self.n = n

    def __call__(self, text: str) -> list[str]:
        s = f" {text} "
        n = self.n
        return list({s[i:i + n] for i in range(len(s) - n + 1)}) if len(text) else []


def set_features(batch: pd.DataFrame, fields=("title", "description", "text", "attrs")
                 ) -> pd.DataFrame:
    out: dict[str, np.ndarray] = {}
    for field in fields:
        a, b = sides(batch, field)
        orders = WORD_NGRAMS.get(field, range(1, 4))
        # Tokenize each distinct text once and reuse the tokens for every n.
        uniq, inv = np.unique(np.concatenate([a, b]).astype(str), return_inverse=True)
        ids, lengths = token_ids(tokenized(uniq))
        n = len(a)
        for order in orders:
            X = ngram_set_matrix(ids, lengths, order)
            ov = set_overlap(X[inv[:n]], X[inv[n:]])
            out[f"sets.{field}.word{order}_iou"] = ov["iou"]
            if order == 1:
                out[f"sets.{field}.word1_dice"] = ov["dice"]
                out[f"sets.{field}.word1_containment"] = ov["containment"]
                out[f"sets.{field}.word1_common"] = ov["inter"]
        X = ngram_set_matrix(*char_codes(uniq), CHAR_NGRAM)
        ov = set_overlap(X[inv[:n]], X[inv[n:]])
        for k in ("iou", "dice", "containment"):
            out[f"sets.{field}.char{CHAR_NGRAM}_{k}"] = ov[k]
    return pd.DataFrame(out)
