"""Fuzzy string similarities (seed item 2), vectorised with rapidfuzz ``cpdist``.

``cpdist`` scores element i of one list against element i of the other in C, on all cores, so
there is no per-pair Python loop. Per listing (once, in the store): each field cut to its
length budget, and its whitespace tokens sorted. One longest-common-subsequence pass gives three
scores (``ratio`` = 2·LCS/(|a|+|b|), ``lcsseq`` = LCS/max, ``lcsseq_shorter`` = LCS/min) and one
on the sorted tokens gives ``token_sort_ratio``, so each field costs five ``cpdist`` calls, not nine.
"""

from __future__ import annotations

import numpy as np
from rapidfuzz import fuzz, process
from rapidfuzz.distance import JaroWinkler, LCSseq, Levenshtein, Prefix

from dupsearch.features.family import FieldFamily
from dupsearch.threads import thread_limit

# "text" (title + description) is left out by default: its nine scores cost as much as the
# description's and bought nothing the title's and description's do not (BENCHMARKS, "what each
# feature costs").
FIELDS = ("title", "description", "attrs")
# Characters of each field compared.
MAX_CHARS = {"title": 300, "description": 600, "text": 800, "attrs": 400}
# Characters partial_ratio reads: past 64 characters rapidfuzz leaves its bit-parallel path, and
# a description's full 600 characters cost ~2.5 s per 20,000 pairs (150: ~1.3 s, 64: ~0.1 s) for
# no measured gain.
PARTIAL_CHARS = {"title": 300, "description": 64, "text": 800, "attrs": 400}
SCORERS = ("ratio", "partial_ratio", "token_set_ratio", "token_sort_ratio", "jaro_winkler",
           "levenshtein", "lcsseq", "common_prefix", "lcsseq_shorter")


# Below this many pairs one thread: starting rapidfuzz's threads costs more than the pairs
# (an online match scores tens of pairs).
SMALL_BATCH = 2_000


def _cpdist(a, b, scorer) -> np.ndarray:
    workers = 1 if len(a) < SMALL_BATCH else thread_limit(-1)
    return process.cpdist(a, b, scorer=scorer, workers=workers).astype(float)


class StringFamily(FieldFamily):
    name = "strings"

    FIELDS = FIELDS

    def __init__(self, fields=None, max_chars: dict | None = None, partial_chars: dict | None = None):
        super().__init__(fields)
        self.max_chars = {**MAX_CHARS, **(max_chars or {})}
        self.partial_chars = {**PARTIAL_CHARS, **(partial_chars or {})}

    def settings(self) -> dict:
        return {**super().settings(), "max_chars": self.max_chars, "partial_chars": self.partial_chars}

    def listing_state(self, builder):
        out = {}
        for field in self.fields:
            cut = self.max_chars.get(field, 600)
            texts = [t[:cut] for t in builder.texts(field)]
            out[f"strings.{field}"] = np.array(texts, dtype=object)
            out[f"strings.{field}.sorted"] = np.array([" ".join(sorted(t.split())) for t in texts], dtype=object)
        return out

    def _compare(self, store, ia, ib):
        out: dict[str, np.ndarray] = {}
        for field in self.fields:
            col = store[f"strings.{field}"]
            a, b = col[ia].tolist(), col[ib].tolist()
            la = np.fromiter(map(len, a), float, count=len(a))
            lb = np.fromiter(map(len, b), float, count=len(b))
            empty = (la == 0) | (lb == 0)
            shorter, longer = np.minimum(la, lb), np.maximum(la, lb)
            p = f"strings.{field}."
            lcs = _cpdist(a, b, LCSseq.similarity)
            out[p + "ratio"] = 2 * lcs / np.maximum(la + lb, 1)
            pc = self.partial_chars.get(field, 600)
            if pc < self.max_chars.get(field, 600):
                out[p + "partial_ratio"] = _cpdist([s[:pc] for s in a], [s[:pc] for s in b], fuzz.partial_ratio) / 100
            else:
                out[p + "partial_ratio"] = _cpdist(a, b, fuzz.partial_ratio) / 100
            out[p + "token_set_ratio"] = _cpdist(a, b, fuzz.token_set_ratio) / 100
            srt = store[f"strings.{field}.sorted"]
            sa, sb = srt[ia].tolist(), srt[ib].tolist()
            ls = np.fromiter(map(len, sa), float, count=len(sa)) + np.fromiter(map(len, sb), float, count=len(sb))
            out[p + "token_sort_ratio"] = 2 * _cpdist(sa, sb, LCSseq.similarity) / np.maximum(ls, 1)
            out[p + "jaro_winkler"] = _cpdist(a, b, JaroWinkler.normalized_similarity)
            out[p + "levenshtein"] = _cpdist(a, b, Levenshtein.normalized_similarity)
            out[p + "lcsseq"] = lcs / np.maximum(longer, 1)
            out[p + "common_prefix"] = _cpdist(a, b, Prefix.similarity) / np.maximum(shorter, 1)
            # Longest common subsequence length relative to the shorter text.
            out[p + "lcsseq_shorter"] = lcs / np.maximum(shorter, 1)
            for name in SCORERS:
                out[p + name] = np.where(empty, np.nan, out[p + name])
        return out
