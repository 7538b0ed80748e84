"""Homoglyph cleaning: undo letters swapped between look-alike Cyrillic and Latin.

Spam filters are dodged by writing "Ноутбук" with a Latin 'o', or "BMW" with a
Cyrillic 'М' (seed item 7). The cleaner restores such words and leaves real
Latin words inside Russian text ("iPhone 13 Pro", "BMW X5") alone.

How one word is handled (words are runs of letters and digits of the raw text):

* A word with letters of one script only, at least one of which has no look-alike
  in the other script ("машина", "Samsung"), is what it looks like.
* A word that mixes scripts is a candidate. If it can be written in only one
  script through the shared look-alike table (``confusables``) - "мaшинa" has
  'ш', which has no Latin twin; "BМW" has 'W' - it is written in that script.
  If it can be written in both ("kот", "ceо"), both variants are scored and the
  more likely one is kept.
* A word written only with look-alike letters ("c", "на", "Max", "X5") may have
  been swapped *as a whole*. It is scored against its other-script twin and
  flipped only when the evidence is strong (see below).
* Case, digits and everything between words are kept exactly; only swapped
  letters change, each into its twin of the same case.

The score of a variant ``v`` in script ``s`` is a small noisy-channel model:

    log P(v | s)                                    word model
    + log P(s | script of the nearest certain word on the left)
    + log P(script of the nearest certain word on the right | s)
    + shift(v, left word) + shift(v, right word)    neighbour words
    + log P(the word as seen | v)                   channel

* Word model: per script, counts of the training corpus's words smoothed
  (Dirichlet, ``prior_strength``) towards a base distribution that mixes a
  character 5-gram language model (``charlm``) trained on that script's words
  with word frequencies from the ``wordfreq`` package when it is installed.
  Look-alike-only words are ambiguous in the corpus too (a swapped "кот" reads
  "kot"); their counts are split between the scripts by EM under the channel.
* Script transitions are counted on the corpus's words of certain script.
* Neighbour words: for a look-alike-only word and a word right next to it
  ("Benz C", "Type-C", "был в"), how much more or less often it is truly
  Cyrillic there than on average (EM again, shrunk towards the average and
  capped).
* Channel: estimated from the mixed words whose original script is certain
  ("мaшинa"): the share of words carrying swaps, the share of swapped words with
  *all* their look-alike letters swapped (by number of such letters: these are
  the words that end up wholly in the other script), and a log-cost per swapped
  letter (how many letters partly swapped words have).

A word wholly in one script is flipped only when the other variant wins under all
of this; on generated data that keeps clean words changed to about 0.01%.
"""

from __future__ import annotations

import json
import math
import random
import re
import zipfile
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterable

import numpy as np

from dupsearch.text.charlm import CharLM
from dupsearch.atomic import atomic_savez, atomic_write_text
from dupsearch.text.confusables import CYR_TO_LAT, LAT_TO_CYR

WORD_RE = re.compile(r"[^\W_]+", re.UNICODE)
_CYR_LETTER = re.compile(r"[\u0400-\u04FF]")
_LAT_LETTER = re.compile(r"[A-Za-z\u00C0-\u00D6\u00D8-\u00F6\u00F8-\u024F]")
_FORMAT = "dupsearch.homoglyphs/1"

C, L, N = "C", "L", "N"  # Cyrillic, Latin, no clear neighbour
_CTX_MU = 20.0            # smoothing of the script transitions, in words
SCRIPTS = (C, L)

# Token kinds.
_NEUTRAL = 0      # no letters (numbers)
_CLEAR = 1        # one script, with a letter that has no twin: certain
_FORCED = 2       # mixed, writable in one script only: fixed without scoring
_WHOLE = 3        # one script, look-alike letters only: may have been swapped whole
_AMBIG = 4        # mixed, writable in both scripts: scored
_KEEP = 5         # mixed, writable in neither script: left as is
_OTHER = 6        # letters of other scripts only (Greek, ...): left as is

_TO_LAT = str.maketrans(CYR_TO_LAT)
_TO_CYR = str.maketrans(LAT_TO_CYR)


def _is_cyr(ch: str) -> bool:
    return "\u0400" <= ch <= "\u04ff" and ch.isalpha()


def _is_lat(ch: str) -> bool:
    return ch.isascii() and ch.isalpha() or ("\u00c0" <= ch <= "\u024f" and ch.isalpha())


@dataclass(frozen=True)
class _Info:
    kind: int
    label: str | None      # script used as context by the neighbours (None: skipped)
    script: str | None     # script of a one-script word
    fixed: str = ""        # _FORCED: the word in its only possible script
    k_c: int = 0           # letters to swap to write the word in Cyrillic
    k_l: int = 0           # ... in Latin
    has_digit: bool = False
    twins: int = 0         # letters that have a twin (in the word's own script, if fixed)


def _classify(tok: str) -> _Info:
    nc = nl = 0
    c_twins = l_twins = True  # every Cyrillic (Latin) letter has a twin
    has_digit = False
    tw = 0
    for ch in tok:
        if ch in CYR_TO_LAT:
            nc += 1
            tw += 1
        elif ch in LAT_TO_CYR:
            nl += 1
            tw += 1
        elif ch.isdigit():
            has_digit = True
        elif _is_cyr(ch):
            nc += 1
            c_twins = False
        elif _is_lat(ch):
            nl += 1
            l_twins = False
    if nc == 0 and nl == 0:
        if any(ch.isalpha() for ch in tok):
            return _Info(_OTHER, None, None, has_digit=has_digit)
        return _Info(_NEUTRAL, None, None, has_digit=has_digit)
    if nl == 0:
        if c_twins:
            return _Info(_WHOLE, None, C, k_c=0, k_l=nc, has_digit=has_digit, twins=tw)
        return _Info(_CLEAR, C, C, has_digit=has_digit, twins=tw)
    if nc == 0:
        if l_twins:
            return _Info(_WHOLE, None, L, k_c=nl, k_l=0, has_digit=has_digit, twins=tw)
        return _Info(_CLEAR, L, L, has_digit=has_digit, twins=tw)
    if c_twins and l_twins:
        return _Info(_AMBIG, None, None, k_c=nl, k_l=nc, has_digit=has_digit, twins=tw)
    if c_twins:  # every Cyrillic letter was swapped in: the word is Latin
        fixed = tok.translate(_TO_LAT)
        return _Info(_FORCED, L, None, fixed=fixed, k_c=nl, k_l=nc, has_digit=has_digit,
                     twins=sum(ch in LAT_TO_CYR for ch in fixed))
    if l_twins:
        # A Latin 'i' has a twin ('і') but is no Russian letter: count only twins of the result.
        fixed = tok.translate(_TO_CYR)
        return _Info(_FORCED, C, None, fixed=fixed, k_c=nl, k_l=nc, has_digit=has_digit,
                     twins=sum(ch in CYR_TO_LAT for ch in fixed))
    return _Info(_KEEP, None, None, k_c=nl, k_l=nc, has_digit=has_digit, twins=tw)


def _variant(tok: str, script: str) -> str:
    return tok.translate(_TO_CYR if script == C else _TO_LAT)


_DIGIT = re.compile(r"\d")
_EDGE = "|"  # neighbour of a word at the start/end of a text or across punctuation


def _word_key(tok: str, info: _Info) -> str | None:
    """How a word stands as the neighbour of another: its certain lowercased form, digits
    as '0' ("200" -> "000"), '~' and its Latin spelling while its own script is in doubt
    (the 'H' of "H&M" is "~h" whether written in Latin or Cyrillic), or None."""
    k = info.kind
    if k == _CLEAR:
        return tok.lower()
    if k == _FORCED:
        return info.fixed.lower()
    if k == _NEUTRAL:
        return _DIGIT.sub("0", tok)
    if k == _WHOLE or k == _AMBIG:
        return "~" + tok.lower().translate(_TO_LAT)
    return None


_JOINERS = frozenset("-&/+'’")


def _gap_key(gap: str) -> str | None:
    """None when the words on both sides of ``gap`` are neighbours (only spaces, a hyphen,
    '&', '/', ...: "USB Type-C", "H&M"); otherwise the punctuation itself, as a neighbour
    of its own ("(M)", "в. С уважением")."""
    if all(ch in _JOINERS or ch.isspace() for ch in gap):
        return None
    return _EDGE + "".join(gap.split())[:3]


def _neighbours(text: str, spans: list[tuple[int, int]], keys: list) -> tuple[list, list]:
    """Left and right neighbour keys of every word (see ``_gap_key``); ``|^`` and ``|$``
    stand for the start and the end of the text."""
    n = len(spans)
    left: list = [_EDGE + "^"] * n
    right: list = [_EDGE + "$"] * n
    for i in range(n):
        if i > 0:
            g = _gap_key(text[spans[i - 1][1]:spans[i][0]])
            left[i] = keys[i - 1] if g is None else g
        if i + 1 < n:
            g = _gap_key(text[spans[i][1]:spans[i + 1][0]])
            right[i] = keys[i + 1] if g is None else g
    if n:
        left[0] = _gap_key(text[:spans[0][0]]) or left[0]
        right[-1] = _gap_key(text[spans[-1][1]:]) or right[-1]
    return left, right


def script_counts(text: object) -> tuple[int, int]:
    """(words with letters, words mixing Cyrillic and Latin letters) of one text."""
    if not isinstance(text, str) or not text:
        return 0, 0
    words = mixed = 0
    for tok in WORD_RE.findall(text):
        has_c = _CYR_LETTER.search(tok) is not None
        has_l = _LAT_LETTER.search(tok) is not None
        if has_c or has_l or any(ch.isalpha() for ch in tok):
            words += 1
            mixed += has_c and has_l
    return words, mixed


def mixed_script_share(text: object) -> float:
    """Share of a text's words that mix Cyrillic and Latin letters (0.0 for no words)."""
    words, mixed = script_counts(text)
    return mixed / words if words else 0.0


# ----------------------------------------------------------------- wordfreq
_LOOK_CYR = "".join(sorted({ch.lower() for ch in CYR_TO_LAT}))
_LOOK_LAT = "".join(sorted({ch.lower() for ch in LAT_TO_CYR}))
_ONLY_CYR = re.compile(f"^[0-9{_LOOK_CYR}]*[{_LOOK_CYR}][0-9{_LOOK_CYR}]*$")
_ONLY_LAT = re.compile(f"^[0-9{_LOOK_LAT}]*[{_LOOK_LAT}][0-9{_LOOK_LAT}]*$")


def _wordfreq_lexicons() -> tuple[dict[str, float], dict[str, float]] | None:
    """Per-script frequencies of look-alike-only words from ``wordfreq`` (None if absent).

    Only words that the cleaner can ever score are kept (every letter has a twin),
    normalised by the total frequency of their script, so they read as P(word | script).
    Cyrillic words come from the Russian list; Latin words half from the Latin part
    of the Russian list (brands and codes as written in Russian text) and half from
    the English list.
    """
    try:
        import wordfreq
    except ImportError:
        return None
    try:
        paths = wordfreq.available_languages("best")
        out = []
        for lang in ("ru", "en"):
            mass = {C: 0.0, L: 0.0}
            kept: dict[str, dict[str, float]] = {C: {}, L: {}}
            for index, bucket in enumerate(wordfreq.read_cBpack(paths[lang])):
                f = 10.0 ** (-index / 100.0)
                for w in bucket:
                    has_c = _CYR_LETTER.search(w) is not None
                    has_l = _LAT_LETTER.search(w) is not None
                    if has_c == has_l:
                        continue
                    s = C if has_c else L
                    mass[s] += f
                    if (_ONLY_CYR if s == C else _ONLY_LAT).match(w):
                        kept[s][w] = f
            out.append((mass, kept))
    except Exception:  # a broken or partial install must not break cleaning
        return None
    (ru_mass, ru), (en_mass, en) = out
    cyr = {w: f / ru_mass[C] for w, f in ru[C].items()} if ru_mass[C] else {}
    lat: dict[str, float] = {}
    if ru_mass[L]:
        for w, f in ru[L].items():
            lat[w] = 0.5 * f / ru_mass[L]
    if en_mass[L]:
        for w, f in en[L].items():
            lat[w] = lat.get(w, 0.0) + 0.5 * f / en_mass[L]
    return cyr, lat


# ------------------------------------------------------------------ config
@dataclass
class CleanerConfig:
    order: int = 5                    # character n-gram order
    prior_strength: float = 0.2       # Dirichlet mass of the base distribution, x corpus tokens
    wordfreq: bool = True             # use wordfreq when it is installed
    wordfreq_weight: float = 0.2      # share of wordfreq in the base distribution
    # Channel (how words get swapped); None: estimated from the training corpus.
    swap_penalty: float | None = None        # log-cost of each letter a variant needs swapped
    wrong_script_prior: float | None = None  # prior that a one-script word was swapped whole
    min_swap_penalty: float = 0.2            # keep a lean towards the majority script
    neighbour_words: bool = True             # learn which script a word takes next to a given word
    neighbour_alpha: float = 20.0            # pseudo-count pulling that towards the word's average
    neighbour_max_shift: float = 4.0         # cap on the log-odds a neighbour may add
    neighbour_floor: float = 0.01            # shares compared no closer to 0 or 1 than this
    min_minority_share: float = 0.02         # a word class's rarer script below this share: none
    fix_whole_words: bool = True      # consider flipping look-alike-only one-script words
    fix_codes: bool = True            # ... also when they hold digits ("Х5" -> "X5")
    lm_weighting: str = "log"         # char LM counts per word type: type | log | token
    lm_min_count: float = 10.0        # expected count a look-alike-only word needs to train the char LM
    max_fit_texts: int | None = 300_000  # sample of training texts (None: all)
    seed: int = 0


@dataclass
class CleanStats:
    words: int = 0           # words with letters
    mixed: int = 0           # words mixing scripts (before cleaning)
    changed: int = 0         # words changed
    changed_mixed: int = 0   # ... of which mixed words
    changed_whole: int = 0   # ... of which one-script words flipped whole

    def __iadd__(self, other: "CleanStats") -> "CleanStats":
        for k in ("words", "mixed", "changed", "changed_mixed", "changed_whole"):
            setattr(self, k, getattr(self, k) + getattr(other, k))
        return self


_MAX_N = 6  # words with this many look-alike letters or more share one channel estimate


@dataclass
class Channel:
    """How words get swapped, estimated from words whose original script is certain.

    For script ``s`` and a word with ``n`` letters that have a twin (the last entry
    stands for ``_MAX_N`` or more): ``keep[s][n-1]`` is the share of such words left
    as written, ``whole[s][n-1]`` the share with *all* of those letters swapped (the
    words that end up wholly in the other script); the rest are partly swapped.
    Words with a letter that has no twin show all three outcomes: unswapped, they
    are clear one-script words; swapped, they are mixed and still point to their
    script. ``swap_penalty``: log-odds against one more swapped letter, from how many
    letters the partly swapped words have.
    """

    keep: dict[str, list[float]] = field(
        default_factory=lambda: {s: [0.95] * _MAX_N for s in SCRIPTS})
    whole: dict[str, list[float]] = field(
        default_factory=lambda: {s: [0.03] * _MAX_N for s in SCRIPTS})
    swap_penalty: float = 1.0

    @classmethod
    def estimate(cls, seen: dict[str, list[list[int]]], partial_k: int, partial_n: int,
                 min_penalty: float, strength: float = 10.0) -> "Channel":
        """``seen[s][n-1] = [words, left as written, all swapped]``; estimates are shrunk
        (``strength`` pseudo-words) towards both scripts together, and those towards
        the defaults."""
        default = cls()
        keep: dict[str, list[float]] = {s: [] for s in SCRIPTS}
        whole: dict[str, list[float]] = {s: [] for s in SCRIPTS}
        for i in range(_MAX_N):
            tot = sum(seen[s][i][0] for s in SCRIPTS)
            k_all = (sum(seen[s][i][1] for s in SCRIPTS) + strength * default.keep[C][i]) / (tot + strength)
            w_all = (sum(seen[s][i][2] for s in SCRIPTS) + strength * default.whole[C][i]) / (tot + strength)
            for s in SCRIPTS:
                t, k, w = seen[s][i]
                kp = (k + strength * k_all) / (t + strength)
                wh = (w + strength * w_all) / (t + strength)
                keep[s].append(min(max(kp, 1e-4), 1 - 1e-4))
                whole[s].append(min(max(wh, 1e-4), 1 - 1e-4))
        q = (partial_k + 1.0) / (partial_n + 2.0)
        q = min(max(q, 1e-3), 0.5)
        penalty = min(max(math.log((1.0 - q) / q), min_penalty), 5.0)
        return cls(keep, whole, penalty)

    @staticmethod
    def _i(n: int) -> int:
        return min(max(n, 1), _MAX_N) - 1

    def log_keep(self, script: str, n: int) -> float:
        return math.log(self.keep[script][self._i(n)])

    def log_whole(self, script: str, n: int) -> float:
        return math.log(self.whole[script][self._i(n)])

    def log_partial(self, script: str, n: int) -> float:
        i = self._i(n)
        return math.log(max(1.0 - self.keep[script][i] - self.whole[script][i], 1e-6))

    def arrays(self, n: np.ndarray) -> dict[str, np.ndarray]:
        """keep/whole/partial probabilities for arrays of look-alike letter counts."""
        i = np.clip(n, 1, _MAX_N) - 1
        out = {}
        for s in SCRIPTS:
            k, w = np.array(self.keep[s])[i], np.array(self.whole[s])[i]
            out[f"keep_{s}"], out[f"whole_{s}"] = k, w
            out[f"partial_{s}"] = np.maximum(1.0 - k - w, 1e-6)
        return out


@dataclass
class _ScriptModel:
    lm: CharLM | None = None
    counts: dict[str, float] = field(default_factory=dict)  # look-alike-only words
    total: float = 0.0                                       # all words of the script
    wf: dict[str, float] = field(default_factory=dict)


def _em_share(n_c, n_l, n_m, probs: dict[str, np.ndarray], prior: np.ndarray, alpha: float,
              iters: int = 200) -> np.ndarray:
    """Share of a word class that truly is Cyrillic, by EM (one class per array entry).

    The class was seen ``n_c`` times wholly in Cyrillic, ``n_l`` wholly in Latin and ``n_m``
    mixed; ``probs`` holds the channel's chances of each outcome given the true script
    (``Channel.arrays``). ``alpha`` pseudo-observations pull the share towards ``prior``.
    """
    pi = prior.copy()
    kc, wc, pc = probs[f"keep_{C}"], probs[f"whole_{C}"], probs[f"partial_{C}"]
    kl, wl, pl = probs[f"keep_{L}"], probs[f"whole_{L}"], probs[f"partial_{L}"]
    for _ in range(iters):
        a, b = pi * kc, (1 - pi) * wl          # seen in Cyrillic
        c, d = pi * wc, (1 - pi) * kl          # seen in Latin
        e, f = pi * pc, (1 - pi) * pl          # seen mixed
        new = (n_c * a / (a + b) + n_l * c / (c + d) + n_m * e / (e + f) + alpha * prior) \
            / (n_c + n_l + n_m + alpha)
        if np.max(np.abs(new - pi), initial=0.0) < 1e-8:
            return new
        pi = new
    return pi


def _lm_weight(count: float, mode: str) -> float:
    """Weight of a word type in the char LM's counts (expected counts may be below 1)."""
    if mode == "token" or count < 1.0:
        return float(count) if mode != "type" else min(float(count), 1.0)
    if mode == "type":
        return 1.0
    return 1.0 + math.log(count)


# ----------------------------------------------------------------- cleaner
class HomoglyphCleaner:
    """Sklearn-like cleaner: ``fit(texts)``, ``clean(text)``, ``clean_many(texts)``."""

    def __init__(self, config: CleanerConfig | None = None, **overrides):
        cfg = config or CleanerConfig()
        if overrides:
            cfg = CleanerConfig(**{**asdict(cfg), **overrides})
        self.config = cfg
        self.models_: dict[str, _ScriptModel] = {C: _ScriptModel(), L: _ScriptModel()}
        self.transitions_: dict[str, dict[str, float]] = {}
        self.channel_ = Channel()
        self.neighbour_shift_: dict[str, float] = {}
        self.uses_wordfreq_ = False
        self._info_cache: dict[str, _Info] = {}
        self._decision_cache: dict[tuple, str] = {}
        self._word_cache: dict[tuple[str, str], float] = {}
        self._ctx_cache: dict[tuple[str, str, str], float] = {}
        self._fitted = False

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        for k in ("_info_cache", "_decision_cache", "_word_cache", "_ctx_cache"):
            state[k] = {}  # caches are rebuilt on use
        return state

    # -------------------------------------------------------------- helpers
    def _info(self, tok: str) -> _Info:
        info = self._info_cache.get(tok)
        if info is None:
            info = _classify(tok)
            if len(self._info_cache) > 2_000_000:
                self._info_cache.clear()
            self._info_cache[tok] = info
        return info

    def _logp_word(self, script: str, v: str) -> float:
        """log P(v | script) for a lowercased word v written in that script."""
        key = (script, v)
        r = self._word_cache.get(key)
        if r is not None:
            return r
        m = self.models_[script]
        base = self._base(script, v)
        beta = max(self.config.prior_strength * m.total, 1.0)
        c = m.counts.get(v, 0.0)
        r = math.log((c + beta * base) / (m.total + beta) + 1e-300)
        if len(self._word_cache) > 1_000_000:
            self._word_cache.clear()
        self._word_cache[key] = r
        return r

    def _log_ctx(self, s: str, left: str, right: str) -> float:
        """log P(s | script on the left) + log P(script on the right | s).

        Transition counts are smoothed towards the overall script shares (a Dirichlet
        prior of ``_CTX_MU`` words). The end of a text says little about the script of
        the last word, so a right neighbour ``N`` adds nothing.
        """
        key = (s, left, right)
        r = self._ctx_cache.get(key)
        if r is not None:
            return r
        t = self.transitions_
        if not t:
            return 0.0
        tot_c = sum(row.get(C, 0.0) for row in t.values())
        tot_l = sum(row.get(L, 0.0) for row in t.values())
        share = {C: (tot_c + 1.0) / (tot_c + tot_l + 2.0)}
        share[L] = 1.0 - share[C]
        row = t.get(left, {})
        p_in = (row.get(s, 0.0) + _CTX_MU * share[s]) / (row.get(C, 0.0) + row.get(L, 0.0) + _CTX_MU)
        x = math.log(p_in)
        if right != N:
            row = t.get(s, {})
            # P(right | s) / P(right): how much s raises the chance of that right script.
            p_out = (row.get(right, 0.0) + _CTX_MU * share[right]) \
                / (row.get(C, 0.0) + row.get(L, 0.0) + _CTX_MU)
            x += math.log(p_out) - math.log(share[right])
        self._ctx_cache[key] = x
        return x

    def _shift(self, low: str, lw: str | None, rw: str | None) -> float:
        """Log-odds for Cyrillic over Latin that the neighbouring words add."""
        sh = self.neighbour_shift_
        if not sh:
            return 0.0
        lat = low.translate(_TO_LAT)
        x = 0.0
        if lw is not None:
            x += sh.get(f"{lat}\x1f<{lw}", 0.0)
        if rw is not None:
            x += sh.get(f"{lat}\x1f>{rw}", 0.0)
        return x

    def _decide(self, tok: str, info: _Info, left: str, right: str, lw=None, rw=None) -> str:
        key = (tok, left, right, lw, rw)
        r = self._decision_cache.get(key)
        if r is not None:
            return r
        cfg = self.config
        low = tok.lower()
        shift = self._shift(low, lw, rw)
        ch = self.channel_
        if info.kind == _WHOLE:
            own = info.script
            other = L if own == C else C
            var = _variant(tok, other)
            if cfg.wrong_script_prior is not None:
                keep = math.log1p(-cfg.wrong_script_prior)
                flip = math.log(cfg.wrong_script_prior)
            else:
                keep, flip = ch.log_keep(own, info.twins), ch.log_whole(other, info.twins)
            s_own = self._logp_word(own, low) + self._log_ctx(own, left, right) + keep
            s_other = self._logp_word(other, var.lower()) + self._log_ctx(other, left, right) + flip
            if own == C:
                s_own += shift
            else:
                s_other += shift
            r = var if s_other > s_own else tok
        else:  # _AMBIG
            penalty = cfg.swap_penalty if cfg.swap_penalty is not None else ch.swap_penalty
            best, best_s = tok, -math.inf
            for s, k in ((C, info.k_c), (L, info.k_l)):
                var = _variant(tok, s)
                sc = self._logp_word(s, var.lower()) + self._log_ctx(s, left, right) \
                    + ch.log_partial(s, info.twins) - penalty * k + (shift if s == C else 0.0)
                if sc > best_s:
                    best, best_s = var, sc
            r = best
        if len(self._decision_cache) > 1_000_000:
            self._decision_cache.clear()
        self._decision_cache[key] = r
        return r

    def _scorable(self, info: _Info) -> bool:
        if info.kind == _AMBIG:
            return True
        if info.kind == _WHOLE:
            return self.config.fix_whole_words and (self.config.fix_codes or not info.has_digit)
        return False

    def _process(self, text: str) -> tuple[list[tuple[int, int, str, str]], CleanStats]:
        """The words to replace (start, end, old, new) and the text's counts."""
        ms = list(WORD_RE.finditer(text))
        infos = [self._info(m.group()) for m in ms]
        stats = CleanStats()
        out: list[tuple[int, int, str, str]] = []
        todo = []
        for i, info in enumerate(infos):
            kind = info.kind
            if kind == _NEUTRAL:
                continue
            stats.words += 1
            if kind == _FORCED:
                stats.mixed += 1
                m = ms[i]
                out.append((m.start(), m.end(), m.group(), info.fixed))
            elif kind == _AMBIG:
                stats.mixed += 1
                todo.append(i)
            elif kind == _KEEP:
                stats.mixed += 1
            elif kind == _WHOLE and self._fitted and self._scorable(info):
                todo.append(i)
        if todo:
            out += self._resolve(text, ms, infos, todo)
            out.sort()
        stats.changed = len(out)
        stats.changed_whole = sum(self._info(o[2]).kind == _WHOLE for o in out)
        stats.changed_mixed = stats.changed - stats.changed_whole
        return out, stats

    def _resolve(self, text: str, ms: list, infos: list[_Info], todo: list[int]):
        """Decide the words that need scoring (indices ``todo``)."""
        if not self._fitted:  # only mixed words here: the majority script wins, a tie stays
            out = []
            for i in todo:
                info, m = infos[i], ms[i]
                if info.k_c != info.k_l:
                    new = _variant(m.group(), C if info.k_c < info.k_l else L)
                    out.append((m.start(), m.end(), m.group(), new))
            return out
        n = len(ms)
        labels = [info.label for info in infos]
        # Nearest word of certain script on each side of every word.
        lefts = [N] * n
        cur = N
        for i in range(n):
            lefts[i] = cur
            if labels[i] is not None:
                cur = labels[i]
        rights = [N] * n
        cur = N
        for i in range(n - 1, -1, -1):
            rights[i] = cur
            if labels[i] is not None:
                cur = labels[i]
        near = bool(self.neighbour_shift_)
        out = []
        for i in todo:
            m = ms[i]
            tok = m.group()
            lw = rw = None
            if near:
                if i > 0:
                    g = _gap_key(text[ms[i - 1].end():m.start()])
                    lw = _word_key(ms[i - 1].group(), infos[i - 1]) if g is None else g
                else:
                    g = _gap_key(text[:m.start()])
                    lw = g or _EDGE + "^"
                if i + 1 < n:
                    g = _gap_key(text[m.end():ms[i + 1].start()])
                    rw = _word_key(ms[i + 1].group(), infos[i + 1]) if g is None else g
                else:
                    g = _gap_key(text[m.end():])
                    rw = g or _EDGE + "$"
            new = self._decide(tok, infos[i], lefts[i], rights[i], lw, rw)
            if new != tok:
                out.append((m.start(), m.end(), tok, new))
        return out

    # ------------------------------------------------------------------ API
    def clean_with_stats(self, text: object) -> tuple[str, CleanStats]:
        """The cleaned text and counts of its words (``CleanStats``)."""
        if not isinstance(text, str):
            text = "" if text is None or (isinstance(text, float) and math.isnan(text)) else str(text)
        if not text:
            return text, CleanStats()
        changes, stats = self._process(text)
        if not changes:
            return text, stats
        parts, pos = [], 0
        for a, b, _, new in changes:
            parts.append(text[pos:a])
            parts.append(new)
            pos = b
        parts.append(text[pos:])
        return "".join(parts), stats

    def clean(self, text: object) -> str:
        return self.clean_with_stats(text)[0]

    def clean_many(self, texts: Iterable[object]) -> list[str]:
        """Clean many texts; each distinct text is cleaned once."""
        done: dict[object, str] = {}
        out = []
        for t in texts:
            key = t if isinstance(t, str) else ("\0", repr(t))  # None must not meet "None"
            r = done.get(key)
            if r is None:
                r = self.clean(t)
                done[key] = r
            out.append(r)
        return out

    def clean_many_with_stats(self, texts: Iterable[object]) -> tuple[list[str], CleanStats]:
        total = CleanStats()
        out = []
        for t in texts:
            r, s = self.clean_with_stats(t)
            out.append(r)
            total += s
        return out, total

    # ------------------------------------------------------------------ fit
    def _scan(self, texts: list[str]):
        """One pass over the training texts: everything ``fit`` counts.

        * words whose script is certain (one-script words with a letter that has no
          twin, and mixed words writable in one script only), per script;
        * script transitions between such words (what ``_log_ctx`` uses);
        * swap statistics of the forced mixed words (what ``Channel`` estimates);
        * for every *class* of look-alike-only words (a word and its twin in the other
          script, lowercased), how often it was seen in Cyrillic, in Latin and mixed.
        """
        words: dict[str, Counter] = {C: Counter(), L: Counter()}
        trans: dict[str, Counter] = {C: Counter(), L: Counter(), N: Counter()}
        seen = {s: [[0, 0, 0] for _ in range(_MAX_N)] for s in SCRIPTS}  # words, kept, all swapped
        pk = pn = 0
        classes: dict[str, list] = {}  # latin form -> [n_cyr, n_lat, n_mixed, twins, cyr form]
        near: dict[str, list] = {}     # latin form + neighbour -> [n_cyr, n_lat]
        with_near = self.config.neighbour_words
        scorable = self._scorable
        for text in texts:
            prev = N
            if with_near:
                ms = list(WORD_RE.finditer(text))
                toks = [m.group() for m in ms]
                infos = [self._info(t) for t in toks]
                lws, rws = _neighbours(text, [m.span() for m in ms],
                                       [_word_key(t, i) for t, i in zip(toks, infos)])
            else:
                toks = WORD_RE.findall(text)
                infos = [self._info(t) for t in toks]
            for j, (tok, info) in enumerate(zip(toks, infos)):
                kind = info.kind
                if kind == _CLEAR:
                    lab = info.label
                    trans[prev][lab] += 1
                    prev = lab
                    words[lab][tok.lower()] += 1
                    if info.twins:
                        row = seen[lab][min(info.twins, _MAX_N) - 1]
                        row[0] += 1
                        row[1] += 1
                elif kind == _FORCED:
                    lab = info.label
                    trans[prev][lab] += 1
                    prev = lab
                    words[lab][info.fixed.lower()] += 1
                    n = info.twins
                    if n > 0:
                        k = info.k_c if lab == C else info.k_l  # letters swapped in
                        row = seen[lab][min(n, _MAX_N) - 1]
                        row[0] += 1
                        row[2] += k >= n
                        if n >= 2 and k < n:
                            pk += k
                            pn += n
                elif kind == _WHOLE or kind == _AMBIG:
                    low = tok.lower()
                    lat = low.translate(_TO_LAT)
                    row = classes.get(lat)
                    if row is None:
                        row = classes[lat] = [0.0, 0.0, 0.0, info.twins, None]
                    if kind == _AMBIG:
                        row[2] += 1
                        if row[4] is None:
                            row[4] = low.translate(_TO_CYR)
                    elif info.script == C:
                        row[0] += 1
                        row[4] = low
                    else:
                        row[1] += 1
                        if row[4] is None:
                            row[4] = low.translate(_TO_CYR)
                    if not scorable(info):  # e.g. codes when fix_codes is off: as written
                        row[3] = -1
                    if with_near and kind == _WHOLE:
                        col = 0 if info.script == C else 1
                        for key in (None if lws[j] is None else f"{lat}\x1f<{lws[j]}",
                                    None if rws[j] is None else f"{lat}\x1f>{rws[j]}"):
                            if key is not None:
                                nr = near.get(key)
                                if nr is None:
                                    nr = near[key] = [0, 0]
                                nr[col] += 1
            trans[prev][N] += 1
        channel = Channel.estimate(seen, pk, pn, self.config.min_swap_penalty)
        return words, trans, channel, classes, near

    def _fit_lms(self, words: dict[str, Counter]) -> None:
        mode = self.config.lm_weighting
        for s in SCRIPTS:
            cnt = {w: _lm_weight(c, mode) for w, c in words[s].items() if c > 0}
            self.models_[s].lm = CharLM(order=self.config.order).fit(cnt) if cnt else None

    def _class_counts(self, classes: dict[str, list], totals: dict[str, float]):
        """Expected counts of each look-alike-only word in its true script (EM).

        A class is seen ``n_cyr`` times in Cyrillic and ``n_lat`` times in Latin; some of
        these are whole-word swaps of the other script. With the channel's swap rates
        the share ``pi`` of the class that truly is Cyrillic is found by EM, starting
        from (and shrunk towards) the prior of the word models without the class.
        """
        ch = self.channel_
        keys = list(classes)
        if not keys:
            return {C: {}, L: {}}
        rows = [classes[k] for k in keys]
        n_c = np.array([r[0] for r in rows])
        n_l = np.array([r[1] for r in rows])
        n_m = np.array([r[2] for r in rows])
        tw = np.array([r[3] for r in rows])
        frozen = tw < 0  # not scored at clean time: taken as written
        tot = totals[C] + totals[L]
        share = {s: (totals[s] + 1.0) / (tot + 2.0) for s in SCRIPTS}
        # Prior from the script's share and the base spelling models (char LM, wordfreq).
        prior = np.empty(len(keys))
        for i, (k, r) in enumerate(zip(keys, rows)):
            pc = share[C] * self._base(C, r[4])
            pl = share[L] * self._base(L, k)
            prior[i] = pc / (pc + pl) if pc + pl > 0 else 0.5
        prior = np.clip(prior, 1e-6, 1 - 1e-6)
        pi = _em_share(n_c, n_l, n_m, ch.arrays(tw), prior, alpha=1.0)
        # A sliver of the other script is more likely the channel being a little off (swap
        # rates vary between sellers) than a real word: below ``min_minority_share`` it goes.
        tau = self.config.min_minority_share
        pi = np.where(pi < tau, 0.0, np.where(pi > 1.0 - tau, 1.0, pi))
        n_all = n_c + n_l + n_m
        cnt_c = np.where(frozen, n_c, pi * n_all)
        cnt_l = np.where(frozen, n_l, (1 - pi) * n_all)
        out = {C: {}, L: {}}
        for k, r, x, y in zip(keys, rows, cnt_c.tolist(), cnt_l.tolist()):
            if x >= 1e-3:  # smaller expected counts change nothing but the model's size
                out[C][r[4]] = x
            if y >= 1e-3:
                out[L][k] = y
        self._class_pi = dict(zip(keys, np.where(frozen, np.nan, pi).tolist()))
        return out

    def _neighbour_shifts(self, classes: dict[str, list], near: dict[str, list]) -> dict[str, float]:
        """Per (word class, neighbour word): log-odds shift of "truly Cyrillic" against the
        class as a whole, by the same EM as ``_class_counts`` on the occurrences next to
        that neighbour, shrunk towards the class's share (``neighbour_alpha``)."""
        ch = self.channel_
        pis = getattr(self, "_class_pi", {})
        keys, prior, tw, n_c, n_l = [], [], [], [], []
        for key, (a, b) in near.items():
            lat = key.split("\x1f", 1)[0]
            p = pis.get(lat)
            if p is None or p != p:  # unknown or frozen class
                continue
            keys.append(key)
            prior.append(min(max(p, 1e-6), 1 - 1e-6))
            tw.append(classes[lat][3])
            n_c.append(a)
            n_l.append(b)
        if not keys:
            return {}
        prior = np.array(prior)
        n_c, n_l = np.array(n_c, dtype=float), np.array(n_l, dtype=float)
        pi = _em_share(n_c, n_l, np.zeros_like(n_c), ch.arrays(np.array(tw)), prior,
                       alpha=self.config.neighbour_alpha)
        # Compare at most-99%-sure shares: near 0 or 1 the log-odds of two EM estimates
        # differ by sampling noise alone (0.9999 against 0.999 is 2.3).
        eps = self.config.neighbour_floor
        pi, prior = np.clip(pi, eps, 1 - eps), np.clip(prior, eps, 1 - eps)
        shift = np.log(pi / prior) - np.log((1 - pi) / (1 - prior))
        cap = self.config.neighbour_max_shift
        shift = np.clip(shift, -cap, cap)
        keep = np.abs(shift) > 0.05
        return {k: float(v) for k, v, ok in zip(keys, shift.tolist(), keep.tolist()) if ok}

    def _base(self, script: str, v: str) -> float:
        """Base spelling probability of a lowercased word (char LM and wordfreq)."""
        m = self.models_[script]
        gamma = self.config.wordfreq_weight if (self.uses_wordfreq_ and m.wf) else 0.0
        base = 0.0
        if m.lm is not None:
            base += (1.0 - gamma) * math.exp(m.lm.logprob(v))
        if gamma:
            base += gamma * m.wf.get(v, 0.0)
        return base

    def fit(self, texts: Iterable[object]) -> "HomoglyphCleaner":
        cfg = self.config
        texts = [t for t in texts if isinstance(t, str) and t]
        if cfg.max_fit_texts is not None and len(texts) > cfg.max_fit_texts:
            rng = random.Random(cfg.seed)
            texts = rng.sample(texts, cfg.max_fit_texts)
        self.uses_wordfreq_ = False
        for s in SCRIPTS:
            self.models_[s] = _ScriptModel()
        if cfg.wordfreq:
            lex = _wordfreq_lexicons()
            if lex is not None:
                self.models_[C].wf, self.models_[L].wf = lex
                self.uses_wordfreq_ = True
        self._decision_cache.clear()
        self._word_cache.clear()
        self._ctx_cache.clear()
        self.neighbour_shift_ = {}
        words, trans, self.channel_, classes, near = self._scan(texts)
        self.transitions_ = {a: {b: float(v) for b, v in row.items()} for a, row in trans.items()}
        # Spelling models from the words whose script is certain, then the look-alike-only
        # words split between the scripts by EM, then the spelling models again with them.
        self._fit_lms(words)
        totals = {s: float(sum(words[s].values())) for s in SCRIPTS}
        expected = self._class_counts(classes, totals)
        # Look-alike-only words join the spelling models only with an expected count of at
        # least ``lm_min_count`` in that script: Kneser-Ney's lower orders count distinct
        # contexts whatever their weight, so thousands of swapped Russian words with a faint
        # chance of being Latin would teach the Latin model to spell Russian.
        floor = cfg.lm_min_count
        lm_words = {s: words[s] + Counter({w: c for w, c in expected[s].items() if c >= floor})
                    for s in SCRIPTS}
        self._fit_lms(lm_words)
        for s in SCRIPTS:
            words[s].update(expected[s])
        for s in SCRIPTS:
            m = self.models_[s]
            m.counts = expected[s]
            m.total = float(sum(words[s].values()))
        if near:
            self.neighbour_shift_ = self._neighbour_shifts(classes, near)
        self._class_pi = {}
        self._fitted = True
        return self

    # ------------------------------------------------------------ save/load
    def save(self, directory) -> None:
        if not self._fitted:
            raise RuntimeError("HomoglyphCleaner is not fitted")
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        arrays = {}
        for s in SCRIPTS:
            m = self.models_[s]
            if m.lm is not None:
                m.lm.save(d / f"charlm_{s}.npz")
            arrays[f"counts_{s}_keys"] = np.array(list(m.counts), dtype=str)
            arrays[f"counts_{s}_vals"] = np.array(list(m.counts.values()), dtype=np.float64)
            arrays[f"wf_{s}_keys"] = np.array(list(m.wf), dtype=str)
            arrays[f"wf_{s}_vals"] = np.array(list(m.wf.values()), dtype=np.float64)
        arrays["near_keys"] = np.array(list(self.neighbour_shift_), dtype=str)
        arrays["near_vals"] = np.array(list(self.neighbour_shift_.values()), dtype=np.float64)
        atomic_savez(d / "lexicon.npz", **arrays)
        state = {"format": _FORMAT, "config": asdict(self.config),
                 "uses_wordfreq": self.uses_wordfreq_, "transitions": self.transitions_,
                 "channel": asdict(self.channel_),
                 "totals": {s: self.models_[s].total for s in SCRIPTS},
                 "has_lm": {s: self.models_[s].lm is not None for s in SCRIPTS}}
        atomic_write_text(d / "homoglyphs.json", json.dumps(state, ensure_ascii=False, indent=1))

    @classmethod
    def load(cls, directory) -> "HomoglyphCleaner":
        d = Path(directory)
        state = json.loads((d / "homoglyphs.json").read_text(encoding="utf-8"))
        if state.get("format") != _FORMAT:
            raise ValueError(f"{d}: not a {_FORMAT} model")
        self = cls(CleanerConfig(**state["config"]))
        self.uses_wordfreq_ = bool(state["uses_wordfreq"])
        self.transitions_ = state["transitions"]
        self.channel_ = Channel(**state["channel"])
        try:
            self._read_lexicon(d, state)
        except (ValueError, OSError, KeyError, EOFError, zipfile.BadZipFile) as e:
            raise ValueError(f"{d.name}/lexicon.npz or charlm_*.npz is not a readable lexicon "
                             f"({type(e).__name__}: {e})") from None
        self._fitted = True
        return self

    def _read_lexicon(self, d: Path, state: dict) -> None:
        with np.load(d / "lexicon.npz", allow_pickle=False) as z:
            for s in SCRIPTS:
                m = _ScriptModel()
                if state["has_lm"][s]:
                    m.lm = CharLM.load(d / f"charlm_{s}.npz")
                m.counts = dict(zip(z[f"counts_{s}_keys"].tolist(), z[f"counts_{s}_vals"].tolist()))
                m.wf = dict(zip(z[f"wf_{s}_keys"].tolist(), z[f"wf_{s}_vals"].tolist()))
                m.total = float(state["totals"][s])
                self.models_[s] = m
            self.neighbour_shift_ = dict(zip(z["near_keys"].tolist(), z["near_vals"].tolist()))
