"""Shared fixtures: a small deterministic synthetic marketplace.

Listings come in *families* (same category, brand and product noun). Each family holds two
*products* that differ only in model code, colour and a spec; each product is listed three
times (one original, two near-copies with words dropped or reordered, a few % price change and
attributes partly missing). Duplicates are the listings of one product; non-duplicates are the
sibling product of the same family (hard) or another family of the same category (easier).
A few labels are flipped so that no model reaches a perfect score.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from dupsearch.io import write_table
from dupsearch.models import GBDTConfig, MatcherConfig

CATEGORIES = {
    "electronics": {
        "l2": ["phones", "laptops", "audio"],
        "nouns": ["smartphone", "laptop", "headphones", "tablet", "speaker", "smartwatch"],
        "brands": ["samsung", "apple", "xiaomi", "sony", "huawei", "lenovo", "asus"],
        "specs": ["64gb", "128gb", "256gb", "512gb", "8gb", "16gb"],
        "words": ["wireless", "bluetooth", "battery", "screen", "display", "fast", "charging",
                  "camera", "processor", "memory", "slim", "powerful", "original", "warranty",
                  "new", "sealed", "box", "cable", "case", "dual", "sim", "hd", "sound"],
    },
    "home": {
        "l2": ["kitchen", "cleaning", "lighting"],
        "nouns": ["kettle", "vacuum", "lamp", "blender", "toaster", "iron", "heater"],
        "brands": ["philips", "bosch", "tefal", "dyson", "braun", "redmond", "karcher"],
        "specs": ["1500w", "2000w", "2200w", "1l", "1.7l", "2l"],
        "words": ["steel", "glass", "automatic", "quiet", "compact", "energy", "saving",
                  "modern", "design", "timer", "safety", "easy", "clean", "durable", "warm",
                  "light", "kitchen", "home", "power", "cord", "handle", "filter", "used"],
    },
    "clothing": {
        "l2": ["men", "women", "kids"],
        "nouns": ["jacket", "sneakers", "dress", "jeans", "hoodie", "boots", "coat"],
        "brands": ["nike", "adidas", "zara", "puma", "reebok", "levis", "gucci"],
        "specs": ["size s", "size m", "size l", "size xl", "size 40", "size 42"],
        "words": ["cotton", "leather", "winter", "summer", "warm", "stylish", "casual",
                  "sport", "comfortable", "classic", "slim", "fit", "soft", "waterproof",
                  "new", "tags", "original", "worn", "once", "season", "trendy", "light"],
    },
}
COLORS = ["black", "white", "red", "blue", "green", "grey", "silver", "pink", "gold", "brown"]


@dataclass
class Market:
    listings: pd.DataFrame
    train: pd.DataFrame
    valid: pd.DataFrame
    test: pd.DataFrame

    def copy(self) -> "Market":
        return copy.deepcopy(self)


def _product(rng, cat: str, family: dict, k: int, avoid: dict | None) -> dict:
    voc = CATEGORIES[cat]
    while True:
        model = f"{family['brand'][:2]}{rng.randint(100, 999)}"
        color = COLORS[rng.randint(len(COLORS))]
        spec = voc["specs"][rng.randint(len(voc["specs"]))]
        # The sibling differs from its family mate in at least one of model/colour/spec,
        # sometimes in only one of them (the hard cases).
        if avoid is None:
            break
        if k == 0:
            model = avoid["model"]
            color = avoid["color"]
        elif k == 1:
            model, spec = avoid["model"], avoid["spec"]
        if (model, color, spec) != (avoid["model"], avoid["color"], avoid["spec"]):
            break
    words = list(rng.choice(voc["words"], size=rng.randint(8, 14), replace=True))
    return {"model": model, "color": color, "spec": spec, "words": words,
            "price": float(np.round(np.exp(rng.uniform(3, 7)), 2))}


def _listing(rng, item_id: str, cat: str, family: dict, prod: dict, copy_: bool) -> dict:
    title = [family["brand"], family["noun"], prod["model"], prod["color"], prod["spec"]]
    desc = list(prod["words"])
    attrs = {"brand": family["brand"], "color": prod["color"], "spec": prod["spec"],
             "model": prod["model"]}
    price = prod["price"]
    if copy_:
        # Near-copy: drop and reorder words, drop attributes, move the price a few %.
        keep = [w for i, w in enumerate(title) if i < 2 or rng.rand() > 0.35]
        rng.shuffle(keep)
        title = keep
        desc = [w for w in desc if rng.rand() > 0.3]
        rng.shuffle(desc)
        attrs = {k: v for k, v in attrs.items() if rng.rand() > 0.4}
        price = float(np.round(price * (1 + rng.uniform(-0.06, 0.06)), 2))
    return {
        "item_id": item_id, "title": " ".join(title), "description": " ".join(desc),
        "category_l1": cat, "category_l2": family["l2"], "category_l3": f"{family['l2']} {family['noun']}",
        "category_l4": f"{family['noun']} {family['brand']}", "attributes": attrs, "price": price,
    }


def _split(rng, prefix: str, n_families: int, noise: float = 0.04):
    cats = list(CATEGORIES)
    rows, groups, fam_of = [], [], []  # groups: list of listing-id lists, one per product
    families = []
    for f in range(n_families):
        cat = cats[f % len(cats)]
        voc = CATEGORIES[cat]
        family = {"cat": cat, "brand": voc["brands"][rng.randint(len(voc["brands"]))],
                  "noun": voc["nouns"][rng.randint(len(voc["nouns"]))],
                  "l2": voc["l2"][rng.randint(len(voc["l2"]))]}
        families.append(family)
        first = None
        for k in range(2):
            prod = _product(rng, cat, family, rng.randint(3), first)
            first = first or prod
            ids = []
            for c in range(3):
                item_id = f"{prefix}{len(rows):04d}"
                rows.append(_listing(rng, item_id, cat, family, prod, copy_=c > 0))
                ids.append(item_id)
            groups.append(ids)
            fam_of.append(f)
    pairs = []
    for ids in groups:  # positives: every pair of one product's listings
        for i in range(3):
            for j in range(i + 1, 3):
                pairs.append((ids[i], ids[j], 1))
    n_pos = len(pairs)
    hard = []
    for f in range(n_families):  # hard negatives: the two products of one family
        g1, g2 = groups[2 * f], groups[2 * f + 1]
        hard += [(a, b, 0) for a in g1 for b in g2]
    rng.shuffle(hard)
    pairs += hard[: int(1.5 * n_pos)]
    easy = set()
    while len(easy) < int(1.5 * n_pos):  # easy negatives: other family, same category
        f1 = rng.randint(n_families)
        same_cat = [f for f in range(n_families) if f != f1 and families[f]["cat"] == families[f1]["cat"]]
        f2 = same_cat[rng.randint(len(same_cat))]
        a = groups[2 * f1 + rng.randint(2)][rng.randint(3)]
        b = groups[2 * f2 + rng.randint(2)][rng.randint(3)]
        easy.add((min(a, b), max(a, b), 0))
    pairs += sorted(easy)
    frame = pd.DataFrame(pairs, columns=["item_id_a", "item_id_b", "label"])
    frame = frame.sample(frac=1.0, random_state=rng).reset_index(drop=True)
    # Random side order, so item_id_a is not always the smaller id.
    swap = rng.rand(len(frame)) < 0.5
    a = frame["item_id_a"].copy()
    frame.loc[swap, "item_id_a"] = frame.loc[swap, "item_id_b"]
    frame.loc[swap, "item_id_b"] = a[swap]
    flip = rng.rand(len(frame)) < noise
    frame.loc[flip, "label"] = 1 - frame.loc[flip, "label"]
    frame["label"] = frame["label"].astype("int8")
    return pd.DataFrame(rows), frame


def make_market(seed: int = 0) -> Market:
    rng = np.random.RandomState(seed)
    lt, train = _split(rng, "tr", 25)   # 150 listings, 600 pairs
    lv, valid = _split(rng, "va", 12)   # 72 listings, 288 pairs
    ls, test = _split(rng, "te", 12)    # 72 listings, 288 pairs
    listings = pd.concat([lt, lv, ls], ignore_index=True)
    listings["price"] = listings["price"].astype(float)
    return Market(listings, train, valid, test)


@pytest.fixture(scope="session")
def _market_once() -> Market:
    return make_market(0)


@pytest.fixture
def market(_market_once) -> Market:
    """A fresh copy for each test, so a test may change it freely."""
    return _market_once.copy()


def fast_config(backend: str = "catboost", **kw) -> MatcherConfig:
    """One small booster. LightGBM gets one thread: on a few hundred rows its OpenMP threads
    spin-wait, and when another process holds a core a 2-thread fit runs 10-50x slower."""
    threads = 1 if backend == "lightgbm" else 2
    return MatcherConfig(gbdt=GBDTConfig(backend=backend, max_iterations=100,
                                         early_stopping_rounds=20, threads=threads),
                         n_models=1, **kw)


FAST_CONFIG_JSON = {"gbdt": {"max_iterations": 100, "early_stopping_rounds": 20, "threads": 2},
                    "n_models": 1, "cv_folds": 3}


def write_market(m: Market, directory: Path) -> dict[str, Path]:
    directory.mkdir(parents=True, exist_ok=True)
    paths = {"listings": directory / "listings.parquet", "train": directory / "train.csv",
             "valid": directory / "valid.parquet", "test": directory / "test.parquet"}
    write_table(m.listings, paths["listings"])
    write_table(m.train, paths["train"])
    write_table(m.valid, paths["valid"])
    write_table(m.test, paths["test"])
    return paths


@pytest.fixture
def market_files(market, tmp_path) -> dict[str, Path]:
    """The market written to tmp_path: listings.parquet, train.csv, valid.parquet, test.parquet."""
    return write_market(market, tmp_path / "data")


@pytest.fixture(scope="session")
def shared_market_files(_market_once, tmp_path_factory) -> dict[str, Path]:
    """Like market_files, written once per session (read-only use)."""
    return write_market(_market_once, tmp_path_factory.mktemp("market"))


@pytest.fixture(autouse=True)
def _embedding_cache_in_tmp(tmp_path_factory, monkeypatch):
    """Tests never write embedding caches into the user's home."""
    monkeypatch.setenv("DUPSEARCH_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "dupsearch-cache"))
    # Models are local files; a test must never reach a model hub.
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
