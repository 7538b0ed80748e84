"""Blocking: each blocker finds planted duplicates, skips oversized blocks, union and metrics."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from dupsearch.candidates import (
    CategoryBlocker,
    ExactKeyBlocker,
    ImageHashBlocker,
    MinHashLSHBlocker,
    blocking_metrics,
    phone_tokens,
    true_pairs_from_clusters,
    union_candidates,
)
from dupsearch.errors import DataError

FILLER = ["велосипед горный", "диван угловой", "куртка зимняя", "ноутбук игровой", "кроссовки беговые",
          "холодильник двухкамерный", "коляска прогулочная", "телевизор жидкокристаллический",
          "шкаф купе", "гитара акустическая", "самокат детский", "стол письменный", "палатка туристическая",
          "чайник электрический", "принтер лазерный", "кресло офисное", "аквариум стеклянный",
          "пылесос моющий", "микроволновка соло", "утюг паровой", "лыжи беговые", "часы наручные",
          "фотоаппарат плёночный"]


def _pairs(df: pd.DataFrame) -> set[tuple[str, str]]:
    return set(zip(df["item_id_a"], df["item_id_b"]))


@pytest.fixture
def listings(tmp_path) -> pd.DataFrame:
    rows = []
    for i, words in enumerate(FILLER):
        rows.append(dict(title=f"{words} модель {i}", description=f"Продаю {words}, состояние номер {i * 7}.",
                         category_l1=f"cat{i % 5}", category_l2=f"sub{i % 3}", category_l3="", category_l4="",
                         images=[]))
    # p1/p2: exact title copy (case, spacing and a Latin homoglyph 'о' differ).
    rows.append(dict(title="Iphone 12 Pro 128 гб синий", description="Отличное состояние, без царапин.",
                     category_l1="Электроника", category_l2="Телефоны", category_l3="", category_l4="", images=[]))
    rows.append(dict(title="  iphone 12 pro  128 Гб синий", description="Продаю, торг.",
                     category_l1="Электроника", category_l2="Телефоны", category_l3="", category_l4="", images=[]))
    # p3/p4: the same phone number written differently.
    rows.append(dict(title="Сдам квартиру у метро", description="Звоните +7 (912) 345-67-89, Анна.",
                     category_l1="Недвижимость", category_l2="Аренда", category_l3="", category_l4="", images=[]))
    rows.append(dict(title="Квартира посуточно", description="тел 89123456789 в любое время",
                     category_l1="Недвижимость", category_l2="Посуточно", category_l3="", category_l4="", images=[]))
    # p5/p6: a long near-duplicate text with one word changed (MinHash).
    text = ("Продаю детский велосипед Stels Pilot 110 колёса шестнадцать дюймов рама стальная "
            "катались одно лето хранился в квартире в комплекте боковые колёса звонок и корзина "
            "самовывоз из центра города")
    rows.append(dict(title="Велосипед Stels Pilot", description=text,
                     category_l1="Хобби", category_l2="Велосипеды", category_l3="", category_l4="", images=[]))
    rows.append(dict(title="Велосипед Stels Pilot", description=text.replace("звонок", "фонарик"),
                     category_l1="Хобби", category_l2="Велосипеды", category_l3="", category_l4="", images=[]))
    # p7/p8: the same photo, distinct texts.
    rng = np.random.default_rng(0)
    photo = tmp_path / "shared.png"
    Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(photo)
    other = tmp_path / "other.png"
    Image.fromarray(np.tile(np.linspace(0, 255, 64, dtype=np.uint8), (64, 1))).convert("RGB").save(other)
    rows.append(dict(title="Кресло-качалка", description="Плетёное", category_l1="Дом", category_l2="Мебель",
                     category_l3="", category_l4="", images=[str(photo), str(tmp_path / "missing.jpg")]))
    rows.append(dict(title="Продам кресло", description="Из ротанга", category_l1="Дом", category_l2="Мебель",
                     category_l3="", category_l4="", images=[str(photo)]))
    rows[0]["images"] = [str(other)]
    df = pd.DataFrame(rows)
    df.insert(0, "item_id", [f"p{i - len(FILLER) + 1}" if i >= len(FILLER) else f"f{i:02d}" for i in range(len(df))])
    df["cluster_id"] = np.arange(len(df))
    return df


def test_title_blocker_finds_copies(listings):
    pairs = _pairs(ExactKeyBlocker("title").pairs(listings))
    assert pairs == {("p1", "p2")} | ({("p5", "p6")})  # p5/p6 carry the same title too


def test_phone_blocker_normalises_formats(listings):
    assert phone_tokens("+7 (912) 345-67-89 / 8-912-345-67-89 / 89123456789 / цена 17 500") == ["9123456789"] * 3
    assert _pairs(ExactKeyBlocker("phone").pairs(listings)) == {("p3", "p4")}


def test_minhash_finds_near_duplicate_text(listings):
    blocker = MinHashLSHBlocker(num_perm=64, bands=16)
    pairs = _pairs(blocker.pairs(listings))
    assert ("p5", "p6") in pairs
    assert ("p3", "p4") not in pairs and ("f00", "f01") not in pairs
    assert len(pairs) <= 3


def test_image_hash_blocker_shared_photo_and_unreadable(listings):
    blocker = ImageHashBlocker()
    assert _pairs(blocker.pairs(listings)) == {("p7", "p8")}
    assert blocker.report_["unreadable_images"] == 1
    assert blocker.report_["images"] == 3


def test_category_blocker_pairs_and_skips(listings):
    blocker = CategoryBlocker(level=2)
    pairs = _pairs(blocker.pairs(listings))
    assert ("p1", "p2") in pairs and ("p7", "p8") in pairs
    assert ("p3", "p4") not in pairs  # Аренда vs Посуточно
    assert ("f00", "f01") not in pairs
    # cat0/sub0 holds f00 and f15; level 1 joins f00, f05, f10, f15, f20.
    assert ("f00", "f15") in pairs
    level1 = CategoryBlocker(level=1, max_block=4)
    pairs1 = _pairs(level1.pairs(listings))
    assert level1.report_["skipped_blocks"] == 3 and level1.report_["skipped_block_rows"] == 5 + 5 + 5
    assert ("f00", "f05") not in pairs1 and ("p1", "p2") in pairs1


def test_max_bucket_skip_is_counted():
    df = pd.DataFrame({"item_id": [str(i) for i in range(10)], "title": ["одно и то же"] * 8 + ["a", "b"],
                       "description": [""] * 10})
    blocker = MinHashLSHBlocker(max_bucket=5)
    assert len(blocker.pairs(df)) == 0
    assert blocker.report_["skipped_blocks"] == 16  # one bucket per band
    exact = ExactKeyBlocker("title", max_block=7)
    assert len(exact.pairs(df)) == 0 and exact.report_["skipped_blocks"] == 1
    assert len(ExactKeyBlocker("title", max_block=8).pairs(df)) == 28


def test_pair_orientation_and_uniqueness(listings):
    out = CategoryBlocker(level=1).pairs(listings)
    assert list(out.columns) == ["item_id_a", "item_id_b"]
    assert (out["item_id_a"] < out["item_id_b"]).all()
    assert not out.duplicated().any()


def test_union_dedups_and_names_blockers(listings):
    blockers = [ExactKeyBlocker("title"), MinHashLSHBlocker(), ExactKeyBlocker("phone"), ImageHashBlocker()]
    cand, report = union_candidates(listings, blockers)
    assert not cand.duplicated(["item_id_a", "item_id_b"]).any()
    by_pair = dict(zip(zip(cand["item_id_a"], cand["item_id_b"]), cand["blockers"]))
    assert by_pair[("p5", "p6")] == "title|minhash"
    assert by_pair[("p1", "p2")].startswith("title")
    assert by_pair[("p3", "p4")] == "phone"
    assert by_pair[("p7", "p8")] == "phash"
    assert set(report) == {"title", "minhash", "phone", "phash"}
    assert report["phone"]["n_pairs"] == 1 and report["phash"]["unreadable_images"] == 1
    assert all("seconds" in r for r in report.values())
    with pytest.raises(ValueError, match="distinct"):
        union_candidates(listings, [MinHashLSHBlocker(), MinHashLSHBlocker()])


def test_missing_column_is_named(listings):
    with pytest.raises(DataError, match="category_l2"):
        CategoryBlocker(level=2).pairs(listings.drop(columns="category_l2"))
    with pytest.raises(DataError, match="item_id"):
        ExactKeyBlocker("title").pairs(listings.assign(item_id="x"))


def test_blocking_metrics_hand_computed():
    cand = pd.DataFrame({"item_id_a": ["a", "a", "c"], "item_id_b": ["b", "c", "d"]})
    truth = pd.DataFrame({"item_id_a": ["b", "d", "a"], "item_id_b": ["a", "c", "e"]})  # order-free
    m = blocking_metrics(cand, truth, n_listings=5)
    assert m["pair_recall"] == pytest.approx(2 / 3)
    assert m["reduction_ratio"] == pytest.approx(1 - 3 / 10)
    assert m["candidates_per_listing"] == pytest.approx(3 / 5)
    assert m["n_candidates"] == 3


def test_true_pairs_from_clusters_hand_example():
    df = pd.DataFrame({"item_id": ["e", "a", "b", "c", "d", "f"], "cluster_id": [1, 1, 2, 1, 3, np.nan]})
    assert _pairs(true_pairs_from_clusters(df)) == {("a", "e"), ("c", "e"), ("a", "c")}
    with pytest.raises(DataError, match="cluster_id"):
        true_pairs_from_clusters(df.drop(columns="cluster_id"))


def test_synthetic_market_recall_and_reduction():
    from dupsearch.synth import generate_marketplace

    listings = generate_marketplace(2000, seed=0).listings
    truth = true_pairs_from_clusters(listings)
    blockers = [MinHashLSHBlocker(num_perm=64, bands=16),
                MinHashLSHBlocker(num_perm=64, bands=32, columns=["title"], name="minhash_title"),
                ExactKeyBlocker("title")]
    cand, _ = union_candidates(listings, blockers)
    m = blocking_metrics(cand, truth, len(listings))
    # Measured (seed 0): recall 0.953, reduction ratio 0.987 (13 candidates per listing). 0.99
    # needs <= 10 per listing at n=2000; the ratio grows with n as blocks stay small.
    assert m["pair_recall"] >= 0.9
    assert m["reduction_ratio"] >= 0.98
