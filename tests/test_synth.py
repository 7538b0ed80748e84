"""dupsearch.synth: the synthetic Russian marketplace (determinism, schema, duplicate mechanics,
hard negatives, homoglyphs, pair rate, leak-free split, photos, CLI)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from dupsearch.io import normalize_listings, normalize_pairs, read_listings, read_pairs
from dupsearch.synth import FAMILY_KEYS, PAIR_KINDS, TOP_LEVEL, generate_marketplace, split_pairs
from dupsearch.synth.noise import add_typo, substitute_homoglyphs
from dupsearch.text.confusables import CYR_TO_LAT, LAT_TO_CYR, is_cyrillic

CATEGORIES = {"Транспорт", "Недвижимость", "Электроника", "Личные вещи", "Для дома и дачи",
              "Хобби и отдых", "Животные"}
_SWAPS = set(CYR_TO_LAT.items()) | set(LAT_TO_CYR.items())


@pytest.fixture(scope="module")
def market():
    return generate_marketplace(4000, seed=7)


@pytest.fixture(scope="module")
def listing_index(market):
    return market.listings.set_index("item_id")


def _homoglyph_only(orig: str, text: str) -> bool:
    """Same length, and every differing character is a look-alike of the original one."""
    return len(orig) == len(text) and all(a == b or (a, b) in _SWAPS for a, b in zip(orig, text))


def _pair_rows(market, listing_index, kind):
    p = market.pairs[market.pairs["kind"] == kind]
    return listing_index.loc[p["item_id_a"]], listing_index.loc[p["item_id_b"]]


# --------------------------------------------------------------------------- determinism, schema


def test_same_seed_same_tables_other_seed_other_tables():
    a = generate_marketplace(1500, seed=3)
    b = generate_marketplace(1500, seed=3)
    c = generate_marketplace(1500, seed=4)
    pd.testing.assert_frame_equal(a.listings.drop(columns="attributes"), b.listings.drop(columns="attributes"))
    assert a.listings["attributes"].tolist() == b.listings["attributes"].tolist()
    pd.testing.assert_frame_equal(a.pairs, b.pairs)
    assert a.listings["title"].tolist() != c.listings["title"].tolist()


def test_schema_passes_the_data_contract(market):
    lst, rep = normalize_listings(market.listings)
    assert rep.rows_kept == len(market.listings) == 4000
    for col in ("seller_id", "city", "original_title", "original_description", "cluster_id"):
        assert col in lst.columns
    assert all(isinstance(a, dict) and a for a in market.listings["attributes"])
    assert all(isinstance(v, str) for a in market.listings["attributes"] for v in a.values())
    assert market.listings["images"].map(len).eq(0).all()         # no photos_dir -> no images
    assert market.listings["price"].notna().mean() > 0.95
    assert (market.listings["price"].dropna() >= 0).all()
    prs, prep = normalize_pairs(market.pairs, listing_ids=lst["item_id"], on_self_pair="raise")
    assert prep.rows_kept == prep.rows_read == len(market.pairs)  # no repeats, no self-pairs
    assert set(prs["kind"]) <= set(PAIR_KINDS)
    assert prs["label"].isin([0, 1]).all()


def test_every_category_with_subcategories_and_prices(market):
    lst = market.listings
    assert set(lst["category_l1"]) == CATEGORIES == set(TOP_LEVEL)
    for l1, group in lst.groupby("category_l1"):
        assert group["category_l2"].nunique() >= 3, l1
        assert (group["category_l3"] != "").any(), l1
    assert (lst["category_l4"] != "").any() and (lst["category_l4"] == "").any()
    med = lst.groupby("category_l2")["price"].median()
    flats_for_sale = lst.loc[(lst["category_l2"] == "Квартиры") & (lst["category_l3"] == "Продам"), "price"].median()
    assert flats_for_sale > 100 * med["Телефоны"] > 100 * 100  # realistic scales differ a lot
    assert med["Автомобили"] > 200_000


def test_real_latin_brand_names_inside_russian_text(market):
    text = " ".join(market.listings["original_title"]) + " " + " ".join(market.listings["original_description"])
    for name in ("iPhone 13 Pro", "Samsung Galaxy S21", "BMW X5", "Apple", "Nike", "LEGO"):
        assert name in text, name
    # a listing mixes a Russian sentence with a Latin model name
    assert any(is_cyrillic(t[0]) and "iPhone" in t for t in market.listings["original_description"])


# --------------------------------------------------------------------------- duplicates


def test_reposts_share_cluster_and_differ_like_people_make_them(market):
    lst = market.listings
    sizes = lst["cluster_id"].value_counts()
    multi = lst[lst["cluster_id"].isin(sizes[sizes > 1].index)]
    assert 0.3 < len(multi) / len(lst) < 0.7
    groups = multi.groupby("cluster_id")
    assert (groups["category_l2"].nunique() == 1).all()
    assert (groups["city"].nunique() == 1).all()
    text_differs = (groups["original_title"].nunique() > 1) | (groups["original_description"].nunique() > 1)
    assert text_differs.mean() > 0.7                 # edited or reordered, before any noise
    assert (groups["price"].nunique() > 1).mean() > 0.3
    assert (groups["seller_id"].nunique() > 1).mean() > 0.05   # another account of the owner
    assert (groups["attributes"].agg(lambda s: len({json.dumps(a, sort_keys=True) for a in s})) > 1).mean() > 0.2
    # ``kind`` tells how a pair was made; ``label`` is that, but for a little assessor noise
    pos = market.pairs[market.pairs["kind"] == "repost"]
    cl = lst.set_index("item_id")["cluster_id"]
    assert (cl.loc[pos["item_id_a"]].to_numpy() == cl.loc[pos["item_id_b"]].to_numpy()).all()
    neg = market.pairs[market.pairs["kind"] != "repost"]
    assert (cl.loc[neg["item_id_a"]].to_numpy() != cl.loc[neg["item_id_b"]].to_numpy()).all()
    assert (pos["label"] == 1).mean() > 0.95 and (neg["label"] == 0).mean() > 0.98


def test_homoglyphs_hit_many_listings_and_originals_differ_exactly_there():
    m = generate_marketplace(2000, seed=11, typo_rate=0.0, homoglyph_rate=0.6)
    lst = m.listings
    changed = (lst["title"] != lst["original_title"]) | (lst["description"] != lst["original_description"])
    assert 0.5 < changed.mean() < 0.7
    single = lst["cluster_id"].map(lst["cluster_id"].value_counts()) == 1
    assert changed[single].mean() > 0.5              # not only duplicates: marketplace-wide spam
    n_swapped = n_latin = 0
    for col in ("title", "description"):
        for text, orig in zip(lst[col], lst[f"original_{col}"]):
            tw, ow = text.split(), orig.split()
            assert len(tw) == len(ow)
            for t, o in zip(tw, ow):
                if t != o:
                    assert _homoglyph_only(o, t), (o, t)
                    n_swapped += 1
                    if not any(is_cyrillic(ch) for ch in o):
                        n_latin += 1                 # a Latin brand name got Cyrillic letters
    assert n_swapped > 1000 and 0 < n_latin < n_swapped * 0.1
    unchanged = lst[~changed]
    assert (unchanged["title"] == unchanged["original_title"]).all()


def test_typos_and_homoglyph_functions_keep_word_boundaries():
    import random
    rnd = random.Random(0)
    text = "Продаю iPhone 13 Pro\nв отличном состоянии, торг уместен."
    for _ in range(50):
        noisy = substitute_homoglyphs(text, rnd, 0.5)
        assert len(noisy.split()) == len(text.split())
        assert noisy.count("\n") == 1
        typo = add_typo(text, rnd)
        assert len(typo.split()) == len(text.split()) and typo != text
    assert substitute_homoglyphs(text, rnd, 0.0) == text


def test_hard_negatives_share_category_and_model_but_differ(market, listing_index):
    a, b = _pair_rows(market, listing_index, "hard_negative_same_model")
    assert len(a) > 300
    for col in ("category_l1", "category_l2", "category_l3", "category_l4"):
        assert (a[col].to_numpy() == b[col].to_numpy()).all(), col
    assert (a["cluster_id"].to_numpy() != b["cluster_id"].to_numpy()).all()
    visible = 0
    for x, y in zip(a["attributes"], b["attributes"]):
        shared = x.keys() & y.keys()
        assert all(x[k] == y[k] for k in shared & set(FAMILY_KEYS))
        visible += any(x[k] != y[k] for k in shared - set(FAMILY_KEYS))
    # many show the differing detail in the attributes; the rest left the field out, or are
    # units that differ in nothing the ad says (other photos, perhaps another price)
    assert 0.15 < visible / len(a) < 0.8
    differ = ((a["original_title"].to_numpy() != b["original_title"].to_numpy())
              | (a["original_description"].to_numpy() != b["original_description"].to_numpy())
              | (a["price"].to_numpy() != b["price"].to_numpy()))
    assert differ.mean() > 0.8
    assert len(set(a["category_l2"])) >= 10


def test_same_seller_and_template_negatives(market, listing_index):
    a, b = _pair_rows(market, listing_index, "same_seller")
    assert len(a) > 100 and (a["seller_id"].to_numpy() == b["seller_id"].to_numpy()).all()

    def overlap(x, y):
        wx, wy = set(x.lower().split()), set(y.lower().split())
        return len(wx & wy) / len(wx | wy)

    a, b = _pair_rows(market, listing_index, "template")
    tmpl = np.mean([overlap(x, y) for x, y in zip(a["original_description"], b["original_description"])])
    a, b = _pair_rows(market, listing_index, "random_same_category")
    rand = np.mean([overlap(x, y) for x, y in zip(a["original_description"], b["original_description"])])
    assert tmpl > 0.35 and tmpl > 2 * rand


# --------------------------------------------------------------------------- pairs


@pytest.mark.parametrize("rate", [0.1, 0.3, 0.5])
def test_positive_rate_is_what_was_asked(rate):
    m = generate_marketplace(2000, seed=5, positive_rate=rate, n_pairs=1500)
    assert len(m.pairs) == 1500
    assert abs(m.pairs["label"].mean() - rate) < 0.005
    kinds = Counter(m.pairs["kind"])
    assert kinds["hard_negative_same_model"] > 0 and kinds["random_same_category"] > 0


def test_default_pairs_take_every_duplicate_pair(market):
    lst = market.listings
    sizes = lst["cluster_id"].value_counts()
    all_pos = int((sizes * (sizes - 1) // 2).sum())
    assert int(market.pairs["label"].sum()) == all_pos
    assert abs(market.pairs["label"].mean() - 0.3) < 0.005


def test_split_pairs_keeps_items_on_one_side(market):
    parts = split_pairs(market, (0.6, 0.2, 0.2), seed=1)
    assert sum(len(p) for p in parts) == len(market.pairs)
    cl = market.listings.set_index("item_id")["cluster_id"]
    seen: dict = {}
    for name, p in zip(("train", "valid", "test"), parts):
        items = set(p["item_id_a"]) | set(p["item_id_b"])
        clusters = set(cl.loc[list(items)])
        for other, (o_items, o_clusters) in seen.items():
            assert not items & o_items, (name, other)
            assert not clusters & o_clusters, (name, other)
        seen[name] = (items, clusters)
        assert p["label"].sum() > 0
    shares = np.array([len(p) for p in parts]) / len(market.pairs)
    assert np.allclose(shares, [0.6, 0.2, 0.2], atol=0.05)
    again = split_pairs(market, (0.6, 0.2, 0.2), seed=1)
    pd.testing.assert_frame_equal(parts.test, again.test)


# --------------------------------------------------------------------------- photos, files, CLI


def test_photos_written_readable_and_shared_by_duplicates(tmp_path):
    m = generate_marketplace(80, seed=2, photos_dir=tmp_path / "photos")
    lst = m.listings
    counts = lst["images"].map(len)
    assert counts.min() >= 1 and counts.max() <= 6
    for paths in lst["images"]:
        for p in paths:
            with Image.open(p) as im:
                assert im.format == "PNG" and 40 <= im.size[0] <= 140
    # photos do not change the rest of the tables
    plain = generate_marketplace(80, seed=2)
    pd.testing.assert_frame_equal(plain.listings.drop(columns=["images", "attributes"]),
                                  lst.drop(columns=["images", "attributes"]))

    def hist(path):
        with Image.open(path) as im:
            h = np.asarray(im.convert("RGB").resize((32, 32))).reshape(-1, 3) // 64
        return np.bincount(h[:, 0] * 16 + h[:, 1] * 4 + h[:, 2], minlength=64) / 1024

    first = {c: hist(g.iloc[0][0]) for c, g in lst.groupby("cluster_id")["images"]}
    same, other = [], []
    for c, g in lst.groupby("cluster_id")["images"]:
        for paths in g.iloc[1:]:
            same.append(np.abs(hist(paths[0]) - first[c]).sum())
    keys = list(first)
    for i in range(len(keys) - 1):
        other.append(np.abs(first[keys[i]] - first[keys[i + 1]]).sum())
    assert np.mean(same) < np.mean(other)


def test_write_and_read_back(tmp_path, market):
    paths = market.write(tmp_path / "m", split=(0.6, 0.2, 0.2))
    lst, _ = read_listings(paths["listings"])
    assert len(lst) == len(market.listings)
    assert lst["attributes"].tolist() == market.listings["attributes"].tolist()
    for name in ("pairs", "train_pairs", "valid_pairs", "test_pairs"):
        prs, rep = read_pairs(paths[name], listing_ids=lst["item_id"])
        assert rep.n_skipped == 0 and "kind" in prs
    meta = json.loads(paths["metadata"].read_text())
    assert meta["seed"] == 7 and meta["counts"]["listings"] == 4000
    assert meta["generator_version"] and meta["counts"]["positive_pairs"] == int(market.pairs["label"].sum())


def test_bad_arguments_raise():
    with pytest.raises(ValueError):
        generate_marketplace(0)
    with pytest.raises(ValueError):
        generate_marketplace(100, dup_rate=0.95)
    with pytest.raises(ValueError):
        generate_marketplace(100, positive_rate=1.5)


def test_cli_generate(tmp_path):
    env = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1", "PYTHONWARNINGS": "ignore"}
    out = tmp_path / "gen"
    proc = subprocess.run([sys.executable, "-m", "dupsearch.cli.main", "generate", str(out),
                           "--n-listings", "300", "--seed", "1", "--positive-rate", "0.4", "--photos"],
                          capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    for name in ("listings.parquet", "pairs.parquet", "train_pairs.parquet", "valid_pairs.parquet",
                 "test_pairs.parquet", "metadata.json", "README.md"):
        assert (out / name).is_file(), name
    lst, _ = read_listings(out / "listings.parquet")
    prs, _ = read_pairs(out / "pairs.parquet", listing_ids=lst["item_id"])
    assert len(lst) == 300 and abs(prs["label"].mean() - 0.4) < 0.01
    assert all(os.path.isfile(p) for p in lst["images"].iloc[0])
    assert json.loads((out / "metadata.json").read_text())["seed"] == 1
    bad = subprocess.run([sys.executable, "-m", "dupsearch.cli.main", "generate", str(out),
                          "--n-listings", "0"], capture_output=True, text=True, env=env, timeout=60)
    assert bad.returncode != 0


# --------------------------------------------------------------------------- how hard the data are


def _words(text: str) -> set:
    return set(text.lower().replace(",", " ").replace(".", " ").split())


def _jaccard(x: str, y: str) -> float:
    wx, wy = _words(x), _words(y)
    return len(wx & wy) / max(len(wx | wy), 1)


def test_most_negatives_are_hard(market):
    kinds = market.pairs.loc[market.pairs["kind"] != "repost", "kind"].value_counts(normalize=True)
    assert kinds["hard_negative_same_model"] > 0.45
    assert kinds.get("random_same_category", 0) < 0.2


def test_units_of_one_model_written_from_one_template(market, listing_index):
    """A shop's units, a litter, flats of one building: near-identical ads that differ in a
    detail (or only in price and photos)."""
    a, b = _pair_rows(market, listing_index, "hard_negative_same_model")
    sim = np.array([_jaccard(x, y) for x, y in zip(a["original_description"], b["original_description"])])
    twins = sim > 0.8
    assert twins.mean() > 0.2
    # the detail shows in the title, the attributes or the price of most twins, not all
    detail = ((a["original_title"].to_numpy() != b["original_title"].to_numpy())
              | np.array([x != y for x, y in zip(a["attributes"], b["attributes"])])
              | (a["price"].to_numpy() != b["price"].to_numpy()))
    assert 0.5 < detail[twins].mean() < 1.0
    # a repost is no closer: duplicates often share less text than these twins
    p_a, p_b = _pair_rows(market, listing_index, "repost")
    pos_sim = np.array([_jaccard(x, y) for x, y in zip(p_a["original_description"], p_b["original_description"])])
    assert np.median(pos_sim) < np.median(sim[twins])


def test_reposts_rewritten_repriced_and_refiled(market, listing_index):
    a, b = _pair_rows(market, listing_index, "repost")
    sim = np.array([_jaccard(x, y) for x, y in zip(a["original_description"], b["original_description"])])
    assert (sim < 0.35).mean() > 0.15                      # written anew or cut to a line or two
    short = np.array([min(len(x), len(y)) < 0.5 * max(len(x), len(y))
                      for x, y in zip(a["original_description"], b["original_description"])])
    assert short.mean() > 0.1
    ratio = (np.fmin(a["price"].to_numpy(), b["price"].to_numpy())
             / np.fmax(a["price"].to_numpy(), b["price"].to_numpy()))
    ratio = ratio[np.isfinite(ratio)]
    assert ((ratio >= 0.78) & (ratio <= 0.96)).mean() > 0.2   # cut by 5-20 %
    assert (ratio == 1).mean() > 0.2
    # filed under another level 3/4 now and then, never another level 1/2
    assert (a["category_l2"].to_numpy() == b["category_l2"].to_numpy()).all()
    path = lambda x: x["category_l3"] + "/" + x["category_l4"]  # noqa: E731
    moved = (path(a).to_numpy() != path(b).to_numpy()).mean()
    assert 0.01 < moved < 0.2
    # attributes: some dropped, some written differently
    keys_dropped = np.mean([x.keys() != y.keys() for x, y in zip(a["attributes"], b["attributes"])])
    assert keys_dropped > 0.3


def test_reposts_carry_todays_numbers():
    """Weeks later the car has driven on and the puppy is a month older."""
    m = generate_marketplace(6000, seed=1)
    lst = m.listings
    multi = lst[lst["cluster_id"].duplicated(keep=False)]
    cars = multi[multi["category_l2"] == "Автомобили"]
    km = cars.groupby("cluster_id")["attributes"].agg(lambda s: len({a.get("Пробег") for a in s if "Пробег" in a}))
    assert (km > 1).sum() >= 3
    pets = multi[multi["category_l2"].isin(["Собаки", "Кошки"])]
    age = pets.groupby("cluster_id")["attributes"].agg(lambda s: len({a.get("Возраст") for a in s if "Возраст" in a}))
    assert (age > 1).sum() >= 3


def test_price_written_into_the_text_follows_the_listing():
    m = generate_marketplace(1500, seed=2)
    lst = m.listings
    said = lst[lst["original_description"].str.contains(r"Цена:? \d|Прошу \d|Отдам за \d|\d ₽, торг", regex=True)
               & lst["price"].gt(0)]
    assert 0.15 < len(said) / len(lst) < 0.5
    ok = [f"{int(p):,}".replace(",", " ") in d or str(int(p)) in d
          for p, d in zip(said["price"], said["original_description"])]
    assert np.mean(ok) > 0.9    # the rest are shop ads or sentences that name another number


def test_default_homoglyph_spam_hits_most_listings_and_many_words():
    m = generate_marketplace(1500, seed=3, typo_rate=0.0)
    lst = m.listings
    changed = (lst["title"] != lst["original_title"]) | (lst["description"] != lst["original_description"])
    assert 0.6 < changed.mean() < 0.8
    shares = []
    for text, orig in zip(lst.loc[changed, "description"], lst.loc[changed, "original_description"]):
        ru = [(t, o) for t, o in zip(text.split(), orig.split()) if any(is_cyrillic(ch) for ch in o)]
        if len(ru) >= 10:
            shares.append(np.mean([t != o for t, o in ru]))
    assert 0.25 < np.median(shares) < 0.55
    # one copy spammed, the other clean: the uncleaned texts of a duplicate pair differ
    pos = m.pairs[m.pairs["kind"] == "repost"]
    ch = pd.Series(changed.to_numpy(), index=lst["item_id"])
    one_sided = ch.loc[pos["item_id_a"]].to_numpy() != ch.loc[pos["item_id_b"]].to_numpy()
    assert 0.3 < one_sided.mean() < 0.55


def test_label_noise_keeps_the_rate_and_kind_tells_the_truth():
    clean = generate_marketplace(2000, seed=4, label_noise=0.0)
    assert (clean.pairs["label"] == (clean.pairs["kind"] == "repost")).all()
    noisy = generate_marketplace(2000, seed=4, label_noise=0.04)
    wrong = (noisy.pairs["label"] == 1) != (noisy.pairs["kind"] == "repost")
    assert abs(wrong.mean() - 0.04) < 0.005
    assert abs(noisy.pairs["label"].mean() - 0.3) < 0.005
    assert ((noisy.pairs["label"] == 1) & wrong).sum() == ((noisy.pairs["label"] == 0) & wrong).sum()


def test_generation_options_make_it_easier_when_asked():
    """Turning the hard mechanics off gives the old, easy market: fewer twins, no rewrites."""
    easy = generate_marketplace(2000, seed=5, sibling_rate=0.1, close_sibling_rate=0.0,
                                shared_owner_rate=0.0, rewrite_rate=0.0, label_noise=0.0)
    hard = generate_marketplace(2000, seed=5)
    kinds_easy = easy.pairs["kind"].value_counts(normalize=True)
    kinds_hard = hard.pairs["kind"].value_counts(normalize=True)
    assert kinds_hard["hard_negative_same_model"] > kinds_easy.get("hard_negative_same_model", 0)
    for name, v in (("rewrite_rate", 1.5), ("same_sibling_rate", -0.1), ("label_noise", 0.9)):
        with pytest.raises(ValueError):
            generate_marketplace(100, **{name: v})


def test_homoglyph_word_rate_and_letters_per_word():
    import random
    rnd = random.Random(1)
    words = ["оранжевое", "состояние", "продаю", "комплекте", "отличное"] * 40
    text = " ".join(words)
    hit, counts = [], Counter()
    for _ in range(200):
        noisy = substitute_homoglyphs(text, rnd, 0.4)
        for o, t in zip(text.split(" "), noisy.split(" ")):
            n = sum(a != b for a, b in zip(o, t))
            hit.append(n > 0)
            if n:
                counts["all" if n == sum(ch in CYR_TO_LAT for ch in o) else min(n, 2)] += 1
    assert abs(np.mean(hit) - 0.4) < 0.02
    total = sum(counts.values())
    assert 0.2 < counts["all"] / total < 0.3 and counts[1] > counts[2] > 0
