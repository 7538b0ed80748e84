"""What people (and spammers) do to ad text: typos, homoglyph substitution, re-post edits.

All functions take a ``random.Random`` so that one generator stream drives a whole run
deterministically; none of them changes the number of whitespace-separated words except the
re-post edits (which work on sentences).
"""

from __future__ import annotations

import random
import re

from dupsearch.synth import words as W
from dupsearch.text.confusables import CYR_TO_LAT, LAT_TO_CYR, is_cyrillic

# Only letters that occur in Russian text are swapped into Latin (not і/ј/ѕ).
_CYR_SWAP = {c: l for c, l in CYR_TO_LAT.items() if c not in "іјѕІЈЅ"}
_LAT_SWAP = dict(LAT_TO_CYR)


_HAS_CYRILLIC = re.compile("[\u0400-\u04ff]").search
# Per table, each word seen -> (positions of its swappable letters, the word with all of them
# swapped): the vocabulary of ads is small, so words are scanned once; cleared when large.
_SEEN: tuple[dict[str, tuple], dict[str, tuple]] = ({}, {})
_CACHE_MAX = 500_000
ALL_LETTERS = 0.25      # share of hit words with every look-alike letter swapped


def _swap_letters(word: str, table: dict[str, str], rnd: random.Random, cache: dict | None = None) -> str:
    got = None if cache is None else cache.get(word)
    if got is None:
        pos = tuple(i for i, ch in enumerate(word) if ch in table)
        got = (pos, "".join(table.get(ch, ch) for ch in word))
        if cache is not None:
            if len(cache) >= _CACHE_MAX:
                cache.clear()
            cache[word] = got
    pos, every = got
    n = len(pos)
    if not n:
        return word
    u = rnd.random()
    # One or two letters, or (``ALL_LETTERS`` of the time) every look-alike letter in the word.
    if u < ALL_LETTERS or n == 1:
        return every
    i = pos[int(rnd.random() * n)]
    if u < ALL_LETTERS + (1 - ALL_LETTERS) * 0.6:
        return word[:i] + every[i] + word[i + 1:]
    j = int(rnd.random() * (n - 1))
    j = pos[j + (pos[j] >= i)]
    if j < i:
        i, j = j, i
    return word[:i] + every[i] + word[i + 1:j] + every[j] + word[j + 1:]


def substitute_homoglyphs(text: str, rnd: random.Random, word_rate: float,
                          latin_share: float = 0.15) -> str:
    """Swap look-alike letters in about ``word_rate`` of the words of ``text`` (each word is
    hit with that probability).

    A Russian word gets 1+ Cyrillic letters replaced by Latin ones; a word without Cyrillic
    letters (a brand or model name such as "iPhone") is hit only with probability
    ``latin_share`` and then gets Latin letters replaced by Cyrillic ones. Whitespace is kept
    exactly, so words of the result align one-to-one with words of ``text``.
    """
    if not text or word_rate <= 0:
        return text
    simple = "\n" not in text and "  " not in text and "\t" not in text
    # words and the whitespace between them: single spaces (fast path), or runs kept exactly
    parts = text.split(" ") if simple else _WS.split(text)
    step = 1 if simple else 2
    random_ = rnd.random
    cyr_cache, lat_cache = _SEEN
    for i in range(0, len(parts), step):
        if random_() >= word_rate:
            continue
        w = parts[i]
        if not w:
            continue
        if _HAS_CYRILLIC(w):
            parts[i] = _swap_letters(w, _CYR_SWAP, rnd, cyr_cache)
        elif random_() < latin_share:
            parts[i] = _swap_letters(w, _LAT_SWAP, rnd, lat_cache)
    return (" " if simple else "").join(parts)


def add_typo(text: str, rnd: random.Random) -> str:
    """One typo in a random Russian word of 4+ letters: swapped, dropped, doubled or
    neighbouring-key letter. Word boundaries are kept."""
    parts = _WS.split(text)
    cand = [i for i in range(0, len(parts), 2)
            if len(parts[i]) >= 4 and is_cyrillic(parts[i][0]) and parts[i][:4].isalpha()]
    if not cand:
        return text
    i = rnd.choice(cand)
    w = parts[i]
    end = len(w)
    while end and not w[end - 1].isalpha():
        end -= 1
    if end < 3:
        return text
    j = rnd.randrange(1, end - 1)       # keep the first letter: people rarely miss it
    op = rnd.randrange(4)
    if op == 0:
        w = w[:j] + w[j + 1] + w[j] + w[j + 2:]
    elif op == 1:
        w = w[:j] + w[j + 1:]
    elif op == 2:
        w = w[:j] + w[j] + w[j:]
    else:
        near = W.KEY_NEIGHBOURS.get(w[j], "")
        if near:
            w = w[:j] + rnd.choice(near) + w[j + 1:]
        else:
            w = w[:j] + w[j + 1:]
    parts[i] = w
    return "".join(parts)


_WS = re.compile(r"(\s+)")
_DIGIT_GAP = re.compile(r"(?<=\d) (?=\d)")
_SYN = {**{a: b for a, b in W.SYNONYMS}, **{b: a for a, b in W.SYNONYMS}}


def edit_sentences(sentences: list[str], rnd: random.Random) -> list[str]:
    """A re-post's description: sentences reordered, one dropped, one added, a word swapped."""
    s = list(sentences)
    if len(s) > 2 and rnd.random() < 0.5:
        body = s[1:]
        if rnd.random() < 0.5:
            rnd.shuffle(body)
        else:
            i, j = rnd.sample(range(len(body)), 2)
            body[i], body[j] = body[j], body[i]
        s = [s[0], *body] if rnd.random() < 0.7 else body + [s[0]]
    if len(s) > 3 and rnd.random() < 0.45:
        del s[rnd.randrange(1, len(s))]
    if rnd.random() < 0.4:
        s.insert(rnd.randint(1, len(s)), rnd.choice(W.REPOST_ADDITIONS))
    if rnd.random() < 0.35:
        i = rnd.randrange(len(s))
        words = s[i].split(" ")
        hits = [k for k, w in enumerate(words) if w in _SYN]
        if hits:
            k = rnd.choice(hits)
            words[k] = _SYN[words[k]]
            s[i] = " ".join(words)
    return s


def edit_title(title: str, alternatives: list[str], rnd: random.Random) -> str:
    """A re-post's title: another wording of the same item, a prefix or suffix, or caps."""
    if len(alternatives) > 1 and rnd.random() < 0.45:
        title = rnd.choice(alternatives)
    u = rnd.random()
    if u < 0.06:
        if len(title) > 1 and is_cyrillic(title[0]) and title[1].islower():
            title = title[0].lower() + title[1:]
        title = f"{rnd.choice(W.TITLE_PREFIXES)} {title}"
    elif u < 0.12:
        title = f"{title}, {rnd.choice(W.TITLE_SUFFIXES)}"
    if rnd.random() < 0.04:
        title = title.upper()
    return title


def edit_attributes(attrs: dict[str, str], rnd: random.Random, drop_p: float = 0.35,
                    change_p: float = 0.2, keep: tuple[str, ...] = ()) -> dict[str, str]:
    """Attributes of a re-post: some dropped, one written differently."""
    a = dict(attrs)
    if len(a) > 2 and rnd.random() < drop_p:
        for key in rnd.sample(list(a), min(len(a) - 2, 1 + (rnd.random() < 0.3))):
            del a[key]
    free = [k for k in a if k not in keep]
    if free and rnd.random() < change_p:
        key = rnd.choice(free)
        v = a[key]
        if v in W.COLOR_SPELLINGS:
            v = W.COLOR_SPELLINGS[v]
        elif any(ch.isdigit() for ch in v) and " " in v:
            # "85 000 км" -> "85000 км" or "85 000"
            tokens = v.split(" ")
            if not tokens[-1][:1].isdigit() and rnd.random() < 0.5:
                v = " ".join(tokens[:-1])
            else:
                v = _DIGIT_GAP.sub("", v)
        else:
            v = v.lower()
        a[key] = v
    return a
