"""Fuzzy string similarities (seed item 2), vectorised with rapidfuzz ``cpdist``.

``cpdist`` scores element i of one list against element i of the other in C, on all cores, so
there is no per-pair Python loop. Per listing (once, in the store): each field cut to its
length budget, and its whitespace tokens sorted. One longest-common-subsequence pass gives three
scores (``ratio`` = 2·LCS/(|a|+|b|), ``lcsseq`` = LCS/max, ``lcsseq_shorter`` = LCS/min) and one
on the sorted tokens gives ``token_sort_ratio``, so each field costs five ``cpdist`` calls, not nine.

ROUGE-L (the seed's final model has it): the longest common subsequence of *words*, as
2·LCS/(words of a + words of b). Each listing's words are stored once as one character per word
(its stable hash folded into a private-use plane), so the same C LCS kernel compares word
sequences; ``all`` (title, description and attribute values together) is among its fields, so a
value that sits in another column on one side still counts.
"""

from __future__ import annotations

import numpy as np
from rapidfuzz import fuzz
from rapidfuzz.distance import JaroWinkler, LCSseq, Levenshtein, Prefix

from dupsearch.features.family import FieldFamily
from dupsearch.features.kernels import string_pair_scores as _cpdist

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
# Word-level ROUGE-L: the fields `--rouge` turns on (off by default, so that the saved benchmark
# figures of the default features still reproduce), and the words of each compared.
ROUGE_FIELDS = ("title", "description", "attrs", "all")
ROUGE_WORDS = 256
SCORERS = ("ratio", "partial_ratio", "token_set_ratio", "token_sort_ratio", "jaro_winkler",
           "levenshtein", "lcsseq", "common_prefix", "lcsseq_shorter")


class StringFamily(FieldFamily):
    name = "strings"

    FIELDS = FIELDS

    def __init__(self, fields=None, max_chars: dict | None = None, partial_chars: dict | None = None,
                 rouge_fields=()):
        super().__init__(fields)
        self.max_chars = {**MAX_CHARS, **(max_chars or {})}
        self.partial_chars = {**PARTIAL_CHARS, **(partial_chars or {})}
        self.rouge_fields = tuple(rouge_fields)

    # models saved before ROUGE-L have no such attribute: they keep their columns
    def _rouge_fields(self) -> tuple:
        return tuple(getattr(self, "rouge_fields", ()))

    def settings(self) -> dict:
        out = {**super().settings(), "max_chars": self.max_chars, "partial_chars": self.partial_chars}
        if self._rouge_fields():  # only when on: models and indexes saved before ROUGE-L keep their digest
            out["rouge_fields"] = list(self._rouge_fields())
        return out

    def listing_state(self, builder):
        out = {}
        for field in self.fields:
            cut = self.max_chars.get(field, 600)
            texts = [t[:cut] for t in builder.texts(field)]
            out[f"strings.{field}"] = np.array(texts, dtype=object)
            out[f"strings.{field}.sorted"] = np.array([" ".join(sorted(t.split())) for t in texts], dtype=object)
        for field in self._rouge_fields():
            out[f"strings.{field}.words"] = word_strings(*builder.token_hashes(field))
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
        for field in self._rouge_fields():
            col = store[f"strings.{field}.words"]
            a, b = col[ia].tolist(), col[ib].tolist()
            na = np.fromiter(map(len, a), float, count=len(a))
            nb = np.fromiter(map(len, b), float, count=len(b))
            lcs = _cpdist(a, b, LCSseq.similarity)
            out[f"strings.{field}.rouge_l"] = np.where((na == 0) | (nb == 0), np.nan, 2 * lcs / np.maximum(na + nb, 1))
        return out


def word_strings(hashes: np.ndarray, lengths: np.ndarray, max_words: int = ROUGE_WORDS) -> np.ndarray:
    """Each document's words (stable 64-bit hashes, documents one after another) as a string of
    one character per word, cut to ``max_words``: word sequences for rapidfuzz's C kernels. The
    hash is folded into Unicode plane 15 (65,534 private-use code points): two different words
    share a character with chance 1/65,534, a rounding error in a similarity."""
    lengths = np.asarray(lengths, np.int64)
    code = (0xF0000 + np.asarray(hashes, np.uint64) % np.uint64(0xFFFE)).astype("<u4")
    starts = np.r_[0, np.cumsum(lengths)[:-1]]
    keep = np.minimum(lengths, max_words)
    if len(code):
        pos = np.repeat(starts, keep) + (np.arange(int(keep.sum())) - np.repeat(np.r_[0, np.cumsum(keep)[:-1]], keep))
        text = code[pos].tobytes().decode("utf-32-le")
    else:
        text = ""
    ends = np.cumsum(keep)
    return np.array([text[e - k:e] for e, k in zip(ends.tolist(), keep.tolist())], dtype=object)
