"""A character n-gram language model over words (interpolated modified Kneser-Ney).

Each word is scored as ``BOS + word + EOS``: the model predicts every character
and the end of the word from up to ``order - 1`` preceding characters, so both
"how words start" and "how words end" are part of its probability. Estimation
follows KenLM: raw counts at the highest order and for n-grams that start with
BOS, continuation counts (number of distinct left extensions) below; three
discounts per order from counts-of-counts; interpolation with the lower order
and, at the bottom, with a uniform distribution over the seen characters plus
one unknown character.

The fitted model is kept in *backoff form* (as an ARPA file is): for every
seen n-gram the full interpolated log-probability, and for every seen context
its log interpolation weight. A query is then a handful of dict look-ups, and
the saved file (``.npz`` of string and float arrays, no pickle) loads as two
dicts.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path
from typing import Iterable, Mapping

import numpy as np

from dupsearch.atomic import atomic_savez

BOS = "\x02"
EOS = "\x03"
WORD_RE = re.compile(r"[^\W_]+", re.UNICODE)
_FORMAT = "dupsearch.charlm/1"


def _discounts(adjusted: Iterable[float]) -> tuple[float, float, float]:
    """Modified Kneser-Ney discounts D1, D2, D3+ from counts-of-counts (Chen & Goodman)."""
    n = Counter()
    for a in adjusted:
        r = int(round(a))
        if 1 <= r <= 4:
            n[r] += 1
    n1, n2, n3, n4 = n[1], n[2], n[3], n[4]
    fallback = (0.5, 1.0, 1.5)
    if n1 == 0 or n2 == 0:
        return fallback
    y = n1 / (n1 + 2 * n2)
    d1 = 1 - 2 * y * n2 / n1
    d2 = 2 - 3 * y * n3 / n2 if n2 else fallback[1]
    d3 = 3 - 4 * y * n4 / n3 if n3 else fallback[2]
    # Keep each discount positive and below its count, as KenLM requires.
    d1 = min(max(d1, 0.05), 0.95)
    d2 = min(max(d2, 0.05), 1.95)
    d3 = min(max(d3, 0.05), 2.95)
    return d1, d2, d3


def _word_counts(data, weights) -> Counter:
    counts: Counter = Counter()
    if isinstance(data, Mapping):
        items = data.items()
    elif weights is not None:
        items = zip(data, weights)
    else:
        items = ((x, 1.0) for x in data)
    for item, w in items:
        if item is None or w <= 0:
            continue
        for tok in WORD_RE.findall(str(item)):
            counts[tok] += float(w)
    return counts


class CharLM:
    """Character n-gram LM over words: ``fit(words) -> self``, ``logprob(word) -> float``.

    ``fit`` takes words or texts (texts are split into words), or a mapping
    word -> count. ``logprob`` is the natural-log probability of the whole word,
    end-of-word included; ``logprob_many`` scores a batch (cached per distinct word).
    """

    def __init__(self, order: int = 5, lowercase: bool = True):
        if order < 1:
            raise ValueError("order must be >= 1")
        self.order = int(order)
        self.lowercase = bool(lowercase)
        self._prob: dict[str, float] = {}
        self._bow: dict[str, float] = {}
        self._log_unk = float("-inf")
        self._cache: dict[str, float] = {}
        self.n_words_ = 0.0
        self.n_types_ = 0
        self.discounts_: list[tuple[float, float, float]] = []

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_cache"] = {}
        return state

    # ------------------------------------------------------------------ fit
    def fit(self, words_or_texts, weights=None) -> "CharLM":
        counts = _word_counts(words_or_texts, weights)
        if self.lowercase:
            low: Counter = Counter()
            for w, c in counts.items():
                low[w.lower()] += c
            counts = low
        N = self.order
        raw: list[dict[str, float]] = [dict() for _ in range(N + 1)]
        for w, k in counts.items():
            s = BOS + w + EOS
            L = len(s)
            for n in range(1, N + 1):
                r = raw[n]
                # n-grams ending at positions 1..L-1; those near the start are shorter
                # (they begin with BOS and count as "highest available" order).
                for i in range(max(1, n - 1), L):
                    g = s[i - n + 1:i + 1]
                    r[g] = r.get(g, 0.0) + k
        # Adjusted counts: continuation counts below the top order, except for n-grams
        # that begin with BOS (nothing can precede them).
        adj: list[dict[str, float]] = [dict() for _ in range(N + 1)]
        adj[N] = raw[N]
        for n in range(N - 1, 0, -1):
            cont: dict[str, float] = {}
            for g in raw[n + 1]:
                t = g[1:]
                cont[t] = cont.get(t, 0) + 1
            a = adj[n]
            for g, c in raw[n].items():
                a[g] = c if g[0] == BOS else cont.get(g, c)
        self.discounts_ = [(0.0, 0.0, 0.0)] + [_discounts(adj[n].values()) for n in range(1, N + 1)]

        chars = {g for g in adj[1]}
        vocab = len(chars) + 1  # + unknown character
        prob: dict[str, float] = {}
        bow: dict[str, float] = {}
        lin: dict[str, float] = {}  # interpolated probabilities, linear scale
        for n in range(1, N + 1):
            d1, d2, d3 = self.discounts_[n]
            # Weighted (fractional) counts may fall below their bucket's discount:
            # never take away more than 95% of a count; both loops use the same rule,
            # so every distribution still sums to one.
            disc = lambda a: min(d1 if a < 1.5 else d2 if a < 2.5 else d3, 0.95 * a)  # noqa: E731
            tot: dict[str, float] = {}
            num: dict[str, float] = {}
            for g, a in adj[n].items():
                h = g[:-1]
                tot[h] = tot.get(h, 0.0) + a
                num[h] = num.get(h, 0.0) + disc(a)
            gamma = {h: num[h] / tot[h] for h in tot}
            for g, a in adj[n].items():
                h = g[:-1]
                d = disc(a)
                lower = 1.0 / vocab if n == 1 else lin[h[1:] + g[-1]]
                lin[g] = (a - d) / tot[h] + gamma[h] * lower
            for h, gm in gamma.items():
                bow[h] = float(np.log(gm))
        for g, p in lin.items():
            prob[g] = float(np.log(p))
        self._prob, self._bow = prob, bow
        self._log_unk = float(bow.get("", 0.0) - np.log(vocab))
        self._cache = {}
        self.n_words_ = float(sum(counts.values()))
        self.n_types_ = len(counts)
        return self

    # ---------------------------------------------------------------- query
    def _check(self) -> None:
        if not self._prob:
            raise RuntimeError("CharLM is not fitted")

    def _logp(self, h: str, c: str) -> float:
        prob, bow = self._prob, self._bow
        acc = 0.0
        while True:
            v = prob.get(h + c)
            if v is not None:
                return acc + v
            if not h:
                return acc + self._log_unk
            acc += bow.get(h, 0.0)
            h = h[1:]

    def logprob(self, word: str) -> float:
        """Natural-log probability of ``word`` (end of word included)."""
        self._check()
        if self.lowercase:
            word = word.lower()
        v = self._cache.get(word)
        if v is not None:
            return v
        s = BOS + word + EOS
        k = self.order - 1
        total = 0.0
        for i in range(1, len(s)):
            total += self._logp(s[max(0, i - k):i], s[i])
        if len(self._cache) > 1_000_000:
            self._cache.clear()
        self._cache[word] = total
        return total

    def logprob_many(self, words: Iterable[str]) -> np.ndarray:
        """Log-probabilities of many words; each distinct word is scored once."""
        words = list(words)
        uniq = {w: self.logprob(w) for w in dict.fromkeys(words)}
        return np.fromiter((uniq[w] for w in words), dtype=float, count=len(words))

    def perplexity(self, word: str) -> float:
        """Per-symbol perplexity (characters plus end of word)."""
        return float(np.exp(-self.logprob(word) / (len(word) + 1)))

    # ------------------------------------------------------------ save/load
    def save(self, path) -> None:
        """Write the model to ``path`` (.npz, no pickle) atomically."""
        self._check()
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        meta = {"format": _FORMAT, "order": self.order, "lowercase": self.lowercase,
                "log_unk": self._log_unk, "n_words": self.n_words_, "n_types": self.n_types_,
                "discounts": [list(d) for d in self.discounts_]}
        arrays = {
            "meta": np.array(json.dumps(meta)),
            "prob_keys": np.array(list(self._prob), dtype=str),
            "prob_vals": np.fromiter(self._prob.values(), dtype=np.float64, count=len(self._prob)),
            "bow_keys": np.array(list(self._bow), dtype=str),
            "bow_vals": np.fromiter(self._bow.values(), dtype=np.float64, count=len(self._bow)),
        }
        atomic_savez(path, **arrays)

    @classmethod
    def load(cls, path) -> "CharLM":
        with np.load(Path(path), allow_pickle=False) as z:
            meta = json.loads(str(z["meta"]))
            if meta.get("format") != _FORMAT:
                raise ValueError(f"{path}: not a {_FORMAT} file")
            self = cls(order=meta["order"], lowercase=meta["lowercase"])
            self._prob = dict(zip(z["prob_keys"].tolist(), z["prob_vals"].tolist()))
            # np.str_ arrays drop nothing but trailing NULs, which never occur in keys.
            self._bow = dict(zip(z["bow_keys"].tolist(), z["bow_vals"].tolist()))
        self._log_unk = float(meta["log_unk"])
        self.n_words_ = float(meta["n_words"])
        self.n_types_ = int(meta["n_types"])
        self.discounts_ = [tuple(d) for d in meta["discounts"]]
        return self
