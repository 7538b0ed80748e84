"""Anti-words and model codes (seed item 2): distinguishing tokens present in one
listing only. Two ads that differ in a number, a size, a colour, a model code or a
negation are rarely the same item however similar the rest of the text is.

Per listing (once): the tokens of each class as one tagged set row per field, the size of each
class, and the listing's codes joined for fuzzy matching. Per pair: one sparse intersection
per field gives the shared tokens of every class.
"""

from __future__ import annotations

import numpy as np
from rapidfuzz import fuzz

from dupsearch.features.base import flat_tokens, hash_strings, safe_div, shared_count, tagged_columns
from dupsearch.features.family import FieldFamily, tagged_overlap, tagged_set_state
from dupsearch.features.kernels import string_pair_scores
from dupsearch.text.normalize import split_tokens

CLASSES = ("number", "code", "size", "colour", "negation")
CODE = CLASSES.index("code")
FIELDS = ("title", "all")


class AntiwordFamily(FieldFamily):
    name = "antiwords"
    EMPTY_IS_MISSING = True
    FIELDS = FIELDS

    def listing_state(self, builder):
        out = {}
        for field in self.fields:
            toks = builder.tokens(field)
            cache: dict[str, dict] = {}
            split = [cache.get(t) or cache.setdefault(t, split_tokens(tk))
                     for t, tk in zip(builder.texts(field), toks)]
            docs, cols = [], []
            for tag, cls in enumerate(CLASSES):
                flat, lengths = flat_tokens([s[cls] for s in split])
                docs.append(np.repeat(np.arange(builder.n, dtype=np.int64), lengths))
                cols.append(tagged_columns(hash_strings(flat), tag))
            out.update(tagged_set_state(builder.n, f"antiwords.{field}", np.concatenate(docs), np.concatenate(cols)))
            out[f"antiwords.{field}.codes"] = np.array([" ".join(sorted(set(s["code"]))) for s in split], dtype=object)
        return out

    def _compare(self, store, ia, ib):
        out: dict[str, np.ndarray] = {}
        for field in self.fields:
            inter, size_a, size_b = tagged_overlap(store, f"antiwords.{field}", ia, ib)
            for tag, cls in enumerate(CLASSES):
                i, na, nb = inter[:, tag], size_a[:, tag], size_b[:, tag]
                only_a, only_b = na - i, nb - i
                p = f"antiwords.{field}.{cls}"
                out[f"{p}_one_side"] = only_a + only_b
                out[f"{p}_one_side_min"] = np.minimum(only_a, only_b)
                out[f"{p}_shared"] = i
                out[f"{p}_jaccard"] = safe_div(i, na + nb - i)
                # Both listings name some, and none agree: the strongest "different item" signal.
                out[f"{p}_conflict"] = ((na > 0) & (nb > 0) & (i == 0)).astype(float)
            # Codes that differ by a suffix ("lds4821ww" / "lds4821wh") are near misses, not conflicts.
            codes = store[f"antiwords.{field}.codes"]
            ca, cb = codes[ia].tolist(), codes[ib].tolist()
            both = (size_a[:, CODE] > 0) & (size_b[:, CODE] > 0)
            fuzzy = string_pair_scores(ca, cb, fuzz.token_set_ratio) / 100.0
            out[f"antiwords.{field}.code_fuzzy"] = np.where(both, fuzzy, np.nan)
        if "title" in self.fields and "all" in self.fields:
            # A code in one title found anywhere in the other listing (title, text, attributes).
            T, ALL = store["antiwords.title"], store["antiwords.all"]
            nta = np.asarray(store["antiwords.title.sizes"])[:, CODE]
            ab_hit = safe_div(shared_count(T, ALL, ia, ib, by_tag=True)[:, CODE], nta[ia])
            ba_hit = safe_div(shared_count(T, ALL, ib, ia, by_tag=True)[:, CODE], nta[ib])
            out["antiwords.title_code_in_other_min"] = np.fmin(ab_hit, ba_hit)
            out["antiwords.title_code_in_other_max"] = np.fmax(ab_hit, ba_hit)
        return out
