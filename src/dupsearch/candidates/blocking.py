"""Candidate generation (blocking): which listing pairs are worth scoring at all.

Every blocker maps a listings frame to unordered pairs ``item_id_a < item_id_b``. Pairs inside
a block are generated with numpy (one ``np.triu_indices`` per distinct block size), never one
Python step per pair. Blocks (buckets) larger than a blocker's limit are skipped -- a huge block
is a stop-key ("Продам", one big category), not evidence of duplication -- and counted in the
blocker's ``report_``.

Blockers: :class:`CategoryBlocker` (same category path prefix), :class:`ExactKeyBlocker`
(equal normalised title, or a shared phone number), :class:`MinHashLSHBlocker` (word-shingle
MinHash with LSH banding, pure numpy), :class:`ImageHashBlocker` (equal perceptual hash of a
photo). Approximate nearest neighbours on embeddings (usearch/faiss) is not here yet: neither
package is a dependency.
"""

from __future__ import annotations

import re
import sys
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Literal, Protocol, Sequence

import numpy as np
import pandas as pd

from dupsearch.errors import DataError
from dupsearch.synth.pairs import positive_pairs
from dupsearch.text.confusables import CYR_TO_LAT
from dupsearch.text.normalize import normalize_text, tokenize

PAIR_COLUMNS = ["item_id_a", "item_id_b"]
_CATEGORY_COLUMNS = ["category_l1", "category_l2", "category_l3", "category_l4"]

# Cyrillic look-alikes folded to Latin: "Ноутбук" with a Latin 'о' and the honest one share a
# key, so homoglyph spam does not split a duplicate pair across blocks.
_SKELETON = str.maketrans({c: l.lower() for c, l in CYR_TO_LAT.items() if c.islower()})

# A Russian phone number: optional +7/7/8, then 10 digits in 3-3-2-2 groups with spaces, dashes
# or brackets between. Digits on either side mean it is part of a longer number.
PHONE_RE = re.compile(r"(?<![\d+])(?:\+\s*7|7|8)?[\s\-]*\(?\s*(\d{3})\s*\)?[\s\-]*(\d{3})"
                      r"[\s\-]*(\d{2})[\s\-]*(\d{2})(?!\d)")

_MERSENNE_31 = np.uint64((1 << 31) - 1)


class Blocker(Protocol):
    name: str

    def pair_codes(self, listings: pd.DataFrame, progress=None) -> np.ndarray:
        """Sorted unique row-pair codes ``lo * n + hi`` (rows of ``listings``, lo < hi)."""

    def pairs(self, listings: pd.DataFrame) -> pd.DataFrame:
        """Unique pairs, columns item_id_a < item_id_b (str)."""


def skeleton(text: object) -> str:
    """Normalised text with Cyrillic look-alike letters folded to Latin (a blocking key)."""
    return normalize_text(text).translate(_SKELETON)


# ---------------------------------------------------------------------------- pair machinery

def _require(listings: pd.DataFrame, columns: Sequence[str]) -> None:
    for col in columns:
        if col not in listings.columns:
            raise DataError(f"listings have no column {col!r} (needed for blocking); "
                            f"columns present: {list(listings.columns)}", column=col)


def _item_ids(listings: pd.DataFrame) -> np.ndarray:
    _require(listings, ["item_id"])
    ids = listings["item_id"]
    if ids.isna().any():
        raise DataError(f"{int(ids.isna().sum())} listings have no item_id", column="item_id")
    ids = ids.astype(str).to_numpy(dtype=object)
    if len(pd.unique(ids)) != len(ids):
        dup = pd.Series(ids)[pd.Series(ids).duplicated()].iloc[0]
        raise DataError(f"item_id must be unique; {dup!r} repeats", column="item_id")
    return ids


def _block_pairs(rows: np.ndarray, keys: np.ndarray, max_block: int | None
                 ) -> tuple[np.ndarray, np.ndarray, dict]:
    """All row pairs sharing a key. ``rows``/``keys`` are parallel (a row may carry several keys).

    Returns row index arrays a, b (a < b, possibly repeated across keys) and skip counts.
    """
    rows = np.asarray(rows, dtype=np.int64)
    codes = pd.factorize(pd.Series(keys), use_na_sentinel=True)[0]
    keep = codes >= 0
    rows, codes = rows[keep], codes[keep]
    # One (row, key) entry per row and key, so a row never pairs with itself in a block.
    entry = np.unique(np.stack([codes, rows], axis=1), axis=0) if len(rows) else np.empty((0, 2), np.int64)
    codes, rows = entry[:, 0], entry[:, 1]
    starts = np.flatnonzero(np.r_[True, codes[1:] != codes[:-1]]) if len(codes) else np.empty(0, np.int64)
    sizes = np.diff(np.r_[starts, len(codes)])
    too_big = sizes > max_block if max_block is not None else np.zeros(len(sizes), bool)
    stats = {"n_blocks": int((sizes >= 2).sum()), "skipped_blocks": int(too_big.sum()),
             "skipped_block_rows": int(sizes[too_big].sum()),
             "largest_block": int(sizes.max()) if len(sizes) else 0}
    a_parts, b_parts = [], []
    usable = (sizes >= 2) & ~too_big
    for size in np.unique(sizes[usable]):
        block_starts = starts[usable & (sizes == size)]
        i, j = np.triu_indices(int(size), 1)
        a_parts.append(rows[(block_starts[:, None] + i).ravel()])
        b_parts.append(rows[(block_starts[:, None] + j).ravel()])
    if not a_parts:
        return np.empty(0, np.int64), np.empty(0, np.int64), stats
    return np.concatenate(a_parts), np.concatenate(b_parts), stats


def _pair_codes(a: np.ndarray, b: np.ndarray, n: int) -> np.ndarray:
    """Row pairs -> sorted unique codes ``lo * n + hi`` (lo < hi; self pairs dropped)."""
    a, b = np.asarray(a, dtype=np.int64), np.asarray(b, dtype=np.int64)
    lo, hi = np.minimum(a, b), np.maximum(a, b)
    keep = lo != hi
    return np.unique(lo[keep] * np.int64(n) + hi[keep])


def _codes_frame(codes: np.ndarray, ids: np.ndarray) -> pd.DataFrame:
    """Pair codes -> item id pairs with item_id_a < item_id_b (as strings)."""
    n = len(ids)
    id_a, id_b = ids[codes // n], ids[codes % n]
    swap = id_a > id_b
    id_a, id_b = np.where(swap, id_b, id_a), np.where(swap, id_a, id_b)
    return pd.DataFrame({"item_id_a": pd.array(id_a, dtype="str"),
                         "item_id_b": pd.array(id_b, dtype="str")})


def _pairs_frame(a: np.ndarray, b: np.ndarray, ids: np.ndarray) -> pd.DataFrame:
    """Row pairs -> unique item id pairs with item_id_a < item_id_b."""
    return _codes_frame(_pair_codes(a, b, len(ids)), ids)


def _exploded(values: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """A column of lists -> parallel (row index, element) arrays."""
    lengths = values.map(len).to_numpy()
    rows = np.repeat(np.arange(len(values)), lengths)
    elems = np.array([x for xs in values for x in xs], dtype=object)
    return rows, elems


# ---------------------------------------------------------------------------- blockers

class _BlockerBase:
    def pairs(self, listings: pd.DataFrame) -> pd.DataFrame:
        """Unique pairs, columns item_id_a < item_id_b (str)."""
        return _codes_frame(self.pair_codes(listings), _item_ids(listings))


class _KeyBlocker(_BlockerBase, ABC):
    """A blocker whose pairs are the rows sharing a key: ``block_keys`` gives each row's keys
    (a row may have several), and the catalogue index keeps them to answer new listings."""

    max_block: int | None = None

    @abstractmethod
    def block_keys(self, listings: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """Parallel arrays (row, key); rows without a key are left out."""

    def pair_codes(self, listings: pd.DataFrame, progress=None) -> np.ndarray:
        _item_ids(listings)  # checks the ids before any work
        rows, keys = self.block_keys(listings)
        a, b, stats = _block_pairs(rows, keys, self.max_block)
        self.report_.update(stats)
        return _pair_codes(a, b, len(listings))


def key_hashes(keys: np.ndarray) -> np.ndarray:
    """Blocking keys as uint64 (strings hashed by pandas' fixed-key hash: stable across runs)."""
    keys = np.asarray(keys)
    if keys.dtype == np.uint64:
        return keys
    if keys.dtype.kind in "iu":
        return keys.astype(np.uint64)
    return stable_hashes(keys.astype(object)) if len(keys) else np.empty(0, np.uint64)


def stable_hashes(values: np.ndarray) -> np.ndarray:
    """pandas' fixed-key hash of an object array. A large one is factorised first (each distinct
    value hashed once); a few values without a missing one (an online match's keys) are hashed
    as they are: the same hashes, without the factorising's ~0.3 ms. (Missing values hash
    differently in the two ways: those arrays always take the first.)"""
    small = len(values) <= 256 and not pd.isna(values).any()
    return pd.util.hash_array(values, categorize=not small)


def _keyed(rows: np.ndarray, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(row, key) pairs without the rows whose key is None."""
    keys = np.asarray(keys)
    if keys.dtype == object:
        keep = pd.notna(pd.Series(keys)).to_numpy()
        return np.asarray(rows, np.int64)[keep], keys[keep]
    return np.asarray(rows, np.int64), keys


class CategoryBlocker(_KeyBlocker):
    """All pairs within the same category path prefix ``category_l1 .. category_l{level}``.

    Listings with an empty path are not blocked. Blocks above ``max_block`` listings are skipped.
    """

    def __init__(self, level: int = 2, max_block: int = 2000):
        if level not in (1, 2, 3, 4):
            raise ValueError(f"level must be 1..4, got {level!r}")
        self.level, self.max_block = level, max_block
        self.name = f"category_l{level}"
        self.report_: dict = {}

    def block_keys(self, listings: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        cols = _CATEGORY_COLUMNS[:self.level]
        _require(listings, cols)
        parts = [listings[c].fillna("").astype(str).str.strip() for c in cols]
        path = parts[0].str.cat(parts[1:], sep=" > ") if len(parts) > 1 else parts[0]
        empty = np.logical_and.reduce([p.eq("").to_numpy() for p in parts])
        keys = path.to_numpy(dtype=object)
        keys[empty] = None
        return _keyed(np.arange(len(listings)), keys)


def phone_tokens(text: object) -> list[str]:
    """Phone numbers in a text as their last 10 digits ('+7 (912) 345-67-89' -> '9123456789')."""
    if not isinstance(text, str):
        return []
    return ["".join(m) for m in PHONE_RE.findall(text)]


class ExactKeyBlocker(_KeyBlocker):
    """Equal normalised title (``key="title"``), or any shared phone number in title or
    description (``key="phone"``)."""

    def __init__(self, key: Literal["title", "phone"] = "title", max_block: int = 1000):
        if key not in ("title", "phone"):
            raise ValueError(f"key must be 'title' or 'phone', got {key!r}")
        self.key, self.max_block = key, max_block
        self.name = key
        self.report_: dict = {}

    def block_keys(self, listings: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        if self.key == "title":
            _require(listings, ["title"])
            titles = pd.Series(listings["title"].to_numpy(dtype=object))
            # Normalise each distinct title once (reposts repeat titles).
            uniq, inverse = np.unique(titles.fillna("").astype(str).to_numpy(), return_inverse=True)
            keys = np.array([" ".join(tokenize(skeleton(t))) for t in uniq], dtype=object)[inverse]
            keys[keys == ""] = None
            rows = np.arange(len(listings))
        else:
            _require(listings, ["title", "description"])
            text = (listings["title"].fillna("").astype(str) + " \n "
                    + listings["description"].fillna("").astype(str))
            rows, keys = _exploded(pd.Series([phone_tokens(t) for t in text]))
        return _keyed(rows, keys)


class ColumnKeyBlocker(_KeyBlocker):
    """Equal values in all of ``columns`` (e.g. the same seller in the same category:
    ``("seller_id", "category_l2")``). Rows with an empty value in any column are not blocked."""

    def __init__(self, columns: Sequence[str], max_block: int = 1000, name: str | None = None):
        if isinstance(columns, str):
            columns = [columns]
        if not columns:
            raise ValueError("columns must name at least one column")
        self.columns, self.max_block = list(columns), max_block
        self.name = name or "+".join(self.columns)
        self.report_: dict = {}

    def block_keys(self, listings: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        _require(listings, self.columns)
        if len(listings) <= SMALL_KEYS:
            found = _plain_keys([listings[c].tolist() for c in self.columns])
            if found is not None:
                return found
        parts = [listings[c].astype("string").fillna("").str.strip() for c in self.columns]
        empty = np.logical_or.reduce([p.eq("").to_numpy() for p in parts])
        keys = parts[0].str.cat(parts[1:], sep="\x1f") if len(parts) > 1 else parts[0]
        keys = keys.to_numpy(dtype=object)
        keys[empty] = None
        return _keyed(np.arange(len(listings)), keys)


# Up to this many listings (an online match), keys of plain strings are joined in Python: the
# pandas string operations cost ~0.3 ms a column whatever the length. The same keys: Python's
# str.strip and pandas' strip agree on every code point (checked over all of Unicode).
SMALL_KEYS = 64


def _plain_keys(columns: list[list]) -> tuple[np.ndarray, np.ndarray] | None:
    """ColumnKeyBlocker's (row, key) pairs from the columns' values, None unless every value is
    a str or missing (other values take pandas' own conversion to strings)."""
    def plain(v) -> bool:
        return type(v) is str or v is None or v is pd.NA or (type(v) is float and v != v)
    if not all(plain(v) for col in columns for v in col):
        return None
    rows, keys = [], []
    for i, values in enumerate(zip(*columns)):
        parts = [v.strip() if type(v) is str else "" for v in values]
        if all(parts):
            rows.append(i)
            keys.append("\x1f".join(parts))
    out = np.empty(len(keys), dtype=object)
    out[:] = keys
    return np.asarray(rows, np.int64), out


def word_shingles(text: object, k: Sequence[int] = (1, 2)) -> list[str]:
    """Word k-grams of the skeleton text, for each k in ``k``."""
    words = tokenize(skeleton(text))
    out: list[str] = []
    for size in k:
        out.extend(" ".join(words[i:i + size]) for i in range(len(words) - size + 1))
    return out


def minhash_signatures(rows: np.ndarray, shingle_hashes: np.ndarray, n_rows: int, num_perm: int,
                       seed: int = 0, chunk: int = 200_000) -> np.ndarray:
    """MinHash signatures (n_rows x num_perm, uint64) from (row, 64-bit shingle hash) pairs.

    ``rows`` must be sorted. Permutation i is h_i(x) = (a_i * x + b_i) mod (2^31 - 1) over the
    low 32 bits of x: a_i < 2^31 keeps the product inside uint64. Rows with no shingles get
    the maximum value everywhere (callers drop them).
    """
    rng = np.random.default_rng(seed)
    mult = rng.integers(1, int(_MERSENNE_31), num_perm, dtype=np.uint64)
    add = rng.integers(0, int(_MERSENNE_31), num_perm, dtype=np.uint64)
    x = shingle_hashes.astype(np.uint64) & np.uint64(0xFFFFFFFF)
    sig = np.full((n_rows, num_perm), np.iinfo(np.uint64).max, dtype=np.uint64)
    # Chunk boundaries on row boundaries so each row's minimum is taken in one chunk.
    row_starts = np.flatnonzero(np.r_[True, rows[1:] != rows[:-1]]) if len(rows) else np.empty(0, int)
    lo = 0
    while lo < len(row_starts):
        hi = int(np.searchsorted(row_starts, row_starts[lo] + chunk, side="left"))
        hi = max(hi, lo + 1)
        s0 = row_starts[lo]
        s1 = row_starts[hi] if hi < len(row_starts) else len(rows)
        h = (x[s0:s1, None] * mult[None, :] + add[None, :]) % _MERSENNE_31
        sig[rows[row_starts[lo:hi]]] = np.minimum.reduceat(h, row_starts[lo:hi] - s0, axis=0)
        lo = hi
    return sig


class MinHashLSHBlocker(_KeyBlocker):
    """Listings whose MinHash signatures agree on a whole band (LSH), over word shingles of
    title + description.

    With ``num_perm / bands = r`` rows per band, two texts of Jaccard similarity J meet with
    probability 1 - (1 - J^r)^bands (64/16: J=0.3 -> 12 %, 0.5 -> 64 %, 0.7 -> 99 %).
    """

    def __init__(self, num_perm: int = 64, bands: int = 16, shingle: Sequence[int] = (1, 2),
                 seed: int = 0, max_bucket: int = 500, columns: Sequence[str] = ("title", "description"),
                 name: str = "minhash"):
        if num_perm % bands:
            raise ValueError(f"num_perm ({num_perm}) must be a multiple of bands ({bands})")
        self.num_perm, self.bands, self.shingle = num_perm, bands, tuple(shingle)
        self.seed, self.max_bucket, self.columns = seed, max_bucket, list(columns)
        self.max_block = max_bucket
        self.name = name  # distinct names let one union hold e.g. a text and a title MinHash
        self.report_: dict = {}

    def block_keys(self, listings: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        n = len(listings)
        _require(listings, self.columns)
        text = listings[self.columns[0]].fillna("").astype(str)
        for c in self.columns[1:]:
            text = text + " \n " + listings[c].fillna("").astype(str)
        rows, shingles = _exploded(pd.Series([word_shingles(t, self.shingle) for t in text]))
        # pandas' string hash is seeded with a fixed key: stable across runs, unlike hash().
        hashes = pd.util.hash_array(shingles) if len(shingles) else np.empty(0, np.uint64)
        sig = minhash_signatures(rows, hashes, n, self.num_perm, self.seed)
        has_text = np.zeros(n, bool)
        has_text[rows] = True
        r = self.num_perm // self.bands
        # One 64-bit key per (listing, band): a random linear combination of the band's values,
        # salted by the band index so equal values in different bands never meet.
        weights = np.random.default_rng(self.seed + 1).integers(
            1, np.iinfo(np.int64).max, (self.bands, r), dtype=np.int64).astype(np.uint64)
        band_key = (sig[has_text].reshape(-1, self.bands, r) * weights[None]).sum(axis=2, dtype=np.uint64)
        band_key = band_key + np.arange(self.bands, dtype=np.uint64)[None, :] * np.uint64(0x9E3779B97F4A7C15)
        text_rows = np.flatnonzero(has_text)
        self.report_["listings_without_text"] = int((~has_text).sum())
        return np.repeat(text_rows, self.bands).astype(np.int64), band_key.ravel()


class ImageHashBlocker(_KeyBlocker):
    """Listings sharing an equal perceptual hash (``imagehash.phash``) of any photo.

    Each distinct file is hashed once; unreadable files are counted in ``report_``.
    """

    def __init__(self, max_bucket: int = 500, hash_size: int = 8):
        self.max_bucket, self.hash_size = max_bucket, hash_size
        self.max_block = max_bucket
        self.name = "phash"
        self.report_: dict = {}

    def block_keys(self, listings: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        import imagehash
        from PIL import Image

        _require(listings, ["images"])
        images = listings["images"].map(lambda v: list(v) if isinstance(v, (list, tuple, np.ndarray)) else [])
        rows, paths = _exploded(images)
        uniq, inverse = (np.unique(paths.astype(str), return_inverse=True) if len(paths)
                         else (np.empty(0, str), np.empty(0, np.int64)))
        hashes = np.empty(len(uniq), dtype=object)
        unreadable = 0
        for i, path in enumerate(uniq):  # file I/O: one step per file is unavoidable
            try:
                with Image.open(path) as img:
                    hashes[i] = str(imagehash.phash(img, hash_size=self.hash_size))
            except (OSError, ValueError, SyntaxError):
                hashes[i] = None
                unreadable += 1
        self.report_.update(images=int(len(uniq)), unreadable_images=unreadable)
        return _keyed(rows, hashes[inverse] if len(uniq) else hashes)


# ---------------------------------------------------------------------------- union and metrics

@dataclass
class CandidateSet:
    """Candidate pairs as row indices into the listings (``a < b``), with a bit mask of the
    blockers that proposed each (bit i = ``names[i]``) and each blocker's report."""

    a: np.ndarray
    b: np.ndarray
    mask: np.ndarray
    names: list[str]
    report: dict

    def __len__(self) -> int:
        return len(self.a)

    def labels(self, masks: np.ndarray | None = None) -> np.ndarray:
        """'minhash|title' per pair (object array)."""
        masks = self.mask if masks is None else masks
        uniq, inv = np.unique(masks, return_inverse=True)
        label = np.array(["|".join(n for bit, n in enumerate(self.names) if m >> bit & 1) for m in uniq],
                         dtype=object)
        return label[inv]

    def frame(self, ids: np.ndarray) -> pd.DataFrame:
        ids = np.asarray(ids, dtype=object)
        id_a, id_b = ids[self.a], ids[self.b]
        swap = id_a > id_b
        return pd.DataFrame({"item_id_a": pd.array(np.where(swap, id_b, id_a), dtype="str"),
                             "item_id_b": pd.array(np.where(swap, id_a, id_b), dtype="str"),
                             "blockers": pd.array(self.labels(), dtype="str")})


def candidate_pairs(listings: pd.DataFrame, blockers: Sequence[Blocker], progress: bool = False
                    ) -> CandidateSet:
    """Union of the blockers' pairs (row indices, so a million listings' candidates stay small)."""
    names = [b.name for b in blockers]
    if len(set(names)) != len(names):
        raise ValueError(f"blocker names must be distinct, got {names}")
    if len(blockers) > 62:
        raise ValueError("at most 62 blockers")
    n = len(_item_ids(listings))
    codes, masks, report = [], [], {}
    for bit, blocker in enumerate(blockers):
        t0 = time.perf_counter()
        c = blocker.pair_codes(listings)
        seconds = time.perf_counter() - t0
        report[blocker.name] = {"n_pairs": int(len(c)), "seconds": round(seconds, 3),
                                **getattr(blocker, "report_", {})}
        if progress:
            print(f"[blocking] {blocker.name}: {len(c):,} pairs in {seconds:.2f}s",
                  file=sys.stderr, flush=True)
        codes.append(c)
        masks.append(np.full(len(c), 1 << bit, dtype=np.int64))
    if not codes or not sum(map(len, codes)):
        e = np.empty(0, np.int64)
        return CandidateSet(e, e.copy(), e.copy(), names, report)
    code = np.concatenate(codes)
    mask = np.concatenate(masks)
    del codes, masks
    order = np.argsort(code, kind="stable")
    code, mask = code[order], mask[order]
    del order
    starts = np.flatnonzero(np.r_[True, code[1:] != code[:-1]])
    mask = np.bitwise_or.reduceat(mask, starts)
    code = code[starts]
    return CandidateSet(code // n, code % n, mask, names, report)


def union_candidates(listings: pd.DataFrame, blockers: Sequence[Blocker], progress: bool = False
                     ) -> tuple[pd.DataFrame, dict]:
    """Deduplicated union of the blockers' pairs, with a column ``blockers`` naming those that
    proposed each pair (``"minhash|title"``), and a report per blocker (n_pairs, seconds, and
    its own skip counts)."""
    cands = candidate_pairs(listings, blockers, progress)
    frame = cands.frame(_item_ids(listings)).sort_values(PAIR_COLUMNS, ignore_index=True)
    return frame, cands.report


def _pair_index(pairs: pd.DataFrame, what: str) -> pd.MultiIndex:
    for col in PAIR_COLUMNS:
        if col not in pairs.columns:
            raise DataError(f"{what} need columns {PAIR_COLUMNS}", column=col)
    a = pairs["item_id_a"].astype(str).to_numpy(dtype=object)
    b = pairs["item_id_b"].astype(str).to_numpy(dtype=object)
    swap = a > b
    return pd.MultiIndex.from_arrays([np.where(swap, b, a), np.where(swap, a, b)]).unique()


def blocking_metrics(candidates: pd.DataFrame, true_pairs: pd.DataFrame, n_listings: int) -> dict:
    """Pair recall (share of true pairs among the candidates, order-free), reduction ratio
    (1 - candidates / all n(n-1)/2 pairs), candidates per listing and n_candidates."""
    cand = _pair_index(candidates, "candidates")
    truth = _pair_index(true_pairs, "true pairs")
    all_pairs = n_listings * (n_listings - 1) / 2
    found = int(truth.isin(cand).sum()) if len(truth) else 0
    return {"pair_recall": found / len(truth) if len(truth) else float("nan"),
            "n_true_pairs": int(len(truth)), "n_true_found": found,
            "reduction_ratio": 1 - len(cand) / all_pairs if all_pairs else float("nan"),
            "candidates_per_listing": len(cand) / n_listings if n_listings else float("nan"),
            "n_candidates": int(len(cand))}


def true_pair_codes(listings: pd.DataFrame, column: str = "cluster_id") -> np.ndarray:
    """Sorted codes ``lo * n + hi`` of all duplicate row pairs implied by cluster ids."""
    _require(listings, [column])
    codes = pd.factorize(listings[column], use_na_sentinel=True)[0]
    labelled = np.flatnonzero(codes >= 0)
    a, b = positive_pairs(codes[labelled])
    return _pair_codes(labelled[a], labelled[b], len(listings))


def true_pairs_from_clusters(listings: pd.DataFrame, column: str = "cluster_id") -> pd.DataFrame:
    """All duplicate pairs implied by cluster ids (listings with a missing id are singletons)."""
    ids = _item_ids(listings)
    _require(listings, [column])
    codes = pd.factorize(listings[column], use_na_sentinel=True)[0]
    labelled = np.flatnonzero(codes >= 0)
    a, b = positive_pairs(codes[labelled])
    return _pairs_frame(labelled[a], labelled[b], ids)
