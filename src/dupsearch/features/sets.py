"""Set overlaps of word and character n-grams (seed items 2 and 8).

Per listing (once, in the store): one binary CSR row per field holding every hashed word n-gram
(orders 1..7, each order a tag in the column) and character trigram (tag 0), and the size of each
set. Per pair: one sparse intersection per field counts the shared n-grams of every order at
once; IoU, Dice and containment follow from the counts and the sizes.
"""

from __future__ import annotations

import numpy as np

from dupsearch.features.base import ngram_hashes, safe_div, tagged_columns
from dupsearch.features.family import FieldFamily, tagged_overlap, tagged_set_state

FIELDS = ("title", "description", "text", "attrs")
# Word n-gram orders per field: 1..7 where texts are long enough to have them.
WORD_NGRAMS = {"title": (1, 2, 3), "description": tuple(range(1, 8)), "text": tuple(range(1, 8)),
               "attrs": (1, 2)}
CHAR_NGRAM = 3
CHAR_TAG = 0


def char_codes(texts) -> tuple[np.ndarray, np.ndarray]:
    """Flat code points of texts padded with a space each side (word-boundary n-grams)."""
    padded = [f" {t} " if t else "" for t in texts]
    codes = np.frombuffer("".join(padded).encode("utf-32-le"), dtype=np.uint32)
    return codes.astype(np.uint64), np.fromiter(map(len, padded), dtype=np.int64, count=len(padded))


class SetFamily(FieldFamily):
    name = "sets"
    EMPTY_IS_MISSING = True

    FIELDS = FIELDS

    def __init__(self, fields=None, word_ngrams: dict | None = None):
        super().__init__(fields)
        self.word_ngrams = {k: tuple(v) for k, v in {**WORD_NGRAMS, **(word_ngrams or {})}.items()}

    def settings(self) -> dict:
        return {**super().settings(), "word_ngrams": {k: list(v) for k, v in self.word_ngrams.items()}}

    def listing_state(self, builder):
        out = {}
        for field in self.fields:
            sym, lengths = builder.token_hashes(field)
            docs, cols = [], []
            for order in self.word_ngrams.get(field, (1, 2, 3)):
                d, h = ngram_hashes(sym, lengths, order)
                docs.append(d)
                cols.append(tagged_columns(h, order))
            d, h = ngram_hashes(*char_codes(builder.texts(field)), CHAR_NGRAM)
            docs.append(d)
            cols.append(tagged_columns(h, CHAR_TAG))
            out.update(tagged_set_state(builder.n, f"sets.{field}", np.concatenate(docs), np.concatenate(cols)))
        return out

    def _compare(self, store, ia, ib):
        out: dict[str, np.ndarray] = {}
        for field in self.fields:
            inter, na, nb = tagged_overlap(store, f"sets.{field}", ia, ib)
            for order in self.word_ngrams.get(field, (1, 2, 3)):
                i, a, b = inter[:, order], na[:, order], nb[:, order]
                out[f"sets.{field}.word{order}_iou"] = safe_div(i, a + b - i)
                if order == 1:
                    out[f"sets.{field}.word1_dice"] = safe_div(2 * i, a + b)
                    out[f"sets.{field}.word1_containment"] = safe_div(i, np.minimum(a, b))
                    out[f"sets.{field}.word1_common"] = i
            i, a, b = inter[:, CHAR_TAG], na[:, CHAR_TAG], nb[:, CHAR_TAG]
            out[f"sets.{field}.char{CHAR_NGRAM}_iou"] = safe_div(i, a + b - i)
            out[f"sets.{field}.char{CHAR_NGRAM}_dice"] = safe_div(2 * i, a + b)
            out[f"sets.{field}.char{CHAR_NGRAM}_containment"] = safe_div(i, np.minimum(a, b))
        return out
