"""The synthetic Russian marketplace: listings, duplicates, hard negatives, photos and pairs.

Structure of a run (one seed -> identical tables):

1. *Items* (``cluster_id``): each gets a kind of goods (its share follows the top-level
   category weights), an owner and, for a share of them (``sibling_rate``), a *family root* --
   another item of the same kind and model that it must differ from (the hard negatives).
   Most siblings are *units* of the root: every detail copied but one (memory, colour, year,
   floor, sex...; ``close_sibling_rate``), some not even that (``same_sibling_rate``: other
   photos, perhaps another price), and derived values (area, mileage, price) follow the root's
   draws. A share of the units of shop goods, transport, real estate and animals is listed by
   the root's own seller from the same template (``shared_owner_rate``): a shop's stock, a
   dealer's cars, an agency's flats in one building, a litter.
2. *Owners*: private persons (1-few items, 1-3 accounts) and shops (many items of one goods
   group, templated ads). Every owner lives in a city and a *bucket*; all pairs are drawn
   inside a bucket, which is what lets :func:`split_pairs` split without cutting pairs.
3. Item attributes and prices: vectorized per kind (:mod:`dupsearch.synth.catalog`).
4. *Listings*: every item is listed once; sellers fill the whole attribute form, part of it or
   only the required fields, and some write the price into the text. A share of items is
   re-posted 1+ times, as people do weeks later: the text edited (sentences reordered, dropped,
   added, words swapped) or written anew (``rewrite_rate``; some cut to a line or two under a
   shortened title, some filed under another level 3/4 category or meeting the buyer in another
   district), the price often cut by 5-20 %, mileage, battery or a puppy's age moved on,
   attributes dropped or re-spelled, typos, another account of the same owner. Homoglyph spam
   hits ``homoglyph_rate`` of all listings independently (so often one copy of a duplicate and
   not the other), in 0.75-1.25 x ``homoglyph_word_rate`` of their words.
5. Photos (optional) and labelled pairs (:mod:`dupsearch.synth.pairs`): mostly hard negatives,
   and ``label_noise`` of the labels wrong, as assessors' are now and then.

Only step 4 runs a per-listing Python loop (string formatting); everything else is numpy.
"""

from __future__ import annotations

import json
import os
import random
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import pandas as pd
import pyarrow as pa

import dupsearch
from dupsearch.synth import catalog as C
from dupsearch.synth import noise as N
from dupsearch.synth import words as W
from dupsearch.synth.pairs import PAIR_KINDS, PairSplits, make_pairs, split_pairs

GENERATOR_VERSION = "2.0.0"

Progress = Callable[[str, int, int], None]

_CHUNK = 50_000
_SHORT = 0.4            # share of rewritten re-posts cut to a line or two
_DRIFT = 0.35           # share of re-posts whose numbers moved on (mileage, battery, age)
_RECATEGORIZE = 0.15    # share of rewritten re-posts filed under another level 3 or 4
_PRICE_CUT = 0.4        # share of re-posts 5-20 % cheaper
_PRICE_MOVE = 0.2       # share of re-posts moved up to 6 % either way
_ATTRS_REQUIRED = 0.45  # share of listings with only the required attributes filled
_ATTRS_PARTIAL = 0.25   # share of listings with a field or two left out
_PRICE_IN_TEXT = 0.3    # share of items whose ads also write the price into the description
_PANDAS3 = int(pd.__version__.split(".")[0]) >= 3


def _str_array(arr):
    """An Arrow string array as a pandas string column (zero-copy on pandas 3)."""
    if isinstance(arr, pa.ChunkedArray) and arr.num_chunks == 1:
        arr = arr.chunk(0)
    if _PANDAS3:
        return pd.array(arr, dtype="str")
    return pd.array(arr.to_pylist(), dtype=object)


@dataclass
class Marketplace:
    """Generated tables. ``listings``: the data contract's columns plus seller_id, city,
    original_title, original_description (text before typos and homoglyphs) and cluster_id
    (the underlying item; equal for all duplicates). ``pairs``: item_id_a, item_id_b, label,
    kind (how the pair was made) and group (a bucket of sellers; no item spans two groups)."""

    listings: pd.DataFrame
    pairs: pd.DataFrame
    seed: int = 0
    params: dict[str, Any] = field(default_factory=dict)
    version: str = GENERATOR_VERSION

    def split(self, fractions: Sequence[float] = (0.6, 0.2, 0.2), seed: int | None = None) -> PairSplits:
        return split_pairs(self, fractions, self.seed if seed is None else seed)

    def stats(self) -> dict[str, Any]:
        lst, prs = self.listings, self.pairs
        return {
            "listings": int(len(lst)),
            "items": int(lst["cluster_id"].nunique()),
            "sellers": int(lst["seller_id"].nunique()),
            "listings_with_duplicates": int(lst["cluster_id"].duplicated(keep=False).sum()),
            "listings_with_text_noise": int(((lst["title"] != lst["original_title"])
                                             | (lst["description"] != lst["original_description"])).sum()),
            "listings_with_photos": int(lst["images"].map(len).gt(0).sum()),
            "photos": int(lst["images"].map(len).sum()),
            "listings_by_category": {str(k): int(v) for k, v in lst["category_l1"].value_counts().items()},
            "pairs": int(len(prs)),
            "positive_pairs": int(prs["label"].sum()) if len(prs) else 0,
            "positive_rate": float(prs["label"].mean()) if len(prs) else 0.0,
            "pairs_by_kind": {str(k): int(v) for k, v in prs["kind"].value_counts().items()},
            "groups": int(prs["group"].nunique()) if len(prs) else 0,
        }

    def write(self, out_dir: str | Path, split: Sequence[float] | None = None,
              split_seed: int | None = None) -> dict[str, Path]:
        """Write listings.parquet, pairs.parquet, metadata.json and README.md into ``out_dir``
        (and train/valid/test_pairs.parquet when ``split`` fractions are given)."""
        from dupsearch.artifacts import open_dir
        from dupsearch.io import write_table
        out = open_dir(out_dir, "dataset", what="dataset folder")  # never over a folder of other files
        listings = self.listings.copy(deep=False)
        # The map<string,string> column write_table would make, built without a Python list of
        # tuples per row (gigabytes at a million listings); images always list<string>.
        listings["attributes"] = pd.array(_attributes_arrow(listings["attributes"]),
                                          dtype=pd.ArrowDtype(_MAP))
        listings["images"] = pd.array(pa.array(listings["images"].tolist(), type=_PATHS),
                                      dtype=pd.ArrowDtype(_PATHS))
        paths = {"listings": write_table(listings, out / "listings.parquet"),
                 "pairs": write_table(self.pairs, out / "pairs.parquet")}
        del listings
        meta = {"generator": "dupsearch.synth", "generator_version": self.version,
                "dupsearch_version": dupsearch.__version__, "seed": self.seed,
                "params": self.params, "counts": self.stats()}
        if split is not None:
            parts = self.split(split, split_seed)
            meta["split"] = {"fractions": list(split), "seed": self.seed if split_seed is None else split_seed}
            for name, df in zip(("train", "valid", "test"), parts):
                paths[f"{name}_pairs"] = write_table(df, out / f"{name}_pairs.parquet")
                meta["split"][name] = {"pairs": int(len(df)), "positives": int(df["label"].sum())}
        paths["metadata"] = _write_text(out / "metadata.json",
                                        json.dumps(meta, ensure_ascii=False, indent=2))
        paths["readme"] = _write_text(out / "README.md", _readme(meta, split is not None))
        return paths


_MAP = pa.map_(pa.string(), pa.string())
_PATHS = pa.list_(pa.string())


def _attributes_arrow(attrs: pd.Series) -> pa.MapArray:
    values = attrs.tolist()
    lengths = np.fromiter((len(a) if isinstance(a, dict) else 0 for a in values), np.int64, len(values))
    offsets = np.zeros(len(values) + 1, np.int32)
    np.cumsum(lengths, out=offsets[1:])
    keys = pa.array([k for a in values if isinstance(a, dict) for k in a], type=pa.string())
    vals = pa.array([v for a in values if isinstance(a, dict) for v in a.values()], type=pa.string())
    return pa.MapArray.from_arrays(pa.array(offsets), keys, vals, type=_MAP)


def _write_text(path: Path, text: str) -> Path:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)
    return path


def _readme(meta: dict, has_split: bool) -> str:
    c = meta["counts"]
    kinds = ", ".join(f"{k} {v}" for k, v in c["pairs_by_kind"].items())
    split = ("- `train_pairs.parquet`, `valid_pairs.parquet`, `test_pairs.parquet`: the pairs split "
             "by connected groups of items (no item in two splits).\n" if has_split else "")
    return f"""# Synthetic Russian marketplace (dupsearch.synth {meta['generator_version']}, seed {meta['seed']})

Generated data, not real ads. {c['listings']} listings of {c['items']} items in seven top-level
categories; {c['pairs']} labelled pairs ({c['positive_pairs']} duplicates).

- `listings.parquet`: item_id, title, description, category_l1..l4, attributes (map), price,
  images (paths), seller_id, city, original_title / original_description (text before typos and
  homoglyph substitution), cluster_id (the underlying item: equal for duplicates).
- `pairs.parquet`: item_id_a, item_id_b, label (1 = duplicate, as an assessor labelled it:
  {meta['params'].get('label_noise', 0):.1%} of labels are wrong on purpose), kind (how the pair was
  made, the truth: `repost` = duplicate), group (sellers' bucket; pairs never cross groups).
  Pairs by kind: {kinds}.
{split}- `metadata.json`: seed, parameters, counts.

Regenerate: `{_command(meta)}`
"""


# Defaults of `dupsearch generate`'s options; the other parameters have no option there.
_CLI_DEFAULTS = (("dup_rate", 0.3), ("homoglyph_rate", 0.6), ("positive_rate", 0.3))


def _command(meta: dict) -> str:
    p = meta["params"]
    cmd = f"dupsearch generate OUT_DIR --n-listings {p['n_listings']} --seed {meta['seed']}"
    for key, default in _CLI_DEFAULTS:
        if p[key] != default:
            cmd += f" --{key.replace('_', '-')} {p[key]}"
    if p["n_pairs"] is not None:
        cmd += f" --n-pairs {p['n_pairs']}"
    if p["photos"]:
        cmd += " --photos"
    import inspect
    defaults = {k: v.default for k, v in inspect.signature(generate_marketplace).parameters.items()}
    other = [f"{k}={p[k]!r}" for k in ("homoglyph_word_rate", "typo_rate", "sibling_rate",
                                        "close_sibling_rate", "same_sibling_rate", "shared_owner_rate",
                                        "rewrite_rate", "label_noise", "image_size")
             if k in p and p[k] != defaults.get(k)]
    if other:   # not options of the command: say how to get them from Python
        cmd += f"` with `generate_marketplace(..., {', '.join(other)})"
    return cmd


# --------------------------------------------------------------------------- structure


def _chunk_labels(rng: np.random.Generator, n: int, sizes: Callable[[int], np.ndarray]) -> np.ndarray:
    """Cut ``n`` consecutive positions into groups with sizes drawn by ``sizes``; group labels."""
    if n == 0:
        return np.empty(0, np.int64)
    s = np.maximum(sizes(n), 1)
    ends = np.cumsum(s)
    return np.searchsorted(ends, np.arange(n), side="right").astype(np.int64)


def _scramble(x: np.ndarray, salt: int) -> np.ndarray:
    """A bijection of [0, 10^8) that hides the order of ids (so seller ids reveal no owner)."""
    m = 100_000_000
    return (x.astype(np.int64) * 48_271 + salt) % m


@dataclass
class _World:
    kind: np.ndarray        # item -> kind index
    owner: np.ndarray       # item -> person
    root: np.ndarray        # item -> family root item
    city: np.ndarray        # item -> city index
    bucket: np.ndarray      # item -> bucket
    is_shop: np.ndarray     # person -> bool
    shop_group: np.ndarray  # person -> shop-group index (-1 for private persons)
    n_accounts: np.ndarray  # person -> accounts
    close: np.ndarray       # item -> a sibling that copies its root but for one detail
    same: np.ndarray        # item -> a sibling that copies its root in every detail shown
    shared: np.ndarray      # item -> a sibling its root's owner lists too, from one template


# Kinds whose sellers list several units of one model: shops' stock, a litter, an agency's or a
# developer's flats in one building, plots of one village.
_UNIT_KINDS = np.array([bool(k.shop_group) or k.l1 in ("Животные", "Недвижимость", "Транспорт") for k in C.KINDS])


def _build_world(rng: np.random.Generator, n_items: int, sibling_rate: float,
                 close_sibling_rate: float = 0.0, same_sibling_rate: float = 0.0,
                 shared_owner_rate: float = 0.0) -> _World:
    kinds = C.KINDS
    kind = rng.choice(len(kinds), size=n_items, p=C.kind_weights())
    groups = sorted({k.shop_group for k in kinds if k.shop_group})
    kind_group = np.array([groups.index(k.shop_group) if k.shop_group else -1 for k in kinds])
    item_group = kind_group[kind]
    shop_item = (item_group >= 0) & (rng.random(n_items) < 0.22)

    owner = np.empty(n_items, np.int64)
    # private persons: 1 item mostly, a few with many
    priv = np.flatnonzero(~shop_item)
    priv = priv[rng.permutation(len(priv))]
    lab = _chunk_labels(rng, len(priv), lambda m: rng.geometric(0.55, size=m))
    owner[priv] = lab
    n_priv = int(lab.max()) + 1 if len(lab) else 0
    shop_group = [np.full(n_priv, -1)]
    next_id = n_priv
    for g in range(len(groups)):
        idx = np.flatnonzero(shop_item & (item_group == g))
        if not len(idx):
            continue
        idx = idx[rng.permutation(len(idx))]
        lab = _chunk_labels(rng, len(idx), lambda m: rng.integers(4, 60, size=m))
        owner[idx] = next_id + lab
        n_shops = int(lab.max()) + 1
        shop_group.append(np.full(n_shops, g))
        next_id += n_shops
    shop_group_arr = np.concatenate(shop_group)
    n_persons = next_id
    is_shop = shop_group_arr >= 0

    pop = np.array([c[2] for c in W.CITIES], float)
    person_city = rng.choice(len(W.CITIES), size=n_persons, p=pop / pop.sum())
    n_buckets = int(np.clip(n_items // 60, 10, 4096))
    person_bucket = rng.integers(n_buckets, size=n_persons)
    n_accounts = 1 + (rng.random(n_persons) < 0.3) + (rng.random(n_persons) < 0.1)
    n_accounts = np.where(is_shop, 1 + (rng.random(n_persons) < 0.2), n_accounts)

    city = person_city[owner]
    bucket = person_bucket[owner]

    # Families: inside each (kind, bucket) group, an item may be a sibling of an earlier one.
    order = np.lexsort((rng.random(n_items), bucket, kind))
    kb = kind[order].astype(np.int64) * n_buckets + bucket[order]
    new = np.r_[True, kb[1:] != kb[:-1]]
    start = np.maximum.accumulate(np.where(new, np.arange(n_items), 0))
    rank = np.arange(n_items) - start
    sib = (rank > 0) & (rng.random(n_items) < sibling_rate)
    parent_pos = start + np.floor(rng.random(n_items) * np.maximum(rank, 1)).astype(np.int64)
    parent = np.arange(n_items)
    parent[order[sib]] = order[parent_pos[sib]]
    root = parent.copy()
    while True:
        nxt = root[root]
        if np.array_equal(nxt, root):
            break
        root = nxt
    is_sib = root != np.arange(n_items)
    # Most siblings are the same model with one detail changed (memory, colour, floor, sex...),
    # a few show no difference at all (another unit: other photos, maybe another price).
    close = is_sib & (rng.random(n_items) < close_sibling_rate)
    same = close & (rng.random(n_items) < same_sibling_rate)
    # Units of one model listed by one seller: the shop's stock, a litter, flats of a building.
    shared = is_sib & _UNIT_KINDS[kind] & (rng.random(n_items) < shared_owner_rate)
    owner = np.where(shared, owner[root], owner)
    city = np.where(shared, city[root], city)
    # a building or village has one city
    fam_city = np.array([k.family_city for k in kinds])[kind]
    city = np.where(fam_city, city[root], city)
    return _World(kind, owner, root, city, bucket, is_shop, shop_group_arr, n_accounts,
                  close, same, shared)


class _TiedRng:
    """A numpy Generator whose per-row draws (arrays of ``m`` values) repeat row ``src[i]`` at
    row ``dst[i]``: a unit gets its root's random area, mileage or price noise."""

    def __init__(self, rng: np.random.Generator, m: int, dst: np.ndarray, src: np.ndarray):
        self._rng, self._m, self._dst, self._src = rng, m, dst, src

    def __getattr__(self, name: str):
        f = getattr(self._rng, name)
        if not callable(f):
            return f

        def call(*args, **kwargs):
            out = f(*args, **kwargs)
            if len(self._dst) and isinstance(out, np.ndarray) and out.ndim and out.shape[0] == self._m:
                out[self._dst] = out[self._src]
            return out
        return call


def _sample_items(rng: np.random.Generator, world: _World) -> tuple[list[dict[str, np.ndarray] | None], np.ndarray, np.ndarray]:
    """Per kind: decoded columns; per item: its row inside its kind and its price."""
    n = len(world.kind)
    local = np.empty(n, np.int64)
    price = np.empty(n, np.float64)
    city_factor = np.array([c[3] for c in W.CITIES])
    decoded: list[dict[str, np.ndarray] | None] = []
    for k, spec in enumerate(C.KINDS):
        idx = np.flatnonzero(world.kind == k)
        m = len(idx)
        if not m:
            decoded.append(None)
            continue
        local[idx] = np.arange(m)
        root_local = np.searchsorted(idx, world.root[idx])
        is_root = root_local == np.arange(m)
        root_rank = np.cumsum(is_root) - 1
        fam = spec.sample_family(rng, int(is_root.sum()))
        cols = {name: arr[root_rank[root_local]] for name, arr in fam.items()}
        spec.sample_item(rng, cols, m)
        sib = np.flatnonzero(~is_root)
        close = sib[world.close[idx[sib]]]
        ident = sib[world.same[idx[sib]]]
        for arr in cols.values():                      # a unit like its root ...
            arr[close] = arr[root_local[close]]
        if len(sib) and spec.distinct:
            root_vals = {d: cols[d][root_local].copy() for d in spec.distinct}
            same = np.ones(len(sib), bool)
            for d in spec.distinct:
                same &= cols[d][sib] == root_vals[d][sib]
            same &= ~world.same[idx[sib]]
            if same.any():                             # ... but for one detail
                spec.force_differ(rng, cols, root_vals, sib[same])
        # derived values (area, mileage, price) follow the root's draws: only the detail moves them
        spec.finish(_TiedRng(rng, m, close, root_local[close]), cols,
                    {"city_factor": city_factor[world.city[idx]]})
        if len(ident):
            for name, arr in cols.items():             # derived columns too (mileage, "new")
                if name != "price":
                    arr[ident] = arr[root_local[ident]]
            p_root = cols["price"][root_local[ident]]
            cols["price"][ident] = np.where(rng.random(len(ident)) < 0.5, p_root,
                                            C.round_price(p_root * rng.lognormal(0, 0.04, len(ident))))
        price[idx] = cols["price"]
        decoded.append(spec.decode(cols))
    return decoded, local, price


# --------------------------------------------------------------------------- text


_TAILS = {"car": W.CAR_TAILS, "sale": W.REALTY_SALE, "rent": W.REALTY_RENT, "animal": W.ANIMAL_TAILS}


def _signature(owner: int, city: int, goods: bool, shift: int = 0) -> list[str]:
    """The lines a private seller ends every ad with (contact, and for goods a place); a third
    write none. Derived from the owner id, so it costs no memory and no random draws; ``shift``
    names another district (a re-post that meets the buyer elsewhere)."""
    h = (owner * 2_654_435_761 + 97) & 0xFFFFFFFF
    if h % 3 == 0:
        return []
    lines = [W.CONTACTS[(h >> 4) % len(W.CONTACTS)]]
    if goods and h & 4:
        lines.append(W.PLACES[(h >> 9) % len(W.PLACES)].format(
            city_prep=W.CITIES[city][1], district=W.DISTRICTS[((h >> 14) + shift) % len(W.DISTRICTS)]))
    return lines


def _description(R: C.Rendered, rnd: random.Random, city: int, shop: tuple | None,
                 owner: int, shift: int = 0) -> list[str]:
    s = list(R.core)
    if R.cond >= 0:
        s.insert(min(len(s), 1 + rnd.randrange(2)), rnd.choice(W.CONDITION_SENTENCES[R.cond]))
    if shop is not None:
        intro, lines = shop
        return [intro, *s[1:], *lines]
    pool = _TAILS.get(R.tails)
    if pool is not None:
        s += rnd.sample(pool, rnd.randint(1, 3))
    else:
        if rnd.random() < 0.5:
            s.append(rnd.choice(W.REASONS))
        s.append(rnd.choice(W.DEALS))
    sig = _signature(owner, city, pool is None, shift)
    if sig:
        return s + sig
    if pool is None:
        if rnd.random() < 0.6:
            s.append(rnd.choice(W.CONTACTS))
        if rnd.random() < 0.6:
            s.append(rnd.choice(W.PLACES).format(city_prep=W.CITIES[city][1],
                                                 district=rnd.choice(W.DISTRICTS)))
    elif rnd.random() < 0.5:
        s.append(rnd.choice(W.CONTACTS))
    return s


def _price_line(template: int, price: float, shop: bool = False) -> str | None:
    """The price in words of the ad (None where there is no price or it is free); shops
    write a plain "Цена ..."."""
    if not price > 0:
        return None
    p = C.fmt_int(price) if template % 2 == 0 else str(int(price))
    return W.PRICE_LINES[template % (2 if shop else len(W.PRICE_LINES))].format(p=p)


def _with_price(sentences: list[str], line: str | None) -> list[str]:
    """The price line goes before the closing contact line, or last."""
    if line is None:
        return sentences
    return [*sentences[:-1], line, sentences[-1]] if len(sentences) > 2 else [*sentences, line]


def _short_description(R: C.Rendered, rnd: random.Random, shop: tuple | None) -> list[str]:
    """A re-post whose seller did not bother: the opener, maybe one fact, a word on the deal."""
    s = [R.core[0]]
    if len(R.core) > 1 and rnd.random() < 0.5:
        s.append(rnd.choice(R.core[1:]))
    if shop is not None:
        s.append(rnd.choice(shop[1]))
    else:
        if rnd.random() < 0.5:
            s.append(rnd.choice(W.DEALS))
        if rnd.random() < 0.4:
            s.append(rnd.choice(W.CONTACTS))
    return s


def _short_title(title: str, rnd: random.Random) -> str:
    """The first two or three words of a title ("Toyota Camry 2.5 AT, 2015" -> "Toyota Camry")."""
    words = title.replace(",", " ").split()
    return " ".join(words[:rnd.randint(2, 3)]) if len(words) > 2 else title


def _fill_attributes(attrs: dict[str, str], rnd: random.Random) -> dict[str, str]:
    """What a seller fills in of the form: all of it, all but a field or two, or only the
    required fields (brand and model, breed, address)."""
    u = rnd.random()
    if u < _ATTRS_REQUIRED:
        req = {k: v for k, v in attrs.items() if k in C.FAMILY_KEYS}
        return req or dict([next(iter(attrs.items()))])
    if u < _ATTRS_REQUIRED + _ATTRS_PARTIAL and len(attrs) > 3:
        free = [k for k in attrs if k not in C.FAMILY_KEYS]
        drop = set(rnd.sample(free, min(len(free), rnd.randint(1, 2))))
        return {k: v for k, v in attrs.items() if k not in drop}
    return attrs


def _drift(key: str, r: dict[str, Any], rnd: random.Random) -> dict[str, Any] | None:
    """The item when it is re-posted weeks later: the car drove on, the battery wore, the puppy
    grew a month, the agent names another district. None: nothing of this kind changes."""
    if key == "car":
        if r["new"]:
            return None
        return {**r, "km": int(r["km"]) + rnd.randint(300, 4000)}
    if key == "moto":
        return {**r, "km": int(r["km"]) + 1}
    if key == "phone":
        return {**r, "battery": max(60, int(r["battery"]) - rnd.randint(1, 3))}
    if key in ("dog", "cat", "bird"):
        return {**r, "age": min(int(r["age"]) + 1, 30)}
    if key in ("apartment", "room"):
        return {**r, "district": (int(r["district"]) + rnd.randint(1, 3)) % len(W.DISTRICTS)}
    if key == "tyres":
        return {**r, "tread": max(2, int(r["tread"]) - 1)}
    return None


def _alt_paths(paths: dict[tuple, int]) -> list[list[int]]:
    """Per category path, the paths a re-post may be filed under instead: the deepest level
    left out, or another level 3 with the same level 4 ("Новые" / "С пробегом" of one brand).
    New paths are added to ``paths``."""
    table = list(paths)
    by_l2_l4: dict[tuple, list[int]] = {}
    for i, p in enumerate(table):
        if p[3]:
            by_l2_l4.setdefault((p[0], p[1], p[3]), []).append(i)
    out = []
    for i, p in enumerate(table):
        cands = [j for j in by_l2_l4.get((p[0], p[1], p[3]), []) if j != i] if p[3] else []
        if p[3]:
            cands.append(paths.setdefault((p[0], p[1], p[2], ""), len(paths)))
        elif p[2]:
            cands.append(paths.setdefault((p[0], p[1], "", ""), len(paths)))
        out.append(cands)
    return out


def _shop_template(rnd: random.Random, group: int, city: int) -> tuple[tuple, str]:
    names = W.SHOP_NAMES[sorted(W.SHOP_NAMES)[group]] if group < len(W.SHOP_NAMES) else ["Магазин"]
    shop = rnd.choice(names)
    intro = rnd.choice(W.SHOP_INTROS).format(shop=shop, city_prep=W.CITIES[city][1],
                                             since=rnd.randint(2008, 2021))
    lines = [x.format(warranty=rnd.choice([3, 6, 12])) for x in rnd.sample(W.SHOP_LINES, rnd.randint(3, 5))]
    return (intro, lines), rnd.choice(W.SHOP_TITLE_SUFFIXES)


def _join(sentences: list[str], rnd: random.Random) -> str:
    return ("\n" if rnd.random() < 0.2 else " ").join(sentences)


# --------------------------------------------------------------------------- main entry


def generate_marketplace(n_listings: int, seed: int = 0, dup_rate: float = 0.3,
                         homoglyph_rate: float = 0.7, photos_dir: str | Path | None = None,
                         n_pairs: int | None = None, positive_rate: float = 0.3, *,
                         homoglyph_word_rate: float = 0.4, typo_rate: float = 0.3,
                         sibling_rate: float = 0.6, close_sibling_rate: float = 0.85,
                         same_sibling_rate: float = 0.3, shared_owner_rate: float = 0.5,
                         rewrite_rate: float = 0.55, label_noise: float = 0.015, image_size: int = 96,
                         progress: Progress | None = None) -> Marketplace:
    """Generate a synthetic Russian classified-ads marketplace.

    - ``dup_rate``: share of listings that re-post an item listed elsewhere in the table.
    - ``homoglyph_rate``: share of all listings with look-alike letters swapped (in about
      ``homoglyph_word_rate`` of their words, 0.75-1.25 times that per listing);
      ``typo_rate``: share of re-posts with typos (originals get them at a tenth of it).
    - ``rewrite_rate``: share of re-posts written anew (other title and sentences, a third of
      them cut to a line or two) rather than edited.
    - ``photos_dir``: write 1-5 PNG photos per listing there (``images`` column); None: no photos.
    - ``n_pairs`` (default: all duplicate pairs plus negatives for ``positive_rate``) and
      ``positive_rate``: the share of label-1 pairs, kept exactly; ``label_noise``: share of
      pairs labelled wrongly, as assessors now and then do (``kind`` tells the truth).
    - ``sibling_rate``: share of items that are another item of an existing model (hard
      negatives); ``close_sibling_rate`` of those copy every detail of the first one but one
      (memory, colour, year, floor, sex...), and ``same_sibling_rate`` of these differ in
      nothing the text shows (another unit: other photos, perhaps another price);
      ``shared_owner_rate``: share of siblings of shop goods, animals and real estate that the
      same seller lists from the same template (a shop's stock, a litter, flats of a building).
    - ``progress(stage, done, total)``: called now and then for a progress bar.

    The same arguments give identical tables; photos do not change the tables' other columns.
    """
    if n_listings < 1:
        raise ValueError("n_listings must be at least 1")
    for name, v, hi in (("dup_rate", dup_rate, 0.9), ("homoglyph_rate", homoglyph_rate, 1.0),
                        ("positive_rate", positive_rate, 1.0), ("homoglyph_word_rate", homoglyph_word_rate, 0.8),
                        ("typo_rate", typo_rate, 1.0), ("sibling_rate", sibling_rate, 0.95),
                        ("close_sibling_rate", close_sibling_rate, 1.0),
                        ("same_sibling_rate", same_sibling_rate, 1.0),
                        ("shared_owner_rate", shared_owner_rate, 1.0), ("rewrite_rate", rewrite_rate, 1.0),
                        ("label_noise", label_noise, 0.5)):
        if not 0.0 <= v <= hi:
            raise ValueError(f"{name} must be between 0 and {hi}, got {v}")
    if n_pairs is not None and n_pairs < 0:
        raise ValueError("n_pairs must be non-negative")
    report = progress or (lambda stage, done, total: None)
    params = {"n_listings": int(n_listings), "dup_rate": dup_rate, "homoglyph_rate": homoglyph_rate,
              "homoglyph_word_rate": homoglyph_word_rate, "typo_rate": typo_rate,
              "sibling_rate": sibling_rate, "close_sibling_rate": close_sibling_rate,
              "same_sibling_rate": same_sibling_rate, "shared_owner_rate": shared_owner_rate,
              "rewrite_rate": rewrite_rate, "label_noise": label_noise, "n_pairs": n_pairs, "positive_rate": positive_rate,
              "photos": photos_dir is not None, "image_size": image_size}
    ss = np.random.SeedSequence(seed)
    s_world, s_items, s_list, s_text, s_pairs = ss.spawn(5)
    photo_seed = int(ss.generate_state(1)[0])

    # ---- items and owners
    n_dup = int(round(n_listings * dup_rate))
    n_items = n_listings - n_dup
    rng = np.random.default_rng(s_world)
    world = _build_world(rng, n_items, sibling_rate, close_sibling_rate, same_sibling_rate,
                         shared_owner_rate)
    decoded, local, item_price = _sample_items(np.random.default_rng(s_items), world)

    # ---- listings: which items are re-posted and how often
    rng = np.random.default_rng(s_list)
    copies = np.zeros(n_items, np.int64)
    if n_dup:
        k = min(n_items, max(1, int(round(n_dup / 1.35))))
        chosen = rng.choice(n_items, size=k, replace=False)
        copies[chosen] = 1
        np.add.at(copies, chosen[rng.integers(k, size=n_dup - k)], 1)
    sizes = copies + 1
    item_of = np.repeat(np.arange(n_items), sizes)                 # listing -> item (item order)
    first = np.r_[0, np.cumsum(sizes)[:-1]]
    repost_no = np.arange(n_listings) - np.repeat(first, sizes)    # 0 = the original listing
    is_repost = repost_no > 0
    row_of = rng.permutation(n_listings)                           # listing -> output row

    # accounts: re-posts often come from another account of the same owner
    person = world.owner[item_of]
    n_acc = world.n_accounts[person]
    orig_acc = np.where(rng.random(n_items) < 0.85, 0,
                        np.floor(rng.random(n_items) * world.n_accounts[world.owner]).astype(np.int64))
    acc = orig_acc[item_of]
    other = is_repost & (n_acc > 1) & (rng.random(n_listings) < 0.5)
    acc = np.where(other, (acc + 1 + np.floor(rng.random(n_listings) * np.maximum(n_acc - 1, 1)).astype(np.int64)) % n_acc, acc)
    seller_code = person * 4 + acc
    seller_num = _scramble(seller_code, int(rng.integers(1 << 20)))

    # price: re-posts are often cheaper (the ad did not sell), now and then moved a little
    # either way; a few listings have none
    price = item_price[item_of].copy()
    u = rng.random(n_listings)
    cut = is_repost & (u < _PRICE_CUT)
    moved = is_repost & (u >= _PRICE_CUT) & (u < _PRICE_CUT + _PRICE_MOVE)
    price[cut] = C.round_price(price[cut] * (1 - rng.uniform(0.05, 0.2, size=int(cut.sum()))))
    price[moved] = C.round_price(price[moved] * (1 + rng.uniform(-0.06, 0.06, size=int(moved.sum()))))
    price[rng.random(n_listings) < np.where(is_repost, 0.02, 0.01)] = np.nan

    homo = rng.random(n_listings) < homoglyph_rate
    homo_rate = np.minimum(homoglyph_word_rate * rng.uniform(0.75, 1.25, size=n_listings), 1.0)
    typos = np.where(rng.random(n_listings) < np.where(is_repost, typo_rate, typo_rate * 0.1),
                     1 + (rng.random(n_listings) < 0.3), 0)
    # Text seeds: units a seller lists from one template share their family's seed (same
    # sentences, other details); an item with re-posts gets its own, so an edited re-post can
    # be written again with updated numbers.
    item_seed = rng.integers(1, 1 << 62, size=n_items)
    price_tmpl = np.where(rng.random(n_items) < _PRICE_IN_TEXT,
                          rng.integers(0, 2 * len(W.PRICE_LINES), size=n_items), -1)
    tmpl = world.shared.copy()
    tmpl[world.root[world.shared]] = True
    text_seed = np.where(tmpl, item_seed[world.root], np.where(copies > 0, item_seed, 0))

    # ---- text: the only per-listing loop. Texts are collected in item order in chunks that
    # become compact Arrow arrays at once (Python strings of 1M ads would take gigabytes);
    # the rows are put in their shuffled order at the end.
    rnd = random.Random(int(s_text.generate_state(1)[0]))
    text_cols = ("title", "description", "original_title", "original_description")
    chunks: dict[str, list] = {c: [] for c in text_cols}
    buf: tuple[list, list, list, list] = ([], [], [], [])
    attrs: list = [None] * n_listings
    paths: dict[tuple, int] = {}
    item_path = np.empty(n_items, np.int64)
    recategorized: list[int] = []
    shop_cache: dict[int, tuple] = {}
    keep_keys = C.FAMILY_KEYS
    kinds = C.KINDS
    n_districts = len(W.DISTRICTS)
    b_title, b_desc, b_otitle, b_odesc = buf

    def flush() -> None:
        for name, lst in zip(text_cols, buf):
            chunks[name].append(pa.array(lst, type=pa.large_string()))
            lst.clear()

    def compose(spec: C.Kind, r: dict, ctx: dict, irnd: random.Random, city: int, shop, suffix,
                owner: int) -> tuple[C.Rendered, str, list[str]]:
        R = spec.render(r, ctx, irnd)
        title = R.titles[irnd.randrange(len(R.titles))] if irnd.random() < 0.5 else R.titles[0]
        if shop is not None:
            title = f"{R.titles[0]}, {suffix}"
        return R, title, _description(R, irnd, city, shop, owner)

    is_shop_l, shop_group_l = world.is_shop.tolist(), world.shop_group.tolist()
    report("listings", 0, n_listings)
    i = 0
    for c0 in range(0, n_items, _CHUNK):
        # Python lists of this chunk's per-item and per-listing values: fast indexing without
        # holding a million Python ints at once
        c1 = min(n_items, c0 + _CHUNK)
        i0 = i
        i1 = i0 + int(sizes[c0:c1].sum())
        kind_l, local_l = world.kind[c0:c1].tolist(), local[c0:c1].tolist()
        owner_l, city_l, sizes_l = world.owner[c0:c1].tolist(), world.city[c0:c1].tolist(), sizes[c0:c1].tolist()
        seed_l, ptmpl_l = text_seed[c0:c1].tolist(), price_tmpl[c0:c1].tolist()
        price_l = price[i0:i1].tolist()
        homo_l, rate_l = homo[i0:i1].tolist(), homo_rate[i0:i1].tolist()
        typos_l, row_l = typos[i0:i1].tolist(), row_of[i0:i1].tolist()
        report("listings", i0, n_listings)
        for cc in range(c1 - c0):
            k = kind_l[cc]
            spec = kinds[k]
            cols = decoded[k]
            j = local_l[cc]
            r = {name: arr[j] for name, arr in cols.items()}
            city_c = city_l[cc]
            ctx = {"city_prep": W.CITIES[city_c][1]}
            owner = owner_l[cc]
            shop = suffix = None
            if is_shop_l[owner]:
                if owner not in shop_cache:
                    shop_cache[owner] = _shop_template(rnd, shop_group_l[owner], city_c)
                shop, suffix = shop_cache[owner]
            tseed = seed_l[cc]
            R, title0, sentences = compose(spec, r, ctx, random.Random(tseed) if tseed else rnd,
                                           city_c, shop, suffix, owner)
            base_attrs = _fill_attributes(R.attrs, rnd)
            item_path[c0 + cc] = paths.setdefault(R.path, len(paths))
            for rep in range(sizes_l[cc]):
                li = i - i0
                ptmpl = ptmpl_l[cc]
                if rep == 0:
                    title = title0.upper() if rnd.random() < 0.03 else title0
                    desc = _join(_with_price(sentences, None if ptmpl < 0 else _price_line(ptmpl, price_l[li], shop is not None)), rnd)
                    a = base_attrs
                else:
                    r2 = _drift(spec.key, r, rnd) if rnd.random() < _DRIFT else None
                    if rnd.random() < rewrite_rate:
                        # written anew: the same facts, other wording and sentences, or a line or two
                        R2 = spec.render(r2 or r, ctx, rnd)
                        t2 = R2.titles[rnd.randrange(len(R2.titles))]
                        if shop is not None and rnd.random() < 0.5:
                            t2 = f"{t2}, {suffix}"
                        pline = (_price_line(rnd.randrange(2 * len(W.PRICE_LINES)), price_l[li], shop is not None)
                                 if rnd.random() < _PRICE_IN_TEXT else None)
                        if rnd.random() < _SHORT:
                            title = _short_title(t2, rnd) if rnd.random() < 0.5 else t2
                            desc = _short_description(R2, rnd, shop)
                        else:
                            title = N.edit_title(t2, R2.titles, rnd)
                            shift = rnd.randrange(1, n_districts) if rnd.random() < 0.5 else 0
                            desc = _description(R2, rnd, city_c, shop, owner, shift)
                        desc = _join(_with_price(desc, pline), rnd)
                        a = N.edit_attributes(_fill_attributes(R2.attrs, rnd), rnd, drop_p=0.5,
                                              change_p=0.35, keep=keep_keys)
                        if rnd.random() < _RECATEGORIZE:
                            recategorized.append(i)
                    else:
                        t1, s1, a1 = title0, sentences, base_attrs
                        if r2 is not None:      # the same ad with today's numbers
                            R1, t1, s1 = compose(spec, r2, ctx, random.Random(tseed), city_c, shop,
                                                 suffix, owner)
                            a1 = {key: R1.attrs.get(key, v) for key, v in base_attrs.items()}
                        title = N.edit_title(t1, R.titles, rnd)
                        pline = None if ptmpl < 0 else _price_line(ptmpl, price_l[li], shop is not None)
                        desc = _join(_with_price(N.edit_sentences(s1, rnd), pline), rnd)
                        a = N.edit_attributes(a1, rnd, drop_p=0.45, change_p=0.3, keep=keep_keys)
                ot, od = title, desc
                for _ in range(typos_l[li]):
                    if rnd.random() < 0.2:
                        title = N.add_typo(title, rnd)
                    else:
                        desc = N.add_typo(desc, rnd)
                if homo_l[li]:
                    title = N.substitute_homoglyphs(title, rnd, rate_l[li])
                    desc = N.substitute_homoglyphs(desc, rnd, rate_l[li])
                b_title.append(title), b_desc.append(desc), b_otitle.append(ot), b_odesc.append(od)
                attrs[row_l[li]] = a
                i += 1
        flush()
    flush()
    report("listings", n_listings, n_listings)

    # ---- category paths per listing: a share of rewritten re-posts is filed differently
    listing_path = item_path[item_of]
    if recategorized:
        alts = _alt_paths(paths)
        rec = np.asarray(recategorized, np.int64)
        pick = rng.random(len(rec))
        for li, u in zip(rec.tolist(), pick.tolist()):
            cands = alts[listing_path[li]]
            if cands:
                listing_path[li] = cands[int(u * len(cands))]

    # ---- the table: rows in shuffled order
    order = np.argsort(row_of)                                     # output row -> listing
    take = pa.array(order)
    texts = {}
    for name in text_cols:
        whole = pa.concat_arrays(chunks.pop(name))
        texts[name] = _str_array(whole.take(take))
        del whole
        pa.default_memory_pool().release_unused()   # else the pool keeps the freed chunks
    out_item = item_of[order]
    width = max(9, len(str(n_listings)) + 1)
    item_ids = _str_array(pa.array(np.char.mod("%d", np.arange(n_listings, dtype=np.int64) + 10 ** (width - 1)),
                                   type=pa.large_string()))
    path_table = list(paths)
    path_of_row = listing_path[order]
    categories = {}
    for level in range(4):
        dictionary = pa.array([p[level] for p in path_table], type=pa.large_string())
        categories[f"category_l{level + 1}"] = _str_array(dictionary.take(pa.array(path_of_row)))
    city_names = pa.array([c[0] for c in W.CITIES], type=pa.large_string())
    city = _str_array(city_names.take(pa.array(world.city[out_item])))
    seller = _str_array(pa.array(np.char.add("u", np.char.zfill(seller_num[order].astype(str), 8)),
                                 type=pa.large_string()))
    images: list = [[] for _ in range(n_listings)]
    if photos_dir is not None:
        _write_photos(Path(photos_dir), photo_seed, world, sizes.tolist(), row_of,
                      [str(x) for x in item_ids], image_size, images, report)
    listings = pd.DataFrame({
        "item_id": item_ids, "title": texts["title"], "description": texts["description"],
        **categories,
        "attributes": pd.Series(attrs, dtype=object), "price": price[order],
        "images": pd.Series(images, dtype=object),
        "seller_id": seller, "city": city,
        "original_title": texts["original_title"],
        "original_description": texts["original_description"],
        "cluster_id": out_item,
    })
    del texts, attrs, images

    # ---- pairs
    report("pairs", 0, 1)
    out_person = world.owner[out_item]
    family = world.root[out_item]
    fam_size = np.bincount(world.root, minlength=n_items)
    shop_row = world.is_shop[out_person]
    l2_of_path = pd.factorize(pd.Series([p[1] for p in path_table], dtype=object))[0]
    a, b, label, kind_codes = make_pairs(
        np.random.default_rng(s_pairs), cluster=out_item, bucket=world.bucket[out_item],
        # same model *and* same category path (a new and a used car of one model differ in l3)
        family=np.where(fam_size[family] > 1, family * len(path_table) + path_of_row, -1),
        seller=np.where(shop_row, -1, seller_code[order]), shop=np.where(shop_row, out_person, -1),
        category=l2_of_path[path_of_row].astype(np.int64), n_pairs=n_pairs, positive_rate=positive_rate,
        label_noise=label_noise)
    ids = pa.array(np.char.mod("%d", np.arange(n_listings, dtype=np.int64) + 10 ** (width - 1)),
                   type=pa.large_string())
    group_names = pa.array([f"g{x:04d}" for x in range(int(world.bucket.max()) + 1)], type=pa.large_string())
    pairs = pd.DataFrame({
        "item_id_a": _str_array(ids.take(pa.array(a))), "item_id_b": _str_array(ids.take(pa.array(b))),
        "label": label.astype(np.int8),
        "kind": _str_array(pa.array(list(PAIR_KINDS), type=pa.large_string()).take(pa.array(kind_codes))),
        "group": _str_array(group_names.take(pa.array(world.bucket[out_item[a]]))),
    })
    report("pairs", 1, 1)
    return Marketplace(listings, pairs, seed=int(seed), params=params)


def _write_photos(photos_dir: Path, photo_seed: int, world: _World, sizes: list[int],
                  row_of: np.ndarray, item_ids: list[str], size: int, images: list,
                  report: Progress) -> None:
    from dupsearch.synth import photos as P
    photos_dir = photos_dir.resolve()
    rng = np.random.default_rng([photo_seed, 0])
    n_items = len(sizes)
    shots = rng.choice(P.SHOT_COUNTS, size=n_items, p=P.SHOT_WEIGHTS).tolist()
    root = world.root.tolist()
    rows = row_of.tolist()
    total = len(rows)
    report("photos", 0, total)
    i = 0
    for c in range(n_items):
        cache: dict = {}
        for rep in range(sizes[c]):
            row = rows[i]
            item_id = item_ids[row]
            paths = []
            for k, img in enumerate(P.listing_photos(photo_seed, root[c], c, shots[c], rep, size, cache)):
                path = photos_dir / item_id[-2:] / f"{item_id}_{k}.png"
                P.save_png(img, path)
                paths.append(str(path))
            images[row] = paths
            i += 1
        if c % 500 == 0:
            report("photos", i, total)
    report("photos", total, total)
